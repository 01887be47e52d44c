//! Fold decisions. Pure: given a new item's signature and the candidates the
//! store found, decide whether it folds into an existing story and why.
//! No I/O, cannot fail.
//!
//! Precision first: a false merge hides a story from the reader, a missed
//! copy only shows it twice. Every text signal is therefore verified by
//! exact shingle overlap recomputed from the stored text, tiny texts never
//! fold on body fingerprints, and headline equality is refused when the
//! headline recurs across stories.

pub mod xling;

use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

use crate::fingerprint;
use crate::normalize::fold_text;

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
    /// The item shows republisher marks: its feed's learned template was
    /// stripped from it, or it points off-site (an aggregator entry). Only
    /// canonical choice reads it: between two copies whose clocks disagree by
    /// less than the skew allowance, the unmarked one is the better original.
    pub republished: bool,
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
    /// Another item of the story, which the subject credits by name, is
    /// more original than the story's current canonical item and replaces
    /// it (the credit arrived after the original).
    pub promotes: Option<i64>,
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
    /// Items with fewer tokens of clean text than this never fold, and are
    /// never folded into, on a body fingerprint (simhash, lead) alone.
    pub min_text_len: i32,
    /// Shingle resemblance (Jaccard) that verifies a simhash candidate.
    pub min_resemblance: f64,
    /// Shingle containment (of the smaller text in the larger) that
    /// verifies a simhash or lead candidate.
    pub min_containment: f64,
    /// Beyond the simhash radius, the resemblance that still verifies a
    /// candidate found through a lookup key.
    pub far_resemblance: f64,
    /// Beyond the simhash radius, the containment that still verifies one.
    pub far_containment: f64,
    /// A headline that this many distinct stories in the window carry is
    /// generic ("Market close") and not evidence.
    pub generic_headline_stories: usize,
    /// Clocks of republishers disagree by up to this much: inside it,
    /// published times do not decide which item is the original.
    #[serde(with = "crate::config::duration")]
    pub canonical_skew: std::time::Duration,
}

impl Default for FoldConfig {
    fn default() -> Self {
        FoldConfig {
            window: std::time::Duration::from_secs(14 * 24 * 3600),
            max_distance: 12,
            translation_window: std::time::Duration::from_secs(48 * 3600),
            headline_window: std::time::Duration::from_secs(48 * 3600),
            min_text_len: 25,
            min_resemblance: 0.55,
            min_containment: 0.8,
            far_resemblance: 0.6,
            far_containment: 0.85,
            generic_headline_stories: 3,
            canonical_skew: std::time::Duration::from_secs(12 * 3600),
        }
    }
}

/// Strength of a signal when several candidates match.
fn rank(m: FoldMethod) -> u8 {
    match m {
        FoldMethod::Url => 7,
        FoldMethod::ContentHash => 6,
        FoldMethod::Origin => 5,
        FoldMethod::Simhash | FoldMethod::Lead => 4,
        FoldMethod::Headline => 3,
        FoldMethod::Translation => 2,
    }
}

/// Lazily computed shingle sets, so that each text is shingled at most once.
struct Texts<'a> {
    subject: &'a Subject,
    subject_shingles: Option<Vec<u64>>,
    subject_summary: Option<Vec<u64>>,
    subject_lead: Option<Option<String>>,
    subject_numbers: Option<Vec<String>>,
    subject_text_keys: Option<HashSet<i64>>,
}

impl<'a> Texts<'a> {
    fn subject(&mut self) -> &[u64] {
        let s = self.subject;
        self.subject_shingles
            .get_or_insert_with(|| fingerprint::shingles(&fold_text(&s.content_text)))
    }
    fn text_keys(&mut self) -> &HashSet<i64> {
        let s = self.subject;
        self.subject_text_keys.get_or_insert_with(|| {
            fingerprint::body_prints(&fold_text(&s.content_text))
                .text_keys()
                .into_iter()
                .collect()
        })
    }
    fn subject_lead(&mut self, n: usize) -> Option<&String> {
        let s = self.subject;
        self.subject_lead
            .get_or_insert_with(|| fingerprint::first_tokens(&fold_text(&s.content_text), n))
            .as_ref()
    }
    fn numbers(&mut self) -> &[String] {
        let s = self.subject;
        self.subject_numbers.get_or_insert_with(|| numbers_of(s))
    }
    fn summary(&mut self) -> &[u64] {
        let s = self.subject;
        self.subject_summary.get_or_insert_with(|| {
            let t = s
                .summary
                .as_deref()
                .filter(|t| !t.is_empty())
                .unwrap_or(&s.content_text);
            fingerprint::shingles(&fold_text(t))
        })
    }
}

/// Numeric tokens of a text, sorted and deduplicated.
fn numbers_in(text: &str) -> Vec<String> {
    let folded = fold_text(text);
    let mut v: Vec<String> = crate::normalize::text::tokens(&folded)
        .into_iter()
        .filter(|t| t.chars().any(|c| c.is_numeric()))
        .map(str::to_string)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn numbers_of(item: &Subject) -> Vec<String> {
    numbers_in(&item.content_text)
}

/// Copies keep their figures; templated reports (weekly statistics, price
/// tables) keep their wording and change the figures. The smaller set of
/// numbers must be found in the larger, allowing one figure in five (at
/// least one) to differ: an edit, a number cut by truncation.
fn numbers_agree(a: &[String], b: &[String]) -> bool {
    let (small, big) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if small.len() < 2 {
        return true;
    }
    let missing = small
        .iter()
        .filter(|x| big.binary_search(x).is_err())
        .count();
    missing <= (small.len() / 5).max(1)
}

fn shingles_of(item: &Subject) -> Vec<u64> {
    fingerprint::shingles(&fold_text(&item.content_text))
}

fn usable_url(u: &Option<String>) -> Option<&str> {
    u.as_deref()
        .filter(|u| !crate::normalize::url::is_front_page(u))
}

fn within(a: DateTime<Utc>, b: DateTime<Utc>, w: std::time::Duration) -> bool {
    let d = (a - b).num_seconds().unsigned_abs();
    d <= w.as_secs()
}

/// Evaluates one candidate; returns the fold it supports, if any.
fn judge(
    subject: &Subject,
    c: &Candidate,
    texts: &mut Texts<'_>,
    generic: &HashSet<i64>,
    cfg: &FoldConfig,
) -> Option<Fold> {
    let s = &subject.signature;
    let o = &c.item.signature;
    let fold = |method: FoldMethod,
                distance: Option<i32>,
                score: Option<f64>,
                detail: Option<String>| Fold {
        story_id: c.story_id,
        matched_item_id: c.item_id,
        method,
        distance,
        score,
        detail,
        becomes_canonical: false,
        promotes: None,
    };
    let long = |n: i32| n >= cfg.min_text_len;
    let dist = crate::fingerprint::distance(s.simhash, o.simhash) as i32;

    // Same page.
    if let (Some(a), Some(b)) = (
        usable_url(&subject.canonical_url),
        usable_url(&c.item.canonical_url),
    ) && a == b
    {
        return Some(fold(
            FoldMethod::Url,
            Some(dist),
            Some(1.0),
            Some(a.to_string()),
        ));
    }
    // Same body, exactly (not for tiny texts: "Read the full story at …"
    // is the same on every pointer of an aggregator).
    if s.content_hash.is_some() && s.content_hash == o.content_hash && long(s.text_len) {
        return Some(fold(FoldMethod::ContentHash, Some(0), Some(1.0), None));
    }
    // One cites the other. Two full bodies in one language must not
    // contradict the citation (a "related story" link is not a copy).
    let cites = |from: &Subject, to: &Subject| -> bool {
        matches!((usable_url(&from.origin_url), usable_url(&to.canonical_url)), (Some(a), Some(b)) if a == b)
    };
    if cites(subject, &c.item) || cites(&c.item, subject) {
        let same_lang =
            subject.lang.is_none() || c.item.lang.is_none() || subject.lang == c.item.lang;
        let ok = if same_lang && long(s.text_len) && long(o.text_len) {
            let (_, cont) = fingerprint::overlap(texts.subject(), &shingles_of(&c.item));
            cont >= 0.3 || (s.headline_hash.is_some() && s.headline_hash == o.headline_hash)
        } else {
            true
        };
        if ok {
            let target = usable_url(&c.item.canonical_url).or(usable_url(&subject.canonical_url));
            return Some(fold(
                FoldMethod::Origin,
                Some(dist),
                Some(1.0),
                target.map(str::to_string),
            ));
        }
    }
    // Near-duplicate bodies, verified by shingle overlap. Inside the simhash
    // radius the usual thresholds apply; beyond it (edited or truncated
    // copies found through the lead or sketch keys) stricter ones, or a
    // shared lead with the shorter text contained in the longer.
    // Shingling a candidate is the expensive step: only candidates inside
    // the radius or sharing a text lookup key (lead, sketch) are verified;
    // anchor keys alone (shared names) do not make a same-language copy.
    let near = dist <= cfg.max_distance as i32;
    if long(s.text_len)
        && long(o.text_len)
        && (near || {
            let tk = texts.text_keys();
            o.keys.iter().any(|k| tk.contains(k))
        })
    {
        let (res, cont) = fingerprint::overlap(texts.subject(), &shingles_of(&c.item));
        if (res < cfg.min_resemblance && cont < cfg.min_containment)
            || !numbers_agree(texts.numbers(), &numbers_of(&c.item))
        {
            return headline_fold(subject, c, texts, generic, cfg, fold);
        }
        let detail = Some(format!("resemblance={res:.3} containment={cont:.3}"));
        let n = fingerprint::SHORT_LEAD_TOKENS;
        let same_lead = cont >= cfg.min_containment
            && ((s.lead_hash.is_some() && s.lead_hash == o.lead_hash)
                || matches!((texts.subject_lead(n), fingerprint::first_tokens(&fold_text(&c.item.content_text), n)), (Some(a), Some(b)) if *a == b));
        let excerpt = (s.text_len.min(o.text_len) as f64) < 0.8 * s.text_len.max(o.text_len) as f64;
        // An excerpt that shares the lead is recorded as a lead fold, which
        // says more to an auditor than a distance.
        if same_lead && (excerpt || !near) {
            return Some(fold(FoldMethod::Lead, Some(dist), Some(cont), detail));
        }
        if near {
            return Some(fold(
                FoldMethod::Simhash,
                Some(dist),
                Some(res.max(cont)),
                detail,
            ));
        }
        // Short texts differ from a templated sibling by one slot word, which
        // a containment ratio barely sees: beyond the radius they need a
        // shared lead.
        let shorter = s.text_len.min(o.text_len);
        if shorter >= 2 * cfg.min_text_len
            && (res >= cfg.far_resemblance || cont >= cfg.far_containment)
        {
            return Some(fold(
                FoldMethod::Simhash,
                Some(dist),
                Some(res.max(cont)),
                detail,
            ));
        }
    }
    headline_fold(subject, c, texts, generic, cfg, fold)
}

/// Same headline, close in time, not generic.
fn headline_fold(
    subject: &Subject,
    c: &Candidate,
    texts: &mut Texts<'_>,
    generic: &HashSet<i64>,
    cfg: &FoldConfig,
    fold: impl Fn(FoldMethod, Option<i32>, Option<f64>, Option<String>) -> Fold,
) -> Option<Fold> {
    let s = &subject.signature;
    let o = &c.item.signature;
    let long = |n: i32| n >= cfg.min_text_len;
    if let (Some(hs), Some(ho)) = (s.headline_hash, o.headline_hash)
        && hs == ho
        && !generic.contains(&hs)
        && within(subject.dated_at, c.item.dated_at, cfg.headline_window)
    {
        let detail = s.headline_key.clone();
        let (s_long, o_long) = (long(s.text_len), long(o.text_len));
        let ok = match (s_long, o_long) {
            // Two articles: their bodies decide (templated reports share
            // headlines and differ in figures), never the headline.
            (true, true) => false,
            // A short item against an article: its summary, if any,
            // must be contained in the article.
            (false, true) => {
                s.text_len == 0 || {
                    let sum = texts.summary().to_vec();
                    fingerprint::containment_in(&sum, &shingles_of(&c.item)) >= 0.6
                }
            }
            (true, false) => {
                o.text_len == 0 || {
                    let t = c
                        .item
                        .summary
                        .as_deref()
                        .filter(|t| !t.is_empty())
                        .unwrap_or(&c.item.content_text);
                    let sum = fingerprint::shingles(&fold_text(t));
                    fingerprint::containment_in(&sum, texts.subject()) >= 0.6
                }
            }
            (false, false) => true,
        };
        if ok {
            return Some(fold(FoldMethod::Headline, None, Some(1.0), detail));
        }
    }
    None
}

/// Headlines that recur across stories: refused as evidence. Counted from
/// the candidates (distinct stories carrying the headline) and from the
/// store's window-wide key counts.
fn generic_headlines(
    subject: &Subject,
    candidates: &[Candidate],
    stats: &KeyStats,
    cfg: &FoldConfig,
) -> HashSet<i64> {
    let mut out = HashSet::new();
    let Some(h) = subject.signature.headline_hash else {
        return out;
    };
    let stories: HashSet<i64> = candidates
        .iter()
        .filter(|c| c.item.signature.headline_hash == Some(h))
        .map(|c| c.story_id)
        .collect();
    let key = crate::fingerprint::key("headline", h);
    let count = stats.counts.get(&key).copied().unwrap_or(0);
    // Copies of one story share a headline too, so the window count alone
    // is only decisive when it is far above a story's usual copy count.
    if stories.len() >= cfg.generic_headline_stories
        || count >= 4 * cfg.generic_headline_stories as i64 + 8
    {
        out.insert(h);
    }
    out
}

/// Decides whether `subject` folds into one of the candidates' stories.
pub fn decide(
    subject: &Subject,
    candidates: &[Candidate],
    stats: &KeyStats,
    config: &FoldConfig,
) -> Decision {
    decide_cached(
        subject,
        candidates,
        stats,
        config,
        &mut xling::ProfileCache::default(),
    )
}

/// `decide`, reusing translation profiles of stored items between calls:
/// consecutive decisions see mostly the same candidates, and profiling them
/// is most of the cost of the translation signal.
pub fn decide_cached(
    subject: &Subject,
    candidates: &[Candidate],
    stats: &KeyStats,
    config: &FoldConfig,
    cache: &mut xling::ProfileCache,
) -> Decision {
    if subject.feed_policy != FeedPolicy::Normal {
        return Decision::NewStory;
    }
    let generic = generic_headlines(subject, candidates, stats, config);
    let mut texts = Texts {
        subject,
        subject_shingles: None,
        subject_summary: None,
        subject_lead: None,
        subject_numbers: None,
        subject_text_keys: None,
    };
    // Every verified match, grouped by story. When copies of one story were
    // split earlier (an excerpt and an edited copy that did not match each
    // other), the subject joins the story with the most matching items, so
    // that the larger part keeps growing; then the strongest signal.
    let mut per_story: HashMap<i64, (usize, Fold)> = HashMap::new();
    for c in candidates {
        if c.vetoed || c.item.feed_policy == FeedPolicy::Never {
            continue;
        }
        let Some(f) = judge(subject, c, &mut texts, &generic, config) else {
            continue;
        };
        let e = per_story.entry(f.story_id).or_insert((0, f.clone()));
        e.0 += 1;
        if (rank(f.method), f.score.unwrap_or(0.0)) > (rank(e.1.method), e.1.score.unwrap_or(0.0)) {
            e.1 = f;
        }
    }
    let mut best: Option<Fold> = per_story
        .into_values()
        .max_by(|(na, a), (nb, b)| {
            (na, rank(a.method), a.score.unwrap_or(0.0), -a.story_id)
                .partial_cmp(&(nb, rank(b.method), b.score.unwrap_or(0.0), -b.story_id))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|(_, f)| f);
    // A story vetoed for the subject is vetoed whichever item matched.
    let vetoed: HashSet<i64> = candidates
        .iter()
        .filter(|c| c.vetoed)
        .map(|c| c.story_id)
        .collect();
    if best.as_ref().is_some_and(|b| vetoed.contains(&b.story_id)) {
        best = None;
    }
    if best.is_none() {
        best = xling::decide_translation_cached(subject, candidates, stats, config, cache)
            .filter(|f| !vetoed.contains(&f.story_id));
    }
    let Some(mut fold) = best else {
        return Decision::NewStory;
    };
    let canon = candidates
        .iter()
        .find(|c| c.story_id == fold.story_id && c.is_canonical)
        .or_else(|| {
            candidates
                .iter()
                .find(|c| c.item_id == fold.matched_item_id)
        });
    // Copies of the story that the store found credit their source; what
    // they say weighs in when the subject and the canonical item cannot
    // settle it between themselves.
    let story: Vec<&Subject> = candidates
        .iter()
        .filter(|c| c.story_id == fold.story_id)
        .map(|c| &c.item)
        .collect();
    fold.becomes_canonical =
        canon.is_some_and(|c| more_original_in(subject, &c.item, &story, config));
    if let Some(c) = canon.filter(|_| !fold.becomes_canonical) {
        let mut with_subject = story.clone();
        with_subject.push(subject);
        fold.promotes = candidates
            .iter()
            .filter(|x| {
                x.story_id == fold.story_id && x.item_id != c.item_id && credits(subject, &x.item)
            })
            .find(|x| more_original_in(&x.item, &c.item, &with_subject, config))
            .map(|x| x.item_id);
    }
    Decision::Fold(fold)
}

/// The label that names a site: the registrable label of its host
/// ("meridianwire" for www.meridianwire.example, "bbc" for bbc.co.uk).
fn site_label(host: &str) -> Option<&str> {
    let labels: Vec<&str> = host.split('.').filter(|l| !l.is_empty()).collect();
    let n = labels.len();
    if n < 2 {
        return None;
    }
    let second = labels[n - 2];
    // Country domains with a generic second level: co.uk, com.au, ...
    let label = if n >= 3
        && labels[n - 1].len() == 2
        && matches!(
            second,
            "co" | "com" | "org" | "net" | "ac" | "gov" | "or" | "ne"
        ) {
        labels[n - 3]
    } else {
        second
    };
    Some(label)
}

/// Lower-case letters and digits only, accents dropped, so that a name
/// written in a text ("Pražský kurýr", "Rheinland-Kurier") compares with
/// the label of its host (prazskykuryr, rheinland-kurier).
fn bare_letters(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    s.nfkd()
        .filter(|c| !is_combining_mark(*c) && c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The site an item was published on, from its canonical URL or link.
fn item_site(x: &Subject) -> Option<String> {
    usable_url(&x.canonical_url)
        .or(usable_url(&x.url))
        .and_then(crate::normalize::url::site_of)
}

/// Words at the start of a text that a credit ("According to Meridian
/// Wire, …", "Meridian Wire reports …") sits in.
const CREDIT_WORDS: usize = 12;

/// True when `x` credits the site `site` by name in its opening words: an
/// edited copy says where it took the story from. Only whole words that
/// spell the site's label count, and an item never credits its own site.
fn credits_site(x: &Subject, site: &str) -> bool {
    use crate::normalize::url::same_site;
    let Some(label) = site_label(site).map(bare_letters) else {
        return false;
    };
    if label.chars().count() < 4 || item_site(x).is_some_and(|own| same_site(&own, site)) {
        return false;
    }
    let words: Vec<String> = x
        .content_text
        .split_whitespace()
        .take(CREDIT_WORDS)
        .map(bare_letters)
        .collect();
    (0..words.len()).any(|i| {
        let mut name = String::new();
        words[i..].iter().take(4).any(|w| {
            name.push_str(w);
            name == label
        })
    })
}

/// True when `x` credits the site that `y` was published on.
fn credits(x: &Subject, y: &Subject) -> bool {
    item_site(y).is_some_and(|site| credits_site(x, &site))
}

/// `more_original`, also weighing what the other copies of the story say:
/// inside the skew allowance, an item whose site another copy credits by
/// name is the better original over one whose site no copy credits. This
/// is what tells an original from a translation whose publisher's clock
/// runs early: the translation carries no mark, but a copy that credits
/// the original by name does.
pub fn more_original_in(a: &Subject, b: &Subject, story: &[&Subject], cfg: &FoldConfig) -> bool {
    if let Some(d) = decisive(a, b, cfg) {
        return d;
    }
    let credited =
        |x: &Subject| item_site(x).is_some_and(|site| story.iter().any(|m| credits_site(m, &site)));
    let (ka, kb) = (credited(a), credited(b));
    if ka != kb {
        return ka;
    }
    within_skew(a, b)
}

/// True when `a` is a better original for a story than `b`.
pub fn more_original(a: &Subject, b: &Subject, cfg: &FoldConfig) -> bool {
    more_original_in(a, b, &[], cfg)
}

/// The comparison of two items on their own evidence, when it decides:
/// policy, body, citations and credits, excerpts, time beyond the skew.
fn decisive(a: &Subject, b: &Subject, cfg: &FoldConfig) -> Option<bool> {
    // Feed policy: an original-only feed publishes originals.
    let oa = a.feed_policy == FeedPolicy::OriginalOnly;
    let ob = b.feed_policy == FeedPolicy::OriginalOnly;
    if oa != ob {
        return Some(oa);
    }
    // A headline-only pointer is never canonical over a body.
    let la = a.signature.text_len >= cfg.min_text_len;
    let lb = b.signature.text_len >= cfg.min_text_len;
    if la != lb {
        return Some(la);
    }
    // Citations: the cited item is the original; an item that cites some
    // other page is a copy. A credit by name ("According to …") is a
    // citation of the whole site.
    let cites = |x: &Subject, y: &Subject| -> bool {
        matches!((usable_url(&x.origin_url), usable_url(&y.canonical_url)), (Some(p), Some(q)) if p == q)
            || credits(x, y)
    };
    if cites(b, a) && !cites(a, b) {
        return Some(true);
    }
    if cites(a, b) && !cites(b, a) {
        return Some(false);
    }
    let ca = usable_url(&a.origin_url).is_some();
    let cb = usable_url(&b.origin_url).is_some();
    if ca != cb {
        return Some(cb);
    }
    // An excerpt (truncated or lead copy) is not the original.
    if la && lb && a.lang == b.lang {
        let (sa, sb) = (shingles_of(a), shingles_of(b));
        let i = fingerprint::intersection(&sa, &sb) as f64;
        let excerpt = |small: &[u64], big: &[u64]| {
            !small.is_empty()
                && i / small.len() as f64 >= cfg.min_containment
                && (small.len() as f64) < 0.8 * big.len() as f64
        };
        if excerpt(&sa, &sb) {
            return Some(false);
        }
        if excerpt(&sb, &sa) {
            return Some(true);
        }
    }
    // Across languages shingles do not compare, but token counts of a
    // translation stay within a factor of two or so of its source (CJK
    // bigrams included): far shorter than that is a translated excerpt.
    if la && lb && a.lang != b.lang {
        let short = |x: i32, y: i32| (x as f64) < CROSS_LANG_EXCERPT * y as f64;
        if short(a.signature.text_len, b.signature.text_len) {
            return Some(false);
        }
        if short(b.signature.text_len, a.signature.text_len) {
            return Some(true);
        }
    }
    // Time: beyond the skew allowance the earlier publication wins.
    let ta = a.published_at.unwrap_or(a.dated_at);
    let tb = b.published_at.unwrap_or(b.dated_at);
    let skew = cfg.canonical_skew.as_secs() as i64;
    let dt = (tb - ta).num_seconds();
    if dt > skew {
        return Some(true);
    }
    if -dt > skew {
        return Some(false);
    }
    // Inside the allowance: republisher marks.
    if a.signature.republished != b.signature.republished {
        return Some(!a.signature.republished);
    }
    None
}

/// Below this share of the other's token count, an item in another
/// language is an excerpt of a translation, not the full story.
const CROSS_LANG_EXCERPT: f64 = 0.4;

/// The last resort inside the skew allowance: the earlier clock, then the
/// item seen first.
fn within_skew(a: &Subject, b: &Subject) -> bool {
    use std::cmp::Ordering;
    let ta = a.published_at.unwrap_or(a.dated_at);
    let tb = b.published_at.unwrap_or(b.dated_at);
    match ta.cmp(&tb) {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => a.fetched_at < b.fetched_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn s(v: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn figures_must_agree() {
        let cases: &[(&[&str], &[&str], bool)] = &[
            (&[], &["1", "2"], true),
            (&["7"], &["8"], true),
            (
                &["412", "500", "61", "5"],
                &["431", "900", "58", "2"],
                false,
            ),
            (
                &["412", "500", "61", "5"],
                &["412", "500", "61", "5", "2024"],
                true,
            ),
            (&["1", "2", "3", "4", "5"], &["1", "2", "3", "4", "9"], true),
            (
                &["1", "2", "3", "4", "5"],
                &["1", "2", "3", "8", "9"],
                false,
            ),
        ];
        for (a, b, want) in cases {
            assert_eq!(numbers_agree(&s(a), &s(b)), *want, "{a:?} {b:?}");
        }
    }

    fn subj(text_len: i32, hours: i64) -> Subject {
        let t = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap() + chrono::Duration::hours(hours);
        Subject {
            published_at: Some(t),
            dated_at: t,
            fetched_at: t,
            signature: Signature {
                text_len,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn originality_order() {
        let cfg = FoldConfig::default();
        // Body beats pointer whatever the time.
        assert!(more_original(&subj(300, 5), &subj(0, 0), &cfg));
        assert!(!more_original(&subj(0, 0), &subj(300, 5), &cfg));
        // Beyond the skew allowance the earlier wins.
        assert!(more_original(&subj(300, 0), &subj(300, 13), &cfg));
        assert!(!more_original(&subj(300, 13), &subj(300, 0), &cfg));
        // Inside it, republisher marks decide.
        let mut marked = subj(300, 0);
        marked.signature.republished = true;
        assert!(more_original(&subj(300, 3), &marked, &cfg));
        assert!(!more_original(&marked, &subj(300, 3), &cfg));
        // A copy that cites the other is not the original.
        let mut a = subj(300, 0);
        a.origin_url = Some("https://o.example/story".into());
        let mut b = subj(300, 5);
        b.canonical_url = Some("https://o.example/story".into());
        assert!(more_original(&b, &a, &cfg));
        assert!(!more_original(&a, &b, &cfg));
        // Original-only feeds publish originals.
        let mut o = subj(300, 10);
        o.feed_policy = FeedPolicy::OriginalOnly;
        assert!(more_original(&o, &subj(300, 0), &cfg));
    }

    #[test]
    fn site_labels() {
        let cases = [
            ("www.meridianwire.example", Some("meridianwire")),
            ("english.seouldaily.example", Some("seouldaily")),
            ("news.bbc.co.uk", Some("bbc")),
            ("localhost", None),
        ];
        for (host, want) in cases {
            assert_eq!(site_label(host), want, "{host}");
        }
    }

    #[test]
    fn credits_by_name() {
        let item = |url: &str, text: &str| Subject {
            canonical_url: Some(url.into()),
            content_text: text.into(),
            ..Default::default()
        };
        let copy = "https://copy.example/2024/a";
        let cases = [
            (
                "According to Meridian Wire, zinc stocks fell.",
                "www.meridianwire.example",
                true,
            ),
            (
                "Podle serveru Pražský kurýr se to stalo.",
                "prazskykuryr.example",
                true,
            ),
            (
                "According to Rheinland-Kurier, two cars collided.",
                "rheinland-kurier.example",
                true,
            ),
            (
                "Zinc stocks fell, Meridian Wire reported.",
                "meridianwire.example",
                true,
            ),
            // A word that is only part of the name is not a credit.
            (
                "Commodity prices rose on Monday.",
                "commodityticker.example",
                false,
            ),
            // Nor is a name deep in the article, past the opening words.
            (
                "One two three four five six seven eight nine ten eleven twelve Meridian Wire.",
                "meridianwire.example",
                false,
            ),
            // An item never credits its own site.
            ("According to Copy, it rained.", "copy.example", false),
        ];
        for (text, site, want) in cases {
            assert_eq!(
                credits_site(&item(copy, text), site),
                want,
                "{text} / {site}"
            );
        }
    }

    #[test]
    fn credits_and_languages_decide_originality() {
        let cfg = FoldConfig::default();
        let at = |url: &str, lang: &str, text_len: i32, hours: i64, text: &str| {
            let mut x = subj(text_len, hours);
            x.canonical_url = Some(url.into());
            x.lang = Some(lang.into());
            x.content_text = text.into();
            x
        };
        // An edited copy that credits the original by name loses although
        // its clock runs four hours early.
        let orig = at(
            "https://ticker.example/m/1",
            "en",
            140,
            4,
            "Soybean spreads widened.",
        );
        let edited = at(
            "https://wire.example/m/2",
            "en",
            142,
            0,
            "According to Ticker, soybean spreads widened.",
        );
        assert!(more_original(&orig, &edited, &cfg));
        assert!(!more_original(&edited, &orig, &cfg));
        // A translated lead is no original for a full article in another
        // language, earlier or not.
        let full = at(
            "https://kuryr.example/c/1",
            "cs",
            347,
            6,
            "Brutální vražda.",
        );
        let lead = at("https://hub.example/e/1", "en", 39, 0, "Brutal murder.");
        assert!(more_original(&full, &lead, &cfg));
        assert!(!more_original(&lead, &full, &cfg));
        // An unmarked translation whose clock runs early beats the original
        // on time alone; a copy in the story that credits the original's
        // site reverses that.
        let original = at("https://vestnik.example/n/1", "ru", 170, 9, "Роман Сенчин.");
        let translation = at("https://wire.example/n/2", "en", 220, 0, "Roman Senchin.");
        assert!(!more_original(&original, &translation, &cfg));
        let credit = at(
            "https://daily.example/n/3",
            "en",
            220,
            12,
            "According to Vestnik, Roman Senchin.",
        );
        let story = [&credit];
        assert!(more_original_in(&original, &translation, &story, &cfg));
        assert!(!more_original_in(&translation, &original, &story, &cfg));
    }

    #[test]
    fn a_late_credit_promotes_the_original() {
        let cfg = FoldConfig::default();
        let cand = |id: i64, canonical: bool, item: Subject| Candidate {
            item_id: id,
            story_id: 7,
            is_canonical: canonical,
            item,
            ..Default::default()
        };
        let mut translation = subj(220, 0);
        translation.lang = Some("en".into());
        translation.canonical_url = Some("https://wire.example/n/2".into());
        let mut original = subj(170, 9);
        original.lang = Some("ru".into());
        original.canonical_url = Some("https://vestnik.example/n/1".into());
        // A republished copy of the translation's page that credits the
        // original's site: it folds on the URL and is no original itself.
        let mut copy = subj(220, 10);
        copy.lang = Some("en".into());
        copy.canonical_url = translation.canonical_url.clone();
        copy.content_text = "According to Vestnik, Roman Senchin is in Paris.".into();
        copy.signature.republished = true;
        let cands = [cand(1, true, translation), cand(2, false, original)];
        let Decision::Fold(f) = decide(&copy, &cands, &KeyStats::default(), &cfg) else {
            panic!("the copy folds on its URL");
        };
        assert_eq!(f.method, FoldMethod::Url);
        assert!(!f.becomes_canonical);
        assert_eq!(f.promotes, Some(2));
        // Without the credit nothing changes.
        copy.content_text = "Roman Senchin is in Paris.".into();
        let Decision::Fold(f) = decide(&copy, &cands, &KeyStats::default(), &cfg) else {
            panic!("the copy folds on its URL");
        };
        assert_eq!((f.becomes_canonical, f.promotes), (false, None));
    }

    #[test]
    fn config_defaults_round_trip() {
        let cfg = FoldConfig::default();
        let text = toml::to_string(&cfg).expect("serialize");
        let back: FoldConfig = toml::from_str(&text).expect("parse");
        assert_eq!(back, cfg);
        let partial: FoldConfig = toml::from_str("max_distance = 10").expect("partial");
        assert_eq!(partial.max_distance, 10);
        assert_eq!(partial.min_text_len, cfg.min_text_len);
    }
}
