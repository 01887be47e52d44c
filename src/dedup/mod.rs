//! Fold decisions. Pure: given a new item's signature and the candidates the
//! store found, decide whether it folds into an existing story and why.
//! No I/O, cannot fail.

pub mod xling;

use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Everything the fold decision knows about one item that can be computed
/// from the item alone. Stored with the item so that candidates can be
/// compared without recomputation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signature {
    /// Version of the fingerprint algorithm that produced `simhash`.
    pub fp_version: i16,
    /// 64-bit body simhash (u64 bit pattern as i64).
    pub simhash: i64,
    /// Hash of the first ~40 normalized tokens of the body.
    pub lead_hash: Option<i64>,
    /// Exact hash of the normalized body; None when the body is empty.
    pub content_hash: Option<i64>,
    /// The normalized headline that headline folding compares.
    pub headline_key: Option<String>,
    pub headline_hash: Option<i64>,
    /// How much real text the item has after boilerplate removal (tokens).
    pub text_len: i32,
    /// Cross-language anchor signature, space-separated tokens.
    pub anchors: Option<String>,
    /// Lookup keys (lead, headline, anchors, ...) already mixed with their
    /// kind. The store indexes them in `item_keys` and probes with them.
    pub keys: Vec<i64>,
}

impl Signature {
    /// The four 16-bit bands of the simhash, low band first.
    pub fn bands(&self) -> [i32; 4] {
        let v = self.simhash as u64;
        [
            (v & 0xffff) as i32,
            ((v >> 16) & 0xffff) as i32,
            ((v >> 32) & 0xffff) as i32,
            ((v >> 48) & 0xffff) as i32,
        ]
    }
}

/// How an item's feed takes part in folding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeedPolicy {
    #[default]
    Normal,
    /// The feed publishes originals: its items are never folded into another
    /// story, but copies from other feeds may fold into its items.
    OriginalOnly,
    /// The feed never takes part in folding.
    Never,
}

impl FeedPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedPolicy::Normal => "normal",
            FeedPolicy::OriginalOnly => "original_only",
            FeedPolicy::Never => "never",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "normal" => Some(FeedPolicy::Normal),
            "original_only" => Some(FeedPolicy::OriginalOnly),
            "never" => Some(FeedPolicy::Never),
            _ => None,
        }
    }
}

/// An item about to be folded: its text as stored plus its signature.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub feed_id: i64,
    pub feed_policy: FeedPolicy,
    pub fold_translations: bool,
    pub url: Option<String>,
    pub canonical_url: Option<String>,
    pub origin_url: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub content_text: String,
    pub lang: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub fetched_at: DateTime<Utc>,
    pub dated_at: DateTime<Utc>,
    pub signature: Signature,
}

/// A stored item that the store's candidate search returned.
#[derive(Debug, Clone, Default)]
pub struct Candidate {
    pub item_id: i64,
    pub story_id: i64,
    /// True when this item is its story's canonical item. The store includes
    /// the canonical item of every story that a candidate belongs to.
    pub is_canonical: bool,
    /// How this item joined its story (None when it founded the story).
    pub fold_method: Option<String>,
    /// The subject must never fold into this candidate's story (an unfold).
    pub vetoed: bool,
    pub item: Subject,
}

/// Facts about the candidate neighbourhood that the store measures: for each
/// probed key, how many items inside the window carry it. Rarity of anchors
/// and genericness of headlines both come from here.
#[derive(Debug, Clone, Default)]
pub struct KeyStats {
    pub counts: HashMap<i64, i64>,
    /// Items inside the window in all (the denominator for rarity).
    pub window_items: i64,
}

/// Which signal folded an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoldMethod {
    Url,
    ContentHash,
    Origin,
    Simhash,
    Lead,
    Headline,
    Translation,
}

impl FoldMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            FoldMethod::Url => "url",
            FoldMethod::ContentHash => "content-hash",
            FoldMethod::Origin => "origin-link",
            FoldMethod::Simhash => "simhash",
            FoldMethod::Lead => "lead",
            FoldMethod::Headline => "headline",
            FoldMethod::Translation => "translation",
        }
    }
}

/// The decision for one subject.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    NewStory,
    Fold(Fold),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fold {
    pub story_id: i64,
    pub matched_item_id: i64,
    pub method: FoldMethod,
    pub distance: Option<i32>,
    pub score: Option<f64>,
    /// Human-readable evidence: shared anchors, the headline that matched...
    pub detail: Option<String>,
    /// The subject is more original than the story's current canonical item.
    pub becomes_canonical: bool,
}

/// Thresholds and windows for folding. Defaults are documented in
/// feedfold.example.toml and checked by a test.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FoldConfig {
    /// Candidates are limited to items dated within this window.
    #[serde(with = "crate::config::duration")]
    pub window: std::time::Duration,
    /// Widest simhash distance that is verified by shingle overlap.
    pub max_distance: u32,
    /// Cross-language candidates are limited to this tighter window.
    #[serde(with = "crate::config::duration")]
    pub translation_window: std::time::Duration,
    /// Headline folding is limited to this window.
    #[serde(with = "crate::config::duration")]
    pub headline_window: std::time::Duration,
}

impl Default for FoldConfig {
    fn default() -> Self {
        FoldConfig {
            window: std::time::Duration::from_secs(14 * 24 * 3600),
            max_distance: 12,
            translation_window: std::time::Duration::from_secs(48 * 3600),
            headline_window: std::time::Duration::from_secs(48 * 3600),
        }
    }
}

/// Decides whether `subject` folds into one of the candidates' stories.
pub fn decide(
    subject: &Subject,
    candidates: &[Candidate],
    _stats: &KeyStats,
    _config: &FoldConfig,
) -> Decision {
    if subject.feed_policy != FeedPolicy::Normal {
        return Decision::NewStory;
    }
    for c in candidates {
        if c.vetoed || c.item.feed_policy == FeedPolicy::Never {
            continue;
        }
        let same_url = subject.canonical_url.is_some() && subject.canonical_url == c.item.canonical_url;
        let same_content = subject.signature.content_hash.is_some()
            && subject.signature.content_hash == c.item.signature.content_hash;
        if same_url || same_content {
            return Decision::Fold(Fold {
                story_id: c.story_id,
                matched_item_id: c.item_id,
                method: if same_url { FoldMethod::Url } else { FoldMethod::ContentHash },
                distance: Some(0),
                score: Some(1.0),
                detail: None,
                becomes_canonical: false,
            });
        }
    }
    Decision::NewStory
}
