//! Headline normalization for headline folding (issue 9): NFKC, case,
//! punctuation, and publisher decorations. Decorations are learned per feed
//! (a prefix or suffix segment that several of a feed's headlines carry),
//! recognised as the linked site's name, or are the wire-style `WORD N-`
//! prefix and a trailing `(Agency)` credit.

use std::collections::{HashMap, HashSet};

use super::hash64;
use crate::normalize::origin::names_site;

/// A decoration must recur in this many headlines of a feed to be learned.
const MIN_DECOR: usize = 3;

const SUFFIX_SEPS: &[&str] = &[" - ", " – ", " — ", " | ", "|", " · ", " :: ", " / "];
const PREFIX_SEPS: &[&str] = &[": ", " - ", " – ", " | ", "|", "-"];

/// Decorations learned for one feed.
#[derive(Debug, Clone, Default)]
pub struct Decor {
    pub suffixes: HashSet<String>,
    pub prefixes: HashSet<String>,
}

fn nfkc(s: &str) -> String {
    crate::normalize::chars::nfkc(s).into_owned()
}

fn seg_key(seg: &str) -> String {
    normalize_plain(seg)
}

fn split_suffix(s: &str) -> Option<(&str, &str)> {
    let (pos, sep) = SUFFIX_SEPS
        .iter()
        .filter_map(|sep| s.rfind(sep).map(|p| (p, *sep)))
        .max_by_key(|(p, _)| *p)?;
    let head = s[..pos].trim();
    let seg = s[pos + sep.len()..].trim();
    (!head.is_empty() && !seg.is_empty() && seg.split_whitespace().count() <= 6)
        .then_some((head, seg))
}

fn split_prefix(s: &str) -> Option<(&str, &str)> {
    let (pos, sep) = PREFIX_SEPS
        .iter()
        .filter_map(|sep| s.find(sep).map(|p| (p, *sep)))
        .min_by_key(|(p, _)| *p)?;
    let seg = s[..pos].trim();
    let rest = s[pos + sep.len()..].trim();
    (!seg.is_empty() && !rest.is_empty() && seg.split_whitespace().count() <= 3)
        .then_some((seg, rest))
}

/// Learns a feed's headline decorations from a batch of its titles plus
/// decoration hashes remembered earlier (see `decor_shapes`).
pub fn learn(titles: &[&str], learned: &[i64]) -> Decor {
    let learned: HashSet<i64> = learned.iter().copied().collect();
    let mut sfx: HashMap<String, usize> = HashMap::new();
    let mut pfx: HashMap<String, usize> = HashMap::new();
    for t in titles {
        let t = nfkc(t);
        if let Some((_, seg)) = split_suffix(&t) {
            *sfx.entry(seg_key(seg)).or_default() += 1;
        }
        if let Some((seg, _)) = split_prefix(&t) {
            *pfx.entry(seg_key(seg)).or_default() += 1;
        }
    }
    let keep = |m: HashMap<String, usize>, kind: &str| -> HashSet<String> {
        m.into_iter()
            .filter(|(k, n)| {
                !k.is_empty() && (*n >= MIN_DECOR || learned.contains(&decor_hash(kind, k)))
            })
            .map(|(k, _)| k)
            .collect()
    };
    Decor {
        suffixes: keep(sfx, "sfx"),
        prefixes: keep(pfx, "pfx"),
    }
}

fn decor_hash(kind: &str, seg: &str) -> i64 {
    hash64(&format!("headline-{kind}\u{1}{seg}"))
}

/// Hashes of the learned decorations, to remember with the feed's
/// boilerplate shapes so that later batches recognise them too.
pub fn decor_shapes(d: &Decor) -> Vec<i64> {
    let mut v: Vec<i64> = d
        .suffixes
        .iter()
        .map(|s| decor_hash("sfx", s))
        .chain(d.prefixes.iter().map(|s| decor_hash("pfx", s)))
        .collect();
    v.sort_unstable();
    v
}

/// Folded headline: NFKC, lowercase, every run of non-alphanumeric
/// characters one space.
pub fn normalize_plain(s: &str) -> String {
    let folded = crate::normalize::fold_text(s);
    let mut out = String::with_capacity(folded.len());
    let mut space = false;
    for c in folded.chars() {
        if c.is_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        } else {
            space = true;
        }
    }
    out
}

fn wire_prefix(s: &str) -> Option<&str> {
    // `UPDATE 2-Text`, `EXCLUSIVE-Text`: an upper-case word, an optional
    // number, a hyphen glued to the text. Only in mixed-case headlines, so
    // that an all-caps headline such as `CHINA-US TALKS` keeps its words.
    let dash = s.find('-')?;
    let (head, rest) = (&s[..dash], &s[dash + 1..]);
    let mut words = head.split(' ');
    let w = words.next()?;
    let num_ok = match words.next() {
        None => true,
        Some(n) => n.chars().all(|c| c.is_ascii_digit()) && words.next().is_none(),
    };
    let upper = w.chars().count() >= 3 && w.chars().all(|c| c.is_uppercase());
    let rest = rest.trim_start();
    (num_ok
        && upper
        && rest.chars().next().is_some_and(|c| c.is_alphabetic())
        && rest.chars().any(|c| c.is_lowercase()))
    .then_some(rest)
}

fn agency_credit(s: &str) -> Option<&str> {
    // Trailing `(Reuters)`, `(AP)`: one capitalised word in parentheses.
    let t = s.trim_end();
    if !t.ends_with(')') {
        return None;
    }
    let open = t.rfind('(')?;
    let inner = &t[open + 1..t.len() - 1];
    let ok = !inner.is_empty()
        && inner.chars().count() <= 20
        && !inner.contains(' ')
        && inner.chars().next().is_some_and(|c| c.is_uppercase())
        && inner.chars().all(|c| c.is_alphabetic());
    (ok && open > 0).then(|| t[..open].trim_end())
}

/// The normalized headline key: decorations removed, then folded.
/// `site` is the host the item links to (a suffix naming it is decoration).
pub fn normalize(title: &str, site: Option<&str>, decor: &Decor) -> String {
    let t = nfkc(title);
    let mut s: &str = t.trim();
    for _ in 0..3 {
        let before = s.len();
        if let Some((head, seg)) = split_suffix(s) {
            let k = seg_key(seg);
            if decor.suffixes.contains(&k) || site.is_some_and(|h| names_site(seg, h)) {
                s = head;
            }
        }
        if let Some(rest) = agency_credit(s) {
            s = rest;
        }
        if let Some((seg, rest)) = split_prefix(s)
            && decor.prefixes.contains(&seg_key(seg))
        {
            s = rest;
        }
        if let Some(rest) = wire_prefix(s) {
            s = rest;
        }
        if s.len() == before {
            break;
        }
    }
    let out = normalize_plain(s);
    if out.is_empty() {
        normalize_plain(&t)
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decorations_across_scripts() {
        let none = Decor::default();
        let cases: &[(&str, Option<&str>, &str)] = &[
            (
                "UPDATE 2-Oil prices rise on supply fears",
                None,
                "oil prices rise on supply fears",
            ),
            (
                "EXCLUSIVE-Bank weighs sale of unit",
                None,
                "bank weighs sale of unit",
            ),
            (
                "Oil prices rise on supply fears (Reuters)",
                None,
                "oil prices rise on supply fears",
            ),
            (
                "Oil prices rise on supply fears - Harbor Times",
                Some("harbortimes.example"),
                "oil prices rise on supply fears",
            ),
            ("CHINA-US TALKS RESUME", None, "china us talks resume"),
            ("ＴＯＫＹＯ　株価が上昇", None, "tokyo 株価が上昇"),
            ("서울 증시, 이틀째 상승", None, "서울 증시 이틀째 상승"),
            ("央行下调存款准备金率！", None, "央行下调存款准备金率"),
            ("Growth slows - what next", None, "growth slows what next"),
        ];
        for (t, site, want) in cases {
            assert_eq!(normalize(t, *site, &none), *want, "{t}");
        }
    }

    #[test]
    fn learned_suffix_per_feed() {
        let titles = [
            "日銀が利上げ｜ロイター",
            "円相場が続落｜ロイター",
            "株価が反発｜ロイター",
            "Single title",
        ];
        let d = learn(&titles, &[]);
        assert_eq!(
            normalize("日銀が利上げ｜ロイター", None, &d),
            "日銀が利上げ"
        );
        // A remembered decoration applies to a batch where it is rare.
        let later = learn(&["新しい見出し｜ロイター"], &decor_shapes(&d));
        assert_eq!(
            normalize("新しい見出し｜ロイター", None, &later),
            "新しい見出し"
        );
        // Without learning, the suffix stays.
        assert_eq!(
            normalize("新しい見出し｜ロイター", None, &Decor::default()),
            "新しい見出し ロイター"
        );
    }
}
