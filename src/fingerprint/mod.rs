//! Fingerprints: a byte-stable, versioned 64-bit simhash and the exact hashes
//! stored beside it. Pure: no I/O, cannot fail.
//!
//! Stability: every hash here is xxh3-64 with a fixed seed over UTF-8 bytes
//! (never `std::hash::Hash`, whose output may change between compilers), and
//! golden vectors below pin the outputs. Changing any output means bumping
//! `FP_VERSION`.

pub mod anchors;
pub mod headline;

use crate::normalize::chars;
use crate::normalize::text::{for_each_token, is_han_kana};

/// Bumped whenever any fingerprint output changes.
pub const FP_VERSION: i16 = 1;

const SEED: u64 = 0x6665_6564_666f_6c64;
const FEATURE_SEED: u64 = 0x7369_6d68_6173_6831;

/// Tokens in the lead signal: enough to identify an article's opening, short
/// enough that aggregator excerpts and RSS summaries still carry it.
pub const LEAD_TOKENS: usize = 40;

/// Exact 64-bit hash of a string, stable across versions and platforms.
pub fn hash64(s: &str) -> i64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(s.as_bytes(), SEED) as i64
}

/// A lookup key of one kind ("lead", "headline", ...), for `Signature.keys`.
pub fn key(kind: &str, value: i64) -> i64 {
    let mut buf = Vec::with_capacity(kind.len() + 9);
    buf.extend_from_slice(kind.as_bytes());
    buf.push(0);
    buf.extend_from_slice(&value.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64_with_seed(&buf, SEED) as i64
}

#[inline]
fn feature_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(bytes, FEATURE_SEED)
}

/// Calls `f` with the hash of every simhash feature of folded text: Han/Kana
/// character bigrams, and character 4-grams over every other alphanumeric
/// character with spaces and punctuation removed.
fn for_each_feature(folded: &str, mut f: impl FnMut(u64)) {
    // The kept non-Han characters, and the offset of each in `run`.
    let mut run: Vec<u8> = Vec::with_capacity(folded.len());
    let mut bounds: Vec<usize> = Vec::with_capacity(folded.len());
    let flush = |run: &mut Vec<u8>, bounds: &mut Vec<usize>, f: &mut dyn FnMut(u64)| {
        let n = bounds.len();
        if n == 0 {
            return;
        }
        if n < 4 {
            f(feature_hash(run));
        } else {
            for i in 0..=(n - 4) {
                let end = if i + 4 < n { bounds[i + 4] } else { run.len() };
                f(feature_hash(&run[bounds[i]..end]));
            }
        }
        run.clear();
        bounds.clear();
    };
    let lone_han = |p: usize| {
        let e = p + folded[p..].chars().next().map_or(0, |c| c.len_utf8());
        feature_hash(&folded.as_bytes()[p..e])
    };
    let bytes = folded.as_bytes();
    let mut prev_han: Option<usize> = None;
    let mut han_alone = false;
    let mut i = 0;
    while i < bytes.len() {
        // Most bytes are ASCII: never Han/Kana, and copied without decoding.
        let b = bytes[i];
        if b.is_ascii() {
            if let Some(p) = prev_han.take() {
                if han_alone {
                    f(lone_han(p));
                }
                han_alone = false;
            }
            if b.is_ascii_alphanumeric() {
                bounds.push(run.len());
                run.push(b);
            }
            i += 1;
            continue;
        }
        let Some(c) = folded[i..].chars().next() else {
            break;
        };
        let end = i + c.len_utf8();
        if is_han_kana(c) {
            flush(&mut run, &mut bounds, &mut f);
            match prev_han {
                Some(p) => {
                    f(feature_hash(&bytes[p..end]));
                    han_alone = false;
                }
                None => han_alone = true,
            }
            prev_han = Some(i);
            i = end;
            continue;
        }
        if let Some(p) = prev_han.take() {
            if han_alone {
                f(lone_han(p));
            }
            han_alone = false;
        }
        if chars::is_alphanumeric(c) {
            bounds.push(run.len());
            run.extend_from_slice(&bytes[i..end]);
        }
        i = end;
    }
    if let Some(p) = prev_han
        && han_alone
    {
        f(lone_han(p));
    }
    flush(&mut run, &mut bounds, &mut f);
}

/// The 64-bit simhash of folded text with term-frequency weights (no IDF:
/// rare terms are mostly boilerplate, and IDF would lift them). 0 for text
/// without features.
pub fn simhash(folded: &str) -> u64 {
    // Summing +1/-1 per occurrence is the TF-weighted sum; counting set bits
    // per position (a branch-free loop the compiler vectorizes) gives it as
    // 2*ones - n.
    //
    // The counts go through byte lanes first: each feature adds one spread
    // byte of its hash per u64 (eight adds instead of sixty-four), and the
    // lanes are emptied into `ones` before any of them can reach 256.
    let mut ones = [0u32; 64];
    let mut n: u32 = 0;
    let mut lanes = [0u64; 8];
    let mut pending = 0u32;
    let drain = |lanes: &mut [u64; 8], ones: &mut [u32; 64]| {
        for (k, lane) in lanes.iter_mut().enumerate() {
            for j in 0..8 {
                ones[8 * k + j] += ((*lane >> (8 * j)) & 0xff) as u32;
            }
            *lane = 0;
        }
    };
    for_each_feature(folded, |h| {
        n += 1;
        for (k, lane) in lanes.iter_mut().enumerate() {
            *lane += SPREAD[((h >> (8 * k)) & 0xff) as usize];
        }
        pending += 1;
        if pending == 255 {
            drain(&mut lanes, &mut ones);
            pending = 0;
        }
    });
    drain(&mut lanes, &mut ones);
    let mut out = 0u64;
    for (bit, &o) in ones.iter().enumerate() {
        if 2 * o > n {
            out |= 1 << bit;
        }
    }
    out
}

/// Byte `j` of `SPREAD[b]` is bit `j` of `b`.
const SPREAD: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut j = 0;
        while j < 8 {
            t[b] |= (((b >> j) & 1) as u64) << (8 * j);
            j += 1;
        }
        b += 1;
    }
    t
};

/// The body fingerprints computed from one tokenization of folded text.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyPrints {
    pub simhash: u64,
    pub lead_hash: Option<i64>,
    pub short_lead_hash: Option<i64>,
    pub content_hash: Option<i64>,
    pub sketch: Vec<i64>,
    pub text_len: usize,
}

fn joined(toks: &[&str]) -> String {
    let mut buf = String::with_capacity(toks.iter().map(|t| t.len() + 1).sum());
    for (i, t) in toks.iter().enumerate() {
        if i > 0 {
            buf.push(' ');
        }
        buf.push_str(t);
    }
    buf
}

/// All body fingerprints of folded text in one pass over its tokens.
pub fn body_prints(folded: &str) -> BodyPrints {
    let toks = crate::normalize::text::tokens(folded);
    // Both leads are prefixes of the joined tokens: one join serves all three
    // hashes, and the tag goes through the streaming hasher (same output as
    // hashing the concatenation) instead of a copy.
    let all = joined(&toks);
    let prefix_len = |n: usize| toks[..n].iter().map(|t| t.len() + 1).sum::<usize>() - 1;
    let tagged = |tag: &str, body: &str| {
        let mut h = xxhash_rust::xxh3::Xxh3::with_seed(SEED);
        h.update(tag.as_bytes());
        h.update(body.as_bytes());
        h.digest() as i64
    };
    let lead_hash = (toks.len() >= LEAD_TOKENS).then(|| {
        tagged(
            "lead\u{1}",
            all.get(..prefix_len(LEAD_TOKENS)).unwrap_or(""),
        )
    });
    let short_lead_hash = (toks.len() >= SHORT_LEAD_TOKENS).then(|| {
        tagged(
            "lead20\u{1}",
            all.get(..prefix_len(SHORT_LEAD_TOKENS)).unwrap_or(""),
        )
    });
    let content_hash = (!toks.is_empty()).then(|| tagged("content\u{1}", &all));
    let th: Vec<u64> = toks.iter().map(|t| feature_hash(t.as_bytes())).collect();
    BodyPrints {
        simhash: simhash(folded),
        lead_hash,
        short_lead_hash,
        content_hash,
        sketch: sketch_of(&th),
        text_len: toks.len(),
    }
}

impl BodyPrints {
    /// The lookup keys that find copies by their text: full lead, short
    /// lead, and the sketch.
    pub fn text_keys(&self) -> Vec<i64> {
        let mut keys = Vec::with_capacity(2 + self.sketch.len());
        if let Some(l) = self.lead_hash {
            keys.push(key("lead", l));
        }
        if let Some(l) = self.short_lead_hash {
            keys.push(key("lead20", l));
        }
        keys.extend(self.sketch.iter().map(|&h| key("sketch", h)));
        keys
    }
}

/// Hamming distance between two simhashes.
pub fn distance(a: i64, b: i64) -> u32 {
    ((a ^ b) as u64).count_ones()
}

/// Hash of the first `LEAD_TOKENS` tokens of folded text; None when the
/// text is shorter (a short text's "lead" is the whole text, which the
/// content hash already covers).
pub fn lead_hash(folded: &str) -> Option<i64> {
    let mut buf = String::new();
    let mut n = 0;
    for_each_token(folded, |t| {
        if n < LEAD_TOKENS {
            if n > 0 {
                buf.push(' ');
            }
            buf.push_str(t);
            n += 1;
        }
    });
    (n >= LEAD_TOKENS).then(|| hash64(&format!("lead\u{1}{buf}")))
}

/// Tokens in the short lead key: a two-sentence excerpt still carries them.
pub const SHORT_LEAD_TOKENS: usize = 20;

/// The first `n` tokens of folded text joined by spaces, if it has `n`.
pub fn first_tokens(folded: &str, n: usize) -> Option<String> {
    let mut buf = String::new();
    let mut k = 0;
    for_each_token(folded, |t| {
        if k < n {
            if k > 0 {
                buf.push(' ');
            }
            buf.push_str(t);
            k += 1;
        }
    });
    (k >= n).then_some(buf)
}

/// Hash of the first `SHORT_LEAD_TOKENS` tokens, a lookup key for excerpts
/// too short for the full lead.
pub fn short_lead_hash(folded: &str) -> Option<i64> {
    first_tokens(folded, SHORT_LEAD_TOKENS).map(|b| hash64(&format!("lead20\u{1}{b}")))
}

/// Width of the shingles sampled for the body sketch.
const SKETCH_SHINGLE: usize = 5;
/// Shingles kept in the body sketch.
pub const SKETCH_K: usize = 6;

/// A bottom-k sample of the body's 5-token shingles: lookup keys that two
/// copies sharing most of their text have in common with high probability,
/// however far apart their simhashes drifted (edits, truncation). The store
/// only looks up exact keys and bands, so this is what finds edited copies
/// beyond the band pigeonhole radius.
pub fn sketch(folded: &str) -> Vec<i64> {
    sketch_of(&token_hashes(folded))
}

fn sketch_of(toks: &[u64]) -> Vec<i64> {
    if toks.len() < SKETCH_SHINGLE {
        return Vec::new();
    }
    let mut hs: Vec<u64> = toks.windows(SKETCH_SHINGLE).map(mix).collect();
    hs.sort_unstable();
    hs.dedup();
    hs.truncate(SKETCH_K);
    hs.into_iter().map(|h| h as i64).collect()
}

/// Exact hash of the token sequence of folded text; None when empty.
pub fn content_hash(folded: &str) -> Option<i64> {
    let mut buf = String::with_capacity(folded.len());
    for_each_token(folded, |t| {
        if !buf.is_empty() {
            buf.push(' ');
        }
        buf.push_str(t);
    });
    (!buf.is_empty()).then(|| hash64(&format!("content\u{1}{buf}")))
}

/// Hashes of the token sequence of folded text, for shingling.
pub fn token_hashes(folded: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for_each_token(folded, |t| out.push(feature_hash(t.as_bytes())));
    out
}

/// Width of the token shingles that verify a near-duplicate.
pub const SHINGLE: usize = 3;

/// Sorted, deduplicated hashes of the token `SHINGLE`-grams (the whole text
/// as one shingle when it is shorter).
pub fn shingles(folded: &str) -> Vec<u64> {
    let toks = token_hashes(folded);
    let mut out: Vec<u64> = if toks.len() < SHINGLE {
        if toks.is_empty() {
            Vec::new()
        } else {
            vec![mix(&toks)]
        }
    } else {
        toks.windows(SHINGLE).map(mix).collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

fn mix(w: &[u64]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for &x in w {
        h = (h ^ x).wrapping_mul(0x1000_0000_01b3).rotate_left(29);
    }
    h
}

/// Size of the intersection of two sorted, deduplicated sets.
pub fn intersection(a: &[u64], b: &[u64]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// Shingle overlap of two texts: (resemblance, containment of the smaller
/// set in the larger).
pub fn overlap(a: &[u64], b: &[u64]) -> (f64, f64) {
    if a.is_empty() || b.is_empty() {
        return (0.0, 0.0);
    }
    let i = intersection(a, b) as f64;
    let union = (a.len() + b.len()) as f64 - i;
    (i / union, i / a.len().min(b.len()) as f64)
}

/// Share of `small`'s shingles that also occur in `big`.
pub fn containment_in(small: &[u64], big: &[u64]) -> f64 {
    if small.is_empty() {
        return 0.0;
    }
    intersection(small, big) as f64 / small.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::fold_text;
    use proptest::prelude::*;

    /// Golden vectors: these values are persisted in databases. If this test
    /// fails, the fingerprint changed: bump FP_VERSION and update the vectors
    /// deliberately.
    #[test]
    fn golden_vectors() {
        let cases: &[(&str, u64)] = &[
            ("", 0),
            ("The quick brown fox jumps over the lazy dog.", GOLD_EN),
            ("中国人民银行宣布下调存款准备金率", GOLD_ZH),
            ("서울 증시가 이틀 연속 상승 마감했다", GOLD_KO),
        ];
        for (text, want) in cases {
            let got = simhash(&fold_text(text));
            assert_eq!(got, *want, "{text}: {got:#018x}");
        }
        assert_eq!(hash64("feedfold") as u64, GOLD_HASH);
        assert_eq!(key("lead", 42) as u64, GOLD_KEY);
    }

    const GOLD_EN: u64 = 0x986a3cee0d60fa57;
    const GOLD_ZH: u64 = 0x1d9c00efdf2d903f;
    const GOLD_KO: u64 = 0x3609208005060529;
    const GOLD_HASH: u64 = 0x90367adc769ac7f3;
    const GOLD_KEY: u64 = 0xc5caf6519e1136a8;

    #[test]
    fn body_prints_agree_with_single_functions() {
        let f = fold_text(BASE);
        let b = body_prints(&f);
        assert_eq!(b.simhash, simhash(&f));
        assert_eq!(b.lead_hash, lead_hash(&f));
        assert_eq!(b.short_lead_hash, short_lead_hash(&f));
        assert_eq!(b.content_hash, content_hash(&f));
        assert_eq!(b.sketch, sketch(&f));
        assert_eq!(b.sketch.len(), SKETCH_K);
    }

    #[test]
    fn case_and_width_do_not_matter() {
        assert_eq!(
            simhash(&fold_text("ＨＥＬＬＯ World again")),
            simhash(&fold_text("hello world AGAIN"))
        );
    }

    #[test]
    fn lead_and_content() {
        let words: Vec<String> = (0..50).map(|i| format!("w{i}")).collect();
        let long = words.join(" ");
        let short = words[..45].join(" ");
        assert_eq!(lead_hash(&long), lead_hash(&short));
        assert!(lead_hash(&long).is_some());
        assert_eq!(lead_hash("too short"), None);
        assert_ne!(content_hash(&long), content_hash(&short));
        assert_eq!(content_hash("a, b"), content_hash("a b"));
        assert_eq!(content_hash(""), None);
    }

    #[test]
    fn overlap_measures() {
        let a = shingles("one two three four five six");
        let b = shingles("one two three four five six seven eight nine ten");
        let (r, c) = overlap(&a, &b);
        assert!((c - 1.0).abs() < 1e-9);
        assert!(r < 0.6);
    }

    const BASE: &str = "The regional parliament approved a revised budget on Tuesday that moves money from road building to rail maintenance, ending a dispute that had delayed spending for three months. Opposition members said the plan underfunds rural bus lines and promised to challenge parts of it in committee. The finance minister said the change would cut maintenance backlogs by a third within two years and that ticket prices would not rise. Transport unions welcomed the decision but warned that staffing shortages at depots remain the main cause of cancelled trains. The budget also sets aside funds for station accessibility upgrades in twelve towns, a measure that disability groups have requested for years. Final approval from the upper chamber is expected next month. Regional officials also published a timetable for the rail works, starting with the northern line where signal faults caused the most delays last winter. Contractors will be chosen through an open tender later this spring, and the ministry said it would publish quarterly reports on how the money is spent. Several mayors from smaller towns argued that the road projects being postponed were essential for freight traffic and local employers, and they asked for a review of the decision after one year. The minister replied that the review clause was already part of the agreement and that no road project had been cancelled outright, only delayed.";

    /// The feature hashes as computed before the byte-wise scan.
    fn features_by_char(folded: &str) -> Vec<u64> {
        let mut out = Vec::new();
        let mut run = String::new();
        let mut bounds: Vec<usize> = Vec::new();
        let flush = |run: &mut String, bounds: &mut Vec<usize>, out: &mut Vec<u64>| {
            let n = bounds.len();
            if n == 0 {
                return;
            }
            if n < 4 {
                out.push(feature_hash(run.as_bytes()));
            } else {
                for i in 0..=(n - 4) {
                    let end = if i + 4 < n { bounds[i + 4] } else { run.len() };
                    out.push(feature_hash(&run.as_bytes()[bounds[i]..end]));
                }
            }
            run.clear();
            bounds.clear();
        };
        let lone = |p: usize| {
            let e = p + folded[p..].chars().next().map_or(0, |c| c.len_utf8());
            feature_hash(&folded.as_bytes()[p..e])
        };
        let mut prev_han: Option<usize> = None;
        let mut han_alone = false;
        for (i, c) in folded.char_indices() {
            if is_han_kana(c) {
                flush(&mut run, &mut bounds, &mut out);
                let end = i + c.len_utf8();
                match prev_han {
                    Some(p) => {
                        out.push(feature_hash(&folded.as_bytes()[p..end]));
                        han_alone = false;
                    }
                    None => han_alone = true,
                }
                prev_han = Some(i);
                continue;
            }
            if let Some(p) = prev_han.take() {
                if han_alone {
                    out.push(lone(p));
                }
                han_alone = false;
            }
            if c.is_alphanumeric() {
                bounds.push(run.len());
                run.push(c);
            }
        }
        if let Some(p) = prev_han
            && han_alone
        {
            out.push(lone(p));
        }
        flush(&mut run, &mut bounds, &mut out);
        out
    }

    fn features(folded: &str) -> Vec<u64> {
        let mut out = Vec::new();
        for_each_feature(folded, |h| out.push(h));
        out
    }

    proptest! {
        #[test]
        fn features_agree_with_char_by_char(s in "[a-z0-9 .,'中国经济东京かカ서울éßж①，。]{0,40}") {
            prop_assert_eq!(features(&s), features_by_char(&s));
        }

        #[test]
        fn features_of_any_text_agree(s in any::<String>()) {
            prop_assert_eq!(features(&s), features_by_char(&s));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A fixed footer appended stays within the decision radius (12).
        #[test]
        fn footer_stays_within_radius(site in "[A-Z][a-z]{3,10} [A-Z][a-z]{3,8}") {
            let a = simhash(&fold_text(BASE));
            let b = simhash(&fold_text(&format!("{BASE}\n\nThe post appeared first on {site}.")));
            prop_assert!(distance(a as i64, b as i64) <= 12);
        }

        /// A few words changed stays within the decision radius.
        #[test]
        fn edits_stay_within_radius(idx in proptest::collection::vec(0usize..240, 3), repl in "[a-z]{4,9}") {
            let mut words: Vec<&str> = BASE.split(' ').collect();
            for i in idx {
                let n = words.len();
                words[i % n] = &repl;
            }
            let edited = words.join(" ");
            let a = simhash(&fold_text(BASE));
            let b = simhash(&fold_text(&edited));
            prop_assert!(distance(a as i64, b as i64) <= 12);
        }

        #[test]
        fn never_panics(s in any::<String>()) {
            let f = fold_text(&s);
            let _ = simhash(&f);
            let _ = lead_hash(&f);
            let _ = shingles(&f);
        }
    }
}
