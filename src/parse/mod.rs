//! Turns decoded feed text into items with feed-rs, and gives every item a
//! stable identity.
//!
//! feed-rs is the parser; this module is the glue research/deps.md §3 found
//! necessary: a lenient date parser, one retry with bare `&` escaped, a panic
//! barrier, identities that do not change between polls (feed-rs invents a
//! random UUID for items without guid, link and title), HTML entities decoded
//! in titles, and the scheduling hints feed-rs does not expose.
//! Input must already be UTF-8 (see `fetch::charset::decode`).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use feed_rs::model;
use regex::Regex;

use crate::fetch::charset;

pub mod date;
mod text;

pub use date::parse_date;
pub use text::{escape_html, plain_title};

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// feed-rs rejected the document even after our repairs.
    #[error("not a feed: {0}")]
    Invalid(String),
    /// feed-rs (or quick-xml under it) panicked; the panic was contained.
    #[error("feed parser crashed: {0}")]
    Panic(String),
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
    /// When two different items of one document share a guid or link, the
    /// later ones get "#<content hash>" appended so neither is lost.
    pub identity: String,
    /// The guid/id the feed carried; `None` when absent (never generated).
    pub guid: Option<String>,
    /// The item link (rel=alternate or the first one), resolved against the
    /// base URL when relative.
    pub url: Option<String>,
    /// Plain text: entities decoded, tags stripped.
    pub title: Option<String>,
    /// HTML. Plain-text summaries are HTML-escaped so every consumer can
    /// treat this field as HTML.
    pub summary_html: Option<String>,
    /// HTML, same convention as `summary_html`.
    pub content_html: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub author: Option<String>,
    pub language: Option<String>,
}

/// Prefix our id generator puts on ids feed-rs invents, so that we can tell
/// them from ids the feed carried. A NUL never appears in parsed XML/JSON text.
const GENERATED_ID: &str = "\u{0}feedfold-generated";

/// How far into the document we look for channel-level hints (`<ttl>`,
/// `sy:*`): they sit before the first item.
const HEADER_SCAN_LIMIT: usize = 64 * 1024;

/// Parses one feed. `base_url` resolves relative links; it is ignored when
/// it is not an absolute URL (e.g. a local file path), rather than failing
/// the whole feed as feed-rs would.
pub fn feed(text: &str, base_url: Option<&str>) -> Result<ParsedFeed, ParseError> {
    let text = charset::normalize_declaration(text);
    let base_url = base_url.filter(|b| url::Url::parse(b).is_ok());
    let raw = parse_with_repairs(&text, base_url)?;
    Ok(convert(raw, &text))
}

/// Runs feed-rs, then re-runs it after each repair that changes the text.
/// Repairs are cumulative; the first error is reported if none helps,
/// since it describes the document as published.
fn parse_with_repairs(text: &str, base_url: Option<&str>) -> Result<model::Feed, ParseError> {
    let first_err = match run_feed_rs(text, base_url) {
        Ok(feed) => return Ok(feed),
        Err(e) => e,
    };
    type Repair = fn(&str) -> Option<String>;
    // Repairs are format-specific: escaping `&` inside JSON strings would
    // corrupt them.
    let repairs: &[Repair] = if text.starts_with('{') {
        &[stringify_json_item_ids]
    } else {
        &[text::escape_bare_ampersands, fix_rss_version]
    };
    let mut current: Option<String> = None;
    for repair in repairs {
        let Some(fixed) = repair(current.as_deref().unwrap_or(text)) else {
            continue;
        };
        match run_feed_rs(&fixed, base_url) {
            Ok(feed) => return Ok(feed),
            Err(_) => current = Some(fixed),
        }
    }
    Err(first_err)
}

fn run_feed_rs(text: &str, base_url: Option<&str>) -> Result<model::Feed, ParseError> {
    let parser = feed_rs::parser::Builder::new()
        .base_uri(base_url)
        .id_generator(|_links, _title, _base| GENERATED_ID.to_string())
        .timestamp_parser(date::parse_date)
        .build();
    // A panic in quick-xml must cost one feed, not the worker (deps.md §3).
    match catch_unwind(AssertUnwindSafe(|| parser.parse(text.as_bytes()))) {
        Ok(Ok(feed)) => Ok(feed),
        Ok(Err(feed_rs::parser::ParseFeedError::ParseError(
            feed_rs::parser::ParseErrorKind::NoFeedRoot,
        ))) => Err(ParseError::Invalid(
            "no RSS, Atom or JSON Feed root element (or XML broken before it)".into(),
        )),
        Ok(Err(e)) => Err(ParseError::Invalid(e.to_string())),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(ParseError::Panic(msg))
        }
    }
}

fn rss_tag_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"<rss(\s[^>]*)?>").expect("static regex is valid"))
}

fn rss_version_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"\sversion\s*=\s*(?:"[^"]*"|'[^']*')"#).expect("static regex is valid")
    })
}

/// feed-rs only recognises `<rss>` with version 2.0, 0.91, 0.92 or empty;
/// a missing version or one like "2.01"/"0.94" is common and otherwise
/// rejects the feed, while the content is plain RSS 2.0 all the same.
fn fix_rss_version(text: &str) -> Option<String> {
    let head = &text[..floor_boundary(text, HEADER_SCAN_LIMIT)];
    let tag = rss_tag_re().find(head)?;
    let version = rss_version_re().find(tag.as_str());
    let (start, end) = match version {
        Some(v) => {
            let value = v.as_str().split(['"', '\'']).nth(1).unwrap_or("").trim();
            if matches!(value, "2.0" | "0.91" | "0.92" | "") {
                return None;
            }
            (tag.start() + v.start(), tag.start() + v.end())
        }
        None => (tag.start() + 4, tag.start() + 4),
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..start]);
    out.push_str(" version=\"2.0\"");
    out.push_str(&text[end..]);
    Some(out)
}

/// JSON Feed ids must be strings, but some generators emit numbers, and
/// feed-rs then rejects the whole feed.
fn stringify_json_item_ids(text: &str) -> Option<String> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let mut value: serde_json::Value = serde_json::from_str(text).ok()?;
    let items = value.get_mut("items")?.as_array_mut()?;
    let mut changed = false;
    for item in items {
        if let Some(id) = item.get_mut("id").filter(|id| id.is_number()) {
            *id = serde_json::Value::String(id.to_string());
            changed = true;
        }
    }
    changed.then(|| value.to_string())
}

fn convert(raw: model::Feed, text: &str) -> ParsedFeed {
    let header = channel_header(text);
    let mut items = Vec::with_capacity(raw.entries.len());
    // identity -> content hash of the item that holds it
    let mut seen: HashMap<String, u64> = HashMap::with_capacity(raw.entries.len());
    for entry in raw.entries {
        let (mut item, content_hash) = convert_entry(entry);
        match seen.get(&item.identity) {
            None => {}
            Some(&h) if h == content_hash => continue, // the same item twice
            Some(_) => {
                item.identity = format!("{}#{content_hash:016x}", item.identity);
                if seen.contains_key(&item.identity) {
                    continue;
                }
            }
        }
        seen.insert(item.identity.clone(), content_hash);
        items.push(item);
    }
    ParsedFeed {
        title: raw
            .title
            .map(|t| plain_title(&t.content))
            .filter(|t| !t.is_empty()),
        site_url: pick_link(&raw.links),
        language: raw.language.filter(|l| !l.trim().is_empty()),
        ttl_minutes: raw.ttl.or_else(|| ttl_from_header(header)),
        update_interval: update_interval_from_header(header),
        items,
    }
}

fn convert_entry(entry: model::Entry) -> (ParsedItem, u64) {
    let guid = Some(entry.id).filter(|id| !id.trim().is_empty() && !id.starts_with(GENERATED_ID));
    let url = pick_link(&entry.links);
    let title = entry
        .title
        .map(|t| plain_title(&t.content))
        .filter(|t| !t.is_empty());
    let summary_html = entry.summary.map(text_as_html).filter(|s| !s.is_empty());
    let content_html = entry
        .content
        .and_then(|c| {
            let plain = is_plain(c.content_type.as_ref());
            c.body
                .map(|b| if plain { text::escape_html(&b) } else { b })
        })
        .filter(|s| !s.is_empty());
    let published_at = entry.published.or(entry.updated);
    let content_hash = content_hash(
        title.as_deref(),
        summary_html.as_deref(),
        content_html.as_deref(),
        published_at,
    );
    let identity = match (&guid, &url) {
        (Some(g), _) => format!("guid:{g}"),
        (None, Some(u)) => format!("link:{u}"),
        (None, None) => format!("hash:{content_hash:016x}"),
    };
    let author = entry
        .authors
        .into_iter()
        .find_map(|a| Some(text::collapse_whitespace(&a.name?)).filter(|n| !n.is_empty()));
    let item = ParsedItem {
        identity,
        guid,
        url,
        title,
        summary_html,
        content_html,
        published_at,
        updated_at: entry.updated,
        author,
        language: entry.language.filter(|l| !l.trim().is_empty()),
    };
    (item, content_hash)
}

/// XXH3 over the fields that make an item what it is. XXH3 has a fixed
/// specification, so stored `hash:` identities survive compiler and crate
/// upgrades (std's `Hash` makes no such promise).
fn content_hash(
    title: Option<&str>,
    summary: Option<&str>,
    content: Option<&str>,
    published: Option<DateTime<Utc>>,
) -> u64 {
    let published = published.map(|d| d.to_rfc3339()).unwrap_or_default();
    let mut buf = String::new();
    for part in [
        title.unwrap_or(""),
        summary.unwrap_or(""),
        content.unwrap_or(""),
        &published,
    ] {
        buf.push_str(part);
        buf.push('\u{1f}');
    }
    xxhash_rust::xxh3::xxh3_64(buf.as_bytes())
}

fn is_plain(content_type: &str) -> bool {
    content_type.starts_with("text/plain")
}

fn text_as_html(t: model::Text) -> String {
    if is_plain(t.content_type.as_ref()) {
        text::escape_html(&t.content)
    } else {
        t.content
    }
}

/// The page link: rel=alternate (or no rel, as in RSS), else any link that
/// is not the feed itself or an enclosure.
fn pick_link(links: &[model::Link]) -> Option<String> {
    let usable = |l: &&model::Link| !l.href.trim().is_empty();
    links
        .iter()
        .filter(usable)
        .find(|l| matches!(l.rel.as_deref(), None | Some("alternate")))
        .or_else(|| {
            links.iter().filter(usable).find(|l| {
                !matches!(
                    l.rel.as_deref(),
                    Some("self" | "enclosure" | "hub" | "edit" | "replies")
                )
            })
        })
        .map(|l| l.href.trim().to_string())
}

fn floor_boundary(s: &str, max: usize) -> usize {
    let mut cut = max.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

/// The document before the first item: where channel-level hints live.
fn channel_header(text: &str) -> &str {
    let head = &text[..floor_boundary(text, HEADER_SCAN_LIMIT)];
    let end = [head.find("<item"), head.find("<entry")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(head.len());
    &head[..end]
}

fn ttl_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?i)<ttl\s*>\s*(\d{1,9})\s*</").expect("static regex is valid"))
}

fn update_period_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)<(?:[a-z0-9_.-]+:)?updatePeriod\s*>\s*([a-z]+)\s*</")
            .expect("static regex is valid")
    })
}

fn update_frequency_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)<(?:[a-z0-9_.-]+:)?updateFrequency\s*>\s*(\d{1,6})\s*</")
            .expect("static regex is valid")
    })
}

fn ttl_from_header(header: &str) -> Option<u32> {
    ttl_re().captures(header)?.get(1)?.as_str().parse().ok()
}

/// RSS syndication module: the feed updates `updateFrequency` times per
/// `updatePeriod` (default daily, once), so the interval is period/frequency.
fn update_interval_from_header(header: &str) -> Option<Duration> {
    let period = update_period_re()
        .captures(header)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_ascii_lowercase());
    let frequency = update_frequency_re()
        .captures(header)
        .and_then(|c| c.get(1))
        .and_then(|m| m.as_str().parse::<u64>().ok());
    if period.is_none() && frequency.is_none() {
        return None;
    }
    let seconds: u64 = match period.as_deref().unwrap_or("daily") {
        "hourly" => 3_600,
        "daily" => 86_400,
        "weekly" => 7 * 86_400,
        "monthly" => 30 * 86_400,
        "yearly" => 365 * 86_400,
        _ => return None,
    };
    let frequency = frequency.unwrap_or(1);
    if frequency == 0 {
        return None;
    }
    Some(Duration::from_secs(seconds / frequency))
}

#[cfg(test)]
mod tests;
