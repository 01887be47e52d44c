//! Integration tests: the `feedfold` binary end to end, against a local HTTP
//! server full of broken and hostile feeds, and against the corpus.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Runs the binary with a config file and a database, in `dir`.
fn feedfold(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_feedfold"))
        .current_dir(dir)
        .env_remove("FEEDFOLD_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("FEEDFOLD_CONFIG")
        .args(["--config", "feedfold.toml", "--database", "sqlite:ff.db"])
        .args(args)
        .output()
        .expect("run feedfold")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn rss(title: &str, items: &[(&str, &str)]) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel><title>{title}</title>"
    );
    for (guid, t) in items {
        s.push_str(&format!(
            "<item><guid>{guid}</guid><title>{t}</title><description>{t}, reported in full with enough words to count as a body for the test.</description></item>"
        ));
    }
    s.push_str("</channel></rss>");
    s
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// One pass over good, broken and hostile feeds: the pass finishes, each
/// failure is recorded on its own feed with its class, the good feeds'
/// items are stored (hostile XML unexpanded), and a 410 disables its feed.
#[tokio::test]
async fn poll_once_survives_broken_and_hostile_feeds() {
    let server = MockServer::start().await;
    let ok = |body: Vec<u8>, ct: &str| {
        ResponseTemplate::new(200)
            .insert_header("content-type", ct)
            .set_body_bytes(body)
    };
    // EUC-KR declared only in the XML prolog.
    let (euc, _, _) = encoding_rs::EUC_KR.encode(
        "<?xml version=\"1.0\" encoding=\"EUC-KR\"?><rss version=\"2.0\"><channel><title>서울 소식</title>\
         <item><guid>k1</guid><title>한국 경제 소식</title><description>서울에서 열린 회의</description></item></channel></rss>",
    );
    // Shift_JIS declared only in the HTTP header.
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(
        "<rss version=\"2.0\"><channel><title>東京ニュース</title>\
         <item><guid>j1</guid><title>東京の天気</title><description>晴れのち曇り</description></item></channel></rss>",
    );
    let laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">\
        <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\
        <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>\
        <rss version=\"2.0\"><channel><title>Laughs</title><item><guid>l1</guid><title>&lol3;</title></item></channel></rss>";
    let xxe = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
        <rss version=\"2.0\"><channel><title>XXE</title><item><guid>x1</guid><title>&xxe;</title></item></channel></rss>";
    let routes: Vec<(&str, ResponseTemplate)> = vec![
        (
            "/good",
            ok(
                rss(
                    "Good",
                    &[("g1", "Harbour reopens"), ("g2", "Ferry resumes")],
                )
                .into_bytes(),
                "application/rss+xml",
            ),
        ),
        ("/euckr", ok(euc.into_owned(), "application/rss+xml")),
        (
            "/sjis",
            ok(sjis.into_owned(), "application/rss+xml; charset=Shift_JIS"),
        ),
        ("/laughs", ok(laughs.as_bytes().to_vec(), "application/xml")),
        ("/xxe", ok(xxe.as_bytes().to_vec(), "application/xml")),
        ("/gone", ResponseTemplate::new(410)),
        ("/error", ResponseTemplate::new(500)),
        (
            "/loop",
            ResponseTemplate::new(302).insert_header("location", "/loop"),
        ),
        (
            "/bomb",
            ResponseTemplate::new(200)
                .insert_header("content-encoding", "gzip")
                .set_body_bytes(gzip(&vec![b' '; 8 * 1024 * 1024])),
        ),
        (
            "/html",
            ok(
                b"<html><body>not a feed</body></html>".to_vec(),
                "text/html",
            ),
        ),
    ];
    for (p, response) in &routes {
        Mock::given(method("GET"))
            .and(path(*p))
            .respond_with(response.clone())
            .mount(&server)
            .await;
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("feedfold.toml"),
        "[fetch]\nallow_private_networks = true\nmax_decompressed_bytes = 1048576\ntimeout = \"10s\"\n",
    )
    .unwrap();
    for (p, _) in &routes {
        let out = feedfold(
            dir.path(),
            &["feeds", "add", &format!("{}{p}", server.uri())],
        );
        assert!(out.status.success(), "{out:?}");
    }

    let out = feedfold(dir.path(), &["poll", "--once"]);
    assert!(out.status.success(), "{out:?}");
    let summary = stdout(&out);
    assert!(
        summary.contains("feeds: 5 ok, 5 failed; items: 6 new"),
        "{summary}"
    );

    let out = feedfold(dir.path(), &["feeds", "list", "--json"]);
    let feeds: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_path = |p: &str| {
        feeds
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["url"].as_str().unwrap().ends_with(p))
            .unwrap_or_else(|| panic!("feed {p} listed"))
            .clone()
    };
    for (p, class) in [
        ("/error", "http_5xx"),
        ("/loop", "redirect_loop"),
        ("/bomb", "too_large"),
        ("/html", "parse"),
    ] {
        let f = by_path(p);
        assert_eq!(f["last_error_class"], class, "{p}: {f}");
        assert_eq!(f["error_count"], 1, "{p}: {f}");
        assert_eq!(f["enabled"], true, "{p}: {f}");
    }
    let gone = by_path("/gone");
    assert_eq!(gone["enabled"], false, "{gone}");
    assert!(
        gone["disabled_reason"].as_str().unwrap().contains("410"),
        "{gone}"
    );
    for p in ["/good", "/euckr", "/sjis", "/laughs", "/xxe"] {
        assert_eq!(by_path(p)["last_status"], "ok", "{p}");
    }

    let out = feedfold(dir.path(), &["stories", "--limit", "50"]);
    let stories = stdout(&out);
    for title in ["Harbour reopens", "한국 경제 소식", "東京の天気", "&lol3;"] {
        assert!(stories.contains(title), "{title} in {stories}");
    }
    assert!(!stories.contains("root:"), "XXE expanded: {stories}");

    // A second pass stores nothing new: items are unique per feed.
    let out = feedfold(dir.path(), &["poll", "--once"]);
    assert!(
        stdout(&out).contains("items: 0 new, 6 already seen"),
        "{}",
        stdout(&out)
    );
}

/// Configuration mistakes are named and exit non-zero.
#[test]
fn bad_configuration_is_reported_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("feedfold.toml"),
        "[fetch]\ntimeuot = \"1s\"\n",
    )
    .unwrap();
    let out = feedfold(dir.path(), &["feeds", "list"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timeuot"),
        "{out:?}"
    );

    std::fs::write(dir.path().join("feedfold.toml"), "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_feedfold"))
        .current_dir(dir.path())
        .args([
            "--config",
            "feedfold.toml",
            "--database",
            "mysql://x/y",
            "migrate",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"),
        "{out:?}"
    );
}

/// OPML round trip through the CLI, nested outlines included.
#[test]
fn opml_import_and_export() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("feedfold.toml"), "").unwrap();
    std::fs::write(
        dir.path().join("in.opml"),
        r#"<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>
           <outline text="News"><outline text="A" title="Alpha" type="rss" xmlUrl="https://a.example/feed"/>
             <outline text="Deeper"><outline text="B" xmlUrl="https://b.example/rss.xml"/></outline></outline>
           </body></opml>"#,
    )
    .unwrap();
    let out = feedfold(dir.path(), &["import-opml", "in.opml"]);
    assert!(stdout(&out).contains("imported 2 feeds"), "{out:?}");
    let out = feedfold(dir.path(), &["import-opml", "in.opml"]);
    assert!(
        stdout(&out).contains("imported 0 feeds (2 already present)"),
        "{out:?}"
    );
    let out = feedfold(dir.path(), &["export-opml"]);
    let text = stdout(&out);
    assert!(text.contains("xmlUrl=\"https://a.example/feed\""), "{text}");
    assert!(
        text.contains("xmlUrl=\"https://b.example/rss.xml\""),
        "{text}"
    );
    let out = feedfold(dir.path(), &["feeds", "remove", "https://a.example/feed"]);
    assert!(out.status.success(), "{out:?}");
    let out = feedfold(dir.path(), &["feeds", "list"]);
    assert!(!stdout(&out).contains("a.example"), "{}", stdout(&out));
}

/// `inspect` prints every item of every corpus feed, without a database.
/// (That `poll --once` stores each corpus item exactly once on both backends
/// is checked by scripts/eval-corpus.sh in .ci/run, with a release build.)
#[test]
fn inspect_prints_every_corpus_item() {
    let Some(corpus) = crate::support::corpus_dir() else {
        return;
    };
    let truth = std::fs::read_to_string(corpus.join("truth.tsv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("feedfold.toml"), "").unwrap();
    for entry in std::fs::read_dir(corpus.join("feeds")).unwrap() {
        let f = entry.unwrap().path();
        let name = format!("feeds/{}", f.file_name().unwrap().to_string_lossy());
        let expected = truth
            .lines()
            .filter(|l| l.starts_with(&format!("{name}\t")))
            .count();
        let out = feedfold(dir.path(), &["inspect", f.to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{out:?}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let items = doc["items"].as_array().unwrap();
        assert_eq!(items.len(), expected, "{name}");
        assert!(
            items
                .iter()
                .all(|i| i["identity"].as_str().is_some_and(|s| !s.is_empty()))
        );
    }
    assert!(!dir.path().join("ff.db").exists(), "inspect stores nothing");
}
