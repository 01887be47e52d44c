//! Small text repairs around feed-rs: HTML titles to plain text, bare `&`
//! escaping for the retry, and plain text to HTML.

/// A title as plain text: HTML entities decoded (`&eacute;`, `&nbsp;` stay
/// literal in feed-rs output), tags stripped, whitespace collapsed.
///
/// Titles are treated as HTML whatever their declared type, because feeds
/// routinely double-escape (`&amp;eacute;`) or put markup in RSS titles.
pub fn plain_title(raw: &str) -> String {
    if !raw.contains(['&', '<']) {
        return collapse_whitespace(raw);
    }
    // The same HTML-to-text pass as article bodies (script/style dropped,
    // entities decoded, blocks separated), flattened to one line.
    collapse_whitespace(&crate::normalize::html::html_to_text(raw))
}

/// Collapses every run of whitespace (including NBSP) to one space, trimmed.
pub fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(|c: char| c.is_whitespace() || c == '\u{a0}') {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Escapes text so an HTML-to-text pass gives it back unchanged: plain-text
/// bodies (JSON Feed `content_text`, Atom `type="text"`) travel in the
/// `*_html` fields.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes every `&` that does not start a well-formed reference (`&name;`,
/// `&#123;`, `&#x1F;`), outside CDATA sections and comments, where `&` is
/// literal and must stay untouched. `None` when there is nothing to escape,
/// so the caller knows a retry would be pointless.
pub fn escape_bare_ampersands(xml: &str) -> Option<String> {
    let bytes = xml.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `xml` already copied into `out`
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' if bytes[i..].starts_with(b"<![CDATA[") => {
                i = find_from(bytes, i + 9, b"]]>").map_or(bytes.len(), |e| e + 3);
            }
            b'<' if bytes[i..].starts_with(b"<!--") => {
                i = find_from(bytes, i + 4, b"-->").map_or(bytes.len(), |e| e + 3);
            }
            b'&' => {
                if !is_reference(&bytes[i + 1..]) {
                    let o = out.get_or_insert_with(|| String::with_capacity(xml.len() + 64));
                    o.push_str(&xml[copied..i]);
                    o.push_str("&amp;");
                    copied = i + 1;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    out.map(|mut o| {
        o.push_str(&xml[copied..]);
        o
    })
}

fn find_from(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Whether `rest` (the bytes after an `&`) is a complete XML reference.
fn is_reference(rest: &[u8]) -> bool {
    let Some(semi) = rest.iter().take(64).position(|&b| b == b';') else {
        return false;
    };
    let body = &rest[..semi];
    match body {
        [b'#', b'x' | b'X', hex @ ..] => {
            !hex.is_empty() && hex.iter().all(|b| b.is_ascii_hexdigit())
        }
        [b'#', dec @ ..] => !dec.is_empty() && dec.iter().all(|b| b.is_ascii_digit()),
        [first, tail @ ..] => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && tail
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        }
        [] => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        let table: &[(&str, &str)] = &[
            ("Caf&eacute; &amp; Bar", "Café & Bar"),
            ("Caf&eacute;&nbsp;Latte", "Café Latte"),
            ("&copy; 2024 &hellip; &mdash; &rsquo;", "© 2024 … — ’"),
            ("<b>Bold</b> move", "Bold move"),
            ("Line<br>break", "Line break"),
            ("  many \n\t spaces  ", "many spaces"),
            ("AT&T profits", "AT&T profits"),
            ("Fish & Chips", "Fish & Chips"),
            ("a <script>alert(1)</script>b", "a b"),
            ("x &lt; y", "x < y"),
            ("&#8217;quoted&#x2019;", "’quoted’"),
            ("plain", "plain"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(plain_title(input), *want, "{input:?}");
        }
    }

    #[test]
    fn ampersands() {
        let table: &[(&str, Option<&str>)] = &[
            ("<t>Fish & Chips</t>", Some("<t>Fish &amp; Chips</t>")),
            ("<l>?a=1&b=2</l>", Some("<l>?a=1&amp;b=2</l>")),
            ("<t>&amp; &lt; &#38; &#x26; &eacute;</t>", None),
            (
                "<t><![CDATA[a & b]]> & c</t>",
                Some("<t><![CDATA[a & b]]> &amp; c</t>"),
            ),
            ("<!-- a & b --><t>&</t>", Some("<!-- a & b --><t>&amp;</t>")),
            (
                "<t>&#xZZ; &#; &;</t>",
                Some("<t>&amp;#xZZ; &amp;#; &amp;;</t>"),
            ),
            ("<t>trailing &</t>", Some("<t>trailing &amp;</t>")),
            ("<t>ü & ö</t>", Some("<t>ü &amp; ö</t>")),
            ("<t><![CDATA[unterminated &", None),
            ("no markup", None),
        ];
        for (input, want) in table {
            assert_eq!(escape_bare_ampersands(input).as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn escape_html_round_trips_special_chars() {
        assert_eq!(
            escape_html("a<b & \"c\">"),
            "a&lt;b &amp; &quot;c&quot;&gt;"
        );
    }
}
