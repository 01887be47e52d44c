//! OPML 1.0/2.0 import and export: the subscription list format every feed
//! reader exchanges.
//!
//! Parsed with quick-xml directly (feed-rs already depends on it): the
//! `opml` crate is stale and drags in syn 1 (research/deps.md §1–2).
//! quick-xml never expands DTD entities or fetches external ones, so a
//! hostile OPML file cannot blow up or read local files.
//! Input is text: decode bytes with `fetch::charset::decode` first.

use std::borrow::Cow;
use std::collections::HashSet;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// One subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpmlFeed {
    pub url: String,
    pub title: Option<String>,
    pub site_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpmlError {
    #[error("invalid OPML at byte {position}: {message}")]
    Xml { position: u64, message: String },
    #[error("not an OPML document (root element is <{0}>, expected <opml>)")]
    NotOpml(String),
    #[error("not an OPML document (no root element)")]
    Empty,
}

/// Every outline with an `xmlUrl`, at any depth (folders are flattened), in
/// document order. A feed listed in several folders is returned once.
/// Attribute names are matched case-insensitively (`xmlurl`, `XMLURL` occur
/// in the wild); the title is `title`, else `text`.
pub fn parse(text: &str) -> Result<Vec<OpmlFeed>, OpmlError> {
    let mut reader = Reader::from_str(text);
    // Exporters produce sloppy XML; a mismatched end tag should not lose the
    // whole subscription list.
    reader.config_mut().check_end_names = false;
    let mut feeds = Vec::new();
    let mut seen = HashSet::new();
    let mut saw_root = false;
    loop {
        let event = reader.read_event().map_err(|e| OpmlError::Xml {
            position: reader.error_position(),
            message: e.to_string(),
        })?;
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let name = local_name(&e);
                if !saw_root {
                    if !name.eq_ignore_ascii_case("opml") {
                        return Err(OpmlError::NotOpml(name));
                    }
                    saw_root = true;
                    continue;
                }
                if !name.eq_ignore_ascii_case("outline") {
                    continue;
                }
                if let Some(feed) = outline_feed(&e)
                    && seen.insert(feed.url.clone())
                {
                    feeds.push(feed);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(OpmlError::Empty);
    }
    Ok(feeds)
}

fn local_name(e: &BytesStart<'_>) -> String {
    e.local_name().into_inner().to_string()
}

fn outline_feed(e: &BytesStart<'_>) -> Option<OpmlFeed> {
    let mut url = None;
    let mut title = None;
    let mut text = None;
    let mut site_url = None;
    for attr in e.attributes().with_checks(false).flatten() {
        let key = attr.key.local_name().into_inner().to_ascii_lowercase();
        let slot = match key.as_str() {
            "xmlurl" => &mut url,
            "title" => &mut title,
            "text" => &mut text,
            "htmlurl" => &mut site_url,
            _ => continue,
        };
        // Unknown entities (HTML ones in titles, bare `&` in URLs) make the
        // strict unescape fail; the raw value is then the best we have.
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map(Cow::into_owned)
            .unwrap_or_else(|_| attr.value.to_string());
        *slot = Some(value);
    }
    let url = url
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())?;
    let title = title
        .or(text)
        // Titles are plain text, but exporters often double-escape entities
        // (`&amp;eacute;`): decode entities, keep any `<…>` as written.
        .map(|t| crate::parse::plain_title(&t.replace('<', "&lt;").replace('>', "&gt;")))
        .filter(|t| !t.is_empty() && *t != url);
    let site_url = site_url
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty());
    Some(OpmlFeed {
        url,
        title,
        site_url,
    })
}

/// A valid OPML 2.0 document listing `feeds` flat under `<body>`.
pub fn export(feeds: &[OpmlFeed]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n  <head>\n    \
         <title>feedfold subscriptions</title>\n  </head>\n  <body>\n",
    );
    for feed in feeds {
        // OPML 2.0 requires `text`; fall back to the URL when untitled
        // (import maps a title equal to the URL back to no title).
        let title = feed.title.as_deref().unwrap_or(&feed.url);
        out.push_str("    <outline type=\"rss\" text=\"");
        push_attr(&mut out, title);
        out.push_str("\" title=\"");
        push_attr(&mut out, title);
        out.push_str("\" xmlUrl=\"");
        push_attr(&mut out, &feed.url);
        out.push('"');
        if let Some(site) = &feed.site_url {
            out.push_str(" htmlUrl=\"");
            push_attr(&mut out, site);
            out.push('"');
        }
        out.push_str("/>\n");
    }
    out.push_str("  </body>\n</opml>\n");
    out
}

/// Escapes an attribute value. Whitespace controls become character
/// references so attribute-value normalization cannot flatten them;
/// characters XML 1.0 forbids are dropped.
fn push_attr(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(url: &str, title: Option<&str>, site: Option<&str>) -> OpmlFeed {
        OpmlFeed {
            url: url.into(),
            title: title.map(Into::into),
            site_url: site.map(Into::into),
        }
    }

    #[test]
    fn nested_outlines_opml2() {
        let text = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Subs</title></head>
  <body>
    <outline text="News">
      <outline text="World" title="World Desk" type="rss" xmlUrl="https://a.example/rss" htmlUrl="https://a.example/"/>
      <outline text="Deeper">
        <outline text="Deep &amp; Nested" xmlUrl="https://b.example/feed?x=1&amp;y=2"/>
      </outline>
    </outline>
    <outline text="Top level" xmlUrl="https://c.example/atom.xml"></outline>
    <outline text="Just a link" type="link" url="https://d.example/"/>
  </body>
</opml>"#;
        assert_eq!(
            parse(text).expect("parses"),
            vec![
                feed(
                    "https://a.example/rss",
                    Some("World Desk"),
                    Some("https://a.example/")
                ),
                feed(
                    "https://b.example/feed?x=1&y=2",
                    Some("Deep & Nested"),
                    None
                ),
                feed("https://c.example/atom.xml", Some("Top level"), None),
            ]
        );
    }

    #[test]
    fn opml1_and_attribute_case_variants() {
        let table: &[(&str, &str)] = &[
            ("xmlUrl", "htmlUrl"),
            ("xmlurl", "htmlurl"),
            ("XMLURL", "HTMLURL"),
            ("xmlURL", "htmlURL"),
        ];
        for (xml_attr, html_attr) in table {
            let text = format!(
                "<opml version=\"1.0\"><head/><body><outline title=\"T\" {xml_attr}=\" https://x.example/f \" \
                 {html_attr}=\"https://x.example/\"/></body></opml>"
            );
            assert_eq!(
                parse(&text).expect("parses"),
                vec![feed(
                    "https://x.example/f",
                    Some("T"),
                    Some("https://x.example/")
                )],
                "{xml_attr}"
            );
        }
    }

    #[test]
    fn sloppy_but_common_input() {
        let text = "<opml><body>\
            <outline text=\"Caf&eacute; Kultur\" xmlUrl=\"https://e.example/?a=1&b=2\"/>\
            <outline text=\"https://f.example/rss\" xmlUrl=\"https://f.example/rss\"/>\
            <outline text=\"dup\" xmlUrl=\"https://f.example/rss\"/>\
            <outline text=\"empty\" xmlUrl=\"  \"/>\
            </bdy></opml>";
        assert_eq!(
            parse(text).expect("parses"),
            vec![
                feed("https://e.example/?a=1&b=2", Some("Café Kultur"), None),
                feed("https://f.example/rss", None, None),
            ]
        );
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse("<rss version=\"2.0\"/>"),
            Err(OpmlError::NotOpml(n)) if n == "rss"
        ));
        assert!(matches!(parse(""), Err(OpmlError::Empty)));
        assert!(matches!(
            parse("<opml><body><outline xmlUrl=\"https://x.example/\""),
            Err(OpmlError::Xml { .. })
        ));
    }

    #[test]
    fn dtd_entities_are_not_expanded() {
        let text = r#"<?xml version="1.0"?>
<!DOCTYPE opml [
  <!ENTITY xxe SYSTEM "file:///etc/passwd">
  <!ENTITY lol "lollollollollollollollollollol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
]>
<opml version="2.0"><body>
  <outline text="&xxe; &lol2;" xmlUrl="https://g.example/&xxe;"/>
</body></opml>"#;
        let feeds = parse(text).expect("parses");
        assert_eq!(feeds.len(), 1);
        let all = format!("{feeds:?}");
        assert!(!all.contains("root:"), "{all}");
        assert!(!all.contains("lollol"), "{all}");
    }

    #[test]
    fn export_round_trip() {
        let feeds = vec![
            feed(
                "https://a.example/rss?x=1&y=2",
                Some("Fish & Chips <Daily> \"quoted\" 'single'"),
                Some("https://a.example/"),
            ),
            feed("https://b.example/atom.xml", None, None),
            feed("https://c.example/feed", Some("서울 신문 – Grüße"), None),
            feed("https://d.example/feed", Some("Tab\tand\nnewline"), None),
        ];
        let xml = export(&feeds);
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">")
        );
        // Well-formed: a strict reader with end-name checks walks it cleanly.
        let mut reader = Reader::from_str(&xml);
        loop {
            match reader.read_event() {
                Ok(Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("export is not well-formed: {e}\n{xml}"),
            }
        }
        let back = parse(&xml).expect("re-import");
        assert_eq!(back[..3], feeds[..3]);
        // Titles go through whitespace collapsing on import.
        assert_eq!(back[3].title.as_deref(), Some("Tab and newline"));
        assert_eq!(parse(&export(&[])).expect("empty export parses"), vec![]);
    }
}
