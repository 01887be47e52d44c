//! Decoding feed bytes to UTF-8 before parsing: BOM, then HTTP charset, then
//! the XML declaration, then a guess. Lossy: invalid sequences become U+FFFD.
//!
//! Why we do this ourselves instead of letting feed-rs decode: feed-rs (through
//! quick-xml) only honours the XML declaration, fails the whole feed on one bad
//! byte, reports an HTTP-only charset as "no root element", and panics when a
//! non-UTF-8 declaration ends past byte 64. Handing it UTF-8 whose declaration
//! says UTF-8 avoids all of these (research/deps.md §3).

use std::borrow::Cow;
use std::sync::OnceLock;

use encoding_rs::{Encoding, REPLACEMENT, UTF_8, UTF_16BE, UTF_16LE};
use regex::Regex;
use regex::bytes::Regex as BytesRegex;

/// How far into the body we look for an XML declaration. Real declarations
/// are short; a bound keeps a hostile body from costing a full regex scan.
const DECL_SCAN_LIMIT: usize = 1024;

/// How many bytes chardetng sees. Enough for a confident guess on any feed,
/// bounded so a 16 MiB body does not cost a full detector pass.
const GUESS_SCAN_LIMIT: usize = 1 << 20;

/// Decodes `bytes` to UTF-8 text whose XML declaration (if any) says UTF-8.
///
/// `http_charset` is the `charset` parameter of the HTTP `Content-Type`
/// (see [`charset_of_content_type`]). Leading whitespace and a decoded BOM
/// are dropped so the declaration, when present, is the first thing in the
/// text, as XML requires.
pub fn decode(bytes: &[u8], http_charset: Option<&str>) -> String {
    let (encoding, body) = sniff_with_body(bytes, http_charset);
    let (text, _had_errors) = encoding.decode_without_bom_handling(body);
    match normalize_declaration(&text) {
        Cow::Borrowed(s) if s.len() == text.len() => text.into_owned(),
        other => other.into_owned(),
    }
}

/// The encoding [`decode`] would use for `bytes`. Exposed for diagnostics
/// (`feedfold inspect`) and tests.
pub fn sniff(bytes: &[u8], http_charset: Option<&str>) -> &'static Encoding {
    sniff_with_body(bytes, http_charset).0
}

/// The `charset` parameter of a `Content-Type` header value, unquoted and
/// trimmed, e.g. `Some("EUC-KR")` for `text/xml; Charset="EUC-KR"`.
pub fn charset_of_content_type(ct: &str) -> Option<&str> {
    ct.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value)
            .trim();
        (!value.is_empty()).then_some(value)
    })
}

/// Drops leading whitespace / U+FEFF and rewrites the XML declaration's
/// encoding to UTF-8, so that feed-rs never switches decoders (which is what
/// panics past byte 64 and what mis-decodes already-decoded text).
/// Returns the input unchanged (borrowed) when nothing needs rewriting.
pub(crate) fn normalize_declaration(text: &str) -> Cow<'_, str> {
    let trimmed = text.trim_start_matches(|c: char| c == '\u{feff}' || c.is_whitespace());
    if !trimmed.starts_with("<?xml") {
        return Cow::Borrowed(trimmed);
    }
    // Byte search is safe: "?>" is ASCII, so `end + 2` is a char boundary.
    let head = &trimmed.as_bytes()[..trimmed.len().min(DECL_SCAN_LIMIT)];
    let Some(end) = head.windows(2).position(|w| w == b"?>") else {
        return Cow::Borrowed(trimmed);
    };
    let decl = &trimmed[..end + 2];
    let rest = &trimmed[end + 2..];
    let re = encoding_attr_re();
    if !re.is_match(decl) {
        return Cow::Borrowed(trimmed);
    }
    let new_decl = re.replace(decl, "encoding=\"UTF-8\"");
    if new_decl == decl {
        return Cow::Borrowed(trimmed);
    }
    let mut out = String::with_capacity(trimmed.len());
    out.push_str(&new_decl);
    out.push_str(rest);
    Cow::Owned(out)
}

fn encoding_attr_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"encoding\s*=\s*(?:"[^"]*"|'[^']*')"#).expect("static regex is valid")
    })
}

fn xml_decl_encoding_re() -> &'static BytesRegex {
    static RE: OnceLock<BytesRegex> = OnceLock::new();
    RE.get_or_init(|| {
        BytesRegex::new(
            r#"(?-u)\A[\x20\t\r\n]*<\?xml[\x20\t\r\n][^>]*?encoding[\x20\t\r\n]*=[\x20\t\r\n]*["'][\x20\t]*([A-Za-z0-9._:\-]+)[\x20\t]*["']"#,
        )
        .expect("static regex is valid")
    })
}

/// The encoding named in the XML declaration at the start of `bytes`, read as
/// ASCII (every charset we support is ASCII-compatible here, UTF-16 aside,
/// which has its own BOM / byte-pattern sniffing).
fn xml_declared(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(DECL_SCAN_LIMIT)];
    let caps = xml_decl_encoding_re().captures(head)?;
    label_to_encoding(caps.get(1)?.as_bytes())
}

/// WHATWG label lookup, minus the labels that would make us throw the body
/// away (the "replacement" encoding turns everything into U+FFFD).
fn label_to_encoding(label: &[u8]) -> Option<&'static Encoding> {
    Encoding::for_label(label).filter(|e| *e != REPLACEMENT)
}

fn is_utf16(e: &'static Encoding) -> bool {
    e == UTF_16LE || e == UTF_16BE
}

/// BOM-less UTF-16 recognised by its byte pattern (XML spec appendix F):
/// `<` followed by an ASCII character, each padded with a zero byte.
fn utf16_pattern(bytes: &[u8]) -> Option<&'static Encoding> {
    match bytes {
        [0x3C, 0x00, c, 0x00, ..] if *c != 0 && c.is_ascii() => Some(UTF_16LE),
        [0x00, 0x3C, 0x00, c, ..] if *c != 0 && c.is_ascii() => Some(UTF_16BE),
        _ => None,
    }
}

/// UTF-16 byte order from the NUL positions in the first bytes: ASCII
/// characters are `c 0` in LE and `0 c` in BE. `None` without NULs.
fn utf16_by_nuls(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(64)];
    let (mut even, mut odd) = (0, 0);
    for (i, b) in head.iter().enumerate() {
        if *b == 0 {
            if i % 2 == 0 { even += 1 } else { odd += 1 }
        }
    }
    match (even, odd) {
        (0, 0) => None,
        (e, o) if e > o => Some(UTF_16BE),
        _ => Some(UTF_16LE),
    }
}

fn sniff_with_body<'a>(
    bytes: &'a [u8],
    http_charset: Option<&str>,
) -> (&'static Encoding, &'a [u8]) {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        return (encoding, &bytes[bom_len..]);
    }
    if let Some(encoding) = utf16_pattern(bytes) {
        return (encoding, bytes);
    }

    let valid_utf8 = std::str::from_utf8(bytes).is_ok();
    let has_non_ascii = || !bytes.is_ascii();

    // Declarations in precedence order. A UTF-16 label is believed only when
    // the body has NUL bytes (ASCII-compatible XML never does), with the byte
    // order read from where the NULs sit; otherwise it is a stale label on
    // an ASCII-compatible body and is ignored.
    let declared: Vec<&'static Encoding> = [
        http_charset.and_then(|c| label_to_encoding(c.trim().as_bytes())),
        xml_declared(bytes),
    ]
    .into_iter()
    .flatten()
    .filter_map(|e| {
        if is_utf16(e) {
            utf16_by_nuls(bytes)
        } else {
            Some(e)
        }
    })
    .collect();

    if let Some(&first) = declared.first() {
        if first == UTF_8 {
            // Declared UTF-8 but the bytes are not: a lower-precedence legacy
            // declaration (e.g. a wrong HTTP default over a correct prolog)
            // is the better bet. With none, decode lossily as UTF-8: one stray
            // byte costs one U+FFFD, not the feed.
            if let Some(&legacy) = declared.iter().find(|e| **e != UTF_8)
                && !valid_utf8
            {
                return (legacy, bytes);
            }
            return (UTF_8, bytes);
        }
        // A legacy declaration over bytes that are valid UTF-8 with non-ASCII
        // in them is almost always a stale template: real legacy text is very
        // rarely valid UTF-8 by accident.
        if valid_utf8 && has_non_ascii() {
            return (UTF_8, bytes);
        }
        return (first, bytes);
    }

    if valid_utf8 {
        return (UTF_8, bytes);
    }
    (guess(bytes), bytes)
}

/// chardetng's guess for undeclared, non-UTF-8 bytes.
fn guess(bytes: &[u8]) -> &'static Encoding {
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    let sample = &bytes[..bytes.len().min(GUESS_SCAN_LIMIT)];
    detector.feed(sample, sample.len() == bytes.len());
    detector.guess(None, chardetng::Utf8Detection::Allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(encoding: &'static Encoding, text: &str) -> Vec<u8> {
        if encoding == UTF_16LE {
            return text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        }
        if encoding == UTF_16BE {
            return text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        }
        let (bytes, used, unmappable) = encoding.encode(text);
        assert_eq!(used, encoding, "encoder switched encodings");
        assert!(
            !unmappable,
            "sample text not representable in {}",
            encoding.name()
        );
        bytes.into_owned()
    }

    fn rss(decl: Option<&str>, title: &str) -> String {
        let prolog = match decl {
            Some(label) => format!("<?xml version=\"1.0\" encoding=\"{label}\"?>\n"),
            None => String::new(),
        };
        format!(
            "{prolog}<rss version=\"2.0\"><channel><title>{title}</title>\
             <item><title>{title}</title><guid>a1</guid></item></channel></rss>"
        )
    }

    struct Case {
        name: &'static str,
        encoding: &'static Encoding,
        /// Label used in the declaration / header (may be an alias).
        label: &'static str,
        sample: &'static str,
    }

    fn cases() -> Vec<Case> {
        use encoding_rs::*;
        let c = |name, encoding, label, sample| Case {
            name,
            encoding,
            label,
            sample,
        };
        vec![
            c(
                "euc-kr",
                EUC_KR,
                "EUC-KR",
                "서울 시장이 새 예산안을 발표했다 경제 성장 전망",
            ),
            c(
                "shift_jis",
                SHIFT_JIS,
                "Shift_JIS",
                "東京の株式市場は今日も上昇した 日本経済",
            ),
            c(
                "euc-jp",
                EUC_JP,
                "EUC-JP",
                "大阪で新しい橋の建設が始まった 工事",
            ),
            c("gbk", GBK, "GBK", "北京市政府今天发布了新的经济政策 市场"),
            c(
                "gb2312 alias",
                GBK,
                "gb2312",
                "上海证券交易所今日收盘上涨 投资者",
            ),
            c("gb18030", GB18030, "GB18030", "广州的天气今天非常炎热 气温"),
            c("big5", BIG5, "Big5", "台北市政府今天宣布新的交通計畫 捷運"),
            c(
                "windows-1250",
                WINDOWS_1250,
                "windows-1250",
                "Příliš žluťoučký kůň úpěl ďábelské ódy",
            ),
            c(
                "windows-1251",
                WINDOWS_1251,
                "windows-1251",
                "Городской совет утвердил новый бюджет на год",
            ),
            c(
                "windows-1252",
                WINDOWS_1252,
                "windows-1252",
                "Café „Münster“ – Straße €5 für Grüße",
            ),
            c(
                "iso-8859-1 label means 1252",
                WINDOWS_1252,
                "ISO-8859-1",
                "Über die Brücke gehen Bürger täglich",
            ),
            c(
                "windows-1253",
                WINDOWS_1253,
                "windows-1253",
                "Η κυβέρνηση ανακοίνωσε νέα μέτρα σήμερα",
            ),
            c(
                "windows-1254",
                WINDOWS_1254,
                "windows-1254",
                "İstanbul'da yağmur şiddetli yağdı çünkü",
            ),
            c(
                "windows-1255",
                WINDOWS_1255,
                "windows-1255",
                "הממשלה הודיעה היום על תקציב חדש",
            ),
            c(
                "windows-1256",
                WINDOWS_1256,
                "windows-1256",
                "أعلنت الحكومة اليوم عن ميزانية جديدة",
            ),
            c(
                "windows-1257",
                WINDOWS_1257,
                "windows-1257",
                "Vyriausybė šiandien paskelbė naują biudžetą",
            ),
            c(
                "windows-1258",
                WINDOWS_1258,
                "windows-1258",
                "Cà phê đá và bánh",
            ),
            c(
                "iso-8859-2",
                ISO_8859_2,
                "ISO-8859-2",
                "Zażółć gęślą jaźń w Łodzi",
            ),
            c(
                "iso-8859-5",
                ISO_8859_5,
                "ISO-8859-5",
                "Москва объявила о новых мерах",
            ),
            c(
                "iso-8859-7",
                ISO_8859_7,
                "ISO-8859-7",
                "Αθήνα σήμερα καιρός ζεστός",
            ),
            c(
                "iso-8859-15",
                ISO_8859_15,
                "ISO-8859-15",
                "Le prix est de 5 € à Paris, où il pleut",
            ),
            c(
                "koi8-r",
                KOI8_R,
                "KOI8-R",
                "Правительство объявило о новых налогах",
            ),
            c("koi8-u", KOI8_U, "KOI8-U", "Київ оголосив про нові заходи"),
        ]
    }

    #[test]
    fn declared_in_xml_prolog_only() {
        for case in cases() {
            let xml = rss(Some(case.label), case.sample);
            let bytes = encode(case.encoding, &xml);
            let out = decode(&bytes, None);
            assert!(out.contains(case.sample), "{}: got {out:?}", case.name);
            assert!(!out.contains('\u{fffd}'), "{}", case.name);
            assert!(
                out.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
                "{}",
                case.name
            );
            assert_eq!(sniff(&bytes, None), case.encoding, "{}", case.name);
        }
    }

    #[test]
    fn declared_in_http_header_only() {
        for case in cases() {
            let xml = rss(None, case.sample);
            let bytes = encode(case.encoding, &xml);
            let header = format!("application/rss+xml; charset={}", case.label);
            let charset = charset_of_content_type(&header);
            let out = decode(&bytes, charset);
            assert!(out.contains(case.sample), "{}: got {out:?}", case.name);
            assert!(!out.contains('\u{fffd}'), "{}", case.name);
        }
    }

    #[test]
    fn http_header_wins_over_prolog() {
        // The server knows it transcoded; the prolog is stale.
        let xml = rss(Some("ISO-8859-1"), "Правительство объявило");
        let bytes = encode(encoding_rs::KOI8_R, &xml);
        let out = decode(&bytes, Some("koi8-r"));
        assert!(out.contains("Правительство объявило"), "{out}");
    }

    #[test]
    fn utf16_with_bom() {
        for (encoding, bom) in [(UTF_16LE, &[0xFF, 0xFE][..]), (UTF_16BE, &[0xFE, 0xFF][..])] {
            let xml = rss(Some("UTF-16"), "Grüße aus 서울");
            let mut bytes = bom.to_vec();
            bytes.extend(encode(encoding, &xml));
            let out = decode(&bytes, None);
            assert!(
                out.contains("Grüße aus 서울"),
                "{}: {out:?}",
                encoding.name()
            );
            assert!(
                out.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
                "{out:?}"
            );
        }
    }

    #[test]
    fn utf16_without_bom_by_pattern() {
        for xml in [rss(Some("UTF-16"), "Grüße"), rss(None, "Grüße")] {
            let out = decode(&encode(UTF_16LE, &xml), None);
            assert!(out.contains("Grüße"), "{out:?}");
            let out = decode(&encode(UTF_16BE, &xml), None);
            assert!(out.contains("Grüße"), "{out:?}");
        }
    }

    #[test]
    fn utf16_declared_in_http_without_bom_or_pattern() {
        // Leading whitespace defeats the `<` pattern; the label plus NULs decide.
        let xml = format!("\n {}", rss(None, "Grüße"));
        for (encoding, label) in [
            (UTF_16LE, "utf-16le"),
            (UTF_16BE, "UTF-16BE"),
            (UTF_16LE, "utf-16"),
        ] {
            let out = decode(&encode(encoding, &xml), Some(label));
            assert!(out.contains("Grüße"), "{label}: {out:?}");
        }
        let out = decode(&encode(UTF_16BE, &xml), Some("utf-16"));
        assert!(
            out.contains("Grüße"),
            "BE under a plain utf-16 label: {out:?}"
        );
    }

    #[test]
    fn utf8_bom_is_dropped() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend(rss(Some("UTF-8"), "Grüße").as_bytes());
        let out = decode(&bytes, Some("iso-8859-1"));
        assert!(out.starts_with("<?xml"));
        assert!(out.contains("Grüße"));
    }

    #[test]
    fn euc_kr_in_prolog_with_hangul_inside_first_64_bytes() {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"EUC-KR\"?><!-- 한국 뉴스 -->{}",
            &rss(None, "한국 뉴스 속보")
        );
        let bytes = encode(encoding_rs::EUC_KR, &xml);
        let out = decode(&bytes, None);
        assert!(out.contains("<!-- 한국 뉴스 -->"));
        assert!(out.contains("한국 뉴스 속보"));
        assert!(!out.contains('\u{fffd}'));
    }

    #[test]
    fn shift_jis_declared_only_in_http_header() {
        let xml = rss(None, "東京の株式市場");
        let bytes = encode(encoding_rs::SHIFT_JIS, &xml);
        let out = decode(
            &bytes,
            charset_of_content_type("text/xml;charset=\"Shift_JIS\""),
        );
        assert!(out.contains("東京の株式市場"), "{out}");
    }

    #[test]
    fn stray_latin1_byte_in_utf8_feed_becomes_replacement_char() {
        let mut bytes = rss(Some("UTF-8"), "Grüße").into_bytes();
        let pos = bytes
            .windows(5)
            .position(|w| w == b"Gr\xc3\xbc\xc3")
            .unwrap();
        bytes.splice(pos..pos, [b'C', b'a', b'f', 0xE9, b' ']);
        let out = decode(&bytes, None);
        assert!(out.contains("Caf\u{fffd} Grüße"), "{out}");
        assert_eq!(sniff(&bytes, None), UTF_8);
    }

    #[test]
    fn long_prolog_past_byte_64_is_rewritten() {
        let xml = format!(
            "{}<?xml version=\"1.0\"    standalone=\"yes\"   encoding=\"windows-1252\"?>{}",
            " ".repeat(70),
            rss(None, "Café")
        );
        let bytes = encode(encoding_rs::WINDOWS_1252, &xml);
        let out = decode(&bytes, None);
        assert!(
            out.starts_with("<?xml version=\"1.0\"    standalone=\"yes\"   encoding=\"UTF-8\"?>")
        );
        assert!(out.contains("Café"));
    }

    #[test]
    fn utf8_body_with_stale_legacy_declaration_stays_utf8() {
        for label in ["EUC-KR", "windows-1252", "Shift_JIS"] {
            let bytes = rss(Some(label), "서울 Grüße").into_bytes();
            assert!(decode(&bytes, None).contains("서울 Grüße"), "{label}");
            assert!(
                decode(&bytes, Some(label)).contains("서울 Grüße"),
                "{label}"
            );
        }
    }

    #[test]
    fn ascii_only_body_trusts_the_declaration() {
        // No non-ASCII: the guard must not fire, but the output is the same anyway.
        let bytes = rss(Some("KOI8-R"), "plain").into_bytes();
        assert_eq!(sniff(&bytes, None), encoding_rs::KOI8_R);
    }

    #[test]
    fn wrong_utf8_http_default_falls_back_to_prolog() {
        let xml = rss(Some("windows-1251"), "Городской совет");
        let bytes = encode(encoding_rs::WINDOWS_1251, &xml);
        let out = decode(&bytes, Some("utf-8"));
        assert!(out.contains("Городской совет"), "{out}");
    }

    #[test]
    fn bogus_utf16_declaration_on_ascii_body_is_ignored() {
        let bytes = rss(Some("UTF-16"), "Grüße").into_bytes();
        assert!(decode(&bytes, None).contains("Grüße"));
    }

    #[test]
    fn undeclared_legacy_bytes_are_guessed() {
        use encoding_rs::*;
        let long = |s: &str| std::iter::repeat_n(s, 20).collect::<Vec<_>>().join(" ");
        for (encoding, sample) in [
            (
                EUC_KR,
                long("서울에서 열린 회의에서 정부는 새로운 경제 정책을 발표했다."),
            ),
            (
                WINDOWS_1251,
                long("Городской совет утвердил новый бюджет на следующий год."),
            ),
            (
                WINDOWS_1252,
                long("Die Bürger in München begrüßen die Änderung für Straßen."),
            ),
            (SHIFT_JIS, long("東京の株式市場は今日も上昇した。")),
        ] {
            let xml = rss(None, &sample);
            let bytes = encode(encoding, &xml);
            let out = decode(&bytes, None);
            assert!(out.contains(&sample), "{}: {out:?}", encoding.name());
        }
    }

    #[test]
    fn content_type_charset_parsing() {
        let table: &[(&str, Option<&str>)] = &[
            ("text/xml; charset=EUC-KR", Some("EUC-KR")),
            ("text/xml;Charset=\"utf-8\"", Some("utf-8")),
            (
                "application/rss+xml; type=x; charset='koi8-r' ",
                Some("koi8-r"),
            ),
            ("text/xml", None),
            ("text/xml; charset=", None),
            ("text/xml; charset=\"\"", None),
            ("text/xml; foo=charset", None),
        ];
        for (ct, want) in table {
            assert_eq!(charset_of_content_type(ct), *want, "{ct}");
        }
    }

    #[test]
    fn unknown_or_replacement_labels_are_ignored() {
        let bytes = rss(Some("x-no-such-charset"), "Grüße").into_bytes();
        assert!(decode(&bytes, Some("iso-2022-kr")).contains("Grüße"));
    }

    #[test]
    fn json_and_garbage_pass_through() {
        assert_eq!(decode(b"  {\"a\": \"\xc3\xa9\"}", None), "{\"a\": \"é\"}");
        assert_eq!(decode(b"", None), "");
        let out = decode(&[0xff, 0xfe, 0x00], None);
        assert!(out.chars().all(|c| c == '\u{fffd}' || c == '\0'), "{out:?}");
    }

    #[test]
    fn declaration_normalization() {
        let table: &[(&str, &str)] = &[
            (
                "<?xml version='1.0' encoding='EUC-KR'?><rss/>",
                "<?xml version='1.0' encoding=\"UTF-8\"?><rss/>",
            ),
            (
                "<?xml version=\"1.0\"?><rss/>",
                "<?xml version=\"1.0\"?><rss/>",
            ),
            ("\u{feff}\n <rss/>", "<rss/>"),
            ("<rss/>", "<rss/>"),
            (
                "<?xml version=\"1.0\" encoding = \"utf-8\" ?><a/>",
                "<?xml version=\"1.0\" encoding=\"UTF-8\" ?><a/>",
            ),
        ];
        for (input, want) in table {
            assert_eq!(normalize_declaration(input), *want, "{input}");
        }
    }
}
