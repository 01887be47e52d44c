//! Turns a feed's parsed items into `NewItem`s ready to store: clean text
//! (per-feed boilerplate removed), canonical and origin URLs, language, the
//! date used for windows, and the full fold signature. Works on a whole
//! batch because boilerplate and headline decorations are learned from what
//! the feed's items have in common. Pure: no I/O, cannot fail.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};

use crate::dedup::Signature;
use crate::fingerprint::{self, headline};
use crate::normalize::boilerplate::{self, is_folded_title_echo};
use crate::normalize::html::{self, Doc, join_blocks};
use crate::normalize::origin::{OriginContext, origin_link};
use crate::normalize::text::{fold_text, guess_lang, token_count};
use crate::normalize::url::{canonical_url, is_front_page, same_site, site_of};
use crate::parse::ParsedItem;
use crate::store::NewItem;

/// A published time this far past the fetch time is a wrong clock, not a
/// scheduled post; such items are dated when they were fetched.
const FUTURE_SKEW_MINUTES: i64 = 15;

/// Stripped template text shorter than this is a copyright line, which
/// originals carry too; longer is a republisher's attribution or chrome.
const MARK_MIN_TOKENS: usize = 12;

/// The feed the batch came from.
#[derive(Debug, Clone, Default)]
pub struct FeedContext {
    pub feed_id: i64,
    pub feed_url: String,
    pub language: Option<String>,
}

/// Items ready to store, and the boilerplate shapes the batch taught us.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub items: Vec<NewItem>,
    /// Template paragraph shapes and headline decorations seen in this batch;
    /// pass them to `Store::remember_boilerplate`.
    pub boilerplate_shapes: Vec<i64>,
}

struct Work<'a> {
    parsed: &'a ParsedItem,
    title: Option<String>,
    folded_title: String,
    body: Doc,
    /// `fold_text` of each body block, shared by shapes, title echoes and
    /// mark counts.
    body_folded: Vec<String>,
    body_shapes: Vec<Option<i64>>,
    summary: Doc,
    summary_folded: Vec<String>,
    summary_shapes: Vec<Option<i64>>,
}

fn plain(s: &str) -> String {
    if s.contains('<') || s.contains('&') {
        html::html_to_text(s).replace("\n\n", " ")
    } else {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// Primary language subtag, lowercased ("en-US" → "en").
fn norm_lang(l: &str) -> Option<String> {
    let p = l.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    (p.len() >= 2 && p.len() <= 3 && p.chars().all(|c| c.is_ascii_alphabetic())).then_some(p)
}

/// The kept paragraphs of a document, and (for each, in the same order) its
/// `fold_text`, taken from `folded` unless ungluing rewrote the paragraph.
struct Cleaned<'a> {
    blocks: Vec<String>,
    folded: Vec<Cow<'a, str>>,
}

impl Cleaned<'_> {
    /// `fold_text` of `join_blocks(self.blocks)`: NFKC and lowercasing act
    /// on each paragraph alone, since the blank line between two is a
    /// normalization boundary and no casing context reaches across it.
    fn folded_text(&self) -> String {
        join_blocks(
            self.blocks
                .iter()
                .zip(&self.folded)
                .filter(|(b, _)| !b.is_empty())
                .map(|(_, f)| f.as_ref()),
        )
    }
}

fn clean<'a>(
    doc: &Doc,
    folded: &'a [String],
    shapes: &[Option<i64>],
    template: &HashSet<i64>,
    folded_title: &str,
) -> (Cleaned<'a>, Vec<bool>) {
    let keep = boilerplate::keep_mask(&doc.blocks, shapes, template);
    let is_template: Vec<bool> = shapes
        .iter()
        .map(|s| s.is_some_and(|s| template.contains(&s)))
        .collect();
    let kept: Vec<usize> = (0..doc.blocks.len())
        .filter(|&i| keep[i] && !is_folded_title_echo(&folded[i], folded_title))
        .collect();
    let mut out: Vec<String> = kept.iter().map(|&i| doc.blocks[i].text.clone()).collect();
    boilerplate::unglue_repeated_lead(&mut out);
    // Ungluing drops paragraphs from the front only.
    let kept = &kept[kept.len() - out.len()..];
    let folded = out
        .iter()
        .zip(kept)
        .map(|(b, &i)| {
            if *b == doc.blocks[i].text {
                Cow::Borrowed(folded[i].as_str())
            } else {
                Cow::Owned(fold_text(b))
            }
        })
        .collect();
    (
        Cleaned {
            blocks: out,
            folded,
        },
        is_template,
    )
}

/// Prepares a batch of one feed's items. `learned_boilerplate` is what
/// `Store::feed_boilerplate` returned for the feed.
pub fn items(
    feed: &FeedContext,
    parsed: &[ParsedItem],
    learned_boilerplate: &[i64],
    fetched_at: DateTime<Utc>,
) -> Prepared {
    let feed_site = site_of(&feed.feed_url);
    let work: Vec<Work<'_>> = parsed
        .iter()
        .map(|p| {
            let title = p.title.as_deref().map(plain).filter(|t| !t.is_empty());
            let folded_title = title.as_deref().map(fold_text).unwrap_or_default();
            let body = p
                .content_html
                .as_deref()
                .map(html::parse)
                .unwrap_or_default();
            let summary = p
                .summary_html
                .as_deref()
                .map(html::parse)
                .unwrap_or_default();
            let fold_blocks =
                |d: &Doc| -> Vec<String> { d.blocks.iter().map(|b| fold_text(&b.text)).collect() };
            let (body_folded, summary_folded) = (fold_blocks(&body), fold_blocks(&summary));
            let shapes_of = |folded: &[String]| -> Vec<Option<i64>> {
                folded
                    .iter()
                    .map(|f| boilerplate::shape_of_folded(f, &folded_title))
                    .collect()
            };
            let body_shapes = shapes_of(&body_folded);
            let summary_shapes = shapes_of(&summary_folded);
            Work {
                parsed: p,
                title,
                folded_title,
                body,
                body_folded,
                body_shapes,
                summary,
                summary_folded,
                summary_shapes,
            }
        })
        .collect();

    // Template paragraphs: recurring in this batch, or learned before.
    let per_item: Vec<Vec<Option<i64>>> = work
        .iter()
        .map(|w| {
            w.body_shapes
                .iter()
                .chain(&w.summary_shapes)
                .copied()
                .collect()
        })
        .collect();
    let recurring = boilerplate::recurring_shapes(&per_item);
    let mut template: HashSet<i64> = recurring.clone();
    template.extend(learned_boilerplate.iter().copied());

    // Headline decorations.
    let titles: Vec<&str> = work.iter().filter_map(|w| w.title.as_deref()).collect();
    let decor = headline::learn(&titles, learned_boilerplate);

    // An aggregator links off-site to many sites; a feed served from a CDN
    // host links to one.
    let item_sites: HashSet<String> = parsed
        .iter()
        .filter_map(|p| p.url.as_deref().and_then(site_of))
        .collect();
    let aggregator = item_sites.len() >= 2;

    // Republisher marks: template text stripped from an item beyond a
    // copyright line (attribution footers, disclaimers, page chrome). When a
    // third of a feed's items carry it, the feed republishes and all its
    // items are marked.
    let marked: Vec<bool> = work
        .iter()
        .map(|w| {
            let keep = boilerplate::keep_mask(&w.body.blocks, &w.body_shapes, &template);
            let stripped: usize = w
                .body_folded
                .iter()
                .zip(&keep)
                .filter(|(_, k)| !**k)
                .map(|(f, _)| token_count(f))
                .sum();
            stripped >= MARK_MIN_TOKENS
        })
        .collect();
    let templated_feed =
        marked.len() >= 3 && marked.iter().filter(|&&t| t).count() * 3 >= marked.len();

    let mut items = Vec::with_capacity(work.len());
    for (idx, w) in work.iter().enumerate() {
        let p = w.parsed;
        let (body_blocks, body_tmpl) = clean(
            &w.body,
            &w.body_folded,
            &w.body_shapes,
            &template,
            &w.folded_title,
        );
        let (summary_blocks, _) = clean(
            &w.summary,
            &w.summary_folded,
            &w.summary_shapes,
            &template,
            &w.folded_title,
        );
        let summary_text = join_blocks(summary_blocks.blocks.iter().map(String::as_str));
        let mut content_text = join_blocks(body_blocks.blocks.iter().map(String::as_str));
        let folded_content = if content_text.is_empty() {
            content_text = summary_text.clone();
            summary_blocks.folded_text()
        } else {
            body_blocks.folded_text()
        };
        let canonical = p.url.as_deref().and_then(canonical_url);
        let item_site = canonical.as_deref().and_then(site_of);

        // Origin: a credit link in the content, else (for an aggregator) the
        // off-site article the item points to.
        let ctx = OriginContext {
            own: canonical.as_deref(),
            feed_site: feed_site.as_deref(),
            folded_title: &w.folded_title,
        };
        let mut origin = origin_link(&w.body, &body_tmpl, &ctx);
        if origin.is_none() {
            let s_tmpl: Vec<bool> = w
                .summary_shapes
                .iter()
                .map(|s| s.is_some_and(|s| template.contains(&s)))
                .collect();
            origin = origin_link(&w.summary, &s_tmpl, &ctx);
        }
        if origin.is_none()
            && aggregator
            && let (Some(c), Some(is), Some(fs)) = (&canonical, &item_site, &feed_site)
            && !same_site(is, fs)
            && !is_front_page(c)
        {
            origin = Some(c.clone());
        }

        let lang = p
            .language
            .as_deref()
            .and_then(norm_lang)
            .or_else(|| feed.language.as_deref().and_then(norm_lang))
            .or_else(|| guess_lang(&content_text).map(str::to_string));

        let dated_at = match p.published_at {
            Some(t) if t <= fetched_at + Duration::minutes(FUTURE_SKEW_MINUTES) => t,
            _ => fetched_at,
        };

        let revision_hash = fingerprint::hash64(&format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            w.title.as_deref().unwrap_or(""),
            summary_text,
            content_text,
            p.url.as_deref().unwrap_or(""),
            p.published_at.map(|t| t.to_rfc3339()).unwrap_or_default()
        ));

        let off_site_pointer = origin.is_some() && origin == canonical;
        let mut signature = signature_of_folded(
            w.title.as_deref(),
            &content_text,
            &folded_content,
            item_site.as_deref(),
            &decor,
        );
        signature.republished = marked[idx] || templated_feed || off_site_pointer;
        items.push(NewItem {
            identity: p.identity.clone(),
            guid: p.guid.clone(),
            url: p.url.clone(),
            canonical_url: canonical,
            origin_url: origin,
            title: w.title.clone(),
            summary: (!summary_text.is_empty()).then_some(summary_text),
            content_text,
            author: p.author.clone(),
            lang,
            published_at: p.published_at,
            updated_at: p.updated_at,
            fetched_at,
            dated_at,
            revision_hash,
            signature,
        });
    }
    let mut shapes: Vec<i64> = recurring.into_iter().collect();
    shapes.extend(headline::decor_shapes(&decor));
    shapes.sort_unstable();
    shapes.dedup();
    Prepared {
        items,
        boilerplate_shapes: shapes,
    }
}

/// The fold signature of one item's clean text and headline.
pub fn signature(
    title: Option<&str>,
    content_text: &str,
    site: Option<&str>,
    decor: &headline::Decor,
) -> Signature {
    signature_of_folded(title, content_text, &fold_text(content_text), site, decor)
}

/// `signature` for content whose `fold_text` is already at hand: a batch
/// has folded every paragraph for its shapes.
fn signature_of_folded(
    title: Option<&str>,
    content_text: &str,
    folded: &str,
    site: Option<&str>,
    decor: &headline::Decor,
) -> Signature {
    let body = fingerprint::body_prints(folded);
    let (simhash, lead_hash, content_hash) =
        (body.simhash as i64, body.lead_hash, body.content_hash);
    let text_len = body.text_len.min(i32::MAX as usize) as i32;
    let headline_key = title
        .map(|t| headline::normalize(t, site, decor))
        .filter(|k| !k.is_empty());
    let headline_hash = headline_key
        .as_deref()
        .map(|k| fingerprint::hash64(&format!("headline\u{1}{k}")));
    let mut anchors = fingerprint::anchors::extract(title.unwrap_or(""), content_text);
    for name in fingerprint::anchors::caseless_names(title.unwrap_or(""), content_text) {
        if !anchors.contains(&name) {
            anchors.push(name);
        }
    }
    let mut keys = body.text_keys();
    if let Some(h) = headline_hash {
        keys.push(fingerprint::key("headline", h));
    }
    keys.extend(fingerprint::anchors::index_keys(&anchors));
    keys.sort_unstable();
    keys.dedup();
    Signature {
        fp_version: fingerprint::FP_VERSION,
        simhash,
        lead_hash,
        content_hash,
        headline_key,
        headline_hash,
        text_len,
        anchors: (!anchors.is_empty()).then(|| anchors.join(" ")),
        keys,
        republished: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
    }

    fn item(
        id: &str,
        html: Option<&str>,
        summary: Option<&str>,
        published: Option<DateTime<Utc>>,
    ) -> ParsedItem {
        ParsedItem {
            identity: format!("guid:{id}"),
            guid: Some(id.into()),
            url: Some(format!("https://site.example/a/{id}?utm_source=rss")),
            title: Some(format!("Title number {id} &amp; more")),
            content_html: html.map(str::to_string),
            summary_html: summary.map(str::to_string),
            published_at: published,
            ..Default::default()
        }
    }

    fn ctx(lang: Option<&str>) -> FeedContext {
        FeedContext {
            feed_id: 1,
            feed_url: "https://site.example/feed".into(),
            language: lang.map(str::to_string),
        }
    }

    #[test]
    fn fields_and_dates() {
        let future = now() + Duration::days(2);
        let items = [
            item(
                "1",
                Some("<p>Body text here.</p>"),
                Some("<p>Sum</p>"),
                Some(now() - Duration::hours(1)),
            ),
            item(
                "2",
                None,
                Some("<p>Only a summary, which becomes the content.</p>"),
                Some(future),
            ),
            item(
                "3",
                Some("<p>서울 증시가 이틀 연속 상승 마감했다</p>"),
                None,
                None,
            ),
        ];
        let p = items_fn(&items, None);
        assert_eq!(p[0].title.as_deref(), Some("Title number 1 & more"));
        assert_eq!(
            p[0].canonical_url.as_deref(),
            Some("https://site.example/a/1")
        );
        assert_eq!(p[0].content_text, "Body text here.");
        assert_eq!(p[0].summary.as_deref(), Some("Sum"));
        assert_eq!(p[0].dated_at, now() - Duration::hours(1));
        assert_eq!(
            p[1].content_text,
            "Only a summary, which becomes the content."
        );
        assert_eq!(
            p[1].dated_at,
            now(),
            "future dates are clamped to fetch time"
        );
        assert_eq!(p[2].dated_at, now(), "missing dates use fetch time");
        assert_eq!(p[2].lang.as_deref(), Some("ko"), "script guess");
        assert_eq!(p[0].lang, None, "Latin text is not guessed");
        assert_eq!(
            items_fn(&items, Some("en-US"))[0].lang.as_deref(),
            Some("en")
        );
        assert_ne!(p[0].revision_hash, p[1].revision_hash);
        assert_eq!(p[0].signature.fp_version, fingerprint::FP_VERSION);
        assert!(p[0].origin_url.is_none());
    }

    fn items_fn(parsed: &[ParsedItem], lang: Option<&str>) -> Vec<NewItem> {
        items(&ctx(lang), parsed, &[], now()).items
    }

    #[test]
    fn boilerplate_is_learned_and_remembered() {
        let body = |n: &str| {
            format!(
                "<p>Distinct article body number {n} with its own words about topic {n}.</p><p>Copyright 2024 Site Example. All rights reserved. Reproduction prohibited without written consent of the editors.</p>"
            )
        };
        let batch: Vec<ParsedItem> = ["alpha", "beta", "gamma"]
            .iter()
            .map(|n| item(n, Some(&body(n)), None, Some(now())))
            .collect();
        let p = items(&ctx(None), &batch, &[], now());
        assert!(p.items.iter().all(|i| !i.content_text.contains("rights")));
        assert!(!p.boilerplate_shapes.is_empty());
        // A later single item is cleaned with the remembered shapes.
        let later = items(
            &ctx(None),
            &[item("delta", Some(&body("delta")), None, Some(now()))],
            &p.boilerplate_shapes,
            now(),
        );
        assert!(!later.items[0].content_text.contains("rights"));
        // Without them, one item alone teaches nothing.
        let alone = items(
            &ctx(None),
            &[item("delta", Some(&body("delta")), None, Some(now()))],
            &[],
            now(),
        );
        assert!(alone.items[0].content_text.contains("rights"));
    }

    #[test]
    fn glued_summary_is_removed() {
        let html = "<p>The museum will reopen in June.The museum will reopen in June. Tickets go on sale next week.</p>";
        let p = items_fn(&[item("1", Some(html), None, Some(now()))], None);
        assert_eq!(
            p[0].content_text,
            "The museum will reopen in June. Tickets go on sale next week."
        );
    }

    /// The signature built from the batch's folded paragraphs is the one
    /// built from the joined text, whatever sits at paragraph edges.
    #[test]
    fn folded_paragraphs_give_the_signature_of_the_text() {
        let bodies = [
            Some("<p>ΟΔΟΣ</p><p>Σ.</p><p>.Σ ΑΣ</p><p>ＦＵＬＬ　ＷＩＤＴＨ…</p>"),
            Some(
                "<p>The museum will reopen in June.The museum will reopen in June. Tickets go on sale.</p><p>e\u{301} Ａ①</p>",
            ),
            Some(
                "<p>Lead sentence repeated here.</p><p>Lead sentence repeated here. Then more, 4,500 tonnes.</p>",
            ),
            None,
        ];
        let batch: Vec<ParsedItem> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                item(
                    &i.to_string(),
                    *b,
                    Some("<p>Résumé ΣΑΣ</p><p>中文，标点</p>"),
                    Some(now()),
                )
            })
            .collect();
        let p = items(&ctx(None), &batch, &[], now());
        let titles: Vec<&str> = p.items.iter().filter_map(|i| i.title.as_deref()).collect();
        let decor = headline::learn(&titles, &[]);
        for it in &p.items {
            let site = it.canonical_url.as_deref().and_then(site_of);
            let mut want = signature(
                it.title.as_deref(),
                &it.content_text,
                site.as_deref(),
                &decor,
            );
            want.republished = it.signature.republished;
            assert_eq!(it.signature, want, "{}", it.content_text);
        }
    }

    /// Output pinning: a digest of every field `items` produces (and of the
    /// anchor profile the cross-language score builds from the same text)
    /// over a generated multilingual batch set. Fingerprints, anchors and
    /// keys are persisted and compared with what older versions stored, so a
    /// rewrite for speed must leave this digest as it is. A deliberate change
    /// updates it, and bumps FP_VERSION when a stored fingerprint changes
    /// meaning (Hangul stand-in names only added anchors and index keys).
    mod pinned {
        use super::*;
        use crate::fingerprint::anchors;
        use crate::parse::escape_html;

        /// The digest of `corpus()` prepared batch after batch.
        const PINNED: u64 = 0x2cef_5356_0338_1132;

        /// splitmix64: a generator whose output no dependency upgrade changes.
        struct Rng(u64);

        impl Rng {
            fn next(&mut self) -> u64 {
                self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = self.0;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            }
            fn below(&mut self, n: usize) -> usize {
                (self.next() % n as u64) as usize
            }
            fn chance(&mut self, percent: u64) -> bool {
                self.next() % 100 < percent
            }
            fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
                list[self.below(list.len())]
            }
        }

        const LANGS: &[&str] = &["en", "de", "fr", "ru", "ko", "zh", "ja", "el", "cs"];

        fn syllables(lang: &str) -> &'static [&'static str] {
            match lang {
                "de" => &[
                    "ber", "ge", "schä", "lung", "wir", "straß", "ü", "kon", "ten", "ei",
                ],
                "fr" => &[
                    "ré", "pon", "dé", "tion", "mè", "ça", "rai", "œu", "vre", "lé",
                ],
                "cs" => &["pře", "dů", "ná", "vr", "ho", "čí", "šť", "ky", "ně", "lo"],
                "ru" => &[
                    "при", "ва", "ство", "ко", "ни", "ель", "ёж", "щи", "ры", "ют",
                ],
                "el" => &["κα", "τα", "ση", "μέ", "νο", "πρ", "ώ", "λη", "ει", "ος"],
                _ => &[
                    "ta", "ben", "mor", "al", "ing", "ex", "qu", "ri", "so", "the",
                ],
            }
        }

        /// One word in the language's script; capitalized words become names.
        fn word(r: &mut Rng, lang: &str, capital: bool) -> String {
            let cjk = |lo: u32, span: u32, n: usize, r: &mut Rng| -> String {
                (0..n)
                    .filter_map(|_| char::from_u32(lo + (r.next() % span as u64) as u32))
                    .collect()
            };
            match lang {
                "ko" => cjk(0xAC00, 11172, 1 + r.below(4), r),
                "zh" => cjk(0x4E00, 0x5000, 1 + r.below(3), r),
                "ja" => {
                    let han = cjk(0x4E00, 0x800, 1 + r.below(2), r);
                    let kana = if r.chance(50) {
                        cjk(0x3041, 0x56, 1 + r.below(3), r)
                    } else {
                        cjk(0x30A1, 0x59, 2 + r.below(3), r)
                    };
                    format!("{han}{kana}")
                }
                _ => {
                    let syl = syllables(lang);
                    let w: String = (0..1 + r.below(3)).map(|_| r.pick(syl)).collect();
                    if !capital {
                        return w;
                    }
                    let mut cs = w.chars();
                    match cs.next() {
                        Some(c) => c.to_uppercase().chain(cs).collect(),
                        None => w,
                    }
                }
            }
        }

        /// Tokens anchors and shapes treat specially.
        fn special(r: &mut Rng, lang: &str) -> String {
            let n = r.below(9999) + 1;
            match r.below(24) {
                0 => format!("{},{:03}.{}", n, r.below(1000), r.below(10)),
                1 => format!("{}.{:03},{}", n % 999 + 1, r.below(1000), r.below(100)),
                2 => format!("{} {:03}", n % 99 + 1, r.below(1000)),
                3 => format!(
                    "{} {}",
                    n % 500,
                    r.pick(&[
                        "billion",
                        "Milliarden",
                        "млрд",
                        "milliards",
                        "mln",
                        "thousand",
                        "crore",
                        "δισ."
                    ])
                ),
                4 => format!(
                    "{}{}",
                    n % 900 + 1,
                    r.pick(&["亿元", "万美元", "억 원", "조 2000억원", "千", "億ドル"])
                ),
                5 => format!(
                    "{:02}.{:02}.20{:02}",
                    r.below(28) + 1,
                    r.below(12) + 1,
                    r.below(30)
                ),
                6 => format!("2024-{:02}-{:02}", r.below(12) + 1, r.below(28) + 1),
                7 => "１２３４５ ｙｅｎ ＡＢＣ".to_string(),
                8 => format!("https://www.wire{}.example/news/{n}?ref=x", r.below(5)),
                9 => format!("desk{}@mail.example", r.below(3)),
                10 => format!("@handle_{}", r.below(7)),
                11 => format!("#Tag{}", word(r, lang, false)),
                12 => r
                    .pick(&[
                        "NATO",
                        "EU",
                        "OPEC",
                        "iPhone",
                        "McDonald's",
                        "ﬁnance",
                        "①",
                        "Ⅻ",
                        "ŁÓDŹ",
                    ])
                    .to_string(),
                13 => format!("{}.{}%", n % 100, r.below(100)),
                14 => format!("١٢٫{}", r.below(10)),
                15 => format!("{}'{:03}", n % 99 + 1, r.below(1000)),
                16 => format!("v{}.{}.{}", r.below(9), r.below(20), r.below(99)),
                17 => r
                    .pick(&[
                        "Байден",
                        "Зеленский",
                        "Τσίπρας",
                        "바이든은",
                        "트럼프",
                        "Müller",
                        "Halvorsen",
                        "Харків",
                    ])
                    .to_string(),
                18 => format!("{} {}", n, r.pick(&["tis.", "тыс", "lakh", "Bio.", "tn"])),
                19 => format!("site{}.example.com/a/{n}", r.below(4)),
                20 => format!("{}\u{a0}{:03}", n % 99 + 1, r.below(1000)),
                21 => format!("{n}\u{202f}{:03},{}", r.below(1000), r.below(10)),
                22 => "café naïve e\u{301}te\u{301}".to_string(),
                _ => format!("{n}"),
            }
        }

        fn sentence(r: &mut Rng, lang: &str, names: &[String]) -> String {
            let n = 4 + r.below(14);
            let mut parts: Vec<String> = Vec::with_capacity(n);
            for i in 0..n {
                let roll = r.below(100);
                parts.push(if roll < 8 {
                    special(r, lang)
                } else if roll < 18 {
                    names[r.below(names.len())].clone()
                } else {
                    word(r, lang, i == 0)
                });
            }
            let joiner = if matches!(lang, "zh" | "ja") && r.chance(70) {
                ""
            } else {
                " "
            };
            let end = match lang {
                "zh" | "ja" => r.pick(&["。", "！", "？", "."]),
                _ => r.pick(&[".", ".", ".", "!", "?", "…", ":"]),
            };
            format!("{}{end}", parts.join(joiner))
        }

        fn paragraph(r: &mut Rng, lang: &str, names: &[String]) -> String {
            let sep = if matches!(lang, "zh" | "ja") { "" } else { " " };
            (0..1 + r.below(4))
                .map(|_| sentence(r, lang, names))
                .collect::<Vec<_>>()
                .join(sep)
        }

        struct Feed {
            lang: &'static str,
            url: String,
            site: String,
            disclaimer: String,
            aggregator: bool,
            declares_lang: bool,
        }

        fn item(r: &mut Rng, f: &Feed, n: usize, t0: DateTime<Utc>) -> ParsedItem {
            let names: Vec<String> = (0..4).map(|_| word(r, f.lang, true)).collect();
            let mut title = sentence(r, f.lang, &names);
            title.pop();
            match r.below(8) {
                0 => title = format!("{title} - {}", f.site),
                1 => title = format!("UPDATE 2-{title}"),
                2 => title = format!("{title} (Reuters)"),
                3 => title = format!("Exclusive: {title}"),
                4 => title = format!("{title} | {}", f.site),
                _ => {}
            }
            let esc = |s: &str| escape_html(s);
            let mut html = String::new();
            if r.chance(15) {
                html.push_str(&format!("<h1>{}</h1>", esc(&title)));
            }
            if r.chance(30) {
                html.push_str(&format!("<p>{}</p>", esc(&f.disclaimer)));
            }
            let paras: Vec<String> = (0..1 + r.below(9))
                .map(|_| paragraph(r, f.lang, &names))
                .collect();
            for (i, p) in paras.iter().enumerate() {
                if i == 0 && r.chance(10) {
                    // A lead sentence glued in front of the body.
                    let lead = p.split_inclusive(['.', '。']).next().unwrap_or(p);
                    html.push_str(&format!("<p>{}{}</p>", esc(lead), esc(p)));
                    continue;
                }
                match r.below(12) {
                    0 => html.push_str(&format!(
                        "<figure><img src=\"/i/{n}.jpg\"><figcaption>{}</figcaption></figure>",
                        esc(&sentence(r, f.lang, &names))
                    )),
                    1 => html.push_str(&format!(
                        "<p>{} <a href=\"https://origin{}.example/story/{n}\">{}</a> &amp; more&nbsp;text &#8212; end</p>",
                        esc(p),
                        r.below(3),
                        esc(&names[0])
                    )),
                    2 => html.push_str("<ul><li><a href=\"/r/1\">Related one</a></li><li><a href=\"/r/2\">Related two</a></li></ul>"),
                    3 => html.push_str(&format!("<div>{}<br>{}</div>", esc(p), esc(&sentence(r, f.lang, &names)))),
                    4 => html.push_str(&format!("<script>var x='<p>{n}</p>';</script><blockquote>{}</blockquote>", esc(p))),
                    _ => {}
                }
                html.push_str(&format!("<p>{}</p>", esc(p)));
            }
            if r.chance(60) {
                html.push_str(&format!(
                    "<p>The post <a href=\"https://{}/p/{n}\">{}</a> appeared first on {} {}.</p>",
                    f.site,
                    esc(&title),
                    f.site,
                    2020 + r.below(6)
                ));
            }
            if r.chance(50) {
                html.push_str(&format!(
                    "<footer><p>© 20{:02} {}. All rights reserved.</p></footer>",
                    r.below(30),
                    f.site
                ));
            }
            let summary = match r.below(4) {
                0 => None,
                1 => Some(esc(&paras[0])),
                _ => Some(format!("<p>{}</p>", esc(&sentence(r, f.lang, &names)))),
            };
            let url = if f.aggregator {
                format!(
                    "https://pub{}.example/{}/{n}?utm_source=rss",
                    r.below(4),
                    f.lang
                )
            } else {
                format!("https://{}/{}/{n}?utm_medium=feed", f.site, f.lang)
            };
            let minutes = r.below(3000) as i64 - 60;
            ParsedItem {
                identity: format!("guid:{}-{n}", f.site),
                guid: Some(format!("{n}")),
                url: r.chance(95).then_some(url),
                title: r.chance(95).then_some(title),
                content_html: r.chance(85).then_some(html),
                summary_html: summary,
                published_at: r.chance(90).then(|| t0 - Duration::minutes(minutes)),
                author: r.chance(50).then(|| names[1].clone()),
                language: (r.chance(30)).then(|| format!("{}-XX", f.lang)),
                ..Default::default()
            }
        }

        /// Feeds in every language, each prepared in a few batches that
        /// carry what the previous batch learned, as refreshes do.
        fn corpus() -> Vec<(FeedContext, Vec<Vec<ParsedItem>>)> {
            let mut r = Rng(0x6665_6564_666f_6c64);
            let mut out = Vec::new();
            let mut n = 0;
            for (i, lang) in LANGS.iter().cycle().take(LANGS.len() * 3).enumerate() {
                let site = format!("news{i}.{lang}.example");
                let names: Vec<String> = (0..3).map(|_| word(&mut r, lang, true)).collect();
                let f = Feed {
                    lang,
                    url: format!("https://{site}/feed"),
                    disclaimer: format!(
                        "Disclaimer {}: {}",
                        names[0],
                        paragraph(&mut r, lang, &names)
                    ),
                    site,
                    aggregator: i % 5 == 4,
                    declares_lang: i % 3 != 0,
                };
                let ctx = FeedContext {
                    feed_id: i as i64 + 1,
                    feed_url: f.url.clone(),
                    language: f.declares_lang.then(|| f.lang.to_string()),
                };
                let batches = (0..3)
                    .map(|_| {
                        (0..1 + r.below(8))
                            .map(|_| {
                                n += 1;
                                item(&mut r, &f, n, now())
                            })
                            .collect()
                    })
                    .collect();
                out.push((ctx, batches));
            }
            out
        }

        struct Digest(Vec<u8>);

        impl Digest {
            fn s(&mut self, v: &str) {
                self.0.extend_from_slice(&(v.len() as u64).to_le_bytes());
                self.0.extend_from_slice(v.as_bytes());
            }
            fn o(&mut self, v: Option<&str>) {
                match v {
                    Some(v) => {
                        self.0.push(1);
                        self.s(v);
                    }
                    None => self.0.push(0),
                }
            }
            fn i(&mut self, v: i64) {
                self.0.extend_from_slice(&v.to_le_bytes());
            }
            fn oi(&mut self, v: Option<i64>) {
                self.0.push(v.is_some() as u8);
                self.i(v.unwrap_or(0));
            }
            fn t(&mut self, v: Option<DateTime<Utc>>) {
                self.oi(v.map(|t| t.timestamp_nanos_opt().unwrap_or(i64::MIN)));
            }
            fn map(&mut self, m: &anchors::WordMap) {
                let mut v: Vec<(&String, &f32)> = m.iter().collect();
                v.sort_unstable_by(|a, b| a.0.cmp(b.0));
                self.i(v.len() as i64);
                for (k, p) in v {
                    self.s(k);
                    self.i(p.to_bits() as i64);
                }
            }
        }

        fn digest(batches: &[Prepared]) -> (u64, usize) {
            let mut d = Digest(Vec::new());
            let mut items = 0;
            for p in batches {
                d.i(p.boilerplate_shapes.len() as i64);
                p.boilerplate_shapes.iter().for_each(|&s| d.i(s));
                for it in &p.items {
                    items += 1;
                    d.s(&it.identity);
                    d.o(it.guid.as_deref());
                    d.o(it.url.as_deref());
                    d.o(it.canonical_url.as_deref());
                    d.o(it.origin_url.as_deref());
                    d.o(it.title.as_deref());
                    d.o(it.summary.as_deref());
                    d.s(&it.content_text);
                    d.o(it.author.as_deref());
                    d.o(it.lang.as_deref());
                    d.t(it.published_at);
                    d.t(it.updated_at);
                    d.t(Some(it.fetched_at));
                    d.t(Some(it.dated_at));
                    d.i(it.revision_hash);
                    let g = &it.signature;
                    d.i(g.fp_version as i64);
                    d.i(g.simhash);
                    g.bands().iter().for_each(|&b| d.i(b as i64));
                    d.oi(g.lead_hash);
                    d.oi(g.content_hash);
                    d.o(g.headline_key.as_deref());
                    d.oi(g.headline_hash);
                    d.i(g.text_len as i64);
                    d.o(g.anchors.as_deref());
                    d.i(g.keys.len() as i64);
                    g.keys.iter().for_each(|&k| d.i(k));
                    d.i(g.republished as i64);
                    // The profile dedup scores with, from the same stored text.
                    let pr = anchors::profile(it.title.as_deref().unwrap_or(""), &it.content_text);
                    for a in &pr.anchors {
                        d.s(&a.anchor);
                        d.i(a.pos.to_bits() as i64);
                    }
                    d.map(&pr.nums);
                    d.map(&pr.skels);
                    d.map(&pr.words);
                    d.map(&pr.links);
                    d.i(pr.units.to_bits() as i64);
                }
            }
            (xxhash_rust::xxh3::xxh3_64(&d.0), items)
        }

        fn prepare_all() -> Vec<Prepared> {
            let mut out = Vec::new();
            for (ctx, batches) in corpus() {
                let mut learned: Vec<i64> = Vec::new();
                for b in batches {
                    let p = items(&ctx, &b, &learned, now());
                    learned.extend(&p.boilerplate_shapes);
                    learned.sort_unstable();
                    learned.dedup();
                    out.push(p);
                }
            }
            out
        }

        #[test]
        fn outputs_are_pinned() {
            let prepared = prepare_all();
            let (got, n) = digest(&prepared);
            assert!(n > 300, "only {n} items generated");
            assert_eq!(
                got, PINNED,
                "prepare output changed: {got:#018x} over {n} items"
            );
        }
    }
}
