//! Interim: the fold branch replaces this file.
use chrono::{DateTime, Utc};

use crate::dedup::Signature;
use crate::fingerprint::hash64;
use crate::parse::ParsedItem;
use crate::store::NewItem;

pub struct FeedContext {
    pub feed_id: i64,
    pub feed_url: String,
    pub language: Option<String>,
}

pub struct Prepared {
    pub items: Vec<NewItem>,
    pub boilerplate_shapes: Vec<i64>,
}

pub fn items(
    feed: &FeedContext,
    parsed: &[ParsedItem],
    _learned: &[i64],
    fetched_at: DateTime<Utc>,
) -> Prepared {
    let items = parsed
        .iter()
        .map(|p| {
            let text = crate::normalize::html_to_text(
                p.content_html
                    .as_deref()
                    .or(p.summary_html.as_deref())
                    .unwrap_or(""),
            );
            NewItem {
                identity: p.identity.clone(),
                guid: p.guid.clone(),
                url: p.url.clone(),
                canonical_url: p.url.as_deref().and_then(crate::normalize::canonical_url),
                title: p.title.clone(),
                content_text: text.clone(),
                lang: p.language.clone().or(feed.language.clone()),
                published_at: p.published_at,
                fetched_at,
                dated_at: p.published_at.unwrap_or(fetched_at),
                revision_hash: hash64(&text),
                signature: Signature {
                    content_hash: (!text.is_empty()).then(|| hash64(&text)),
                    ..Default::default()
                },
                ..Default::default()
            }
        })
        .collect();
    Prepared {
        items,
        boilerplate_shapes: Vec::new(),
    }
}
