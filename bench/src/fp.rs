//! Fingerprinting and feed-parsing throughput, against the simhash crate and
//! the Python tools people reach for (bench/peers.py), on the same texts and
//! files in the same run. Everything here runs on one thread: numbers are
//! per core.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use feedfold::parse::ParsedItem;
use feedfold::refresh::prepare;

use crate::corpus::{self, Article, FeedKind, Gen, GenConfig};
use crate::util::{num, ratio, row};

/// The parser's view of a generated article (the feed file round trip is
/// measured separately by `parse`).
pub fn parsed_item(a: &Article) -> ParsedItem {
    ParsedItem {
        identity: format!("guid:{}", a.guid),
        guid: Some(a.guid.clone()),
        url: Some(a.url.clone()),
        title: Some(a.title.clone()),
        content_html: (!a.html.is_empty()).then(|| a.html.clone()),
        published_at: Some(a.published),
        author: Some(Gen::site_name(a.feed)),
        ..Default::default()
    }
}

/// Runs `f` over all docs repeatedly for at least `min` and returns docs/s.
fn docs_per_sec(n_docs: usize, min: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut rounds = 0u64;
    while rounds == 0 || start.elapsed() < min {
        f();
        rounds += 1;
    }
    (rounds as f64 * n_docs as f64) / start.elapsed().as_secs_f64()
}

/// What the cross-language signal adds (issue 8): the anchor signature that
/// `prepare` computes per item (share of prepare's time), and the pair score
/// a translation decision runs once per eligible candidate, on profiles the
/// decision caches between items.
fn translation_costs(arts: &[Article], prepare_rate: f64, min: Duration) {
    use feedfold::dedup::xling;
    use feedfold::fingerprint::anchors;
    let texts: Vec<(String, String)> = arts
        .iter()
        .map(|a| (a.title.clone(), corpus::plain_text(a)))
        .collect();
    let sig = docs_per_sec(texts.len(), min, || {
        for (t, x) in &texts {
            black_box(anchors::extract(t, x));
            black_box(anchors::caseless_names(t, x));
        }
    });
    let profiles: Vec<anchors::Profile> =
        texts.iter().map(|(t, x)| anchors::profile(t, x)).collect();
    let weight = |_: &str| 1.0;
    let pairs = docs_per_sec(profiles.len() - 1, min, || {
        for w in profiles.windows(2) {
            black_box(xling::score_pair(&w[0], &w[1], &weight));
        }
    });
    println!(
        "  translation anchor signature: {} docs/s ({:.1} µs per item, {:.0}% of prepare); pair score: {} pairs/s ({:.1} µs, ×candidates per decision)",
        num(sig),
        1e6 / sig,
        100.0 * prepare_rate / sig,
        num(pairs),
        1e6 / pairs
    );
    row(
        "translation anchor signature, µs per item (share of prepare)",
        &format!("{:.1} ({:.0}%)", 1e6 / sig, 100.0 * prepare_rate / sig),
        "-",
        "-",
        "-",
    );
    row(
        "translation pair score, µs per candidate",
        &format!("{:.1}", 1e6 / pairs),
        "-",
        "-",
        "-",
    );
}

pub fn fingerprint(docs: usize, python: Option<&Path>, seed: u64) -> anyhow::Result<()> {
    let mut g = Gen::new(seed, GenConfig::default());
    // Bodies only: headline-only copies have nothing to fingerprint.
    let mut arts = Vec::with_capacity(docs);
    while arts.len() < docs {
        let a = g.next_article();
        if !a.html.is_empty() && a.html.len() >= 1_000 {
            arts.push(a);
        }
    }
    let bytes: usize = arts.iter().map(|a| a.html.len()).sum();
    println!(
        "fingerprint: {} docs, mean {:.1} KB HTML, langs {:?}",
        arts.len(),
        bytes as f64 / arts.len() as f64 / 1024.0,
        corpus::LANGS
    );
    // One prepare batch per feed, as a refresh does it.
    let mut by_feed: BTreeMap<usize, Vec<ParsedItem>> = BTreeMap::new();
    for a in &arts {
        by_feed.entry(a.feed).or_default().push(parsed_item(a));
    }
    let contexts: Vec<(prepare::FeedContext, Vec<ParsedItem>)> = by_feed
        .into_iter()
        .map(|(feed, items)| {
            (
                prepare::FeedContext {
                    feed_id: feed as i64 + 1,
                    feed_url: format!("https://news{feed}.example.com/feed"),
                    language: Some(Gen::feed_lang(feed).to_string()),
                },
                items,
            )
        })
        .collect();
    println!("  prepare output digest: {:016x}", output_digest(&contexts));
    let now = Utc::now();
    // Callgrind compares instruction counts, which need a fixed amount of
    // work rather than a fixed time: FEEDFOLD_FP_MIN_SECS=0 runs one round.
    let min = std::env::var("FEEDFOLD_FP_MIN_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(Duration::from_secs(2), Duration::from_secs_f64);

    let ours = docs_per_sec(arts.len(), min, || {
        for (ctx, items) in &contexts {
            black_box(prepare::items(ctx, items, &[], now));
        }
    });
    println!("  feedfold prepare+signature: {} docs/s", num(ours));
    translation_costs(&arts, ours, min);
    // For profiling prepare alone: stop before the comparison runs.
    if std::env::var_os("FEEDFOLD_FP_PREPARE_ONLY").is_some() {
        return Ok(());
    }

    let texts: Vec<String> = arts.iter().map(corpus::plain_text).collect();
    let step = simhash_step(&texts, min);
    if let Some(step) = step {
        println!("  feedfold simhash step alone: {} docs/s", num(step));
    }
    let crate_rate = docs_per_sec(texts.len(), min, || {
        for t in &texts {
            black_box(simhash::simhash(t));
        }
    });
    println!("  simhash crate 0.3: {} docs/s", num(crate_rate));

    let peers = match python {
        Some(py) => run_peer(py, "fingerprint", &texts_file(&texts)?, 0.0),
        None => Err(anyhow::anyhow!("no Python peers (venv not set up)")),
    };
    let target = "≥ 30× Python simhash; ≥ 5,000 docs/s/core";
    match &peers {
        Ok(v) => {
            let py_sim = v["simhash_docs_per_s"].as_f64().unwrap_or(f64::NAN);
            let py_min = v["minhash_docs_per_s"].as_f64().unwrap_or(f64::NAN);
            println!(
                "  python simhash: {} docs/s, datasketch MinHash(128): {} docs/s",
                num(py_sim),
                num(py_min)
            );
            row(
                "fingerprint docs/s/core (prepare+signature) vs Python simhash",
                &num(ours),
                &num(py_sim),
                &ratio(ours, py_sim),
                target,
            );
            row(
                "fingerprint docs/s/core (prepare+signature) vs datasketch MinHash128",
                &num(ours),
                &num(py_min),
                &ratio(ours, py_min),
                "-",
            );
            if let Some(step) = step {
                row(
                    "simhash step alone vs Python simhash",
                    &num(step),
                    &num(py_sim),
                    &ratio(step, py_sim),
                    "-",
                );
            }
        }
        Err(e) => {
            println!("  Python peers skipped: {e}");
            row(
                "fingerprint docs/s/core (prepare+signature)",
                &num(ours),
                "Python peers skipped",
                "-",
                target,
            );
        }
    }
    row(
        "fingerprint docs/s/core (prepare+signature) vs simhash crate",
        &num(ours),
        &num(crate_rate),
        &ratio(ours, crate_rate),
        "- (crate is word-unigram, unfit)",
    );
    if let Some(step) = step {
        row(
            "simhash step alone vs simhash crate",
            &num(step),
            &num(crate_rate),
            &ratio(step, crate_rate),
            "-",
        );
    }
    Ok(())
}

/// A digest of everything prepare produces for the benchmark's batches (and
/// of the anchor profile dedup builds from the same text), at a fixed fetch
/// time: a speed-up must leave it unchanged, since fingerprints, anchors and
/// keys are persisted and compared with what earlier versions stored.
fn sorted(m: &feedfold::fingerprint::anchors::WordMap) -> Vec<(&String, u32)> {
    let mut v: Vec<(&String, u32)> = m.iter().map(|(k, p)| (k, p.to_bits())).collect();
    v.sort_unstable();
    v
}

fn output_digest(contexts: &[(prepare::FeedContext, Vec<ParsedItem>)]) -> u64 {
    use chrono::TimeZone as _;
    let fetched = Utc
        .with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let mut h = String::new();
    for (ctx, items) in contexts {
        let p = prepare::items(ctx, items, &[], fetched);
        h.push_str(&format!("{:?}", p.boilerplate_shapes));
        for it in &p.items {
            h.push_str(&format!("{it:?} {:?}", it.signature.bands()));
            let pr = feedfold::fingerprint::anchors::profile(
                it.title.as_deref().unwrap_or(""),
                &it.content_text,
            );
            h.push_str(&format!(
                "{:?} {:?} {:?} {:?} {:?} {}",
                pr.anchors,
                sorted(&pr.nums),
                sorted(&pr.skels),
                sorted(&pr.words),
                sorted(&pr.links),
                pr.units.to_bits()
            ));
        }
    }
    feedfold::fingerprint::hash64(&h) as u64
}

/// feedfold's simhash over already-plain text: case folding + NFKC +
/// features + hashing, without HTML parsing, boilerplate or other keys.
fn simhash_step(texts: &[String], min: Duration) -> Option<f64> {
    Some(docs_per_sec(texts.len(), min, || {
        for t in texts {
            let folded = feedfold::normalize::fold_text(t);
            black_box(feedfold::fingerprint::simhash(&folded));
        }
    }))
}

fn texts_file(texts: &[String]) -> anyhow::Result<tempfile::NamedTempFile> {
    let mut f = tempfile::NamedTempFile::new()?;
    {
        let mut w = std::io::BufWriter::new(f.as_file_mut());
        for t in texts {
            writeln!(w, "{}", serde_json::Value::String(t.clone()))?;
        }
        w.flush()?;
    }
    Ok(f)
}

/// Runs bench/peers.py MODE FILE [SECONDS] and returns its JSON output.
fn run_peer(
    python: &Path,
    mode: &str,
    file: &tempfile::NamedTempFile,
    seconds: f64,
) -> anyhow::Result<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(mode)
        .arg(file.path())
        .arg(seconds.to_string())
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "peers.py {mode} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or("{}");
    serde_json::from_str(last).with_context(|| format!("peers.py printed {last}"))
}

pub fn parse(sizes: &[usize], python: Option<&Path>, seconds: f64) -> anyhow::Result<()> {
    let min = Duration::from_secs_f64(seconds);
    for kind in [FeedKind::Rss, FeedKind::Atom] {
        for &size in sizes {
            let (doc, n_items) = corpus::feed_of_size(kind, size, 0xfeed ^ size as u64);
            let bytes = doc.into_bytes();
            let label = format!("{} {}", kind.name(), human_bytes(bytes.len()));
            let mut items = 0;
            let start = Instant::now();
            let mut runs = 0u64;
            while runs == 0 || start.elapsed() < min {
                let text = feedfold::fetch::charset::decode(&bytes, None);
                match feedfold::parse::feed(&text, Some("https://news0.example.com/feed")) {
                    Ok(f) => items = f.items.len(),
                    Err(e) => anyhow::bail!("feedfold cannot parse its own generated {label}: {e}"),
                }
                runs += 1;
            }
            let secs = start.elapsed().as_secs_f64();
            let ours_fps = runs as f64 / secs;
            let ours_mbs = bytes.len() as f64 * ours_fps / 1e6;
            if items != n_items {
                println!("  note: {label}: feedfold saw {items} of {n_items} items");
            }
            println!(
                "parse {label} ({n_items} items): feedfold {ours_mbs:.1} MB/s, {ours_fps:.1} feeds/s"
            );
            let target = "≥ 10× feedparser";
            let peer = match python {
                Some(py) => {
                    let mut f = tempfile::NamedTempFile::new()?;
                    f.write_all(&bytes)?;
                    f.flush()?;
                    run_peer(py, "parse", &f, seconds)
                }
                None => Err(anyhow::anyhow!("no Python peers (venv not set up)")),
            };
            match peer {
                Ok(v) => {
                    let fps = v["feeds_per_s"].as_f64().unwrap_or(f64::NAN);
                    let py_items = v["items"].as_u64().unwrap_or(0);
                    let mbs = bytes.len() as f64 * fps / 1e6;
                    println!("  feedparser {mbs:.2} MB/s, {fps:.2} feeds/s ({py_items} items)");
                    row(
                        &format!("parse {label}: MB/s (feeds/s)"),
                        &format!("{ours_mbs:.1} ({ours_fps:.1})"),
                        &format!("{mbs:.2} ({fps:.2})"),
                        &ratio(ours_fps, fps),
                        target,
                    );
                }
                Err(e) => {
                    println!("  feedparser skipped: {e}");
                    row(
                        &format!("parse {label}: MB/s (feeds/s)"),
                        &format!("{ours_mbs:.1} ({ours_fps:.1})"),
                        "feedparser skipped",
                        "-",
                        target,
                    );
                }
            }
        }
    }
    Ok(())
}

pub fn human_bytes(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{:.1} MB", n as f64 / 1e6)
    } else {
        format!("{} KB", (n as f64 / 1e3).round())
    }
}
