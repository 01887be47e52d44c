//! Shared test helpers.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/corpus/dev` beside the project root, if present. Tests that
/// need it print why they skip when it is absent.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/dev");
    if dir.join("truth.tsv").exists() {
        Some(dir)
    } else {
        eprintln!("skipping: corpus not found at {}", dir.display());
        None
    }
}
