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
//! not. A fold also needs a minimum of shared anchors (some of them
//! specific), most of them in the same order, a clear lead over the
//! runner-up story in the candidate's language (same-language twins of the
//! best candidate are not rivals), no better partner for the candidate among
//! the subject's own language, and never follows another translation fold
//! (no chains).
//!
//! Call it after same-language folding found nothing: it relies on
//! same-language copies sharing a story (otherwise two copies of the
//! original are two near-equal stories and the margin check refuses).
//! Pure: no I/O, cannot fail.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Candidate, FeedPolicy, Fold, FoldConfig, FoldMethod, KeyStats, Subject};
use crate::fingerprint::anchors::{self, Profile};

/// Lowest score that folds. Research (Dice x order, 146-candidate pools):
/// t=0.25 gave recall ~0.84 at 1e-4 pairwise false-positive rate, t=0.35
/// recall ~0.64 at 2e-5. On the dev corpus the static checks alone (no
/// mutual-best check) still let 3 pairs of different outlets' reports of one
/// event through at 0.30 (scores 0.304) and none at 0.32, so the rule uses
/// 0.32: an orphan (no true partner in the window) has only these checks.
pub const THRESHOLD: f64 = 0.32;
/// Fewest distinct shared anchors: a pair sharing one or two names is any
/// two stories about the same people.
pub const MIN_SHARED: usize = 4;
/// The score a pair sharing one anchor fewer than MIN_SHARED must reach.
pub const FEW_SHARED_THRESHOLD: f64 = 0.40;
/// Of the shared anchors, at least this many must be names, acronyms or
/// links, or specific numbers (not years, small counts or round numbers):
/// numbers alone are shared by a whole week of news.
pub const MIN_SPECIFIC_SHARED: usize = 2;
/// Fewest shared anchors kept in the same relative order (share). On the
/// dev corpus 90% of translated pairs keep >= 0.75 of them in order, while
/// other outlets' reports of the same event that share many anchors keep
/// 0.45-0.73 (research: the order check is what cuts same-event pairs).
pub const ORDER_MIN: f64 = 0.7;
/// The best story must lead the runner-up story of the same language by this
/// much (absolute score), else the choice is a coin toss between two reports.
pub const MARGIN: f64 = 0.08;
/// The matched candidate must not match another item in the subject's
/// language better than it matches the subject by more than this: then that
/// item is its original and the subject is another outlet's report.
pub const REVERSE_MARGIN: f64 = 0.05;
/// Two same-language candidates are copies of one text (not rival stories)
/// when their anchor Dice and order reach these.
pub const TWIN_DICE: f64 = 0.85;
pub const TWIN_ORDER: f64 = 0.9;
/// Clocks of different publishers disagree; a copy dated up to this much
/// before its story's canonical item does not replace it as canonical.
pub const SKEW: chrono::Duration = chrono::Duration::hours(2);
/// Name densities of two texts that differ by more than this factor are
/// evened out (`name_scales`).
pub const NAME_DENSITY_RATIO: f64 = 1.5;
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
    let (scale_a, scale_b) = name_scales(a, b, cut_a, cut_b);
    let weigh = |x: &str, scale: f64| {
        if x.starts_with("p:") {
            w(x) * scale
        } else {
            w(x)
        }
    };
    let mut num = 0.0;
    let mut den = 0.0;
    // (position in a, position in b) of every match, for the order check.
    let mut pairs: Vec<(f32, f32)> = Vec::new();
    let mut shared: Vec<String> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for x in a.anchors.iter().filter(|x| x.pos < cut_a) {
        let wx = weigh(&x.anchor, scale_a);
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
        let wy = weigh(&y.anchor, scale_b);
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
    PairScore {
        score: dice * (0.5 + 0.5 * order),
        dice,
        order,
        shared,
        specific,
    }
}

/// Weight factors for each side's name anchors. A language that capitalizes
/// every noun (German) marks several times as many words as names as one
/// that capitalizes names only, and the nouns cannot be found on the other
/// side: a German original scored 0.18-0.27 against its English translation
/// for that alone. The denser side's names are scaled down to the other
/// side's density (names per unit of text); a side with no names at all (a
/// caseless script) scales nothing, so numbers never gain weight this way.
fn name_scales(a: &Profile, b: &Profile, cut_a: f32, cut_b: f32) -> (f64, f64) {
    let density = |p: &Profile, cut: f32| {
        let names = p
            .anchors
            .iter()
            .filter(|x| x.pos < cut && x.anchor.starts_with("p:"))
            .count();
        names as f64 / f64::from(p.units.min(cut).max(1.0))
    };
    let (da, db) = (density(a, cut_a), density(b, cut_b));
    if da <= 0.0 || db <= 0.0 {
        return (1.0, 1.0);
    }
    let ratio = da / db;
    if ratio > NAME_DENSITY_RATIO {
        (1.0 / ratio, 1.0)
    } else if ratio < 1.0 / NAME_DENSITY_RATIO {
        (1.0, ratio)
    } else {
        (1.0, 1.0)
    }
}

/// MIN_SHARED anchors, or one fewer when every one is specific and the
/// score clears a higher bar: a short item (a Czech brief, a Korean text
/// whose only anchors are the other side's names) cannot share four, and
/// three rare acronyms in the same order are no coincidence.
fn enough_shared(s: &PairScore) -> bool {
    s.shared.len() >= MIN_SHARED
        || (s.shared.len() + 1 == MIN_SHARED
            && s.specific == s.shared.len()
            && s.score >= FEW_SHARED_THRESHOLD)
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

/// Profiles of stored items kept between decisions: consecutive decisions
/// see mostly the same candidates, and profiling them is most of the cost.
/// Keyed by item id and checked against a hash of the text, so an item
/// updated in place is profiled again. Bounded: cleared when full.
#[derive(Debug, Default)]
pub struct ProfileCache {
    map: HashMap<i64, (i64, Arc<Profile>)>,
}

/// Items a `ProfileCache` holds before it starts over.
pub const PROFILE_CACHE_ITEMS: usize = 4_096;

impl ProfileCache {
    fn get(&mut self, c: &Candidate) -> Arc<Profile> {
        let title = c.item.title.as_deref().unwrap_or("");
        let h =
            crate::fingerprint::hash64(title) ^ crate::fingerprint::hash64(&c.item.content_text);
        if let Some((hh, p)) = self.map.get(&c.item_id)
            && *hh == h
        {
            return p.clone();
        }
        if self.map.len() >= PROFILE_CACHE_ITEMS {
            self.map.clear();
        }
        let p = Arc::new(profile_of(&c.item));
        self.map.insert(c.item_id, (h, p.clone()));
        p
    }
}

/// Per-call view of candidate profiles, backed by a cache.
struct Profiles<'a> {
    candidates: &'a [Candidate],
    cache: &'a mut ProfileCache,
    local: HashMap<usize, Arc<Profile>>,
}

impl Profiles<'_> {
    fn get(&mut self, i: usize) -> Arc<Profile> {
        if let Some(p) = self.local.get(&i) {
            return p.clone();
        }
        let p = self.cache.get(&self.candidates[i]);
        self.local.insert(i, p.clone());
        p
    }
}

/// Decides whether `subject` is a translation of a candidate, and if so
/// returns the fold into that candidate's story. See the module doc.
pub fn decide_translation(
    subject: &Subject,
    candidates: &[Candidate],
    stats: &KeyStats,
    config: &FoldConfig,
) -> Option<Fold> {
    decide_translation_cached(
        subject,
        candidates,
        stats,
        config,
        &mut ProfileCache::default(),
    )
}

/// `decide_translation` with candidate profiles kept in `cache` between
/// calls (same result, less work for a long-running folder).
pub fn decide_translation_cached(
    subject: &Subject,
    candidates: &[Candidate],
    stats: &KeyStats,
    config: &FoldConfig,
    cache: &mut ProfileCache,
) -> Option<Fold> {
    if subject.feed_policy != FeedPolicy::Normal || !subject.fold_translations {
        return None;
    }
    let slang = primary_lang(subject.lang.as_deref())?;
    let window = chrono::Duration::from_std(config.translation_window).ok()?;
    let vetoed: HashSet<i64> = candidates
        .iter()
        .filter(|c| c.vetoed)
        .map(|c| c.story_id)
        .collect();
    let w = |a: &str| weight(stats, a);
    let sp = profile_of(subject);

    let mut profiles = Profiles {
        candidates,
        cache,
        local: HashMap::new(),
    };
    // Best score per (language, story), remembering the matched item.
    let mut best: HashMap<(String, i64), (usize, PairScore)> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        if vetoed.contains(&c.story_id) || !eligible(subject, &slang, c, window) {
            continue;
        }
        let cp = profiles.get(i);
        let s = score_pair(&sp, &cp, &w);
        let lang = primary_lang(c.item.lang.as_deref()).unwrap_or_default();
        let slot = best
            .entry((lang, c.story_id))
            .or_insert_with(|| (i, s.clone()));
        if s.score > slot.1.score {
            *slot = (i, s);
        }
    }

    // Per candidate language: the best story must clear every check. Stories
    // in different languages do not compete: an original has one copy per
    // language.
    let mut by_lang: HashMap<&str, Vec<(i64, usize, &PairScore)>> = HashMap::new();
    for ((lang, story), (i, s)) in &best {
        by_lang
            .entry(lang.as_str())
            .or_default()
            .push((*story, *i, s));
    }
    let mut winner: Option<(usize, PairScore)> = None;
    let mut langs: Vec<&str> = by_lang.keys().copied().collect();
    langs.sort_unstable();
    for lang in langs {
        let mut list = by_lang.remove(lang).unwrap_or_default();
        list.sort_by(|x, y| y.2.score.total_cmp(&x.2.score).then(x.0.cmp(&y.0)));
        let Some(&(_, i, s)) = list.first() else {
            continue;
        };
        if s.score < THRESHOLD
            || !enough_shared(s)
            || s.specific < MIN_SPECIFIC_SHARED
            || s.order < ORDER_MIN
        {
            continue;
        }
        // The runner-up story, ignoring stories whose item is a same-language
        // twin of the best one: a copy the same-language folding missed is
        // not a rival.
        let mut runner_up = 0.0;
        for &(_, j, rs) in list.iter().skip(1) {
            if s.score - rs.score >= MARGIN {
                break;
            }
            if !is_twin(i, j, &mut profiles, &w) {
                runner_up = rs.score;
                break;
            }
        }
        if s.score - runner_up < MARGIN {
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
        promotes: None,
    })
}

/// Two candidates of one language whose anchors coincide almost entirely, in
/// the same order: copies of one text.
fn is_twin(a: usize, b: usize, profiles: &mut Profiles<'_>, w: &dyn Fn(&str) -> f64) -> bool {
    let (pa, pb) = (profiles.get(a), profiles.get(b));
    let s = score_pair(&pa, &pb, w);
    s.dice >= TWIN_DICE && s.order >= TWIN_ORDER
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
    profiles: &mut Profiles<'_>,
    w: &dyn Fn(&str) -> f64,
) -> bool {
    let mp = profiles.get(matched);
    for (j, x) in candidates.iter().enumerate() {
        if j == matched || primary_lang(x.item.lang.as_deref()).as_deref() != Some(slang) {
            continue;
        }
        if x.item.content_text == subject.content_text && x.item.title == subject.title {
            continue;
        }
        let xp = profiles.get(j);
        if score_pair(&mp, &xp, w).score > score + REVERSE_MARGIN {
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    // Real-shaped fixture text written for these tests: one English report,
    // its German and Russian translations, and another outlet's German report
    // of the same deal (same people, same headline figure, other order and
    // other details).
    const EN_TITLE: &str = "Harbor Bank agrees to buy Lindqvist Capital for $4.2 billion";
    const EN: &str = "Harbor Bank said on Tuesday it had agreed to buy Swedish asset manager Lindqvist Capital \
        for $4.2 billion, its largest acquisition since 2019. Chief executive Maria Okonkwo told analysts in \
        Frankfurt that the deal would add 310,000 clients and lift fee income by 14.5 percent. Lindqvist \
        founder Erik Halvorsen will join the board of Harbor Bank. The European Central Bank and regulators \
        in Stockholm must still approve the purchase, which Harbor expects to close in the third quarter. \
        Shares of Harbor rose 3.2 percent to 48.70 dollars in New York. Analysts at Brightwater Securities \
        called the price of 27 times earnings steep.";
    const DE_TITLE: &str = "Harbor Bank kauft Lindqvist Capital für 4,2 Milliarden Dollar";
    const DE: &str = "Die Harbor Bank hat sich nach eigenen Angaben vom Dienstag auf den Kauf des schwedischen \
        Vermögensverwalters Lindqvist Capital für 4,2 Milliarden Dollar geeinigt, ihre größte Übernahme seit \
        2019. Vorstandschefin Maria Okonkwo sagte Analysten in Frankfurt, das Geschäft bringe 310.000 Kunden \
        und steigere die Gebühreneinnahmen um 14,5 Prozent. Lindqvist-Gründer Erik Halvorsen wird in den \
        Vorstand der Harbor Bank einziehen. Die Europäische Zentralbank und die Aufsicht in Stockholm müssen \
        den Kauf noch genehmigen; Harbor rechnet mit einem Abschluss im dritten Quartal. Die Harbor-Aktie \
        stieg in New York um 3,2 Prozent auf 48,70 Dollar. Analysten von Brightwater Securities nannten den \
        Preis vom 27-fachen Gewinn hoch.";
    const RU_TITLE: &str = "Харбор Банк купит Линдквист Кэпитал за 4,2 млрд долларов";
    const RU: &str = "Харбор Банк во вторник сообщил о договорённости купить шведскую управляющую компанию \
        Линдквист Кэпитал за 4,2 млрд долларов, это крупнейшее приобретение банка с 2019 года. Генеральный \
        директор Мария Оконкво заявила аналитикам во Франкфурте, что сделка добавит 310 000 клиентов и \
        увеличит комиссионные доходы на 14,5 процента. Основатель Линдквист Эрик Халворсен войдёт в совет \
        директоров Харбор Банка. Покупку ещё должны одобрить Европейский центральный банк и регуляторы в \
        Стокгольме; Харбор рассчитывает закрыть сделку в третьем квартале. Акции Харбор подорожали в \
        Нью-Йорке на 3,2 процента до 48,70 доллара. Аналитики Брайтуотер Секьюритиз назвали цену в 27 \
        годовых прибылей высокой.";
    const DE_OTHER_TITLE: &str = "Übernahme in Skandinavien: Harbor greift nach Lindqvist";
    const DE_OTHER: &str = "Stockholm. Der Vermögensverwalter Lindqvist Capital geht an ein Institut aus den \
        USA. Das teilten beide Häuser am Dienstag in Stockholm mit. Über einen Preis von 4,2 Milliarden Dollar \
        hatten zuvor schon schwedische Zeitungen berichtet. Gründer Erik Halvorsen bleibt an Bord. \
        Gewerkschaften in Schweden fürchten den Abbau von 400 Stellen in Göteborg und Malmö. Die Aktie von \
        Lindqvist war seit 2019 nicht mehr so gefragt. Harbor-Chefin Maria Okonkwo hatte schon im Herbst in \
        einem Interview mit dem Handelsblatt Zukäufe in Europa angekündigt.";

    fn at(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 5, 8, 0, 0)
            .single()
            .unwrap_or_default()
            + chrono::Duration::hours(h)
    }

    fn item(title: &str, text: &str, lang: &str, hour: i64) -> Subject {
        Subject {
            feed_id: 1,
            fold_translations: true,
            title: Some(title.to_string()),
            content_text: text.to_string(),
            lang: Some(lang.to_string()),
            dated_at: at(hour),
            fetched_at: at(hour),
            ..Default::default()
        }
    }

    fn cand(id: i64, story: i64, it: Subject) -> Candidate {
        Candidate {
            item_id: id,
            story_id: story,
            is_canonical: true,
            item: it,
            ..Default::default()
        }
    }

    fn en() -> Subject {
        item(EN_TITLE, EN, "en", 0)
    }

    fn decide(subject: &Subject, cands: &[Candidate]) -> Option<Fold> {
        decide_translation(subject, cands, &KeyStats::default(), &FoldConfig::default())
    }

    fn pair(a: &Subject, b: &Subject) -> PairScore {
        let stats = KeyStats::default();
        score_pair(&profile_of(a), &profile_of(b), &|x| weight(&stats, x))
    }

    #[test]
    fn translations_fold_into_the_original_story() {
        for (title, text, lang) in [(DE_TITLE, DE, "de"), (RU_TITLE, RU, "ru")] {
            let copy = item(title, text, lang, 3);
            let fold = decide(&copy, &[cand(1, 10, en())]);
            let fold =
                fold.unwrap_or_else(|| panic!("{lang} not folded: {:?}", pair(&copy, &en())));
            assert_eq!((fold.story_id, fold.matched_item_id), (10, 1));
            assert_eq!(fold.method, FoldMethod::Translation);
            assert!(!fold.becomes_canonical);
            let detail = fold.detail.unwrap_or_default();
            assert!(
                detail.contains("n:4200000000") && detail.contains("n:310000"),
                "{detail}"
            );
        }
    }

    #[test]
    fn another_outlets_report_of_the_same_event_does_not_fold() {
        let other = item(DE_OTHER_TITLE, DE_OTHER, "de", 3);
        // Orphan: the true translation is not in the window.
        let s = pair(&other, &en());
        assert!(s.shared.len() >= 4, "the trap needs real overlap: {s:?}");
        assert!(decide(&other, &[cand(1, 10, en())]).is_none(), "{s:?}");
        // And with the real translation already in the story.
        let de = item(DE_TITLE, DE, "de", 2);
        assert!(pair(&de, &en()).score > s.score + 0.2);
        assert!(decide(&other, &[cand(1, 10, en()), cand(2, 10, de)]).is_none());
    }

    #[test]
    fn tiny_anchor_sets_do_not_match_everything() {
        let tiny = item(
            "Harbor Bank in Oslo",
            "Die Harbor Bank eröffnete am Dienstag in Oslo ihre erste Filiale in Norwegen.",
            "de",
            1,
        );
        let s = pair(&tiny, &en());
        // Most of the small side is found in the long one (overlap
        // coefficient ~1), but that is not a translation.
        assert!(s.shared.len() >= 2, "{s:?}");
        assert!(s.score < THRESHOLD, "{s:?}");
        assert!(decide(&tiny, &[cand(1, 10, en())]).is_none());
    }

    #[test]
    fn numbers_alone_do_not_fold() {
        let numbers = item(
            "Märkte am Dienstag",
            "Der Leitindex fiel 2019 um 14,5 Prozent, 2024 stieg er um 3,2 Prozent auf 48,70 Punkte. \
             Im dritten Quartal wurden 310.000 Verträge gehandelt, 27 Prozent mehr. Ein Händler aus Wien \
             sprach von einem ruhigen Tag; die Notenbank in Bern und der Versicherer Almquist Re hielten sich zurück.",
            "de",
            2,
        );
        let s = pair(&numbers, &en());
        assert!(
            s.shared.iter().filter(|a| a.starts_with("n:")).count() >= 3,
            "{s:?}"
        );
        assert!(decide(&numbers, &[cand(1, 10, en())]).is_none(), "{s:?}");
    }

    #[test]
    fn never_chains_through_a_translation_fold() {
        let de = item(DE_TITLE, DE, "de", 2);
        let ru = item(RU_TITLE, RU, "ru", 3);
        // The German item joined story 10 by translation; the Russian one may
        // not join through it, only through an item that founded or
        // same-language-folded into the story.
        let mut c = cand(2, 10, de);
        c.fold_method = Some("translation".into());
        c.is_canonical = false;
        assert!(decide(&ru, std::slice::from_ref(&c)).is_none());
        let fold = decide(&ru, &[c, cand(1, 10, en())]);
        assert_eq!(fold.map(|f| f.matched_item_id), Some(1));
    }

    #[test]
    fn timing_window_and_canonical() {
        let de = item(DE_TITLE, DE, "de", 49);
        assert!(
            decide(&de, &[cand(1, 10, en())]).is_none(),
            "outside the 48 h window"
        );
        // A copy dated a little before the original (skewed clock) does not
        // take over as canonical; one dated well before does.
        let slightly = item(DE_TITLE, DE, "de", -1);
        assert_eq!(
            decide(&slightly, &[cand(1, 10, en())]).map(|f| f.becomes_canonical),
            Some(false)
        );
        let earlier = item(DE_TITLE, DE, "de", -5);
        assert_eq!(
            decide(&earlier, &[cand(1, 10, en())]).map(|f| f.becomes_canonical),
            Some(true)
        );
    }

    #[test]
    fn policies_vetoes_and_languages() {
        let de = item(DE_TITLE, DE, "de", 2);
        let mut never = cand(1, 10, en());
        never.item.feed_policy = FeedPolicy::Never;
        assert!(decide(&de, &[never]).is_none());
        let mut no_xl = cand(1, 10, en());
        no_xl.item.fold_translations = false;
        assert!(decide(&de, &[no_xl]).is_none());
        let mut vetoed = cand(1, 10, en());
        vetoed.vetoed = true;
        assert!(decide(&de, &[vetoed]).is_none());
        let mut off = de.clone();
        off.fold_translations = false;
        assert!(decide(&off, &[cand(1, 10, en())]).is_none());
        let mut unknown = de.clone();
        unknown.lang = None;
        assert!(decide(&unknown, &[cand(1, 10, en())]).is_none());
        // Same language is never a translation, even with a region subtag.
        let same = item(EN_TITLE, EN, "en-GB", 2);
        assert!(decide(&same, &[cand(1, 10, en())]).is_none());
    }

    #[test]
    fn two_equally_good_stories_are_a_coin_toss() {
        let de = item(DE_TITLE, DE, "de", 2);
        // A German lead, and two English stories that open with the same two
        // sentences and then go different ways: both match the lead about as
        // well, so neither wins.
        let lead_end = DE.find("Lindqvist-Gründer").unwrap_or(DE.len());
        let de_lead = item(DE_TITLE, &DE[..lead_end], "de", 2);
        let en_lead_end = EN.find("Lindqvist founder").unwrap_or(EN.len());
        let rival_text = format!(
            "{} Separately, Harbor Bank said it would close 40 branches in Ohio and Texas by 2026, \
             cutting 1,200 jobs. The union called the plan reckless, and the chairman declined to \
             comment when reached in Cleveland on Wednesday.",
            &EN[..en_lead_end]
        );
        let rival = item(EN_TITLE, &rival_text, "en", 1);
        let s1 = pair(&de_lead, &en()).score;
        let s2 = pair(&de_lead, &rival).score;
        assert!(s1 >= THRESHOLD && s2 >= THRESHOLD, "{s1} {s2}");
        assert!((s1 - s2).abs() < MARGIN, "{s1} {s2}");
        let fold = decide(&de_lead, &[cand(1, 10, en()), cand(3, 11, rival.clone())]);
        assert!(fold.is_none());
        // Alone, either would fold.
        assert!(decide(&de_lead, &[cand(3, 11, rival)]).is_some());
        // The same English text stored twice in separate stories (a copy
        // that same-language folding missed) is not a rival.
        let fold = decide(
            &de,
            &[cand(1, 10, en()), cand(3, 11, item(EN_TITLE, EN, "en", 1))],
        );
        assert!(fold.is_some());
        // In one story they do not compete.
        let fold = decide(
            &de,
            &[cand(1, 10, en()), cand(3, 10, item(EN_TITLE, EN, "en", 1))],
        );
        assert_eq!(fold.map(|f| f.story_id), Some(10));
    }

    #[test]
    fn copies_in_other_languages_do_not_compete() {
        // An original arriving after its translations: both are fine
        // matches; it folds into the best one instead of refusing.
        let fold = decide(
            &en(),
            &[
                cand(2, 20, item(DE_TITLE, DE, "de", -1)),
                cand(3, 30, item(RU_TITLE, RU, "ru", -1)),
            ],
        );
        assert!(matches!(fold.map(|f| f.story_id), Some(20 | 30)));
    }

    #[test]
    fn cached_profiles_give_the_same_decision_and_notice_updates() {
        let mut cache = ProfileCache::default();
        let de = item(DE_TITLE, DE, "de", 2);
        let cfg = FoldConfig::default();
        let stats = KeyStats::default();
        let cands = [cand(1, 10, en())];
        let plain = decide(&de, &cands);
        assert!(plain.is_some());
        assert_eq!(
            decide_translation_cached(&de, &cands, &stats, &cfg, &mut cache),
            plain
        );
        assert_eq!(
            decide_translation_cached(&de, &cands, &stats, &cfg, &mut cache),
            plain
        );
        // Item 1 updated in place with unrelated text: no stale profile.
        let other = [cand(
            1,
            10,
            item(
                "Rain in Lisbon",
                "Heavy rain hit Lisbon and Porto on Monday.",
                "en",
                0,
            ),
        )];
        assert!(decide_translation_cached(&de, &other, &stats, &cfg, &mut cache).is_none());
    }

    #[test]
    fn order_ratio_counts_kept_order() {
        let mut same = vec![(1.0, 1.0), (2.0, 5.0), (3.0, 9.0)];
        assert_eq!(order_ratio(&mut same), 1.0);
        let mut reversed = vec![(1.0, 9.0), (2.0, 5.0), (3.0, 1.0), (4.0, 0.5)];
        assert_eq!(order_ratio(&mut reversed), 0.25);
        assert_eq!(order_ratio(&mut []), 0.0);
    }

    #[test]
    fn lead_cut_only_when_lengths_differ_a_lot() {
        assert_eq!(lead_cuts(100.0, 150.0), (f32::INFINITY, f32::INFINITY));
        assert_eq!(lead_cuts(60.0, 400.0), (f32::INFINITY, 78.0));
        assert_eq!(lead_cuts(400.0, 20.0), (LEAD_MIN, f32::INFINITY));
    }

    #[test]
    fn noun_capitalizing_side_is_scaled_to_the_other_sides_name_density() {
        let (de, en, ru) = (
            profile_of(&item(DE_TITLE, DE, "de", 0)),
            profile_of(&en()),
            profile_of(&item(RU_TITLE, RU, "ru", 0)),
        );
        let inf = f32::INFINITY;
        // German capitalizes its nouns: its names are scaled down, English
        // keeps full weight, whichever side it is on.
        let (sde, sen) = name_scales(&de, &en, inf, inf);
        assert!(sde < 1.0 / NAME_DENSITY_RATIO && sen == 1.0, "{sde} {sen}");
        assert_eq!(name_scales(&en, &de, inf, inf), (1.0, sde));
        // Two languages that capitalize names only are left alone.
        assert_eq!(name_scales(&en, &ru, inf, inf), (1.0, 1.0));
        // A side without names (a caseless script) scales nothing, so its
        // numbers never gain weight against the other side's names.
        let ko = anchors::profile("", "오바마는 24일 2,300만 달러를 밝혔다.");
        assert!(ko.anchors.iter().all(|a| !a.anchor.starts_with("p:")));
        assert_eq!(name_scales(&ko, &en, inf, inf), (1.0, 1.0));
        // The translation still scores well above another outlet's report
        // of the same deal.
        let w = |_: &str| 1.0;
        let de_other = profile_of(&item(DE_OTHER_TITLE, DE_OTHER, "de", 0));
        let (t, o) = (score_pair(&en, &de, &w), score_pair(&en, &de_other, &w));
        assert!(
            t.score >= THRESHOLD && t.score > o.score + MARGIN,
            "{t:?} {o:?}"
        );
    }

    #[test]
    fn one_anchor_fewer_needs_all_specific_and_a_higher_score() {
        let pair = |shared: &[&str], score: f64| PairScore {
            score,
            dice: score,
            order: 1.0,
            shared: shared.iter().map(|s| s.to_string()).collect(),
            specific: shared.iter().filter(|s| is_specific_evidence(s)).count(),
        };
        let cases: &[(&[&str], f64, bool)] = &[
            (&["a:tgv", "a:sncf", "a:ratp", "p:srks"], THRESHOLD, true),
            (&["a:tgv", "a:sncf", "a:ratp"], FEW_SHARED_THRESHOLD, true),
            (
                &["a:tgv", "a:sncf", "a:ratp"],
                FEW_SHARED_THRESHOLD - 0.01,
                false,
            ),
            // A year among three is not specific evidence.
            (&["a:tgv", "a:sncf", "n:2024"], 0.9, false),
            (&["a:tgv", "a:sncf"], 0.9, false),
        ];
        for (shared, score, want) in cases {
            assert_eq!(
                enough_shared(&pair(shared, *score)),
                *want,
                "{shared:?} {score}"
            );
        }
    }

    #[test]
    fn rare_anchors_weigh_more() {
        let mut stats = KeyStats {
            window_items: 1000,
            ..Default::default()
        };
        stats.counts.insert(anchors::anchor_key("p:trmp"), 300);
        stats.counts.insert(anchors::anchor_key("p:okkw"), 2);
        assert!(weight(&stats, "p:okkw") > 2.0 * weight(&stats, "p:trmp"));
        // Unseen names are rare; unindexed years are common.
        assert!(weight(&stats, "p:hlbr") > weight(&stats, "p:okkw"));
        assert!(weight(&stats, "n:2019") < weight(&stats, "p:trmp") + 1.0);
    }
}
