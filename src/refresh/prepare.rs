//! Turns a feed's parsed items into `NewItem`s ready to store: clean text
//! (per-feed boilerplate removed), canonical and origin URLs, language, the
//! date used for windows, and the full fold signature. Works on a whole
//! batch because boilerplate and headline decorations are learned from what
//! the feed's items have in common. Pure: no I/O, cannot fail.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};

use crate::dedup::Signature;
use crate::fingerprint::{self, headline};
use crate::normalize::boilerplate::{self, is_title_echo};
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
    body_shapes: Vec<Option<i64>>,
    summary: Doc,
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

fn clean(
    doc: &Doc,
    shapes: &[Option<i64>],
    template: &HashSet<i64>,
    folded_title: &str,
) -> (Vec<String>, Vec<bool>) {
    let keep = boilerplate::keep_mask(&doc.blocks, shapes, template);
    let is_template: Vec<bool> = shapes
        .iter()
        .map(|s| s.is_some_and(|s| template.contains(&s)))
        .collect();
    let mut out: Vec<String> = doc
        .blocks
        .iter()
        .zip(&keep)
        .filter(|(b, k)| **k && !is_title_echo(&b.text, folded_title))
        .map(|(b, _)| b.text.clone())
        .collect();
    boilerplate::unglue_repeated_lead(&mut out);
    (out, is_template)
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
            let body_shapes = body
                .blocks
                .iter()
                .map(|b| boilerplate::shape(&b.text, &folded_title))
                .collect();
            let summary_shapes = summary
                .blocks
                .iter()
                .map(|b| boilerplate::shape(&b.text, &folded_title))
                .collect();
            Work {
                parsed: p,
                title,
                folded_title,
                body,
                body_shapes,
                summary,
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
                .body
                .blocks
                .iter()
                .zip(&keep)
                .filter(|(_, k)| !**k)
                .map(|(b, _)| token_count(&fold_text(&b.text)))
                .sum();
            stripped >= MARK_MIN_TOKENS
        })
        .collect();
    let templated_feed =
        marked.len() >= 3 && marked.iter().filter(|&&t| t).count() * 3 >= marked.len();

    let mut items = Vec::with_capacity(work.len());
    for (idx, w) in work.iter().enumerate() {
        let p = w.parsed;
        let (body_blocks, body_tmpl) = clean(&w.body, &w.body_shapes, &template, &w.folded_title);
        let (summary_blocks, _) = clean(&w.summary, &w.summary_shapes, &template, &w.folded_title);
        let summary_text = join_blocks(summary_blocks.iter().map(String::as_str));
        let mut content_text = join_blocks(body_blocks.iter().map(String::as_str));
        if content_text.is_empty() {
            content_text = summary_text.clone();
        }
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
        let mut signature = signature(
            w.title.as_deref(),
            &content_text,
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
    let folded = fold_text(content_text);
    let body = fingerprint::body_prints(&folded);
    let (simhash, lead_hash, content_hash) =
        (body.simhash as i64, body.lead_hash, body.content_hash);
    let text_len = body.text_len.min(i32::MAX as usize) as i32;
    let headline_key = title
        .map(|t| headline::normalize(t, site, decor))
        .filter(|k| !k.is_empty());
    let headline_hash = headline_key
        .as_deref()
        .map(|k| fingerprint::hash64(&format!("headline\u{1}{k}")));
    let anchors = fingerprint::anchors::extract(title.unwrap_or(""), content_text);
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
}
