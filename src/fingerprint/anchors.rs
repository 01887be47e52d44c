//! Cross-language anchor signatures: the tokens of an article that survive
//! translation (numbers and amounts, names, acronyms, domains and handles),
//! normalized so that a French or Korean copy yields the same strings as its
//! English original. No model and no per-language word list beyond number
//! scale words; names are compared by a consonant skeleton of their ASCII
//! transliteration (Latin diacritics, Cyrillic, Greek, Hangul).
//! Measured design: ../shared/research/xling.md. Pure: no I/O, cannot fail.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{LazyLock, OnceLock};

use unicode_normalization::UnicodeNormalization;

use crate::normalize::chars;

/// Most anchors put in the store's lookup index per item. Each key widens the
/// candidate search, so only the most specific ones go in.
pub const MAX_INDEX_KEYS: usize = 16;

/// Anchor kind prefixes.
const NUM: &str = "n:";
const NAME: &str = "p:";
const ACRO: &str = "a:";
const DOMAIN: &str = "d:";
const HANDLE: &str = "h:";
const TAG: &str = "t:";

/// Skeletons are cut to this many characters (research: 4).
const SKEL_LEN: usize = 4;
/// Skeletons shorter than this never match: too many words share them.
const SKEL_MIN: usize = 3;
/// Stand-in name anchors a caseless text contributes (`caseless_names`).
const MAX_CASELESS_NAMES: usize = 16;

/// The anchor signature of an item, in order of first appearance (title
/// first). Deterministic.
pub fn extract(title: &str, text: &str) -> Vec<String> {
    build(title, text, false)
        .anchors
        .into_iter()
        .map(|a| a.anchor)
        .collect()
}

/// The lookup keys for the store's index: the most specific anchors (links,
/// long numbers, names, acronyms), never years or small numbers that the whole
/// news week shares, each hashed with its kind.
pub fn index_keys(anchors: &[String]) -> Vec<i64> {
    let mut ranked: Vec<(u8, usize, &String)> = anchors
        .iter()
        .enumerate()
        .filter_map(|(i, a)| specificity(a).map(|rank| (rank, i, a)))
        .collect();
    ranked.sort_by_key(|&(rank, i, _)| (rank, i));
    let mut seen = std::collections::HashSet::new();
    ranked
        .into_iter()
        .filter(|(_, _, a)| seen.insert(a.as_str()))
        .take(MAX_INDEX_KEYS)
        .map(|(_, _, a)| anchor_key(a))
        .collect()
}

/// The store key of one anchor (also the key KeyStats counts it under).
pub fn anchor_key(anchor: &str) -> i64 {
    super::hash64(&format!("anchor:{anchor}"))
}

/// Index rank of an anchor (lower = more specific), None when it must not be
/// indexed because it is shared by too much of a week's news.
fn specificity(anchor: &str) -> Option<u8> {
    if let Some(v) = anchor.strip_prefix(NUM) {
        if is_common_number(v) {
            return None;
        }
        let sig = significant_digits(v);
        return Some(if sig >= 4 { 1 } else { 3 });
    }
    if anchor.starts_with(DOMAIN) || anchor.starts_with(HANDLE) || anchor.starts_with(TAG) {
        return Some(0);
    }
    if let Some(s) = anchor.strip_prefix(NAME) {
        return Some(if s.len() >= SKEL_LEN { 2 } else { 4 });
    }
    if anchor.starts_with(ACRO) {
        return Some(2);
    }
    None
}

/// Years, small integers and short round numbers: dates, counts and
/// percentages that every story of a week shares (research: numbers alone
/// are useless at high precision).
pub fn is_common_number(v: &str) -> bool {
    if let Ok(n) = v.parse::<u64>()
        && (n < 100 || (1900..=2100).contains(&n))
    {
        return true;
    }
    if v.contains('.') {
        // Short decimals such as 1.5 or 3.25 are as common as small integers.
        return significant_digits(v) < 3;
    }
    significant_digits(v) < 2 && v.len() < 5
}

fn significant_digits(v: &str) -> usize {
    let digits: String = v.chars().filter(|c| c.is_ascii_digit()).collect();
    digits.trim_start_matches('0').trim_end_matches('0').len()
}

/// Whether an anchor counts as "specific": one the index would carry.
pub fn is_specific(anchor: &str) -> bool {
    specificity(anchor).is_some()
}

/// A small multiply-rotate hasher: profiles hash thousands of short words
/// per item, and SipHash's DoS resistance buys nothing for a pure function.
#[derive(Default, Clone, Copy)]
pub struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(b))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Word-keyed map with first-appearance positions.
pub type WordMap = HashMap<String, f32, BuildHasherDefault<WordHasher>>;

fn insert_first(lookups: bool, map: &mut WordMap, key: &str, pos: f32) {
    if lookups && !map.contains_key(key) {
        map.insert(key.to_string(), pos);
    }
}

/// Whether the text can hold a URL, domain, mail address, handle or hashtag;
/// the link regex is the costliest step, and most paragraphs have none.
fn may_hold_links(text: &str) -> bool {
    // Searched for byte by byte (memchr) rather than tested at every byte.
    let b = text.as_bytes();
    b.contains(&b'@')
        || b.contains(&b'#')
        || text.match_indices('.').any(|(i, _)| {
            i > 0
                && b[i - 1].is_ascii_alphanumeric()
                && b.get(i + 1).is_some_and(|n| n.is_ascii_lowercase())
        })
}

/// One anchor with the position (in text units from the start of the title)
/// of its first appearance.
#[derive(Debug, Clone, PartialEq)]
pub struct Anchor {
    pub anchor: String,
    pub pos: f32,
}

/// Everything the cross-language score needs about one item: its anchors and
/// a lookup of every token of its transliterated text (so that caseless
/// scripts, which have no name anchors of their own, can still be searched),
/// each with the position of its first appearance so that a lead cut and the
/// order check need no second pass.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub anchors: Vec<Anchor>,
    /// Every normalized number (small ones too).
    pub nums: WordMap,
    /// Skeletons of every word, capitalized or not, in any transliterable
    /// script (plus 3-character prefixes where inflection follows a name).
    pub skels: WordMap,
    /// Words with a capital (or caseless), ASCII-folded to lower case:
    /// acronyms match these.
    pub words: WordMap,
    /// Domains, handles and hashtags.
    pub links: WordMap,
    /// Length of the text in units (one English word ~ one unit).
    pub units: f32,
}

impl Profile {
    /// Where the other side's anchor first appears in this text, if at all,
    /// looking only at the first `cut` units.
    pub fn find(&self, anchor: &str, cut: f32) -> Option<f32> {
        let (map, key) = if let Some(v) = anchor.strip_prefix(NUM) {
            (&self.nums, v)
        } else if let Some(v) = anchor.strip_prefix(NAME) {
            (&self.skels, v)
        } else if let Some(v) = anchor.strip_prefix(ACRO) {
            (&self.words, v)
        } else {
            (&self.links, anchor)
        };
        map.get(key).copied().filter(|&p| p < cut)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Cyrillic,
    Greek,
    Hangul,
    Han,
    Kana,
    Other,
}

fn script_of(c: char) -> Script {
    match c as u32 {
        0x0041..=0x024F | 0x1E00..=0x1EFF => Script::Latin,
        0x0370..=0x03FF | 0x1F00..=0x1FFF => Script::Greek,
        0x0400..=0x052F => Script::Cyrillic,
        0xAC00..=0xD7A3 | 0x1100..=0x11FF | 0x3130..=0x318F => Script::Hangul,
        0x3040..=0x30FF | 0x31F0..=0x31FF => Script::Kana,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF => Script::Han,
        _ => Script::Other,
    }
}

/// Scripts with upper and lower case, where capitals mark names.
fn is_cased(s: Script) -> bool {
    matches!(s, Script::Latin | Script::Cyrillic | Script::Greek)
}

/// Text units per character/word, so that lengths compare across scripts
/// (research: 60 English words ~ 115 Chinese characters; a Korean word holds
/// about 1.5 English words).
fn units_of(script: Script, chars: usize) -> f32 {
    match script {
        Script::Han | Script::Kana => chars as f32 * 0.5,
        Script::Hangul => 1.5,
        _ => 1.0,
    }
}

/// The decimal value of a digit in any script (Unicode Nd blocks are runs of
/// ten starting at zero).
#[inline]
fn digit_value(c: char) -> Option<u32> {
    if c.is_ascii() {
        return c.to_digit(10);
    }
    // Every Nd digit is numeric (a test checks all of Unicode): the table
    // answers for letters before the block search.
    if !chars::is_numeric(c) {
        return None;
    }
    const ZEROS: &[u32] = &[
        0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66,
        0x0CE6, 0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946,
        0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0,
        0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    ];
    let u = c as u32;
    ZEROS
        .iter()
        .find(|&&z| u >= z && u < z + 10)
        .map(|&z| u - z)
}

fn is_space_sep(c: char) -> bool {
    matches!(c, ' ' | '\u{a0}' | '\u{2009}' | '\u{202f}')
}

fn is_num_sep(c: char) -> bool {
    matches!(c, ',' | '.' | '\'' | '\u{066b}' | '\u{066c}') || is_space_sep(c)
}

/// A decimal number as mantissa × 10^exp, exact (no float rounding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dec {
    mant: i128,
    exp: i32,
}

impl Dec {
    fn parse(int: &str, frac: &str) -> Option<Dec> {
        if int.len() + frac.len() > 30 {
            return None;
        }
        let digits = format!("{int}{frac}");
        let mant: i128 = digits.parse().ok()?;
        Some(
            Dec {
                mant,
                exp: -(frac.len() as i32),
            }
            .normalized(),
        )
    }

    fn normalized(mut self) -> Dec {
        if self.mant == 0 {
            return Dec { mant: 0, exp: 0 };
        }
        while self.mant % 10 == 0 {
            self.mant /= 10;
            self.exp += 1;
        }
        self
    }

    fn scaled(self, pow: i32) -> Dec {
        Dec {
            mant: self.mant,
            exp: self.exp + pow,
        }
    }

    fn add(self, other: Dec) -> Option<Dec> {
        let e = self.exp.min(other.exp);
        let a = self
            .mant
            .checked_mul(10i128.checked_pow((self.exp - e) as u32)?)?;
        let b = other
            .mant
            .checked_mul(10i128.checked_pow((other.exp - e) as u32)?)?;
        Some(
            Dec {
                mant: a.checked_add(b)?,
                exp: e,
            }
            .normalized(),
        )
    }

    /// Plain decimal notation: 40000000000, 1.5, 0.25.
    fn render(self) -> Option<String> {
        if self.exp > 24 || self.exp < -12 {
            return None;
        }
        let m = self.mant.to_string();
        if self.exp >= 0 {
            return Some(format!("{m}{}", "0".repeat(self.exp as usize)));
        }
        let point = -(self.exp) as usize;
        if m.len() > point {
            let (i, f) = m.split_at(m.len() - point);
            Some(format!("{i}.{f}"))
        } else {
            Some(format!("0.{}{m}", "0".repeat(point - m.len())))
        }
    }

    fn is_small_int(self) -> bool {
        self.exp >= 0 && self.mant < 10 && self.exp == 0
    }
}

/// Power of ten of a number-scale word directly after a number. This table is
/// the only per-language vocabulary in the signature.
fn scale_word(word: &str) -> Option<i32> {
    let w = word.trim_end_matches('.');
    let exact = |list: &[&str]| list.contains(&w);
    let pre = |list: &[&str]| list.iter().any(|p| w.starts_with(p));
    if exact(&[
        "thousand",
        "thousands",
        "tausend",
        "mille",
        "mil",
        "tis",
        "tisíc",
        "tisíce",
    ]) || pre(&["тыс", "тис", "χιλιάδ", "हज़ार", "हजार", "tisuć", "þúsund"])
    {
        return Some(3);
    }
    if exact(&["lakh", "lakhs", "लाख"]) {
        return Some(5);
    }
    if exact(&["crore", "crores", "करोड़"]) {
        return Some(7);
    }
    if exact(&["billionen", "billones", "billón", "bio"])
        || pre(&["trillion", "bilion", "трлн", "триллион", "трильйон", "τρισ"])
        || exact(&["tn", "trn"])
    {
        return Some(12);
    }
    if exact(&[
        "billion",
        "billions",
        "bn",
        "bln",
        "mrd",
        "mld",
        "mlrd",
        "अरब",
    ]) || pre(&[
        "milliard",
        "miliard",
        "milijard",
        "milliárd",
        "млрд",
        "миллиард",
        "мільярд",
        "δισ",
    ]) {
        return Some(9);
    }
    if exact(&["mio", "mln", "mn", "millón", "millones"])
        || pre(&[
            "million",
            "milion",
            "milión",
            "milijun",
            "млн",
            "миллион",
            "мільйон",
            "εκατ",
        ])
    {
        return Some(6);
    }
    None
}

/// Scale characters written straight after a number in CJK and Korean,
/// longest first.
const CJK_SCALES: &[(&str, i32)] = &[
    ("万亿", 12),
    ("千亿", 11),
    ("百亿", 10),
    ("十亿", 9),
    ("千万", 7),
    ("百万", 6),
    ("천억", 11),
    ("백억", 10),
    ("십억", 9),
    ("천만", 7),
    ("백만", 6),
    ("亿", 8),
    ("億", 8),
    ("억", 8),
    ("兆", 12),
    ("조", 12),
    ("万", 4),
    ("萬", 4),
    ("만", 4),
    ("千", 3),
    ("천", 3),
];

/// A raw token found by the scanner.
#[derive(Debug, Clone)]
enum Raw {
    /// A number with the power of ten of the scale word after it (0 when
    /// none) and the byte offset where it ends.
    Num {
        value: Dec,
        scale: i32,
        end: usize,
    },
    /// A word as a byte range of the scanned (NFKC) text.
    Word {
        start: usize,
        end: usize,
        script: Script,
        sentence_start: bool,
        in_title: bool,
    },
    Link(String),
}

fn link_regex() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r"(?x)
            (?P<url>(?:https?://|www\.)[^\s<>()\x22']+)
            | (?P<mail>[A-Za-z0-9._%+-]+@(?P<mdom>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+))
            | (?:^|[\s(])(?P<handle>@[A-Za-z0-9_]{2,30})
            | (?:^|[\s(])(?P<tag>\#[\p{L}0-9_]{2,40})
            | (?-u:\b)(?P<dom>[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|io|co|info|biz|gov|edu|example|[a-z]{2})(?:/[^\s<>()\x22']*)?)(?-u:\b)",
        )
        .expect("constant pattern, compiled by a unit test")
    })
}

fn host_of(url: &str) -> Option<String> {
    let s = url
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split(['/', '?', '#', ':']).next()?.to_ascii_lowercase();
    let host = host
        .trim_start_matches("www.")
        .trim_end_matches('.')
        .to_string();
    if host.contains('.') && host.len() >= 4 {
        Some(host)
    } else {
        None
    }
}

/// Splits text into numbers, words and links.
/// Tokens of title and text, and the normalized text their words point into.
fn scan(title: &str, text: &str) -> (Vec<Raw>, String) {
    let mut out = Vec::with_capacity(text.len() / 5 + 16);
    let mut buf = String::with_capacity(title.len() + text.len() + 1);
    scan_part(title, true, &mut buf, &mut out);
    buf.push('\n');
    scan_part(text, false, &mut buf, &mut out);
    merge_compound_amounts(&mut out);
    (out, buf)
}

fn scan_part(raw: &str, in_title: bool, buf: &mut String, out: &mut Vec<Raw>) {
    let text = chars::nfkc(raw);
    // Link spans first so that their words do not become names.
    let mut spans: Vec<(usize, usize, String)> = Vec::new();
    let link_text = if may_hold_links(&text) { &text } else { "" };
    for cap in link_regex().captures_iter(link_text) {
        let (m, anchor) = if let Some(m) = cap.name("url") {
            (m, host_of(m.as_str()).map(|h| format!("{DOMAIN}{h}")))
        } else if let Some(m) = cap.name("mail") {
            let dom = cap.name("mdom").map(|d| d.as_str().to_ascii_lowercase());
            (
                m,
                dom.map(|d| format!("{DOMAIN}{}", d.trim_start_matches("www."))),
            )
        } else if let Some(m) = cap.name("handle") {
            (
                m,
                Some(format!("{HANDLE}{}", m.as_str()[1..].to_lowercase())),
            )
        } else if let Some(m) = cap.name("tag") {
            (m, Some(format!("{TAG}{}", m.as_str()[1..].to_lowercase())))
        } else if let Some(m) = cap.name("dom") {
            (m, host_of(m.as_str()).map(|h| format!("{DOMAIN}{h}")))
        } else {
            continue;
        };
        spans.push((m.start(), m.end(), anchor.unwrap_or_default()));
    }
    let base = buf.len();
    // Sized for the text up front: `collect` would grow it from a quarter of
    // that, copying it at every step.
    let mut cs: Vec<(usize, char)> = Vec::with_capacity(text.len());
    cs.extend(text.char_indices());
    let mut span_i = 0;
    let mut i = 0;
    let mut sentence_start = true;
    while i < cs.len() {
        let (byte, c) = cs[i];
        while span_i < spans.len() && spans[span_i].1 <= byte {
            span_i += 1;
        }
        if let Some((s, e, a)) = spans.get(span_i)
            && *s <= byte
            && byte < *e
        {
            if !a.is_empty() {
                out.push(Raw::Link(a.clone()));
            }
            while i < cs.len() && cs[i].0 < *e {
                i += 1;
            }
            sentence_start = false;
            continue;
        }
        if digit_value(c).is_some() {
            i = scan_number(&cs, i, out);
            sentence_start = false;
            continue;
        }
        if chars::is_alphabetic(c) {
            let script = script_of(c);
            let start = i;
            while i < cs.len() {
                let ch = cs[i].1;
                // An ASCII letter is Latin and no ASCII character is a mark.
                let same = if ch.is_ascii() {
                    ch.is_ascii_alphabetic() && script == Script::Latin
                } else {
                    let is_mark = ('\u{300}'..='\u{36f}').contains(&ch);
                    (chars::is_alphabetic(ch) && script_of(ch) == script) || (is_mark && i > start)
                };
                if same {
                    i += 1;
                } else {
                    break;
                }
            }
            let end = cs.get(i).map(|c| c.0).unwrap_or(text.len());
            out.push(Raw::Word {
                start: base + byte,
                end: base + end,
                script,
                sentence_start,
                in_title,
            });
            sentence_start = false;
            continue;
        }
        if matches!(
            c,
            '.' | '!' | '?' | '\n' | '。' | '！' | '？' | ':' | '•' | '|'
        ) {
            sentence_start = true;
        }
        i += 1;
    }
    buf.push_str(&text);
}

/// Scans a number starting at `i`; returns the index after it.
fn scan_number(chars: &[(usize, char)], mut i: usize, out: &mut Vec<Raw>) -> usize {
    let digit_run = |mut j: usize| -> (String, usize) {
        let mut s = String::new();
        while j < chars.len() {
            match digit_value(chars[j].1) {
                Some(d) => s.push(char::from_digit(d, 10).unwrap_or('0')),
                None => break,
            }
            j += 1;
        }
        (s, j)
    };
    let (first, mut j) = digit_run(i);
    let mut groups = vec![first];
    let mut seps: Vec<char> = Vec::new();
    while j + 1 < chars.len() && is_num_sep(chars[j].1) && digit_value(chars[j + 1].1).is_some() {
        let sep = chars[j].1;
        let (g, k) = digit_run(j + 1);
        if is_space_sep(sep)
            && (g.len() != 3 || groups[0].len() > 3 || seps.iter().any(|s| !is_space_sep(*s)))
        {
            break;
        }
        seps.push(sep);
        groups.push(g);
        j = k;
    }
    i = j;
    let values = interpret_number(&groups, &seps);
    let n = values.len();
    // The scale word is part of the amount, not a word of its own.
    let scale = scale_after(chars, i);
    if let Some((_, after)) = scale {
        i = after;
    }
    let end = chars.get(i).map(|c| c.0).unwrap_or(usize::MAX);
    for (k, v) in values.into_iter().enumerate() {
        let pow = if k + 1 == n { scale.map(|s| s.0) } else { None };
        out.push(Raw::Num {
            value: v,
            scale: pow.unwrap_or(0),
            end,
        });
    }
    i
}

/// Groups and separators to values: one value, or several when the shape is
/// a date or a version number.
fn interpret_number(groups: &[String], seps: &[char]) -> Vec<Dec> {
    let one = |int: &str, frac: &str| Dec::parse(int, frac).into_iter().collect::<Vec<_>>();
    let parts = || {
        groups
            .iter()
            .filter_map(|g| Dec::parse(g, ""))
            .collect::<Vec<_>>()
    };
    if seps.is_empty() {
        return one(&groups[0], "");
    }
    let thousands_ok = |gs: &[String]| gs[0].len() <= 3 && gs[1..].iter().all(|g| g.len() == 3);
    let last = seps[seps.len() - 1];
    let all_same = seps
        .iter()
        .all(|&s| s == seps[0] || (is_space_sep(s) && is_space_sep(seps[0])));
    if all_same {
        let s = seps[0];
        if seps.len() >= 2 {
            return if thousands_ok(groups) {
                one(&groups.concat(), "")
            } else {
                parts()
            };
        }
        if is_space_sep(s) || s == '\'' || s == '\u{066c}' {
            return one(&groups.concat(), "");
        }
        if s == '\u{066b}' {
            return one(&groups[0], &groups[1]);
        }
        // A single ',' or '.': three digits after it read as thousands
        // (1,234 = 1.234 = 1234), anything else as a decimal (1,5 = 1.5).
        if groups[1].len() == 3 && groups[0] != "0" && groups[0].len() <= 3 {
            return one(&groups.concat(), "");
        }
        return one(&groups[0], &groups[1]);
    }
    // Mixed separators: the last one is the decimal point when it occurs once.
    let body = &seps[..seps.len() - 1];
    if !body.contains(&last) && (last == ',' || last == '.' || last == '\u{066b}') {
        let int_groups = &groups[..groups.len() - 1];
        let same_body = body
            .iter()
            .all(|&s| s == body[0] || (is_space_sep(s) && is_space_sep(body[0])));
        if same_body && thousands_ok(int_groups) {
            return one(&int_groups.concat(), &groups[groups.len() - 1]);
        }
    }
    parts()
}

/// The scale word or character right after a number ending before index `i`:
/// its power of ten and the index after it.
fn scale_after(chars: &[(usize, char)], mut i: usize) -> Option<(i32, usize)> {
    if i < chars.len() && is_space_sep(chars[i].1) {
        i += 1;
    }
    let start = i;
    let mut word = String::new();
    while i < chars.len() && chars::is_alphabetic(chars[i].1) && i - start < 12 {
        word.push(chars[i].1);
        i += 1;
    }
    if word.is_empty() {
        return None;
    }
    if matches!(
        script_of(word.chars().next()?),
        Script::Han | Script::Hangul | Script::Kana
    ) {
        return CJK_SCALES
            .iter()
            .find(|(p, _)| word.starts_with(p))
            .map(|&(p, pow)| (pow, start + p.chars().count()));
    }
    scale_word(&word.to_lowercase()).map(|pow| (pow, i))
}

/// "1조 2000억" is one amount: a scaled number followed by a smaller scaled
/// number adds up.
fn merge_compound_amounts(out: &mut Vec<Raw>) {
    let mut i = 0;
    while i + 1 < out.len() {
        if let (
            Raw::Num {
                value: a,
                scale: sa,
                ..
            },
            Raw::Num {
                value: b,
                scale: sb,
                end,
            },
        ) = (&out[i], &out[i + 1])
            && *sa >= 4
            && *sb > 0
            && sb < sa
            && let Some(sum) = a.scaled(*sa).add(b.scaled(*sb))
        {
            out[i] = Raw::Num {
                value: sum,
                scale: 0,
                end: *end,
            };
            out.remove(i + 1);
            continue;
        }
        i += 1;
    }
}

/// ASCII transliteration of one word (any supported script), lower case.
pub fn transliterate(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    transliterate_into(word, &mut out);
    out
}

fn transliterate_into(word: &str, out: &mut String) {
    out.clear();
    if word.is_ascii() {
        out.extend(
            word.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_lowercase()),
        );
        return;
    }
    for c in word.chars() {
        chars::push_lowercase(c, &mut |l| push_transliterated(l, out));
    }
}

/// Appends the ASCII form of one lower-case character.
fn push_transliterated(c: char, out: &mut String) {
    if c.is_ascii() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        }
        return;
    }
    if let Some(ascii) = SMALL_TRANSLIT.get(c as usize - 0x80) {
        out.push_str(ascii);
        return;
    }
    match script_of(c) {
        Script::Cyrillic => out.push_str(cyrillic(c)),
        Script::Greek => out.push_str(&greek(c)),
        Script::Hangul => hangul(c, out),
        _ => out.push_str(&latin(c)),
    }
}

/// What `transliterate_into` appends for each character from U+0080 up to
/// Cyrillic, made once by the same `latin` and `greek` calls: those
/// decompose every accented letter afresh and allocate for it, and German,
/// French or Czech text has one in most words.
static SMALL_TRANSLIT: LazyLock<Vec<Box<str>>> = LazyLock::new(|| {
    (0x80..0x400u32)
        .map(|u| {
            let Some(c) = char::from_u32(u) else {
                return Box::from("");
            };
            match script_of(c) {
                Script::Greek => greek(c).into(),
                _ => latin(c).into(),
            }
        })
        .collect()
});

fn latin(c: char) -> String {
    match c {
        'ß' => "ss".into(),
        'æ' => "ae".into(),
        'œ' => "oe".into(),
        'ø' => "o".into(),
        'ł' => "l".into(),
        'đ' | 'ð' => "d".into(),
        'þ' => "th".into(),
        'ı' => "i".into(),
        'ħ' => "h".into(),
        _ => c
            .to_string()
            .nfd()
            .filter(|ch| ch.is_ascii_alphanumeric())
            .collect(),
    }
}

fn cyrillic(c: char) -> &'static str {
    match c {
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' => "g",
        'ґ' => "g",
        'д' => "d",
        'е' | 'ё' | 'э' => "e",
        'є' => "ie",
        'ж' => "zh",
        'з' => "z",
        'и' | 'і' | 'ї' | 'й' => "i",
        'ј' => "j",
        'к' => "k",
        'л' => "l",
        'љ' => "lj",
        'м' => "m",
        'н' => "n",
        'њ' => "nj",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'ћ' => "c",
        'ђ' => "dj",
        'у' | 'ў' => "u",
        'ф' => "f",
        'х' => "kh",
        'ц' => "ts",
        'ч' => "ch",
        'џ' => "dz",
        'ш' => "sh",
        'щ' => "shch",
        'ы' => "y",
        'ю' => "iu",
        'я' => "ia",
        _ => "",
    }
}

fn greek(c: char) -> String {
    let base: String = c
        .to_string()
        .nfd()
        .filter(|ch| !('\u{300}'..='\u{36f}').contains(ch))
        .collect();
    let b = base.chars().next().unwrap_or(c);
    match b {
        'α' => "a",
        'β' => "v",
        'γ' => "g",
        'δ' => "d",
        'ε' => "e",
        'ζ' => "z",
        'η' | 'ι' => "i",
        'θ' => "th",
        'κ' => "k",
        'λ' => "l",
        'μ' => "m",
        'ν' => "n",
        'ξ' => "x",
        'ο' | 'ω' => "o",
        'π' => "p",
        'ρ' => "r",
        'σ' | 'ς' => "s",
        'τ' => "t",
        'υ' => "y",
        'φ' => "f",
        'χ' => "ch",
        'ψ' => "ps",
        _ => "",
    }
    .to_string()
}

/// Revised Romanization of one Hangul syllable (decomposed algorithmically).
fn hangul(c: char, out: &mut String) {
    const L: [&str; 19] = [
        "g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t",
        "p", "h",
    ];
    const V: [&str; 21] = [
        "a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo",
        "we", "wi", "yu", "eu", "ui", "i",
    ];
    const T: [&str; 28] = [
        "", "k", "kk", "ks", "n", "nj", "nh", "t", "l", "lk", "lm", "lb", "ls", "lt", "lp", "lh",
        "m", "p", "ps", "t", "t", "ng", "t", "t", "k", "t", "p", "t",
    ];
    let u = c as u32;
    if !(0xAC00..=0xD7A3).contains(&u) {
        return;
    }
    let s = (u - 0xAC00) as usize;
    out.push_str(L[s / 588]);
    out.push_str(V[(s % 588) / 28]);
    out.push_str(T[s % 28]);
}

/// First letter + consonant skeleton of an ASCII word, cut to 4 characters:
/// vowels, y, h, j and w drop out; c/q/k, z/s, f/p and v/b merge; doubled
/// letters collapse; n before b/p becomes m. So Байдена/Biden -> "bdn",
/// Zelenskii/Zelensky -> "slns", Müller/Mueller -> "mlr".
pub fn skeleton(ascii: &str) -> String {
    let mut out = String::new();
    skeleton_into(ascii, &mut out);
    out
}

fn skeleton_into(ascii: &str, skel: &mut String) {
    skel.clear();
    // Cyrillic х is romanized "kh" but stands for a foreign initial h
    // (Харбор/Harbor, Хельсинки/Helsinki).
    let b = ascii.as_bytes();
    let b = if b.starts_with(b"kh") { &b[1..] } else { b };
    let mut out = [0u8; SKEL_LEN];
    let mut len = 0;
    for (i, &ch) in b.iter().enumerate() {
        let next = b.get(i + 1).copied();
        let mapped = match ch {
            b'c' => {
                if matches!(next, Some(b'e' | b'i' | b'y')) {
                    b's'
                } else {
                    b'k'
                }
            }
            b'q' => b'k',
            b'z' => b's',
            b'f' => b'p',
            b'v' => b'b',
            b'x' => b'k',
            b'n' if matches!(next, Some(b'b' | b'p')) => b'm',
            _ => ch,
        };
        let vowel = matches!(mapped, b'a' | b'e' | b'i' | b'o' | b'u' | b'y');
        if i == 0 {
            // Initial vowels are one class: Egypt/Ägypten, Yemen/Йемен.
            out[0] = if vowel { b'a' } else { mapped };
            len = 1;
            continue;
        }
        if vowel || matches!(mapped, b'h' | b'j' | b'w') || !mapped.is_ascii_alphabetic() {
            continue;
        }
        if len > 0 && out[len - 1] == mapped {
            continue;
        }
        out[len] = mapped;
        len += 1;
        if len == SKEL_LEN {
            break;
        }
    }
    skel.extend(out[..len].iter().map(|&c| c as char));
}

/// Builds the profile of an item from its title and plain text.
pub fn profile(title: &str, text: &str) -> Profile {
    build(title, text, true)
}

/// The profile, or only its anchors when `lookups` is false: the word maps
/// cost an owned key per distinct word and nothing in the anchors depends on
/// them, so the signature does not pay for what only pair scoring reads.
fn build(title: &str, text: &str, lookups: bool) -> Profile {
    let (raws, buf) = scan(title, text);
    let word = |start: usize, end: usize| buf.get(start..end).unwrap_or("");
    // Lower-case forms used anywhere: a sentence-initial capitalized word is a
    // name only if its lower-case form never occurs (drops The, Le, Der...).
    let mut lower_seen: HashSet<&str, BuildHasherDefault<WordHasher>> = HashSet::default();
    for r in &raws {
        if let Raw::Word {
            start, end, script, ..
        } = r
        {
            let text = word(*start, *end);
            if is_cased(*script) && !text.chars().any(chars::is_uppercase) {
                lower_seen.insert(text);
            }
        }
    }
    let n_words = if lookups { raws.len() } else { 0 };
    let map = || WordMap::with_capacity_and_hasher(n_words, Default::default());
    let mut p = Profile {
        words: map(),
        skels: map(),
        nums: map(),
        links: WordMap::default(),
        ..Default::default()
    };
    let mut seen_anchor: HashSet<String, BuildHasherDefault<WordHasher>> = HashSet::default();
    let mut pos = 0.0f32;
    let mut push_anchor = |p: &mut Profile, a: &str, pos: f32| {
        if !seen_anchor.contains(a) {
            seen_anchor.insert(a.to_string());
            p.anchors.push(Anchor {
                anchor: a.to_string(),
                pos,
            });
        }
    };
    let mut ascii = String::new();
    let mut sk = String::new();
    let mut form = String::new();
    for r in &raws {
        match r {
            Raw::Num { value, scale, .. } => {
                let v = value.scaled(*scale).normalized();
                if let Some(s) = v.render() {
                    if !(v.is_small_int() && *scale == 0) {
                        push_anchor(&mut p, &format!("{NUM}{s}"), pos);
                    }
                    insert_first(lookups, &mut p.nums, &s, pos);
                }
                pos += 1.0;
            }
            Raw::Link(a) => {
                insert_first(lookups, &mut p.links, a, pos);
                push_anchor(&mut p, a, pos);
                pos += 1.0;
            }
            Raw::Word {
                start,
                end,
                script,
                sentence_start,
                in_title,
            } => {
                let text = word(*start, *end);
                let (mut n_chars, mut has_upper, mut has_lower) = (0usize, false, false);
                for c in text.chars() {
                    n_chars += 1;
                    has_upper |= chars::is_uppercase(c);
                    has_lower |= chars::is_lowercase(c);
                }
                let here = pos;
                pos += units_of(*script, n_chars);
                if matches!(script, Script::Han | Script::Kana | Script::Other) {
                    continue;
                }
                let first_upper = text.chars().next().is_some_and(chars::is_uppercase);
                let capitalized = is_cased(*script) && (first_upper || (has_upper && has_lower));
                // Without the lookups only capitalized words can add anything
                // (an anchor), and most words are not: they skip the
                // transliteration and skeleton.
                if !lookups && (!capitalized || n_chars < 2) {
                    continue;
                }
                transliterate_into(text, &mut ascii);
                if ascii.is_empty() {
                    continue;
                }
                skeleton_into(&ascii, &mut sk);
                // Lower-case words of a cased script are searched by skeleton
                // only (German nouns find English "percent", "bank"...);
                // acronyms are only ever written with capitals.
                if is_cased(*script) && !has_upper {
                    if sk.len() >= SKEL_MIN {
                        insert_first(lookups, &mut p.skels, &sk, here);
                    }
                    continue;
                }
                insert_first(lookups, &mut p.words, &ascii, here);
                if sk.len() >= SKEL_MIN {
                    insert_first(lookups, &mut p.skels, &sk, here);
                    // Inflected names (Bidenem, Путиным, 바이든은) still carry
                    // the name's skeleton as a prefix.
                    if (capitalized || *script == Script::Hangul) && sk.len() > SKEL_MIN {
                        insert_first(lookups, &mut p.skels, &sk[..SKEL_MIN], here);
                    }
                }
                if !capitalized || n_chars < 2 {
                    continue;
                }
                if (*sentence_start || *in_title)
                    && lower_seen.contains(text.to_lowercase().as_str())
                {
                    continue;
                }
                form.clear();
                if !has_lower {
                    if ascii.len() < 3 {
                        continue;
                    }
                    form.push_str(ACRO);
                    form.push_str(&ascii);
                } else if sk.len() >= SKEL_MIN {
                    form.push_str(NAME);
                    form.push_str(&sk);
                } else {
                    continue;
                }
                push_anchor(&mut p, &form, here);
            }
        }
    }
    p.units = pos;
    p
}

/// A translation is found through its original's name anchors, and a
/// caseless script has none: a Korean original was invisible to its
/// English translation's search, and the other way round. Korean writes a
/// foreign name phonetically, so its skeleton matches the name's
/// (오바마 ~ Obama); a name recurs with different particles attached, so its
/// stem recurs. The stems that recur, or stand in the title, stand in as
/// name anchors: index keys only, never scored (the score already looks every
/// Hangul word up). Frequent function words recur too; they become common
/// keys, which the store's probe skips once they are common in its window.
pub fn caseless_names(title: &str, text: &str) -> Vec<String> {
    // Hangul syllables (U+AC00..U+D7A3) are the only UTF-8 sequences led by
    // 0xEA..=0xED that this cares about; a byte test skips other texts cheaply.
    let maybe = |s: &str| s.bytes().any(|b| (0xEA..=0xED).contains(&b));
    if !maybe(title) && !maybe(text) {
        return Vec::new();
    }
    let (raws, buf) = scan(title, text);
    // stem -> (weight, first position)
    let mut seen: HashMap<String, (u32, usize)> = HashMap::new();
    let (mut ascii, mut sk) = (String::new(), String::new());
    for (i, r) in raws.iter().enumerate() {
        let Raw::Word {
            start,
            end,
            script: Script::Hangul,
            in_title,
            ..
        } = r
        else {
            continue;
        };
        transliterate_into(buf.get(*start..*end).unwrap_or(""), &mut ascii);
        skeleton_into(&ascii, &mut sk);
        if sk.len() < SKEL_MIN {
            continue;
        }
        // The whole skeleton (what a name anchor holds) and its first
        // SKEL_MIN letters: a particle changes what follows a short name
        // (오바마는 -> abmn), not its stem.
        let w = if *in_title { 2 } else { 1 };
        for form in [&sk[..], &sk[..SKEL_MIN]] {
            seen.entry(form.to_string()).or_insert((0, i)).0 += w;
            if sk.len() == SKEL_MIN {
                break;
            }
        }
    }
    let mut ranked: Vec<(String, (u32, usize))> =
        seen.into_iter().filter(|(_, (n, _))| *n >= 2).collect();
    // Fully ordered (a word's stem and skeleton tie on count and position):
    // the output is persisted and must not depend on hash order.
    ranked.sort_by(|a, b| {
        b.1.0
            .cmp(&a.1.0)
            .then(a.1.1.cmp(&b.1.1))
            .then(a.0.cmp(&b.0))
    });
    ranked
        .into_iter()
        .take(MAX_CASELESS_NAMES)
        .map(|(stem, _)| format!("{NAME}{stem}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nums(text: &str) -> Vec<String> {
        extract("", text)
            .into_iter()
            .filter_map(|a| a.strip_prefix(NUM).map(str::to_string))
            .collect()
    }

    #[test]
    fn digits_are_numeric() {
        for u in 0..=0x10_FFFFu32 {
            if let Some(c) = char::from_u32(u)
                && digit_value(c).is_some()
            {
                assert!(c.is_numeric(), "{u:#x}");
            }
        }
    }

    #[test]
    fn extract_is_the_profiles_anchors() {
        let (t, x) = (
            "Ministers Meet In Brussels",
            "The ministers met Olaf Scholz in Brussels. NATO said 4,500 tonnes, see example.com.",
        );
        let p: Vec<String> = profile(t, x)
            .anchors
            .into_iter()
            .map(|a| a.anchor)
            .collect();
        assert_eq!(extract(t, x), p);
    }

    #[test]
    fn link_regex_compiles() {
        assert!(link_regex().is_match("see example.com"));
    }

    #[test]
    fn separators_normalize_across_conventions() {
        let cases: &[(&str, &str)] = &[
            ("sales of 1,234.5 units", "1234.5"),
            ("Umsatz von 1.234,5 Einheiten", "1234.5"),
            ("soit 1 234,5 unités", "1234.5"),
            ("a total of 8 574 people", "8574"),
            ("a total of 8,574 people", "8574"),
            ("a total of 8574 people", "8574"),
            ("rose 1,5 procenta", "1.5"),
            ("rose 1.5 percent", "1.5"),
            ("index at 12.345,67 points", "12345.67"),
            ("ran 1,234,567 km", "1234567"),
            ("price 0.25 dollars", "0.25"),
            ("closed at 131.04 dollars", "131.04"),
            ("closed at 131.040 dollars", "131040"),
        ];
        for (text, want) in cases {
            assert_eq!(nums(text), vec![want.to_string()], "{text}");
        }
    }

    #[test]
    fn digits_in_any_script() {
        assert_eq!(nums("ａｔ １２３４５ ｙｅｎ"), vec!["12345"]);
        assert_eq!(nums("بلغ ١٢٣٤٥ دولار"), vec!["12345"]);
        assert_eq!(nums("بلغ ١٢٫٥ دولار"), vec!["12.5"]);
        assert_eq!(nums("कुल ४५६७ लोग"), vec!["4567"]);
    }

    #[test]
    fn amounts_with_scale_words_agree_across_languages() {
        let want = vec!["40000000000".to_string()];
        for text in [
            "raised 40 billion dollars",
            "a levé 40 milliards de dollars",
            "sammelte 40 Milliarden Dollar ein",
            "собрала 40 млрд долларов",
            "собрала 40 миллиардов долларов",
            "získala 40 miliard dolarů",
            "调集400亿美元",
            "400億ドルを調達",
            "400억 달러를 모았다",
            "$40bn raised",
        ] {
            assert_eq!(nums(text), want, "{text}");
        }
        assert_eq!(nums("1.2 million users"), vec!["1200000"]);
        assert_eq!(nums("1,200,000 users"), vec!["1200000"]);
        assert_eq!(nums("120万用户"), vec!["1200000"]);
        assert_eq!(nums("1,2 Millionen Nutzer"), vec!["1200000"]);
        assert_eq!(nums("1조 2000억원"), vec!["1200000000000"]);
        assert_eq!(nums("2,5 Billionen Euro"), vec!["2500000000000"]);
    }

    #[test]
    fn dates_split_into_parts_and_single_digits_drop() {
        assert_eq!(nums("on 08.02.2023 at noon"), vec!["2023"]);
        assert!(profile("", "on 08.02.2023").nums.contains_key("8"));
        assert_eq!(nums("on 2024-03-14"), vec!["2024", "14"]);
        assert_eq!(nums("for 3 days"), Vec::<String>::new());
    }

    #[test]
    fn name_skeletons_survive_transliteration() {
        let sk = |w: &str| skeleton(&transliterate(w));
        assert_eq!(sk("Байдена"), "bdn");
        assert_eq!(sk("Biden"), "bdn");
        assert_eq!(sk("Zelenskii"), sk("Zelensky"));
        assert_eq!(sk("Зеленский"), sk("Zelensky"));
        assert_eq!(sk("Müller"), sk("Mueller"));
        assert_eq!(sk("Kharkiv"), sk("Kharkov"));
        assert_eq!(sk("Харків"), sk("Kharkiv"));
        assert_eq!(sk("Τσίπρας"), sk("Tsipras"));
        assert_eq!(sk("트럼프"), sk("Trump"));
        assert_eq!(sk("바이든"), sk("Biden"));
        assert_eq!(sk("Binance"), sk("Бинанс"));
        assert_eq!(sk("Халворсен"), sk("Halvorsen"));
        assert_ne!(sk("Biden"), sk("Putin"));
    }

    #[test]
    fn names_skip_sentence_initial_common_words() {
        let a = extract(
            "Ministers Meet In Brussels",
            "The ministers met Olaf Scholz in Brussels. Markets were calm and NATO said markets rose.",
        );
        assert!(a.contains(&"p:brsl".to_string()), "{a:?}");
        assert!(a.contains(&format!("p:{}", skeleton("scholz"))), "{a:?}");
        assert!(a.contains(&"a:nato".to_string()), "{a:?}");
        // "Ministers" and "Markets" also occur in lower case: not names.
        assert!(!a.contains(&format!("p:{}", skeleton("markets"))), "{a:?}");
        assert!(
            !a.contains(&format!("p:{}", skeleton("ministers"))),
            "{a:?}"
        );
    }

    #[test]
    fn domains_and_handles() {
        let a = extract(
            "",
            "Read more at https://www.example.com/news/1 or follow @feedfold and mail desk@wire.example",
        );
        assert!(a.contains(&"d:example.com".to_string()), "{a:?}");
        assert!(a.contains(&"h:feedfold".to_string()), "{a:?}");
        assert!(a.contains(&"d:wire.example".to_string()), "{a:?}");
    }

    #[test]
    fn order_is_first_appearance_and_deterministic() {
        let t = "Acme Corp paid 4,500 tonnes to Globex. Later Acme paid 7,200 to Initech.";
        let a = extract("", t);
        assert_eq!(a, extract("", t));
        let pos = |x: &str| a.iter().position(|y| y == x);
        assert!(pos("n:4500") < pos("n:7200"));
        assert!(
            pos(&format!("p:{}", skeleton("acme"))) < pos(&format!("p:{}", skeleton("globex")))
        );
    }

    #[test]
    fn recurring_hangul_stems_stand_in_as_names() {
        // Obama, Israel and Gibbs written in Hangul with different particles.
        let ko = "오바마는 24일 이스라엘을 방문했다. 이스라엘 언론은 오바마의 기도문을 보도했다. \
                  깁스 대변인은 오바마가 확인하지 않았다고 밝혔다.";
        let names = caseless_names("오바마 이스라엘 방문", ko);
        for want in ["p:abm", "p:asrl"] {
            assert!(names.contains(&want.to_string()), "{want} in {names:?}");
        }
        // Said once and not in the title: no stand-in.
        assert!(!names.iter().any(|n| n.starts_with("p:gb")), "{names:?}");
        assert!(names.len() <= MAX_CASELESS_NAMES);
        // The English text's own name anchors are the same keys.
        let en = extract(
            "",
            "Barack Obama visited Israel. Israel's press reported on Obama's note.",
        );
        for want in ["p:abm", "p:asrl"] {
            assert!(en.contains(&want.to_string()), "{want} in {en:?}");
        }
        // Cased and other caseless scripts add nothing.
        assert!(caseless_names("Obama in Israel", "Obama visited Israel.").is_empty());
        assert!(caseless_names("", "奥巴马访问以色列。奥巴马说。").is_empty());
    }

    #[test]
    fn index_keys_skip_years_and_small_numbers() {
        let anchors: Vec<String> = [
            "n:2024",
            "n:15",
            "n:3.5",
            "p:bdn",
            "n:40000000000",
            "n:131.04",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let keys = index_keys(&anchors);
        assert_eq!(keys.len(), 3);
        assert!(keys.contains(&anchor_key("p:bdn")));
        assert!(keys.contains(&anchor_key("n:131.04")));
        assert!(keys.contains(&anchor_key("n:40000000000")));
        assert!(!keys.contains(&anchor_key("n:2024")));
        let many: Vec<String> = (0..40).map(|i| format!("n:{}", 10007 + i * 13)).collect();
        assert_eq!(index_keys(&many).len(), MAX_INDEX_KEYS);
    }
}
