//! Integration tests: fold.
