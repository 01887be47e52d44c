//! Folding and tokenization shared by fingerprints, boilerplate shapes and
//! the shingle verification, so that all of them see the same tokens.

use super::chars;

/// NFKC plus lowercase.
pub fn fold_text(s: &str) -> String {
    chars::to_lowercase(&chars::nfkc(s))
}

/// Han ideographs and Japanese kana: scripts written without spaces, which
/// are tokenized as character bigrams.
pub fn is_han_kana(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x31F0..=0x31FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
        | 0xF900..=0xFAFF | 0xFF66..=0xFF9F | 0x20000..=0x2FA1F)
}

/// Calls `f` with each token of already folded text: runs of alphanumeric
/// characters, except that Han/Kana runs yield overlapping character
/// bigrams (a lone Han/Kana character is its own token).
pub fn for_each_token<'a>(folded: &'a str, mut f: impl FnMut(&'a str)) {
    let bytes = folded.as_bytes();
    let mut start: Option<usize> = None;
    let mut han_prev: Option<usize> = None; // byte offset of previous Han/Kana char
    let mut han_run = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        // Shapes, leads and sketches tokenize every paragraph; most of their
        // bytes are ASCII, which is never Han/Kana and needs no decoding.
        let b = bytes[i];
        if b.is_ascii() {
            if b.is_ascii_alphanumeric() {
                start.get_or_insert(i);
            } else if let Some(s) = start.take() {
                f(&folded[s..i]);
            }
            i += 1;
            continue;
        }
        let Some(c) = folded[i..].chars().next() else {
            break;
        };
        let end = i + c.len_utf8();
        if is_han_kana(c) {
            if let Some(s) = start.take() {
                f(&folded[s..i]);
            }
            if let Some(p) = han_prev {
                f(&folded[p..end]);
            }
            han_run += 1;
            han_prev = Some(i);
            let next_is_han = folded[end..].chars().next().is_some_and(is_han_kana);
            if !next_is_han {
                if han_run == 1 {
                    f(&folded[i..end]);
                }
                han_prev = None;
                han_run = 0;
            }
        } else if chars::is_alphanumeric(c) {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            f(&folded[s..i]);
        }
        i = end;
    }
    if let Some(s) = start {
        f(&folded[s..]);
    }
}

/// Tokens of already folded text.
pub fn tokens(folded: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for_each_token(folded, |t| out.push(t));
    out
}

/// Number of tokens of already folded text.
pub fn token_count(folded: &str) -> usize {
    let mut n = 0;
    for_each_token(folded, |_| n += 1);
    n
}

/// A cheap language guess from the dominant script, for items and feeds
/// that declare none. Only scripts that identify one language are named;
/// Latin and Cyrillic text stays unknown rather than guessed wrong.
pub fn guess_lang(text: &str) -> Option<&'static str> {
    let (mut hangul, mut kana, mut han, mut letters) = (0usize, 0usize, 0usize, 0usize);
    for c in text.chars().take(2000) {
        if !chars::is_alphabetic(c) {
            continue;
        }
        letters += 1;
        match c as u32 {
            0xAC00..=0xD7AF | 0x1100..=0x11FF | 0x3130..=0x318F => hangul += 1,
            0x3040..=0x30FF => kana += 1,
            0x4E00..=0x9FFF | 0x3400..=0x4DBF => han += 1,
            _ => {}
        }
    }
    if letters == 0 {
        return None;
    }
    if hangul * 3 > letters {
        Some("ko")
    } else if kana * 10 > letters {
        Some("ja")
    } else if han * 3 > letters {
        Some("zh")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding() {
        assert_eq!(fold_text("ＡＢＣ Straße"), "abc straße");
        assert_eq!(fold_text("Hello"), "hello");
        assert_eq!(fold_text("①"), "1");
    }

    #[test]
    fn tokenization_table() {
        let cases: &[(&str, &[&str])] = &[
            ("hello, world's 2.5%", &["hello", "world", "s", "2", "5"]),
            ("中国经济", &["中国", "国经", "经济"]),
            ("东 京", &["东", "京"]),
            ("apple中文pie", &["apple", "中文", "pie"]),
            ("서울 경제", &["서울", "경제"]),
            ("привет мир", &["привет", "мир"]),
            ("", &[]),
        ];
        for (s, want) in cases {
            assert_eq!(tokens(s), *want, "{s}");
        }
    }

    /// The tokenizer as it was before its ASCII fast path, char by char.
    fn tokens_by_char(folded: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut start: Option<usize> = None;
        let mut han_prev: Option<usize> = None;
        let mut han_run = 0usize;
        let mut iter = folded.char_indices().peekable();
        while let Some((i, c)) = iter.next() {
            if is_han_kana(c) {
                if let Some(s) = start.take() {
                    out.push(&folded[s..i]);
                }
                let end = i + c.len_utf8();
                if let Some(p) = han_prev {
                    out.push(&folded[p..end]);
                }
                han_run += 1;
                han_prev = Some(i);
                if !iter.peek().is_some_and(|&(_, n)| is_han_kana(n)) {
                    if han_run == 1 {
                        out.push(&folded[i..end]);
                    }
                    han_prev = None;
                    han_run = 0;
                }
            } else if c.is_alphanumeric() {
                start.get_or_insert(i);
            } else if let Some(s) = start.take() {
                out.push(&folded[s..i]);
            }
        }
        if let Some(s) = start {
            out.push(&folded[s..]);
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn tokens_agree_with_char_by_char(s in "[a-z0-9 .,'中国经济东京かカ서울éßж①，。]{0,40}") {
            proptest::prop_assert_eq!(tokens(&s), tokens_by_char(&s));
        }

        #[test]
        fn tokens_of_any_text_agree(s in proptest::prelude::any::<String>()) {
            proptest::prop_assert_eq!(tokens(&s), tokens_by_char(&s));
        }
    }

    #[test]
    fn lang_guess() {
        assert_eq!(guess_lang("서울 경제가 성장했다"), Some("ko"));
        assert_eq!(guess_lang("中国经济增长放缓"), Some("zh"));
        assert_eq!(guess_lang("東京の株価は上がった"), Some("ja"));
        assert_eq!(guess_lang("plain english"), None);
    }
}
