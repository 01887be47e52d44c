//! Placeholder for the translation signal (issue 8). The translation
//! helper's version of this file replaces it.

use super::{Candidate, Fold, FoldConfig, KeyStats, Subject};

/// Folds a translated copy into its original's story (never, here).
pub fn decide_translation(
    _subject: &Subject,
    _candidates: &[Candidate],
    _stats: &KeyStats,
    _config: &FoldConfig,
) -> Option<Fold> {
    None
}
