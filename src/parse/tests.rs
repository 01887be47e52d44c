//! Table-driven tests for the feed-rs glue: one per failure mode measured in
//! research/deps.md §3, plus identity, hints and format coverage.

use super::*;
use crate::fetch::charset::decode;

fn rss_items(items: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>Test Channel</title><link>https://news.example/</link>{items}</channel></rss>"
    )
}

fn one(text: &str) -> ParsedItem {
    let feed = feed(text, None).unwrap_or_else(|e| panic!("parse failed: {e}\n{text}"));
    assert_eq!(feed.items.len(), 1, "{feed:#?}");
    feed.items.into_iter().next().expect("one item")
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test constant")
        .with_timezone(&Utc)
}

#[test]
fn bare_ampersands_are_repaired() {
    let table: &[(&str, &str, &str)] = &[
        (
            "<item><title>Fish & Chips</title><link>https://news.example/a?x=1&y=2</link></item>",
            "Fish & Chips",
            "https://news.example/a?x=1&y=2",
        ),
        (
            "<item><title>R&D &amp; more</title><link>https://news.example/b</link></item>",
            "R&D & more",
            "https://news.example/b",
        ),
        (
            "<item><title><![CDATA[Q&A]]> & co</title><link>https://news.example/c?a&b</link></item>",
            "Q&A & co",
            "https://news.example/c?a&b",
        ),
    ];
    for (xml, title, link) in table {
        let item = one(&rss_items(xml));
        assert_eq!(item.title.as_deref(), Some(*title), "{xml}");
        assert_eq!(item.url.as_deref(), Some(*link), "{xml}");
    }
}

#[test]
fn structural_errors_still_fail_cleanly() {
    let table = [
        rss_items("<item><title>cut off"),
        rss_items("<item><title>x</titel></item>"),
        "<html><body>not a feed</body></html>".to_string(),
        "".to_string(),
        "{\"version\": \"https://jsonfeed.org/version/9\", \"items\": []}".to_string(),
    ];
    for text in &table {
        match feed(text, None) {
            Err(ParseError::Invalid(_)) => {}
            other => panic!("expected Invalid for {text:?}, got {other:?}"),
        }
    }
}

fn long_prolog_text() -> String {
    // 70 spaces push the end of a non-UTF-8 declaration past quick-xml's
    // 64-byte prefix; followed by plenty of ASCII, this made quick-xml panic.
    let items: String = (0..60)
        .map(|i| {
            format!(
                "<item><title>Story {i}</title><link>https://news.example/{i}</link>\
                 <description>Some ASCII text that fills the buffer well past the prefix.</description></item>"
            )
        })
        .collect();
    format!(
        "{}<?xml version=\"1.0\" encoding=\"windows-1252\"?><rss version=\"2.0\"><channel>\
         <title>Long</title>{items}</channel></rss>",
        " ".repeat(70)
    )
}

#[test]
fn long_prolog_past_byte_64_does_not_panic() {
    let text = long_prolog_text();
    // Handed to feed-rs as is, quick-xml 0.42 panics ("set_encoding() called
    // after prefix buffer was drained"); the barrier turns that into an error.
    // If a quick-xml upgrade fixes the panic, this assertion tells us the
    // barrier is no longer exercised here.
    match run_feed_rs(&text, None) {
        Err(ParseError::Panic(msg)) => assert!(msg.contains("set_encoding"), "{msg}"),
        other => panic!("expected a contained panic, got {other:?}"),
    }
    // …and the public entry point rewrites the declaration, so it parses.
    let parsed = feed(&text, None).expect("long prolog parses");
    assert_eq!(parsed.items.len(), 60);
    // Same through the byte path with real windows-1252 bytes.
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"<!-- caf\xe9 -->");
    let parsed = feed(&decode(&bytes, None), None).expect("decoded long prolog parses");
    assert_eq!(parsed.items.len(), 60);
}

#[test]
fn legacy_charsets_through_decode() {
    use encoding_rs::{EUC_KR, SHIFT_JIS, WINDOWS_1252};
    let table: &[(
        &'static encoding_rs::Encoding,
        Option<&str>,
        Option<&str>,
        &str,
    )] = &[
        // EUC-KR declared only in the prolog, Hangul inside the first 64 bytes.
        (EUC_KR, Some("EUC-KR"), None, "서울 시장 예산 발표"),
        // Shift_JIS declared only in the HTTP header.
        (SHIFT_JIS, None, Some("Shift_JIS"), "東京の株式市場"),
        // windows-1252 declared as ISO-8859-1, with C1-range punctuation.
        (
            WINDOWS_1252,
            Some("ISO-8859-1"),
            None,
            "Café „Münster“ – €5",
        ),
    ];
    for (encoding, prolog, http, title) in table {
        let decl = prolog
            .map(|p| format!("<?xml version=\"1.0\" encoding=\"{p}\"?><!--{title}-->"))
            .unwrap_or_default();
        let xml = format!(
            "{decl}<rss version=\"2.0\"><channel><title>{title}</title><item><title>{title}</title>\
             <guid>g1</guid></item></channel></rss>"
        );
        let (bytes, _, unmappable) = encoding.encode(&xml);
        assert!(!unmappable);
        let parsed = feed(&decode(&bytes, *http), None)
            .unwrap_or_else(|e| panic!("{}: {e}", encoding.name()));
        assert_eq!(
            parsed.items[0].title.as_deref(),
            Some(*title),
            "{}",
            encoding.name()
        );
    }
}

#[test]
fn stray_invalid_byte_costs_one_char_not_the_feed() {
    let mut bytes = rss_items("<item><title>Cafe</title><guid>g</guid></item>").into_bytes();
    let at = bytes
        .windows(4)
        .position(|w| w == b"Cafe")
        .expect("fixture")
        + 3;
    bytes[at] = 0xE9; // Latin-1 é inside a declared-UTF-8 document
    let item = one(&decode(&bytes, None));
    assert_eq!(item.title.as_deref(), Some("Caf\u{fffd}"));
}

#[test]
fn utf8_text_with_stale_legacy_declaration_parses() {
    // What reqwest's .text() hands over: transcoded, prolog still EUC-KR.
    let text = "<?xml version=\"1.0\" encoding=\"EUC-KR\"?><rss version=\"2.0\"><channel>\
                <item><title>한국 뉴스</title><guid>k</guid></item></channel></rss>";
    assert_eq!(one(text).title.as_deref(), Some("한국 뉴스"));
}

#[test]
fn identities() {
    struct Case {
        name: &'static str,
        item: &'static str,
        identity: &'static str,
        guid: Option<&'static str>,
    }
    let table = [
        Case {
            name: "guid wins",
            item: "<item><guid isPermaLink=\"false\"> abc-1 </guid><link>https://news.example/1</link></item>",
            identity: "guid:abc-1",
            guid: Some("abc-1"),
        },
        Case {
            name: "link when no guid",
            item: "<item><title>T</title><link>https://news.example/2</link></item>",
            identity: "link:https://news.example/2",
            guid: None,
        },
        Case {
            name: "empty guid is no guid",
            item: "<item><guid></guid><link>https://news.example/3</link></item>",
            identity: "link:https://news.example/3",
            guid: None,
        },
    ];
    for case in &table {
        let item = one(&rss_items(case.item));
        assert_eq!(item.identity, case.identity, "{}", case.name);
        assert_eq!(item.guid.as_deref(), case.guid, "{}", case.name);
    }
}

#[test]
fn items_without_guid_link_or_title_get_stable_distinct_hash_identities() {
    let text = rss_items(
        "<item><description>First body</description></item>\
         <item><description>Second body</description></item>\
         <item><description>Third body</description><pubDate>Tue, 10 Jun 2003 04:00:00 GMT</pubDate></item>",
    );
    let a = feed(&text, None).expect("parses");
    let b = feed(&text, None).expect("parses");
    let ids: Vec<_> = a.items.iter().map(|i| i.identity.clone()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|i| i.starts_with("hash:")), "{ids:?}");
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 3, "{ids:?}");
    assert_eq!(
        ids,
        b.items
            .iter()
            .map(|i| i.identity.clone())
            .collect::<Vec<_>>()
    );
    assert!(a.items.iter().all(|i| i.guid.is_none()));
}

#[test]
fn duplicate_identities_within_a_document() {
    let text = rss_items(
        "<item><guid>same</guid><title>One</title></item>\
         <item><guid>same</guid><title>Two</title></item>\
         <item><guid>same</guid><title>One</title></item>",
    );
    let parsed = feed(&text, None).expect("parses");
    let ids: Vec<_> = parsed.items.iter().map(|i| i.identity.as_str()).collect();
    // The exact repeat is dropped; the different item keeps a distinct identity.
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0], "guid:same");
    assert!(ids[1].starts_with("guid:same#"), "{ids:?}");
    assert_eq!(parsed.items[1].guid.as_deref(), Some("same"));
}

#[test]
fn titles_are_plain_text() {
    let table: &[(&str, &str)] = &[
        ("<title>Caf&amp;eacute; &amp;nbsp;open</title>", "Café open"),
        ("<title>&lt;b&gt;Bold&lt;/b&gt;  news</title>", "Bold news"),
        (
            "<title><![CDATA[<i>Italic</i> &hellip;]]></title>",
            "Italic …",
        ),
        ("<title>&#8217;Quoted&#x2019;</title>", "’Quoted’"),
        (
            "<title>\n  Spread\n  over lines </title>",
            "Spread over lines",
        ),
    ];
    for (xml, want) in table {
        let item = one(&rss_items(&format!("<item>{xml}<guid>t</guid></item>")));
        assert_eq!(item.title.as_deref(), Some(*want), "{xml}");
    }
    let atom = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>F</title>\
                <entry><id>e</id><title type=\"html\">Caf&amp;eacute; &amp;amp; Co</title></entry></feed>";
    assert_eq!(one(atom).title.as_deref(), Some("Café & Co"));
}

#[test]
fn dates_feed_rs_would_drop() {
    let table: &[(&str, &str)] = &[
        ("Tue, 10 Jun 2003 13:00:00 KST", "2003-06-10T04:00:00Z"),
        ("Tue, 10 Jun 2003 06:00:00 CEST", "2003-06-10T04:00:00Z"),
        ("Tue, 10 Jun 2003 05:00:00 BST", "2003-06-10T04:00:00Z"),
        ("Tue, 10 Jun 2003 13:00:00 JST", "2003-06-10T04:00:00Z"),
        ("Tue, 10 Jun 2003 00:00:00 EDT", "2003-06-10T04:00:00Z"),
        ("Tue, 10 Jun 2003 04:00:00", "2003-06-10T04:00:00Z"),
        ("2003-06-10 04:00:00", "2003-06-10T04:00:00Z"),
        ("2003-06-10T04:00:00", "2003-06-10T04:00:00Z"),
        ("Tue, 10 Jun 2003 04:00:00 GMT", "2003-06-10T04:00:00Z"),
    ];
    for (raw, want) in table {
        let item = one(&rss_items(&format!(
            "<item><guid>d</guid><pubDate>{raw}</pubDate></item>"
        )));
        assert_eq!(item.published_at, Some(utc(want)), "{raw}");
    }
    let atom = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><id>e</id>\
                <updated>2003-06-10T06:00:00 CEST</updated></entry></feed>";
    let item = one(atom);
    assert_eq!(item.updated_at, Some(utc("2003-06-10T04:00:00Z")));
    assert_eq!(item.published_at, item.updated_at);
}

#[test]
fn links_prefer_alternate_and_resolve_relative() {
    let atom = "<feed xmlns=\"http://www.w3.org/2005/Atom\">\
        <link rel=\"self\" href=\"https://news.example/atom.xml\"/>\
        <link rel=\"alternate\" href=\"https://news.example/\"/>\
        <entry><id>e</id><link rel=\"enclosure\" href=\"/a.mp3\"/><link href=\"/story/1\"/></entry></feed>";
    let parsed = feed(atom, Some("https://news.example/atom.xml")).expect("parses");
    assert_eq!(parsed.site_url.as_deref(), Some("https://news.example/"));
    assert_eq!(
        parsed.items[0].url.as_deref(),
        Some("https://news.example/story/1")
    );
    // A base that is not a URL (a local path) is ignored, not fatal.
    let parsed = feed(atom, Some("/tmp/feeds/atom.xml")).expect("parses");
    assert_eq!(parsed.items[0].url.as_deref(), Some("/story/1"));
    // RSS: the channel <link>, not atom:link rel=self.
    let rss = "<rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\"><channel>\
        <atom:link href=\"https://news.example/rss.xml\" rel=\"self\"/>\
        <link>https://news.example/home</link></channel></rss>";
    assert_eq!(
        feed(rss, None).expect("parses").site_url.as_deref(),
        Some("https://news.example/home")
    );
}

#[test]
fn bodies() {
    let rss = rss_items(
        "<item><guid>b</guid><description>&lt;p&gt;Summary&lt;/p&gt;</description>\
         <content:encoded xmlns:content=\"http://purl.org/rss/1.0/modules/content/\">\
         <![CDATA[<p>Full <b>body</b></p>]]></content:encoded></item>",
    );
    let item = one(&rss);
    assert_eq!(item.summary_html.as_deref(), Some("<p>Summary</p>"));
    assert_eq!(
        item.content_html.as_deref(),
        Some("<p>Full <b>body</b></p>")
    );

    let atom = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><id>e</id>\
        <summary type=\"text\">a &lt; b &amp; c</summary>\
        <content type=\"html\">&lt;p&gt;Body&lt;/p&gt;</content></entry></feed>";
    let item = one(atom);
    assert_eq!(item.summary_html.as_deref(), Some("a &lt; b &amp; c"));
    assert_eq!(item.content_html.as_deref(), Some("<p>Body</p>"));

    let atom_src = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><id>e</id>\
        <content src=\"https://news.example/body\" type=\"text/html\"/></entry></feed>";
    assert_eq!(one(atom_src).content_html, None);
}

#[test]
fn json_feed() {
    let json = r#"{
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Json &amp; Co",
        "home_page_url": "https://json.example/",
        "feed_url": "https://json.example/feed.json",
        "language": "de",
        "authors": [{"name": "Desk"}],
        "items": [
            {"id": "j1", "url": "https://json.example/1", "title": "One",
             "content_html": "<p>One</p>", "summary": "Short & sweet",
             "date_published": "2024-03-04T05:06:07+09:00"},
            {"id": "j2", "url": "https://json.example/2", "title": "Two",
             "content_text": "Plain <text>"},
            {"url": "https://json.example/3", "title": "No id"}
        ]
    }"#;
    let parsed = feed(json, None).expect("parses");
    assert_eq!(parsed.title.as_deref(), Some("Json & Co"));
    assert_eq!(parsed.site_url.as_deref(), Some("https://json.example/"));
    assert_eq!(parsed.language.as_deref(), Some("de"));
    let [a, b, c] = &parsed.items[..] else {
        panic!("{:#?}", parsed.items)
    };
    assert_eq!(a.identity, "guid:j1");
    assert_eq!(a.content_html.as_deref(), Some("<p>One</p>"));
    assert_eq!(a.summary_html.as_deref(), Some("Short &amp; sweet"));
    assert_eq!(a.published_at, Some(utc("2024-03-03T20:06:07Z")));
    assert_eq!(a.author.as_deref(), Some("Desk"));
    assert_eq!(b.content_html.as_deref(), Some("Plain &lt;text&gt;"));
    assert_eq!(c.identity, "link:https://json.example/3");
    assert_eq!(c.guid, None);
}

#[test]
fn json_numeric_ids_are_repaired() {
    let json = r#"{"version": "https://jsonfeed.org/version/1.1", "title": "N",
        "items": [{"id": 17, "content_text": "a"}, {"id": "x", "content_text": "b"}]}"#;
    let parsed = feed(json, None).expect("parses");
    let ids: Vec<_> = parsed.items.iter().map(|i| i.identity.as_str()).collect();
    assert_eq!(ids, ["guid:17", "guid:x"]);
}

#[test]
fn rss_versions_feed_rs_rejects_are_repaired() {
    for tag in [
        "<rss>",
        "<rss xmlns:dc=\"http://purl.org/dc/elements/1.1/\">",
        "<rss version=\"2.01\">",
        "<rss version='0.94' xmlns:x=\"urn:x\">",
    ] {
        let text =
            format!("{tag}<channel><title>V</title><item><guid>v</guid></item></channel></rss>");
        assert_eq!(one(&text).identity, "guid:v", "{tag}");
    }
    assert_eq!(
        fix_rss_version("<rss version=\"2.0\"><channel/></rss>"),
        None
    );
}

#[test]
fn json_repairs_do_not_touch_ampersands() {
    let json = r#"{"version": "https://jsonfeed.org/version/1.1", "title": "A & B",
        "items": [{"id": 5, "title": "Fish & Chips", "content_html": "<p>R&amp;D & more</p>"}]}"#;
    let item = one(json);
    assert_eq!(item.identity, "guid:5");
    assert_eq!(item.title.as_deref(), Some("Fish & Chips"));
    assert_eq!(item.content_html.as_deref(), Some("<p>R&amp;D & more</p>"));
}

#[test]
fn scheduling_hints() {
    let table: &[(&str, Option<u32>, Option<u64>)] = &[
        ("<ttl>45</ttl>", Some(45), None),
        (
            "<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>2</sy:updateFrequency>",
            None,
            Some(1800),
        ),
        (
            "<sy:updatePeriod> daily </sy:updatePeriod>",
            None,
            Some(86_400),
        ),
        (
            "<sy:updateFrequency>4</sy:updateFrequency>",
            None,
            Some(21_600),
        ),
        (
            "<sy:updatePeriod>weekly</sy:updatePeriod><ttl>60</ttl>",
            Some(60),
            Some(604_800),
        ),
        ("<sy:updatePeriod>sometimes</sy:updatePeriod>", None, None),
        ("<sy:updateFrequency>0</sy:updateFrequency>", None, None),
        ("", None, None),
    ];
    for (hints, ttl, interval) in table {
        let text = format!(
            "<rss version=\"2.0\" xmlns:sy=\"http://purl.org/rss/1.0/modules/syndication/\">\
             <channel><title>H</title>{hints}<item><guid>h</guid>\
             <sy:updatePeriod>yearly</sy:updatePeriod></item></channel></rss>"
        );
        let parsed = feed(&text, None).expect("parses");
        assert_eq!(parsed.ttl_minutes, *ttl, "{hints}");
        assert_eq!(
            parsed.update_interval,
            interval.map(Duration::from_secs),
            "{hints}"
        );
    }
}

#[test]
fn billion_laughs_is_not_expanded() {
    let mut dtd = String::from("<!DOCTYPE rss [\n<!ENTITY lol \"lol\">\n");
    for i in 1..=9 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        let refs: String = std::iter::repeat_n(format!("&{prev};"), 10).collect();
        dtd.push_str(&format!("<!ENTITY lol{i} \"{refs}\">\n"));
    }
    dtd.push_str("]>\n");
    let text = format!(
        "<?xml version=\"1.0\"?>\n{dtd}<rss version=\"2.0\"><channel><title>&lol9;</title>\
         <item><guid>b</guid><title>Laugh &lol9; end</title></item></channel></rss>"
    );
    let parsed = feed(&text, None).expect("parses without expansion");
    let title = parsed.items[0].title.as_deref().unwrap_or_default();
    assert!(title.len() < 64, "entity expanded: {} bytes", title.len());
    assert!(!title.contains("lollol"), "{title}");
}

#[test]
fn external_entities_are_not_resolved() {
    let text = "<?xml version=\"1.0\"?>\n<!DOCTYPE rss [\n\
        <!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n\
        <!ENTITY ext SYSTEM \"http://127.0.0.1:9/evil.dtd\">\n]>\n\
        <rss version=\"2.0\"><channel><title>&xxe;</title>\
        <item><guid>x</guid><title>Secret: &xxe; &ext;</title>\
        <description>&xxe;</description></item></channel></rss>";
    let parsed = feed(text, None).expect("parses without resolving");
    let item = &parsed.items[0];
    let all = format!(
        "{:?} {:?} {:?}",
        parsed.title, item.title, item.summary_html
    );
    assert!(!all.contains("root:"), "file content leaked: {all}");
    assert_eq!(item.title.as_deref(), Some("Secret: &xxe; &ext;"));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Fragments real feeds are made of, so random documents get deep
    /// enough into the parsers to matter.
    fn xmlish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("<?xml version=\"1.0\" encoding=\"EUC-KR\"?>".to_string()),
            Just("<rss version=\"2.0\">".to_string()),
            Just("<rss>".to_string()),
            Just("<channel>".to_string()),
            Just("<item>".to_string()),
            Just("</item>".to_string()),
            Just("<title>".to_string()),
            Just("</title>".to_string()),
            Just("<guid>".to_string()),
            Just("</guid>".to_string()),
            Just("<pubDate>".to_string()),
            Just("</pubDate>".to_string()),
            Just("<![CDATA[".to_string()),
            Just("]]>".to_string()),
            Just("&".to_string()),
            Just("&eacute;".to_string()),
            Just("<!DOCTYPE x [<!ENTITY a \"&a;\">]>".to_string()),
            Just("{\"version\":\"https://jsonfeed.org/version/1.1\",\"items\":[".to_string()),
            "[ -~]{0,12}",
            "\\PC{0,6}",
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn feed_never_panics(text in xmlish()) {
            let _ = feed(&text, Some("https://news.example/feed"));
        }

        #[test]
        fn dates_never_panic(s in "\\PC{0,40}") {
            let _ = parse_date(&s);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                               label in prop_oneof![Just(None), Just(Some("euc-kr")),
                                                    Just(Some("utf-16")), Just(Some("utf-8"))]) {
            let text = decode(&bytes, label);
            let _ = feed(&text, None);
        }

        #[test]
        fn escaping_leaves_no_bare_ampersand(s in "[a-z&;#x0-9 <>]{0,40}") {
            let fixed = text::escape_bare_ampersands(&s).unwrap_or_else(|| s.clone());
            prop_assert_eq!(text::escape_bare_ampersands(&fixed), None);
        }
    }
}
