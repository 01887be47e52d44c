//! Unicode character classes by table lookup. Folding, tokens, shapes and
//! anchors ask "alphabetic? numeric? upper case? changed by lowercasing or
//! NFKC?" of every character, and for non-ASCII text (Cyrillic, Hangul, Han)
//! the standard library and the normalizer answer from compressed tables that
//! cost a search per call. This table is filled from those same functions,
//! once, so its answers are theirs by construction: a faster lookup, never a
//! different class, and so never a different fingerprint.

use std::borrow::Cow;
use std::sync::LazyLock;

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

const ALPHABETIC: u8 = 1;
const NUMERIC: u8 = 2;
const UPPERCASE: u8 = 4;
const LOWERCASE: u8 = 8;
/// `char::to_lowercase` yields the character itself.
const LOWER_SAME: u8 = 16;
/// A starter (combining class 0) that NFKC's quick check accepts: a string of
/// such characters and ASCII is NFKC as it stands.
const NFKC_STARTER: u8 = 32;

fn classify(c: char) -> u8 {
    let mut f = 0;
    if c.is_alphabetic() {
        f |= ALPHABETIC;
    }
    if c.is_numeric() {
        f |= NUMERIC;
    }
    if c.is_uppercase() {
        f |= UPPERCASE;
    }
    if c.is_lowercase() {
        f |= LOWERCASE;
    }
    if c.to_lowercase().eq([c]) {
        f |= LOWER_SAME;
    }
    if canonical_combining_class(c) == 0 && is_nfkc_quick([c].into_iter()) == IsNormalized::Yes {
        f |= NFKC_STARTER;
    }
    f
}

/// Classes of the Basic Multilingual Plane, where nearly all text lives.
static BMP: LazyLock<Box<[u8]>> = LazyLock::new(|| {
    (0..0x1_0000u32)
        .map(|u| char::from_u32(u).map_or(0, classify))
        .collect()
});

#[inline]
fn class(c: char) -> u8 {
    match BMP.get(c as usize) {
        Some(&f) => f,
        None => classify(c),
    }
}

/// Same as `char::is_alphabetic`.
#[inline]
pub fn is_alphabetic(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else {
        class(c) & ALPHABETIC != 0
    }
}

/// Same as `char::is_numeric`.
#[inline]
pub fn is_numeric(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_digit()
    } else {
        class(c) & NUMERIC != 0
    }
}

/// Same as `char::is_alphanumeric`.
#[inline]
pub fn is_alphanumeric(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else {
        class(c) & (ALPHABETIC | NUMERIC) != 0
    }
}

/// Same as `char::is_uppercase`.
#[inline]
pub fn is_uppercase(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_uppercase()
    } else {
        class(c) & UPPERCASE != 0
    }
}

/// Same as `char::is_lowercase`.
#[inline]
pub fn is_lowercase(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_lowercase()
    } else {
        class(c) & LOWERCASE != 0
    }
}

/// True when `unicode_normalization::is_nfkc_quick` would answer Yes
/// because every character is ASCII or an accepted starter (its check then
/// never looks at combining order). False means "ask the normalizer".
pub fn is_nfkc_starters(s: &str) -> bool {
    s.is_ascii()
        || s.chars()
            .all(|c| c.is_ascii() || class(c) & NFKC_STARTER != 0)
}

/// A normalization boundary: NFKC leaves the character as it is and nothing
/// before it can combine with it, so the text on either side normalizes
/// independently.
#[inline]
fn is_nfkc_stable(c: char) -> bool {
    c.is_ascii() || class(c) & NFKC_STARTER != 0
}

/// Same as `s.nfkc().collect::<String>()`. Chinese full-width punctuation or
/// a stray ellipsis would send a whole paragraph through the normalizer, so
/// only the stretch from the boundary before each changed character to the
/// boundary after it goes there, and the rest is copied as it is.
pub fn nfkc(s: &str) -> Cow<'_, str> {
    if is_nfkc_starters(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    // `s[..copied]` is in `out`; `boundary` is the start of the last stable
    // character seen, where the pending stretch has to begin.
    let (mut copied, mut boundary) = (0, 0);
    let mut iter = s.char_indices();
    while let Some((i, c)) = iter.next() {
        if is_nfkc_stable(c) {
            boundary = i;
            continue;
        }
        let mut end = s.len();
        for (j, d) in iter.by_ref() {
            if is_nfkc_stable(d) {
                end = j;
                break;
            }
        }
        out.push_str(&s[copied..boundary]);
        out.extend(s[boundary..end].nfkc());
        (copied, boundary) = (end, end);
    }
    out.push_str(&s[copied..]);
    Cow::Owned(out)
}

/// Same as `char::to_lowercase`, as one call per character.
#[inline]
pub fn push_lowercase(c: char, out: &mut impl FnMut(char)) {
    if c.is_ascii() {
        out(c.to_ascii_lowercase());
    } else if class(c) & LOWER_SAME != 0 {
        out(c);
    } else {
        c.to_lowercase().for_each(out);
    }
}

/// Same as `str::to_lowercase`, which maps character by character except
/// for capital sigma, whose form depends on its neighbours: text with one
/// goes to std whole.
pub fn to_lowercase(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    // `s[..copied]` is in `out`. Characters that lowercasing keeps (caseless
    // scripts, lower-case letters, spaces) are copied as whole runs, not
    // pushed one by one.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() {
            if b.is_ascii_uppercase() {
                out.push_str(&s[copied..i]);
                out.push(b.to_ascii_lowercase() as char);
                copied = i + 1;
            }
            i += 1;
            continue;
        }
        let Some(c) = s[i..].chars().next() else {
            break;
        };
        let end = i + c.len_utf8();
        if class(c) & LOWER_SAME == 0 {
            if c == 'Σ' {
                return s.to_lowercase();
            }
            out.push_str(&s[copied..i]);
            out.extend(c.to_lowercase());
            copied = end;
        }
        i = end;
    }
    out.push_str(&s[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every scalar value, not a sample: the table must be the std answer.
    #[test]
    fn agrees_with_std_everywhere() {
        for u in 0..=0x10_FFFFu32 {
            let Some(c) = char::from_u32(u) else { continue };
            assert_eq!(is_alphabetic(c), c.is_alphabetic(), "{u:#x}");
            assert_eq!(is_numeric(c), c.is_numeric(), "{u:#x}");
            assert_eq!(is_alphanumeric(c), c.is_alphanumeric(), "{u:#x}");
            assert_eq!(is_uppercase(c), c.is_uppercase(), "{u:#x}");
            assert_eq!(is_lowercase(c), c.is_lowercase(), "{u:#x}");
            let mut lower = String::new();
            push_lowercase(c, &mut |l| lower.push(l));
            assert_eq!(lower, c.to_lowercase().collect::<String>(), "{u:#x}");
            let one = c.to_string();
            assert_eq!(to_lowercase(&one), one.to_lowercase(), "{u:#x}");
            if is_nfkc_starters(&one) {
                assert_eq!(is_nfkc_quick(one.chars()), IsNormalized::Yes, "{u:#x}");
            }
        }
    }

    /// Every scalar value between characters that compose, decompose or
    /// reorder with their neighbours (Latin marks, Hangul jamo, an Oriya
    /// two-part vowel, full-width forms), so that each is tried both as a
    /// boundary and inside a normalized stretch.
    #[test]
    fn nfkc_agrees_with_the_normalizer_everywhere() {
        let contexts: &[(&str, &str)] = &[
            ("", ""),
            ("e", "\u{301}"),
            ("a\u{308}", "\u{323}b"),
            ("\u{1100}", "\u{1161}"),
            ("\u{AC00}", "\u{11A8}"),
            ("\u{0B47}", "\u{0B3E}"),
            ("\u{FF21}", "\u{3099}x"),
            ("\u{301}", "\u{2026}"),
        ];
        let mut text = String::new();
        for u in 0..=0x10_FFFFu32 {
            let Some(c) = char::from_u32(u) else { continue };
            text.clear();
            for (before, after) in contexts {
                text.push_str(before);
                text.push(c);
                text.push_str(after);
                text.push(' ');
            }
            let want: String = text.nfkc().collect();
            assert_eq!(nfkc(&text), want, "{u:#x}");
        }
    }

    #[test]
    fn lowercase_in_context() {
        for s in [
            "ΟΔΟΣ ΣΑΣ Σ.Σ ΣΣ 'Σ' aΣ Σa",
            "İstanbul ǅ Ⅻ ＡＢＣ Straße",
            "Москва ПУТИН 서울 中国 ΑΘΗΝΑ",
            "plain ascii TEXT",
            "",
        ] {
            assert_eq!(to_lowercase(s), s.to_lowercase(), "{s}");
        }
    }

    proptest::proptest! {
        /// ASCII runs mixed with cased, caseless and special characters.
        #[test]
        fn lowercase_of_mixed_text(s in "[A-Za-z0-9 .,ÄäÖßΣσςΑИиЖİǅ서中，]{0,40}") {
            proptest::prop_assert_eq!(to_lowercase(&s), s.to_lowercase());
        }

        #[test]
        fn nfkc_of_mixed_text(s in "[a-z \u{300}-\u{36f}\u{1100}-\u{1175}\u{11a8}-\u{11c2}가각ÅéＡ①…，\u{0b47}\u{0b3e}\u{3099}かｶﾞ]{0,40}") {
            let want: String = s.nfkc().collect();
            proptest::prop_assert_eq!(nfkc(&s), want);
        }

        #[test]
        fn nfkc_of_any_text(s in proptest::prelude::any::<String>()) {
            let want: String = s.nfkc().collect();
            proptest::prop_assert_eq!(nfkc(&s), want);
        }

        #[test]
        fn lowercase_of_any_text(s in proptest::prelude::any::<String>()) {
            proptest::prop_assert_eq!(to_lowercase(&s), s.to_lowercase());
        }
    }
}
