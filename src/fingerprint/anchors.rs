//! Placeholder for the cross-language anchor signature (issue 8). The
//! translation helper's version of this file replaces it; it exists here
//! only so that the folding pipeline compiles against the same API.

/// The anchor signature of an item (none in this placeholder).
pub fn extract(_title: &str, _text: &str) -> Vec<String> {
    Vec::new()
}

/// The lookup keys for the store's index (none in this placeholder).
pub fn index_keys(_anchors: &[String]) -> Vec<i64> {
    Vec::new()
}
