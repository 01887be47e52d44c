//! OPML 1.0/2.0 import and export.
