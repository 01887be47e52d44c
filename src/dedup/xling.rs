//! Cross-language folding: decides whether a new item is a translation of a
//! candidate in another language, from the anchors both texts share (see
//! `fingerprint::anchors` and ../shared/research/xling.md).
//!
//! The score is a rarity-weighted containment-Dice: each side's anchors are
//! looked up in the other side's whole transliterated text (so caseless
//! scripts such as Korean or Chinese take part through their numbers and the
//! other side's names), both directions summed over both sides' total weight
//! (never divided by the smaller set: tiny sets would match everything). It
//! is multiplied by an order factor, because a translation keeps the order of
//! names and numbers while another outlet's report of the same event does
//! not. A fold also needs a minimum of shared anchors, a clear lead over the
//! runner-up story in the candidate's language, no better partner for the
//! candidate among the subject's own language, and never follows another
//! translation fold (no chains). Pure: no I/O, cannot fail.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{Candidate, FeedPolicy, Fold, FoldConfig, FoldMethod, KeyStats, Subject};
use crate::fingerprint::anchors::{self, Profile};

/// Lowest score that folds. Research (Dice×order, 146-candidate pools):
/// t=0.25 gave recall ~0.84 at 1e-4 pairwise false-positive rate, t=0.35
/// recall ~0.64 at 2e-5; the mutual-best and margin checks below cut the
/// remaining same-event pairs, so the middle is used.
pub const THRESHOLD: f64 = 0.30;
/// Fewest distinct shared anchors: a pair sharing one or two names is any
/// two stories about the same people.
pub const MIN_SHARED: usize = 4;
/// Of the shared anchors, at least this many must be names, acronyms or
/// links, or specific numbers (not years, small counts or round numbers):
/// numbers alone are shared by a whole week of news.
pub const MIN_SPECIFIC_SHARED: usize = 2;
/// The best story must lead the runner-up story of the same language by this
/// much (absolute score), else the choice is a coin toss between two reports.
pub const MARGIN: f64 = 0.08;
/// The matched candidate must not match another item in the subject's
/// language better than it matches the subject by more than this: then that
/// item is its original and the subject is another outlet's report.
pub const REVERSE_MARGIN: f64 = 0.05;
/// Clocks of different publishers disagree; a copy dated up to this much
/// before its story's canonical item does not replace it as canonical.
pub const SKEW: chrono::Duration = chrono::Duration::hours(2);
/// Texts whose lengths differ by more than this factor are compared lead
/// against lead: a 60-word summary cannot contain a long article's anchors.
pub const LEAD_RATIO: f32 = 1.8;
/// The longer side is cut to the shorter side's length times this.
pub const LEAD_SLACK: f32 = 1.3;
/// A lead cut never goes below this many units.
pub const LEAD_MIN: f32 = 40.0;
/// Rarity of an anchor the store did not count: names and specific numbers
/// are taken as rare (unseen), years and small numbers as if one item in
/// this many carried them.
const COMMON_ONE_IN: f64 = 10.0;
/// Rarity weights need a corpus; below this many window items the counts are
/// taken against this many so that a fresh store does not weight noise.
const MIN_WINDOW: i64 = 100;

/// The score of one pair and its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct PairScore {
    /// Dice × order factor.
    pub score: f64,
    pub dice: f64,
    /// Share of shared anchors that appear in the same relative order.
    pub order: f64,
    /// Distinct anchors found on both sides, in the subject's order first.
    pub shared: Vec<String>,
    /// How many of `shared` are names, acronyms, links or specific numbers.
    pub specific: usize,
}

/// IDF-like rarity weight of an anchor from the store's window counts.
pub fn weight(stats: &KeyStats, anchor: &str) -> f64 {
    let n = stats.window_items.max(MIN_WINDOW) as f64;
    match stats.counts.get(&anchors::anchor_key(anchor)) {
        Some(&df) => (1.0 + n / (1.0 + df.max(0) as f64)).ln(),
        None if anchors::is_specific(anchor) => (1.0 + n).ln(),
        None => (1.0 + COMMON_ONE_IN).ln(),
    }
}

/// The profile of a stored or new item: title plus plain text.
pub fn profile_of(item: &Subject) -> Profile {
    anchors::profile(item.title.as_deref().unwrap_or(""), &item.content_text)
}

/// Scores a pair of items in any two languages.
pub fn score_pair(a: &Profile, b: &Profile, w: &dyn Fn(&str) -> f64) -> PairScore {
    let (cut_a, cut_b) = lead_cuts(a.units, b.units);
    let mut num = 0.0;
    let mut den = 0.0;
    // (position in a, position in b) of every match, for the order check.
    let mut pairs: Vec<(f32, f32)> = Vec::new();
    let mut shared: Vec<String> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for x in a.anchors.iter().filter(|x| x.pos < cut_a) {
        let wx = w(&x.anchor);
        den += wx;
        if let Some(pb) = b.find(&x.anchor, cut_b) {
            num += wx;
            pairs.push((x.pos, pb));
            if seen.insert(&x.anchor) {
                shared.push(x.anchor.clone());
            }
        }
    }
    for y in b.anchors.iter().filter(|y| y.pos < cut_b) {
        let wy = w(&y.anchor);
        den += wy;
        if let Some(pa) = a.find(&y.anchor, cut_a) {
            num += wy;
            pairs.push((pa, y.pos));
            if seen.insert(&y.anchor) {
                shared.push(y.anchor.clone());
            }
        }
    }
    let dice = if den > 0.0 { num / den } else { 0.0 };
    let order = order_ratio(&mut pairs);
    let specific = shared.iter().filter(|s| is_specific_evidence(s)).count();
    PairScore { score: dice * (0.5 + 0.5 * order), dice, order, shared, specific }
}

fn is_specific_evidence(anchor: &str) -> bool {
    !anchor.starts_with("n:") || anchors::is_specific(anchor)
}

/// Lead cuts (in units) for both sides: the full length unless one side is
/// much longer, which is then cut near the shorter side's length.
fn lead_cuts(a: f32, b: f32) -> (f32, f32) {
    let full = f32::INFINITY;
    let (short, long) = if a <= b { (a, b) } else { (b, a) };
    if short <= 0.0 || long / short <= LEAD_RATIO {
        return (full, full);
    }
    let cut = (short * LEAD_SLACK).max(LEAD_MIN);
    if a <= b { (full, cut) } else { (cut, full) }
}

/// Share of matches that keep their relative order on both sides: the
/// longest chain increasing in both positions over all matches.
fn order_ratio(pairs: &mut [(f32, f32)]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    pairs.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.total_cmp(&y.1)));
    // Longest non-decreasing subsequence of the second positions.
    let mut tails: Vec<f32> = Vec::new();
    for &(_, pb) in pairs.iter() {
        let i = tails.partition_point(|&t| t <= pb);
        if i == tails.len() {
            tails.push(pb);
        } else {
            tails[i] = pb;
        }
    }
    tails.len() as f64 / pairs.len() as f64
}

/// ISO 639-1 primary subtag, lower case ("en-US" -> "en").
fn primary_lang(lang: Option<&str>) -> Option<String> {
    let l = lang?.trim();
    let p = l.split(['-', '_']).next()?.to_ascii_lowercase();
    if p.is_empty() { None } else { Some(p) }
}

/// Whether a candidate may be the matched item of a translation fold.
fn eligible(subject: &Subject, slang: &str, c: &Candidate, window: chrono::Duration) -> bool {
    let Some(clang) = primary_lang(c.item.lang.as_deref()) else {
        return false;
    };
    clang != slang
        && !c.vetoed
        && c.item.feed_policy != FeedPolicy::Never
        && c.item.fold_translations
        && c.fold_method.as_deref() != Some(FoldMethod::Translation.as_str())
        && (c.item.dated_at - subject.dated_at).abs() <= window
}

/// Decides whether `subject` is a translation of a candidate, and if so
/// returns the fold into that candidate's story. See the module doc.
pub fn decide_translation(
    subject: &Subject,
    candidates: &[Candidate],
    stats: &KeyStats,
    config: &FoldConfig,
) -> Option<Fold> {
    if subject.feed_policy != FeedPolicy::Normal || !subject.fold_translations {
        return None;
    }
    let slang = primary_lang(subject.lang.as_deref())?;
    let window = chrono::Duration::from_std(config.translation_window).ok()?;
    let vetoed: HashSet<i64> = candidates.iter().filter(|c| c.vetoed).map(|c| c.story_id).collect();
    let w = |a: &str| weight(stats, a);
    let sp = profile_of(subject);

    let mut profiles: HashMap<usize, Profile> = HashMap::new();
    // Best score per (language, story), remembering the matched item.
    let mut best: HashMap<(String, i64), (usize, PairScore)> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        if vetoed.contains(&c.story_id) || !eligible(subject, &slang, c, window) {
            continue;
        }
        let cp = profiles.entry(i).or_insert_with(|| profile_of(&c.item));
        let s = score_pair(&sp, cp, &w);
        let lang = primary_lang(c.item.lang.as_deref()).unwrap_or_default();
        let slot = best.entry((lang, c.story_id)).or_insert_with(|| (i, s.clone()));
        if s.score > slot.1.score {
            *slot = (i, s);
        }
    }

    // Per candidate language: the best story must clear every check. Stories
    // in different languages do not compete: an original has one copy per
    // language.
    let mut by_lang: HashMap<&str, Vec<(i64, usize, &PairScore)>> = HashMap::new();
    for ((lang, story), (i, s)) in &best {
        by_lang.entry(lang.as_str()).or_default().push((*story, *i, s));
    }
    let mut winner: Option<(usize, PairScore)> = None;
    let mut langs: Vec<&str> = by_lang.keys().copied().collect();
    langs.sort_unstable();
    for lang in langs {
        let mut list = by_lang.remove(lang).unwrap_or_default();
        list.sort_by(|x, y| y.2.score.total_cmp(&x.2.score).then(x.0.cmp(&y.0)));
        let Some(&(_, i, s)) = list.first() else { continue };
        let runner_up = list.get(1).map(|x| x.2.score).unwrap_or(0.0);
        if s.score < THRESHOLD
            || s.shared.len() < MIN_SHARED
            || s.specific < MIN_SPECIFIC_SHARED
            || s.score - runner_up < MARGIN
        {
            continue;
        }
        if !is_subjects_best_rival(subject, &slang, candidates, i, s.score, &mut profiles, &w) {
            continue;
        }
        if winner.as_ref().is_none_or(|(_, ws)| s.score > ws.score) {
            winner = Some((i, s.clone()));
        }
    }
    let (i, s) = winner?;
    let matched = &candidates[i];
    let canonical_at = story_canonical_at(candidates, matched);
    Some(Fold {
        story_id: matched.story_id,
        matched_item_id: matched.item_id,
        method: FoldMethod::Translation,
        distance: None,
        score: Some(s.score),
        detail: Some(s.shared.join(" ")),
        becomes_canonical: subject.dated_at + SKEW < canonical_at,
    })
}

/// Mutual best match, from the matched candidate's side: no other item in
/// the subject's language (found among the candidates) matches it clearly
/// better than the subject does.
fn is_subjects_best_rival(
    subject: &Subject,
    slang: &str,
    candidates: &[Candidate],
    matched: usize,
    score: f64,
    profiles: &mut HashMap<usize, Profile>,
    w: &dyn Fn(&str) -> f64,
) -> bool {
    let mp = profiles.entry(matched).or_insert_with(|| profile_of(&candidates[matched].item)).clone();
    for (j, x) in candidates.iter().enumerate() {
        if j == matched || primary_lang(x.item.lang.as_deref()).as_deref() != Some(slang) {
            continue;
        }
        if x.item.content_text == subject.content_text && x.item.title == subject.title {
            continue;
        }
        let xp = profiles.entry(j).or_insert_with(|| profile_of(&x.item));
        if score_pair(&mp, xp, w).score > score + REVERSE_MARGIN {
            return false;
        }
    }
    true
}

/// When the matched candidate's story began: its canonical item's date when
/// the store sent it along, else the matched item's own.
fn story_canonical_at(candidates: &[Candidate], matched: &Candidate) -> DateTime<Utc> {
    candidates
        .iter()
        .find(|c| c.story_id == matched.story_id && c.is_canonical)
        .map(|c| c.item.dated_at)
        .unwrap_or(matched.item.dated_at)
}
