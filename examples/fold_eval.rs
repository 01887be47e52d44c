//! In-memory folding harness for fast iteration on the dev corpus.
//!
//! Parses every corpus feed, prepares its items, then ingests them one by
//! one (in published order, and again in file order so that originals also
//! arrive after their copies), simulating the store's candidate search and
//! KeyStats exactly as the `Store::ingest_item` contract describes. Writes
//! an assignment TSV per order and prints score.py's report.
//!
//!     cargo run --release --example fold_eval [-- CORPUS_DIR] [--diag] [--measure]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, TimeZone, Utc};
use feedfold::dedup::{self, Candidate, Decision, FeedPolicy, FoldConfig, KeyStats, Subject};
use feedfold::refresh::prepare::{self, FeedContext};
use feedfold::store::NewItem;

const CAP: usize = 300;

struct Item {
    feed: String,
    key_guid: String,
    key_link: String,
    subject: Subject,
}

struct Stored {
    item: usize,
    story: i64,
    method: Option<String>,
}

/// Decodes feed bytes: the crate's decoder, with a fallback on the XML
/// declaration for legacy charsets while the decoder is a placeholder.
fn decode(bytes: &[u8]) -> String {
    let text = feedfold::fetch::charset::decode(bytes, None);
    if !text.contains('\u{FFFD}') {
        return text;
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
    let label = head
        .split("encoding=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("utf-8")
        .to_string();
    let enc = encoding_rs::Encoding::for_label(label.as_bytes()).unwrap_or(encoding_rs::UTF_8);
    let (s, _, _) = enc.decode(bytes);
    s.replacen(&format!("encoding=\"{label}\""), "encoding=\"UTF-8\"", 1)
}

fn load(dir: &Path, fetched_at: DateTime<Utc>) -> Vec<Item> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("feeds"))
        .expect("corpus feeds dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for (fi, path) in files.iter().enumerate() {
        let bytes = std::fs::read(path).expect("read feed");
        let text = decode(&bytes);
        let feed = match feedfold::parse::feed(&text, None) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                continue;
            }
        };
        let name = format!("feeds/{}", path.file_name().unwrap().to_string_lossy());
        let ctx = FeedContext {
            feed_id: fi as i64 + 1,
            feed_url: feed
                .site_url
                .clone()
                .unwrap_or_else(|| format!("https://{}.invalid/", fi)),
            language: feed.language.clone(),
        };
        let prepared = prepare::items(&ctx, &feed.items, &[], fetched_at);
        for (p, n) in feed.items.iter().zip(prepared.items) {
            out.push(Item {
                feed: name.clone(),
                key_guid: p.guid.clone().unwrap_or_default(),
                key_link: p.url.clone().unwrap_or_default(),
                subject: subject(ctx.feed_id, n),
            });
        }
    }
    out
}

fn subject(feed_id: i64, n: NewItem) -> Subject {
    Subject {
        feed_id,
        feed_policy: FeedPolicy::Normal,
        fold_translations: true,
        url: n.url,
        canonical_url: n.canonical_url,
        origin_url: n.origin_url,
        title: n.title,
        summary: n.summary,
        content_text: n.content_text,
        lang: n.lang,
        published_at: n.published_at,
        fetched_at: n.fetched_at,
        dated_at: n.dated_at,
        signature: n.signature,
    }
}

/// The store's candidate search and key statistics, as documented on
/// `Store::ingest_item`.
fn search(
    items: &[Item],
    stored: &[Stored],
    canon: &HashMap<i64, usize>,
    s: &Subject,
    cfg: &FoldConfig,
) -> (Vec<Candidate>, KeyStats) {
    let w = chrono::Duration::from_std(cfg.window).unwrap();
    let (lo, hi) = (s.dated_at - w, s.dated_at + w);
    let sig = &s.signature;
    let bands = sig.bands();
    let keys: HashSet<i64> = sig.keys.iter().copied().collect();
    let mut stats = KeyStats::default();
    let mut hits: Vec<(i64, usize)> = Vec::new();
    for (si, st) in stored.iter().enumerate() {
        let o = &items[st.item].subject;
        if o.dated_at < lo || o.dated_at > hi {
            continue;
        }
        stats.window_items += 1;
        for k in &o.signature.keys {
            if keys.contains(k) {
                *stats.counts.entry(*k).or_default() += 1;
            }
        }
        let eq = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        let hit = eq(&s.canonical_url, &o.canonical_url)
            || (sig.content_hash.is_some() && sig.content_hash == o.signature.content_hash)
            || eq(&s.origin_url, &o.canonical_url)
            || eq(&o.origin_url, &s.canonical_url)
            || bands.iter().zip(o.signature.bands()).any(|(a, b)| *a == b)
            || o.signature.keys.iter().any(|k| keys.contains(k));
        if hit {
            hits.push(((o.dated_at - s.dated_at).num_seconds().abs(), si));
        }
    }
    hits.sort();
    hits.truncate(CAP);
    let mut chosen: Vec<usize> = hits.into_iter().map(|(_, si)| si).collect();
    let stories: HashSet<i64> = chosen.iter().map(|&si| stored[si].story).collect();
    for st in stories {
        if let Some(&ci) = canon.get(&st)
            && !chosen.contains(&ci)
        {
            chosen.push(ci);
        }
    }
    let cands = chosen
        .into_iter()
        .map(|si| Candidate {
            item_id: si as i64,
            story_id: stored[si].story,
            is_canonical: canon.get(&stored[si].story) == Some(&si),
            fold_method: stored[si].method.clone(),
            vetoed: false,
            item: items[stored[si].item].subject.clone(),
        })
        .collect();
    (cands, stats)
}

fn run(
    items: &[Item],
    order: &[usize],
    cfg: &FoldConfig,
    diag: Option<&HashMap<String, (String, String)>>,
) -> (Vec<i64>, Vec<bool>) {
    let mut stored: Vec<Stored> = Vec::new();
    let mut canon: HashMap<i64, usize> = HashMap::new(); // story -> stored index
    let mut next_story = 1i64;
    let mut lat: Vec<u64> = Vec::with_capacity(order.len());
    let truth_of = |i: usize| {
        diag.and_then(|t| {
            t.get(&items[i].key_guid)
                .or_else(|| t.get(&items[i].key_link))
        })
    };
    for &i in order {
        let s = &items[i].subject;
        let (cands, stats) = search(items, &stored, &canon, s, cfg);
        let t = std::time::Instant::now();
        let decision = dedup::decide(s, &cands, &stats, cfg);
        lat.push(t.elapsed().as_micros() as u64);
        let si = stored.len();
        match decision {
            Decision::NewStory => {
                stored.push(Stored {
                    item: i,
                    story: next_story,
                    method: None,
                });
                canon.insert(next_story, si);
                next_story += 1;
            }
            Decision::Fold(f) => {
                if let (Some(d), Some(a)) = (diag, truth_of(i)) {
                    let m = stored[f.matched_item_id as usize].item;
                    if let Some(b) = d
                        .get(&items[m].key_guid)
                        .or_else(|| d.get(&items[m].key_link))
                        && a.0 != b.0
                    {
                        println!(
                            "FALSE {} {:?} d={:?} s={:?} [{}] {:?}\n   {} [{}] {:?}\n   -> {} [{}] {:?}",
                            f.method.as_str(),
                            f.detail,
                            f.distance,
                            f.score,
                            a.1,
                            s.title,
                            items[i].feed,
                            s.signature.text_len,
                            s.content_text.chars().take(150).collect::<String>(),
                            items[m].feed,
                            b.1,
                            items[m]
                                .subject
                                .content_text
                                .chars()
                                .take(150)
                                .collect::<String>()
                        );
                    }
                }
                if f.becomes_canonical && diag.is_some() {
                    let m = stored[canon[&f.story_id]].item;
                    println!(
                        "CANON {} [{}] {:?} <- replaces {} {:?}",
                        items[i].feed,
                        f.method.as_str(),
                        s.published_at,
                        items[m].feed,
                        items[m].subject.published_at
                    );
                }
                stored.push(Stored {
                    item: i,
                    story: f.story_id,
                    method: Some(f.method.as_str().to_string()),
                });
                if f.becomes_canonical {
                    canon.insert(f.story_id, si);
                }
            }
        }
    }
    lat.sort_unstable();
    println!(
        "decide latency (pure, in-memory candidates): p50 {} us, p99 {} us, max {} us",
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100],
        lat[lat.len() - 1]
    );
    if let Some(d) = diag {
        misses(items, &stored, d);
    }
    let mut story = vec![0i64; items.len()];
    let mut is_canon = vec![false; items.len()];
    for (si, st) in stored.iter().enumerate() {
        story[st.item] = st.story;
        is_canon[st.item] = canon.get(&st.story) == Some(&si);
    }
    (story, is_canon)
}

/// Prints same-language pairs of one true story left in different stories,
/// with the signals between them.
fn misses(items: &[Item], stored: &[Stored], truth: &HashMap<String, (String, String)>) {
    use feedfold::fingerprint;
    use feedfold::normalize::fold_text;
    let t = |i: usize| {
        truth
            .get(&items[i].key_guid)
            .or_else(|| truth.get(&items[i].key_link))
    };
    let mut story_of = vec![0i64; items.len()];
    for st in stored {
        story_of[st.item] = st.story;
    }
    let mut by_story: HashMap<String, Vec<usize>> = HashMap::new();
    for i in 0..items.len() {
        if let Some(x) = t(i) {
            by_story.entry(x.0.clone()).or_default().push(i);
        }
    }
    for (sid, members) in by_story {
        for (ai, &a) in members.iter().enumerate() {
            for &b in &members[ai + 1..] {
                let (sa, sb) = (&items[a].subject, &items[b].subject);
                if sa.lang != sb.lang || story_of[a] == story_of[b] {
                    continue;
                }
                let d = fingerprint::distance(sa.signature.simhash, sb.signature.simhash);
                let (r, c) = fingerprint::overlap(
                    &fingerprint::shingles(&fold_text(&sa.content_text)),
                    &fingerprint::shingles(&fold_text(&sb.content_text)),
                );
                println!(
                    "MISS {sid} d={d} res={r:.2} cont={c:.2} lead={} len={}/{} [{}] vs [{}]\n   A {:?}\n   B {:?}",
                    sa.signature.lead_hash.is_some()
                        && sa.signature.lead_hash == sb.signature.lead_hash,
                    sa.signature.text_len,
                    sb.signature.text_len,
                    t(a).unwrap().1,
                    t(b).unwrap().1,
                    sa.content_text.chars().take(300).collect::<String>(),
                    sb.content_text.chars().take(300).collect::<String>()
                );
            }
        }
    }
}

fn write_tsv(path: &Path, items: &[Item], story: &[i64], canon: &[bool]) {
    let mut s = String::from("guid\tlink\tassigned_story\tis_canonical\n");
    for (i, it) in items.iter().enumerate() {
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            it.key_guid, it.key_link, story[i], canon[i] as u8
        ));
    }
    std::fs::write(path, s).expect("write tsv");
}

fn score(dir: &Path, tsv: &Path) -> String {
    let out = Command::new("python3")
        .arg(dir.join("../score.py"))
        .arg(dir.join("truth.tsv"))
        .arg(tsv)
        .output()
        .expect("run score.py");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn load_truth(dir: &Path) -> HashMap<String, (String, String)> {
    let text = std::fs::read_to_string(dir.join("truth.tsv")).expect("truth");
    let mut m = HashMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() >= 5 {
            let v = (f[3].to_string(), format!("{} {} {}", f[4], f[5], f[0]));
            if !f[1].is_empty() {
                m.insert(f[1].to_string(), v.clone());
            }
            m.insert(f[2].to_string(), v);
        }
    }
    m
}

/// Measures how tiny texts collide: the first N tokens of different-story
/// articles, compared with the decision's verification.
fn measure(items: &[Item], truth: &HashMap<String, (String, String)>, cfg: &FoldConfig) {
    use feedfold::fingerprint;
    use feedfold::normalize::{fold_text, tokens};
    let story = |i: usize| {
        truth
            .get(&items[i].key_guid)
            .or_else(|| truth.get(&items[i].key_link))
            .map(|t| t.0.clone())
    };
    let mut by_lang: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        by_lang
            .entry(it.subject.lang.clone().unwrap_or_default())
            .or_default()
            .push(i);
    }
    println!(
        "tiny-text collisions: different-story pairs (same language) whose first N tokens pass verification"
    );
    println!("N\tpairs\tsimhash<=12&verified\tlead-style containment>=0.8");
    for n in [3usize, 5, 8, 10, 15, 20, 25, 30, 40] {
        let (mut pairs, mut sim, mut cont) = (0u64, 0u64, 0u64);
        for idx in by_lang.values() {
            let pre: Vec<(usize, String)> = idx
                .iter()
                .map(|&i| {
                    let f = fold_text(&items[i].subject.content_text);
                    (
                        i,
                        tokens(&f).into_iter().take(n).collect::<Vec<_>>().join(" "),
                    )
                })
                .filter(|(_, t)| !t.is_empty())
                .collect();
            let fp: Vec<(u64, Vec<u64>)> = pre
                .iter()
                .map(|(_, t)| (fingerprint::simhash(t), fingerprint::shingles(t)))
                .collect();
            for a in 0..pre.len() {
                for b in a + 1..pre.len() {
                    if story(pre[a].0) == story(pre[b].0)
                        || pre[a].1 == pre[b].1 && story(pre[a].0).is_none()
                    {
                        continue;
                    }
                    pairs += 1;
                    let d = fingerprint::distance(fp[a].0 as i64, fp[b].0 as i64);
                    let (r, c) = fingerprint::overlap(&fp[a].1, &fp[b].1);
                    if d <= cfg.max_distance
                        && (r >= cfg.min_resemblance || c >= cfg.min_containment)
                    {
                        sim += 1;
                    }
                    if c >= cfg.min_containment {
                        cont += 1;
                    }
                }
            }
        }
        println!("{n}\t{pairs}\t{sim}\t{cont}");
    }
    // Full texts: the closest different-story pairs by shingle overlap.
    let mut worst: Vec<(f64, f64, i32, u32, String, String)> = Vec::new();
    for idx in by_lang.values() {
        let sh: Vec<Vec<u64>> = idx
            .iter()
            .map(|&i| fingerprint::shingles(&fold_text(&items[i].subject.content_text)))
            .collect();
        for a in 0..idx.len() {
            for b in a + 1..idx.len() {
                let (ia, ib) = (idx[a], idx[b]);
                if story(ia) == story(ib) {
                    continue;
                }
                let (r, c) = fingerprint::overlap(&sh[a], &sh[b]);
                if c >= 0.5 || r >= 0.3 {
                    let sa = &items[ia].subject.signature;
                    let sb = &items[ib].subject.signature;
                    let rel = |i: usize| {
                        truth
                            .get(&items[i].key_guid)
                            .or_else(|| truth.get(&items[i].key_link))
                            .map(|t| t.1.clone())
                            .unwrap_or_default()
                    };
                    worst.push((
                        c,
                        r,
                        sa.text_len.min(sb.text_len),
                        fingerprint::distance(sa.simhash, sb.simhash),
                        rel(ia),
                        rel(ib),
                    ));
                }
            }
        }
    }
    worst.sort_by(|a, b| b.partial_cmp(a).unwrap());
    println!("closest different-story pairs (containment, resemblance, shorter len, distance):");
    for w in worst.iter().take(25) {
        println!(
            "  cont={:.2} res={:.2} len={} d={} {} | {}",
            w.0, w.1, w.2, w.3, w.4, w.5
        );
    }
    let mut lens: Vec<i32> = items.iter().map(|i| i.subject.signature.text_len).collect();
    lens.sort();
    println!(
        "text_len quantiles: min {} p5 {} p25 {} median {} (items {})",
        lens[0],
        lens[lens.len() / 20],
        lens[lens.len() / 4],
        lens[lens.len() / 2],
        lens.len()
    );
}

/// Fingerprint throughput on 2-5 KB texts, one thread.
fn bench(items: &[Item]) {
    use feedfold::fingerprint;
    use feedfold::normalize::fold_text;
    let texts: Vec<&Item> = items
        .iter()
        .filter(|i| (2000..=5000).contains(&i.subject.content_text.len()))
        .collect();
    let decor = fingerprint::headline::Decor::default();
    let rounds = 20;
    let t = std::time::Instant::now();
    let mut acc = 0i64;
    for _ in 0..rounds {
        for it in &texts {
            acc ^= fingerprint::simhash(&fold_text(&it.subject.content_text)) as i64;
        }
    }
    let simhash_rate = (rounds * texts.len()) as f64 / t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    for _ in 0..rounds {
        for it in &texts {
            let sig = prepare::signature(
                it.subject.title.as_deref(),
                &it.subject.content_text,
                None,
                &decor,
            );
            acc ^= sig.simhash;
        }
    }
    let sig_rate = (rounds * texts.len()) as f64 / t.elapsed().as_secs_f64();
    let mut by_lang: std::collections::BTreeMap<String, usize> = Default::default();
    for it in &texts {
        *by_lang
            .entry(it.subject.lang.clone().unwrap_or_default())
            .or_default() += 1;
    }
    println!(
        "bench: {} texts of 2-5 KB {:?}: simhash (fold+features) {:.0} docs/s, full signature {:.0} docs/s (one thread) [{acc:x}]",
        texts.len(),
        by_lang,
        simhash_rate,
        sig_rate
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/corpus/dev"));
    let diag = args.iter().any(|a| a == "--diag");
    let cfg = FoldConfig::default();
    let fetched_at = Utc.with_ymd_and_hms(2024, 3, 20, 0, 0, 0).unwrap();
    let t0 = std::time::Instant::now();
    let items = load(&dir, fetched_at);
    println!("prepared {} items in {:?}", items.len(), t0.elapsed());
    let truth = load_truth(&dir);
    if diag {
        let mut per: std::collections::BTreeMap<&str, (usize, usize, usize)> = Default::default();
        for it in &items {
            let e = per.entry(it.feed.as_str()).or_default();
            e.0 += 1;
            e.1 += it.subject.signature.republished as usize;
            e.2 += it.subject.origin_url.is_some() as usize;
        }
        for (f, (n, r, o)) in per {
            println!("FEED {f}: items {n} republished {r} origin {o}");
        }
    }
    if args.iter().any(|a| a == "--measure") {
        measure(&items, &truth, &cfg);
    }
    if args.iter().any(|a| a == "--bench") {
        bench(&items);
    }
    let mut published: Vec<usize> = (0..items.len()).collect();
    published.sort_by_key(|&i| {
        (
            items[i]
                .subject
                .published_at
                .unwrap_or(items[i].subject.dated_at),
            i,
        )
    });
    let file: Vec<usize> = (0..items.len()).collect();
    for (name, order) in [("published", published), ("file", file)] {
        let t = std::time::Instant::now();
        let (story, canon) = run(&items, &order, &cfg, diag.then_some(&truth));
        let el = t.elapsed();
        let out = std::env::temp_dir().join(format!("fold_eval_{name}.tsv"));
        write_tsv(&out, &items, &story, &canon);
        println!(
            "=== order: {name} ({} decisions in {el:?}) -> {}",
            items.len(),
            out.display()
        );
        println!("{}", score(&dir, &out));
    }
}
