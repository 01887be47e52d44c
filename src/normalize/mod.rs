//! Text normalization: HTML to text, folding and tokens, boilerplate,
//! URL canonicalization and origin links. Pure: no I/O, cannot fail.

pub mod boilerplate;
pub mod html;
pub mod origin;
pub mod text;
pub mod url;

pub use html::html_to_text;
pub use text::{fold_text, tokens};
pub use url::canonical_url;
