//! refresh
pub mod prepare;
