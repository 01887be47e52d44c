//! Measures the cross-language signal on the labelled corpus.
//!
//!     cargo run --release --example xling_eval -- [CORPUS_DEV_DIR] [--keys] [--no-oracle] [--out assignment.tsv] [--verbose]
//!
//! Reads every feed under `feeds/`, takes each item's language from the feed
//! or the item (truth.tsv is used for scoring only), and reports:
//! 1. the pair score: AP and recall at precision >= 0.98/0.99 over every
//!    cross-language pair dated within 48 h;
//! 2. the full `decide_translation` rule, replaying items in date order
//!    against a simulated store: each item is offered all stored items of the
//!    window (or, with --keys, only those sharing an index key), with their
//!    stories. Same-language folding is another module's job, so by default
//!    it is simulated by an oracle (an item joins the story of an earlier
//!    same-language item of its true story); --no-oracle turns that off.
//!    Reports cross-language recall/precision, overall pairwise precision and
//!    false folds of negative-* items, and writes an assignment TSV that
//!    ../shared/corpus/score.py reads.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use feedfold::dedup::xling::{self, ProfileCache, decide_translation_cached, score_pair};
use feedfold::dedup::{Candidate, FoldConfig, KeyStats, Subject};
use feedfold::fingerprint::anchors::{self, Profile};

struct Item {
    feed: String,
    key: String,
    story: String,
    relation: String,
    subject: Subject,
    profile: Profile,
    keys: HashSet<i64>,
    anchor_keys: HashSet<i64>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .iter()
        .find(|a| !a.starts_with("--") && Path::new(a).is_dir())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/corpus/dev"));
    let keys_mode = args.iter().any(|a| a == "--keys");
    let oracle = !args.iter().any(|a| a == "--no-oracle");
    let verbose = args.iter().any(|a| a == "--verbose");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned();
    if !dir.join("truth.tsv").exists() {
        println!(
            "corpus not found at {} (pass the dev directory); skipping",
            dir.display()
        );
        return Ok(());
    }
    let t0 = std::time::Instant::now();
    let items = load(&dir)?;
    let load_time = t0.elapsed();
    println!(
        "items: {} (langs: {:?}); parse+profile {:.1} ms/item",
        items.len(),
        lang_counts(&items),
        load_time.as_secs_f64() * 1000.0 / items.len().max(1) as f64
    );
    // Ingest cost: anchors + index keys per item, repeated for a stable
    // figure (wall clock; run on an idle machine).
    let reps = 5;
    let t1 = std::time::Instant::now();
    let mut n_anchors = 0;
    let mut bytes = 0;
    for _ in 0..reps {
        for it in &items {
            let a = anchors::extract(
                it.subject.title.as_deref().unwrap_or(""),
                &it.subject.content_text,
            );
            n_anchors += anchors::index_keys(&a).len() + a.len();
            bytes += it.subject.content_text.len();
        }
    }
    let per = t1.elapsed().as_secs_f64() / (reps * items.len().max(1)) as f64;
    println!(
        "anchor extract+index_keys: {:.1} us/item ({:.0} items/s, mean text {:.1} KB), {:.1} anchors+keys/item",
        per * 1e6,
        1.0 / per,
        bytes as f64 / (reps * items.len().max(1)) as f64 / 1024.0,
        n_anchors as f64 / (reps * items.len().max(1)) as f64
    );
    if args.iter().any(|a| a == "--bench-only") {
        return Ok(());
    }
    pair_scores(&items, verbose);
    simulate(&items, keys_mode, oracle, verbose, out.as_deref());
    Ok(())
}

fn lang_counts(items: &[Item]) -> Vec<(String, usize)> {
    let mut m: HashMap<String, usize> = HashMap::new();
    for i in items {
        *m.entry(i.subject.lang.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort();
    v
}

/// feed file, key, truth, title, lang, html, date.
type RawItem = (
    String,
    String,
    Truth,
    String,
    Option<String>,
    String,
    DateTime<Utc>,
);

struct Truth {
    story: String,
    relation: String,
}

fn load(dir: &Path) -> anyhow::Result<Vec<Item>> {
    let truth_text = std::fs::read_to_string(dir.join("truth.tsv"))?;
    let mut by_guid: HashMap<(String, String), Truth> = HashMap::new();
    let mut by_link: HashMap<(String, String), Truth> = HashMap::new();
    for line in truth_text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 7 {
            continue;
        }
        let t = || Truth {
            story: f[3].to_string(),
            relation: f[4].to_string(),
        };
        if !f[1].is_empty() {
            by_guid.insert((f[0].to_string(), f[1].to_string()), t());
        }
        by_link.insert((f[0].to_string(), f[2].to_string()), t());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("feeds"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut raw: Vec<RawItem> = Vec::new();
    for (feed_id, path) in files.iter().enumerate() {
        let name = format!(
            "feeds/{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("")
        );
        let bytes = std::fs::read(path)?;
        let text = decode(&bytes);
        let parsed = match feedfold::parse::feed(&text, None) {
            Ok(p) => p,
            Err(e) => {
                println!("{name}: {e}");
                continue;
            }
        };
        for it in parsed.items {
            let guid = it.guid.clone().unwrap_or_default();
            let link = it.url.clone().unwrap_or_default();
            let truth = by_guid
                .remove(&(name.clone(), guid.clone()))
                .or_else(|| by_link.remove(&(name.clone(), link.clone())));
            let Some(truth) = truth else {
                println!("{name}: item {guid} / {link} not in truth");
                continue;
            };
            let key = if by_guid_has(&truth_text, &name, &guid) {
                guid
            } else {
                link
            };
            let html = it.content_html.or(it.summary_html).unwrap_or_default();
            let lang = it
                .language
                .or(parsed.language.clone())
                .map(|l| l.to_ascii_lowercase());
            let dated = it.published_at.or(it.updated_at).unwrap_or_default();
            raw.push((
                name.clone(),
                key,
                truth,
                it.title.unwrap_or_default(),
                lang,
                html,
                dated,
            ));
            let _ = feed_id;
        }
    }
    // Learned boilerplate: paragraphs repeated in 3+ items of one feed.
    let mut para_count: HashMap<(String, String), usize> = HashMap::new();
    let texts: Vec<Vec<String>> = raw.iter().map(|r| html_paragraphs(&r.5)).collect();
    for (r, paras) in raw.iter().zip(&texts) {
        let uniq: HashSet<&String> = paras.iter().collect();
        for p in uniq {
            *para_count.entry((r.0.clone(), p.clone())).or_default() += 1;
        }
    }
    let feed_ids: HashMap<String, i64> = {
        let mut names: Vec<&String> = raw.iter().map(|r| &r.0).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as i64))
            .collect()
    };
    let mut items = Vec::new();
    for (r, paras) in raw.into_iter().zip(texts) {
        let (feed, key, truth, title, lang, _html, dated) = r;
        let body: Vec<&str> = paras
            .iter()
            .filter(|p| {
                para_count
                    .get(&(feed.clone(), (*p).clone()))
                    .copied()
                    .unwrap_or(0)
                    < 3
            })
            .map(|s| s.as_str())
            .collect();
        let content_text = body.join("\n\n");
        let subject = Subject {
            feed_id: feed_ids.get(&feed).copied().unwrap_or(0),
            fold_translations: true,
            title: Some(title.clone()),
            content_text: content_text.clone(),
            lang: lang.map(|l| l.split(['-', '_']).next().unwrap_or("").to_string()),
            dated_at: dated,
            fetched_at: dated,
            published_at: Some(dated),
            ..Default::default()
        };
        let profile = anchors::profile(&title, &content_text);
        let list: Vec<String> = profile.anchors.iter().map(|a| a.anchor.clone()).collect();
        let keys: HashSet<i64> = anchors::index_keys(&list).into_iter().collect();
        let anchor_keys: HashSet<i64> = list.iter().map(|a| anchors::anchor_key(a)).collect();
        let mut subject = subject;
        subject.signature.anchors = Some(list.join(" "));
        items.push(Item {
            feed,
            key,
            story: truth.story,
            relation: truth.relation,
            subject,
            profile,
            keys,
            anchor_keys,
        });
    }
    Ok(items)
}

fn by_guid_has(truth: &str, feed: &str, guid: &str) -> bool {
    !guid.is_empty()
        && truth
            .lines()
            .any(|l| l.starts_with(feed) && l.split('\t').nth(1) == Some(guid))
}

/// Decodes a feed file: the declared XML encoding when it is not UTF-8
/// (rewriting the declaration), else the crate's decoder.
fn decode(bytes: &[u8]) -> String {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_string();
    let re = regex::Regex::new(r#"encoding=["']([A-Za-z0-9_.:-]+)["']"#).ok();
    if let Some(cap) = re.as_ref().and_then(|r| r.captures(&head)) {
        let label = cap[1].to_string();
        if let Some(enc) = encoding_rs::Encoding::for_label(label.as_bytes())
            && enc != encoding_rs::UTF_8
        {
            let (text, _, _) = enc.decode(bytes);
            return text.replacen(&cap[0], "encoding=\"UTF-8\"", 1);
        }
    }
    feedfold::fetch::charset::decode(bytes, None)
}

/// Plain-text paragraphs of an HTML fragment (a stand-in for the crate's
/// normalizer): block tags end paragraphs, nav/aside/script/style go.
fn html_paragraphs(html: &str) -> Vec<String> {
    let mut out = String::new();
    let mut rest = html;
    let mut skip_until: Option<String> = None;
    while let Some(lt) = rest.find('<') {
        if skip_until.is_none() {
            out.push_str(&rest[..lt]);
        }
        let Some(gt) = rest[lt..].find('>') else {
            break;
        };
        let tag = rest[lt + 1..lt + gt].trim().to_ascii_lowercase();
        rest = &rest[lt + gt + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if let Some(end) = &skip_until {
            if tag.starts_with('/') && &name == end {
                skip_until = None;
            }
            continue;
        }
        if !tag.starts_with('/') && matches!(name.as_str(), "nav" | "aside" | "script" | "style") {
            skip_until = Some(name);
            continue;
        }
        if matches!(
            name.as_str(),
            "p" | "div"
                | "br"
                | "li"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "blockquote"
                | "tr"
                | "section"
                | "article"
                | "header"
                | "footer"
                | "ul"
                | "ol"
                | "figure"
                | "figcaption"
                | "table"
        ) {
            out.push('\n');
        }
    }
    if skip_until.is_none() {
        out.push_str(rest);
    }
    let text = decode_entities(&out);
    text.split('\n')
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect()
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest
            .char_indices()
            .take(12)
            .find(|c| c.1 == ';')
            .map(|c| c.0)
        else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..semi];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                u32::from_str_radix(&ent[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// KeyStats as the store measures them for `subject`: for each of its index
/// keys, how many of `pool` (other items within 14 days) carry the anchor.
fn stats_for(items: &[Item], subject: usize, pool: &[usize]) -> KeyStats {
    let s = &items[subject];
    let window = chrono::Duration::days(14);
    let mut counts: HashMap<i64, i64> = s.keys.iter().map(|&k| (k, 0)).collect();
    let mut n = 0;
    for &j in pool {
        if j == subject || (items[j].subject.dated_at - s.subject.dated_at).abs() > window {
            continue;
        }
        n += 1;
        for (k, c) in counts.iter_mut() {
            if items[j].anchor_keys.contains(k) {
                *c += 1;
            }
        }
    }
    KeyStats {
        counts,
        window_items: n,
    }
}

fn pair_scores(items: &[Item], verbose: bool) {
    let all: Vec<usize> = (0..items.len()).collect();
    let stats: Vec<KeyStats> = (0..items.len())
        .map(|i| stats_for(items, i, &all))
        .collect();
    let win = chrono::Duration::hours(48);
    let mut scored: Vec<(f64, bool, usize, usize, xling::PairScore)> = Vec::new();
    let mut positives_total = 0;
    for i in 0..items.len() {
        for j in i + 1..items.len() {
            let (a, b) = (&items[i], &items[j]);
            if a.subject.lang == b.subject.lang {
                continue;
            }
            let pos = a.story == b.story;
            positives_total += pos as usize;
            if (a.subject.dated_at - b.subject.dated_at).abs() > win {
                continue;
            }
            let (subj, other) = if a.subject.dated_at >= b.subject.dated_at {
                (i, j)
            } else {
                (j, i)
            };
            let w = |x: &str| xling::weight(&stats[subj], x);
            let s = score_pair(&items[subj].profile, &items[other].profile, &w);
            scored.push((s.score, pos, subj, other, s));
        }
    }
    scored.sort_by(|x, y| y.0.total_cmp(&x.0));
    if let Ok(path) = std::env::var("XLING_DUMP") {
        let mut d = String::from(
            "score\tdice\torder\tshared\tspecific\tlabel\tunits_a\tunits_b\trel_a\trel_b\n",
        );
        for s in scored.iter().filter(|s| s.0 >= 0.1) {
            d.push_str(&format!(
                "{:.4}\t{:.4}\t{:.3}\t{}\t{}\t{}\t{:.0}\t{:.0}\t{}\t{}\n",
                s.0,
                s.4.dice,
                s.4.order,
                s.4.shared.len(),
                s.4.specific,
                s.1 as u8,
                items[s.2].profile.units,
                items[s.3].profile.units,
                items[s.2].relation,
                items[s.3].relation
            ));
        }
        let _ = std::fs::write(path, d);
    }
    let npos = scored.iter().filter(|s| s.1).count();
    let (mut tp, mut fp, mut ap) = (0usize, 0usize, 0.0);
    let mut best98 = (0.0, f64::NAN);
    let mut best99 = (0.0, f64::NAN);
    for s in &scored {
        if s.1 {
            tp += 1;
            ap += tp as f64 / (tp + fp) as f64;
        } else {
            fp += 1;
        }
        let p = tp as f64 / (tp + fp) as f64;
        let r = tp as f64 / npos.max(1) as f64;
        if p >= 0.98 && r > best98.0 {
            best98 = (r, s.0);
        }
        if p >= 0.99 && r > best99.0 {
            best99 = (r, s.0);
        }
    }
    println!("\n== pair score (cross-language pairs within 48h) ==");
    println!(
        "pairs {} positives {} (of {} cross-language true pairs at any distance)",
        scored.len(),
        npos,
        positives_total
    );
    println!("AP {:.3}", ap / npos.max(1) as f64);
    println!("recall at P>=0.98: {:.3} (t={:.3})", best98.0, best98.1);
    println!("recall at P>=0.99: {:.3} (t={:.3})", best99.0, best99.1);
    for t in [0.2, 0.25, 0.3, 0.35, 0.4] {
        let tp = scored.iter().filter(|s| s.0 >= t && s.1).count();
        let fp = scored.iter().filter(|s| s.0 >= t && !s.1).count();
        println!(
            "  t={t:.2}: P {:.3} R {:.3} (tp {tp}, fp {fp})",
            tp as f64 / (tp + fp).max(1) as f64,
            tp as f64 / npos.max(1) as f64
        );
    }
    // Per language pair at the rule threshold.
    let mut per: HashMap<String, (usize, usize, usize)> = HashMap::new();
    for s in &scored {
        let mut l = [
            items[s.2].subject.lang.clone().unwrap_or_default(),
            items[s.3].subject.lang.clone().unwrap_or_default(),
        ];
        l.sort();
        let e = per.entry(l.join("-")).or_default();
        if s.1 {
            e.2 += 1;
        }
        if s.0 >= xling::THRESHOLD {
            if s.1 { e.0 += 1 } else { e.1 += 1 }
        }
    }
    let mut per: Vec<_> = per.into_iter().collect();
    per.sort();
    for (k, (tp, fp, pos)) in per {
        println!(
            "  {k}: at t={:.2} R {:.3} ({tp}/{pos}), fp {fp}",
            xling::THRESHOLD,
            tp as f64 / pos.max(1) as f64
        );
    }
    if verbose {
        println!("top negatives:");
        for s in scored.iter().filter(|s| !s.1).take(15) {
            println!(
                "  {:.3} dice {:.3} order {:.2} {} [{}] vs {} [{}]: {}",
                s.0,
                s.4.dice,
                s.4.order,
                items[s.2].key,
                items[s.2].relation,
                items[s.3].key,
                items[s.3].relation,
                s.4.shared.join(" ")
            );
        }
    }
}

struct Stored {
    idx: usize,
    story: i64,
    fold_method: Option<String>,
}

fn simulate(items: &[Item], keys_mode: bool, oracle: bool, verbose: bool, out: Option<&str>) {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (items[i].subject.dated_at, i));
    let config = FoldConfig::default();
    let win = chrono::Duration::from_std(config.translation_window)
        .unwrap_or(chrono::Duration::hours(48));
    let mut stored: Vec<Stored> = Vec::new();
    let mut story_of: Vec<i64> = vec![-1; items.len()];
    let mut canonical: HashMap<i64, usize> = HashMap::new();
    let mut next_story = 0i64;
    let mut folds = 0;
    let mut wrong = Vec::new();
    let mut decide_time = std::time::Duration::ZERO;
    let mut decide_each: Vec<std::time::Duration> = Vec::new();
    // As a long-running folder would: profiles kept between decisions.
    let mut cache = ProfileCache::default();
    let mut cand_total = 0usize;
    for &i in &order {
        let it = &items[i];
        if oracle
            && let Some(s) = stored.iter().find(|s| {
                items[s.idx].subject.lang == it.subject.lang && items[s.idx].story == it.story
            })
        {
            let story = s.story;
            story_of[i] = story;
            stored.push(Stored {
                idx: i,
                story,
                fold_method: Some("oracle".into()),
            });
            continue;
        }
        let pool: Vec<usize> = stored.iter().map(|s| s.idx).collect();
        let stats = stats_for(items, i, &pool);
        let mut cands: Vec<Candidate> = Vec::new();
        let mut in_set = HashSet::new();
        for s in &stored {
            let o = &items[s.idx];
            if (o.subject.dated_at - it.subject.dated_at).abs() > win {
                continue;
            }
            if keys_mode && o.anchor_keys.is_disjoint(&it.keys) {
                continue;
            }
            in_set.insert(s.idx);
            cands.push(candidate(items, s, &canonical));
        }
        // The store adds the canonical item of every candidate's story.
        let stories: HashSet<i64> = cands.iter().map(|c| c.story_id).collect();
        for st in stories {
            if let Some(&ci) = canonical.get(&st)
                && !in_set.contains(&ci)
                && let Some(s) = stored.iter().find(|s| s.idx == ci)
            {
                cands.push(candidate(items, s, &canonical));
            }
        }
        cand_total += cands.len();
        let t = std::time::Instant::now();
        let fold = decide_translation_cached(&it.subject, &cands, &stats, &config, &mut cache);
        decide_time += t.elapsed();
        decide_each.push(t.elapsed());
        match fold {
            Some(f) => {
                folds += 1;
                let m = &items[f.matched_item_id as usize];
                if m.story != it.story {
                    wrong.push(format!(
                        "{} [{} {}] -> {} [{} {}] score {:.3}: {}",
                        it.key,
                        it.subject.lang.as_deref().unwrap_or(""),
                        it.relation,
                        m.key,
                        m.subject.lang.as_deref().unwrap_or(""),
                        m.relation,
                        f.score.unwrap_or(0.0),
                        f.detail.clone().unwrap_or_default()
                    ));
                }
                story_of[i] = f.story_id;
                if f.becomes_canonical {
                    canonical.insert(f.story_id, i);
                }
                stored.push(Stored {
                    idx: i,
                    story: f.story_id,
                    fold_method: Some("translation".into()),
                });
            }
            None => {
                story_of[i] = next_story;
                canonical.insert(next_story, i);
                stored.push(Stored {
                    idx: i,
                    story: next_story,
                    fold_method: None,
                });
                next_story += 1;
            }
        }
    }
    // Pairwise metrics.
    let (mut x_tp, mut x_fp, mut x_pos) = (0usize, 0usize, 0usize);
    let (mut s_tp, mut s_fp, mut s_pos) = (0usize, 0usize, 0usize);
    for i in 0..items.len() {
        for j in i + 1..items.len() {
            let truth = items[i].story == items[j].story;
            let pred = story_of[i] == story_of[j];
            let cross = items[i].subject.lang != items[j].subject.lang;
            let (tp, fp, pos) = if cross {
                (&mut x_tp, &mut x_fp, &mut x_pos)
            } else {
                (&mut s_tp, &mut s_fp, &mut s_pos)
            };
            *pos += truth as usize;
            *tp += (truth && pred) as usize;
            *fp += (!truth && pred) as usize;
        }
    }
    let mut neg_folded: HashMap<String, usize> = HashMap::new();
    for i in 0..items.len() {
        if !items[i].relation.starts_with("negative") {
            continue;
        }
        if (0..items.len())
            .any(|j| j != i && story_of[j] == story_of[i] && items[j].story != items[i].story)
        {
            *neg_folded.entry(items[i].relation.clone()).or_default() += 1;
        }
    }
    println!(
        "\n== decide_translation replay (candidates: {}, same-language: {}) ==",
        if keys_mode {
            "items sharing an index key"
        } else {
            "all stored items in the window"
        },
        if oracle { "oracle" } else { "none" }
    );
    println!(
        "translation folds {folds}, wrong {}; mean candidates {:.1}; decide {:.3} ms/item",
        wrong.len(),
        cand_total as f64 / items.len() as f64,
        decide_time.as_secs_f64() * 1000.0 / items.len() as f64
    );
    decide_each.sort();
    let pct = |q: f64| {
        decide_each
            .get(((decide_each.len() as f64 - 1.0) * q) as usize)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    println!(
        "decide_translation latency over {} calls: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        decide_each.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "xling_R {:.3} xling_P {:.3} (tp {x_tp} fp {x_fp} of {x_pos})",
        x_tp as f64 / x_pos.max(1) as f64,
        x_tp as f64 / (x_tp + x_fp).max(1) as f64
    );
    println!(
        "same-language R {:.3} P {:.3}; overall pairwise P {:.4}",
        s_tp as f64 / s_pos.max(1) as f64,
        s_tp as f64 / (s_tp + s_fp).max(1) as f64,
        (s_tp + x_tp) as f64 / (s_tp + x_tp + s_fp + x_fp).max(1) as f64
    );
    println!("negatives folded: {neg_folded:?}");
    if verbose || wrong.len() <= 20 {
        for w in &wrong {
            println!("  WRONG {w}");
        }
    }
    if let Some(path) = out {
        let mut tsv = String::from("feed_file\tkey\tassigned_story\tis_canonical\n");
        for (i, it) in items.iter().enumerate() {
            let canon = canonical.get(&story_of[i]) == Some(&i);
            tsv.push_str(&format!(
                "{}\t{}\tS{}\t{}\n",
                it.feed, it.key, story_of[i], canon as u8
            ));
        }
        match std::fs::write(path, tsv) {
            Ok(()) => println!("assignment written to {path}"),
            Err(e) => println!("cannot write {path}: {e}"),
        }
    }
}

fn candidate(items: &[Item], s: &Stored, canonical: &HashMap<i64, usize>) -> Candidate {
    Candidate {
        item_id: s.idx as i64,
        story_id: s.story,
        is_canonical: canonical.get(&s.story) == Some(&s.idx),
        fold_method: s.fold_method.clone(),
        vetoed: false,
        item: items[s.idx].subject.clone(),
    }
}
