//! Integration tests: parse. Decoding and parsing every corpus feed must
//! give exactly the items the ground truth lists, with stable identities.

use std::collections::{HashMap, HashSet};

use feedfold::fetch::charset;
use feedfold::parse;

use crate::support;

struct TruthRow {
    guid: String,
    link: String,
}

fn truth(dir: &std::path::Path) -> HashMap<String, Vec<TruthRow>> {
    let tsv = std::fs::read_to_string(dir.join("truth.tsv")).expect("truth.tsv readable");
    let mut lines = tsv.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("truth.tsv has no {name} column"))
    };
    let (file_col, guid_col, link_col) = (col("feed_file"), col("guid"), col("link"));
    let mut by_file: HashMap<String, Vec<TruthRow>> = HashMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        by_file
            .entry(f[file_col].to_string())
            .or_default()
            .push(TruthRow {
                guid: f[guid_col].to_string(),
                link: f[link_col].to_string(),
            });
    }
    by_file
}

fn parse_file(path: &std::path::Path) -> parse::ParsedFeed {
    let bytes = std::fs::read(path).expect("feed readable");
    let text = charset::decode(&bytes, None);
    parse::feed(&text, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn corpus_feeds_parse_to_the_truth() {
    let Some(dir) = support::corpus_dir() else {
        return;
    };
    let truth = truth(&dir);
    let mut files: Vec<_> = std::fs::read_dir(dir.join("feeds"))
        .expect("feeds dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus feeds");
    let entity =
        regex::Regex::new(r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#x[0-9A-Fa-f]+);").expect("regex");
    let mut total = 0;
    let (mut bytes_total, mut elapsed) = (0usize, std::time::Duration::ZERO);
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name");
        let key = format!("feeds/{name}");
        let rows = truth.get(&key).map(Vec::as_slice).unwrap_or_default();
        bytes_total += std::fs::metadata(path)
            .map(|m| m.len() as usize)
            .unwrap_or(0);
        let started = std::time::Instant::now();
        let parsed = parse_file(path);
        elapsed += started.elapsed();

        assert_eq!(parsed.items.len(), rows.len(), "{name}: item count");
        total += parsed.items.len();

        let guids: HashSet<&str> = parsed
            .items
            .iter()
            .filter_map(|i| i.guid.as_deref())
            .collect();
        let urls: HashSet<&str> = parsed
            .items
            .iter()
            .filter_map(|i| i.url.as_deref())
            .collect();
        for row in rows {
            if row.guid.is_empty() {
                assert!(
                    urls.contains(row.link.as_str()),
                    "{name}: no item with link {}",
                    row.link
                );
            } else {
                assert!(
                    guids.contains(row.guid.as_str()),
                    "{name}: no item with guid {}",
                    row.guid
                );
            }
        }
        // Items the truth lists without a guid must not have one invented.
        let truth_guids = rows.iter().filter(|r| !r.guid.is_empty()).count();
        assert_eq!(guids.len(), truth_guids, "{name}: guid count");

        let ids: Vec<&str> = parsed.items.iter().map(|i| i.identity.as_str()).collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{name}: duplicate identities");

        let again = parse_file(path);
        let ids_again: Vec<&str> = again.items.iter().map(|i| i.identity.as_str()).collect();
        assert_eq!(ids, ids_again, "{name}: identities changed between parses");

        for item in &parsed.items {
            let title = item.title.as_deref().unwrap_or_default();
            assert!(
                !entity.is_match(title),
                "{name}: raw entity in title {title:?}"
            );
            assert!(
                !title.contains('\u{fffd}'),
                "{name}: U+FFFD in title {title:?}"
            );
        }
        assert!(
            parsed.items.iter().all(|i| i.published_at.is_some()),
            "{name}: an item lost its date"
        );
    }
    eprintln!(
        "parsed {} feeds, {total} items, {:.1} MB in {:.0} ms (decode + parse, this build profile)",
        files.len(),
        bytes_total as f64 / 1e6,
        elapsed.as_secs_f64() * 1e3
    );
}

#[test]
fn legacy_charset_corpus_feeds_decode_to_readable_text() {
    let Some(dir) = support::corpus_dir() else {
        return;
    };
    let is_hangul = |c: char| ('\u{ac00}'..='\u{d7a3}').contains(&c);
    let is_cyrillic = |c: char| ('\u{0400}'..='\u{04ff}').contains(&c);
    let is_umlaut = |c: char| "äöüÄÖÜß".contains(c);
    type Case<'a> = (
        &'a str,
        &'a dyn Fn(char) -> bool,
        &'static encoding_rs::Encoding,
    );
    let table: &[Case] = &[
        ("seoul-daily.xml", &is_hangul, encoding_rs::EUC_KR),
        (
            "rheinland-kurier.xml",
            &is_umlaut,
            encoding_rs::WINDOWS_1252,
        ),
        ("volga-vestnik.xml", &is_cyrillic, encoding_rs::WINDOWS_1251),
    ];
    for (file, wanted, encoding) in table {
        let bytes = std::fs::read(dir.join("feeds").join(file)).expect("feed readable");
        assert_eq!(charset::sniff(&bytes, None), *encoding, "{file}");
        let text = charset::decode(&bytes, None);
        assert!(!text.contains('\u{fffd}'), "{file}: replacement characters");
        assert!(text.starts_with("<?xml"), "{file}");
        assert!(
            text[..text.find("?>").expect("declaration")].contains("UTF-8"),
            "{file}: declaration not rewritten"
        );
        let parsed = parse::feed(&text, None).expect("parses");
        let titles: String = parsed
            .items
            .iter()
            .filter_map(|i| i.title.as_deref())
            .collect();
        assert!(
            titles.chars().any(wanted),
            "{file}: no expected script in titles"
        );
        let bodies: String = parsed
            .items
            .iter()
            .filter_map(|i| i.content_html.as_deref().or(i.summary_html.as_deref()))
            .collect();
        assert!(
            bodies.chars().any(wanted),
            "{file}: no expected script in bodies"
        );
        assert!(!bodies.contains('\u{fffd}'), "{file}: U+FFFD in bodies");
    }
}
