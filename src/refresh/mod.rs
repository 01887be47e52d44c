//! One feed's story from top to bottom: fetch → parse → normalize →
//! fingerprint → fold → store → next poll. This is the only module that calls
//! several stages; each stage is a leaf that knows nothing of the others.
//! A failing feed or item is recorded and never aborts the caller.

pub mod prepare;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::{Instrument, debug, info_span, warn};

use crate::daemon::metrics;
use crate::dedup::xling::ProfileCache;
use crate::dedup::{self, FoldConfig, Subject};
use crate::fetch::{ErrorClass, Fetcher, Outcome, Validators};
use crate::parse::{self, ParsedFeed, ParsedItem};
use crate::scheduler::{self, Hints, PollKind, PollSignal, SchedulerConfig};
use crate::store::{Feed, FeedFolding, Ingested, NewItem, PollUpdate, Store};

/// Everything a refresh needs, passed down explicitly.
#[derive(Clone)]
pub struct Context<S> {
    pub store: S,
    pub fetcher: Fetcher,
    pub fold: FoldConfig,
    pub scheduler: SchedulerConfig,
    /// Translation profiles of stored items, shared by every refresh of this
    /// process (see `dedup::decide_cached`).
    pub profiles: Arc<Mutex<ProfileCache>>,
}

impl<S> Context<S> {
    pub fn new(store: S, fetcher: Fetcher, fold: FoldConfig, scheduler: SchedulerConfig) -> Self {
        Context {
            store,
            fetcher,
            fold,
            scheduler,
            profiles: Arc::default(),
        }
    }
}

/// What one refresh did, for `poll --once` summaries and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedReport {
    pub feed_id: i64,
    pub url: String,
    /// ok, not_modified, error, rate_limited or gone.
    pub outcome: String,
    pub error: Option<String>,
    pub items_seen: u32,
    pub items_new: u32,
    pub items_updated: u32,
    pub items_unchanged: u32,
    pub items_folded: u32,
    pub items_failed: u32,
    pub stories_created: u32,
}

impl FeedReport {
    pub fn ok(&self) -> bool {
        matches!(self.outcome.as_str(), "ok" | "not_modified")
    }
}

/// Polls one feed and stores what it carries. Errors end up on the feed row
/// (and in the report), never as a panic or an early return.
pub async fn feed<S: Store>(ctx: &Context<S>, feed: Feed) -> FeedReport {
    let span = info_span!("poll", feed_id = feed.id, url = %feed.url);
    refresh(ctx, feed).instrument(span).await
}

async fn refresh<S: Store>(ctx: &Context<S>, feed: Feed) -> FeedReport {
    let started_at = Utc::now();
    let clock = Instant::now();
    let mut report = FeedReport {
        feed_id: feed.id,
        url: feed.url.clone(),
        ..Default::default()
    };
    let validators = Validators {
        etag: feed.etag.clone(),
        last_modified: feed.last_modified.clone(),
    };
    let outcome = ctx.fetcher.fetch(&feed.url, &validators).await;

    let mut update = PollUpdate::started(started_at);
    let mut hints = Hints::default();
    let mut item_dates: Vec<DateTime<Utc>> = Vec::new();

    let kind = match outcome {
        Outcome::Fetched(fetched) => {
            update.http_status = fetched.http_status.map(i32::from);
            update.bytes = fetched.bytes as i64;
            update.moved_to = fetched.moved_to.clone();
            hints.max_age = fetched.hints.max_age;
            match parse_off_thread(fetched.text, feed.url.clone()).await {
                Ok(parsed) => {
                    hints.ttl = parsed
                        .ttl_minutes
                        .map(|m| Duration::from_secs(u64::from(m) * 60));
                    hints.update_interval = parsed.update_interval;
                    item_dates = parsed.items.iter().filter_map(|i| i.published_at).collect();
                    update.last_published_at = item_dates.iter().max().copied();
                    update.title = parsed.title.clone();
                    update.site_url = parsed.site_url.clone();
                    update.language = parsed.language.clone();
                    let stored = store_items(
                        ctx,
                        &feed,
                        &parsed.items,
                        parsed.language.as_deref(),
                        started_at,
                        &mut report,
                    )
                    .await;
                    match stored {
                        Ok(()) => {
                            // Validators advance only once every item is
                            // stored: otherwise a 304 next time would hide
                            // the items we failed to write.
                            update.validators = Some((
                                fetched.validators.etag.clone(),
                                fetched.validators.last_modified.clone(),
                            ));
                            update.success = true;
                            update.outcome = "ok".into();
                            PollKind::Ok
                        }
                        Err(message) => {
                            update.outcome = "error".into();
                            update.error_class = Some("database".into());
                            update.error = Some(message);
                            PollKind::Failed
                        }
                    }
                }
                Err(message) => {
                    update.outcome = "error".into();
                    update.error_class = Some(ErrorClass::Parse.as_str().into());
                    update.error = Some(message);
                    PollKind::Failed
                }
            }
        }
        Outcome::NotModified {
            validators,
            hints: h,
            moved_to,
        } => {
            hints.max_age = h.max_age;
            update.moved_to = moved_to;
            update.http_status = Some(304);
            update.validators = Some((validators.etag, validators.last_modified));
            update.success = true;
            update.outcome = "not_modified".into();
            PollKind::NotModified
        }
        Outcome::Gone { status } => {
            update.http_status = Some(i32::from(status));
            update.outcome = "gone".into();
            update.error_class = Some("gone".into());
            update.error = Some(format!("HTTP {status}: the feed is gone"));
            PollKind::Gone
        }
        Outcome::RateLimited {
            status,
            retry_after,
        } => {
            update.http_status = Some(i32::from(status));
            update.outcome = "rate_limited".into();
            update.error_class = Some("rate_limited".into());
            update.error = Some(match retry_after {
                Some(d) => format!("HTTP {status}: rate limited, retry after {}s", d.as_secs()),
                None => format!("HTTP {status}: rate limited"),
            });
            PollKind::RateLimited { retry_after }
        }
        Outcome::Failed {
            class,
            message,
            http_status,
        } => {
            update.http_status = http_status.map(i32::from);
            update.outcome = "error".into();
            update.error_class = Some(class.as_str().into());
            update.error = Some(message);
            PollKind::Failed
        }
    };

    let now = Utc::now();
    let next = scheduler::plan_next(
        &feed,
        &PollSignal {
            kind,
            hints,
            item_dates: &item_dates,
        },
        &ctx.scheduler,
        now,
    );
    update.next_poll_at = next.at;
    update.poll_interval_secs = Some(next.interval_secs);
    update.disable = next.disable;
    update.duration_ms = clock.elapsed().as_millis() as i64;
    update.items_seen = report.items_seen as i32;
    update.items_new = report.items_new as i32;
    update.items_updated = report.items_updated as i32;
    update.items_folded = report.items_folded as i32;

    report.outcome = update.outcome.clone();
    report.error = update.error.clone();
    if let Some(e) = &update.error {
        warn!(class = update.error_class.as_deref().unwrap_or(""), "{e}");
    }
    metrics::record_poll(&outcome_label(&update), clock.elapsed());

    if let Err(e) = ctx.store.record_poll(feed.id, &update).await {
        // The lease expires and the feed is polled again; nothing is lost.
        warn!("cannot record poll: {e}");
        report.outcome = "error".into();
        report.error = Some(format!("cannot record poll: {e}"));
    }
    report
}

fn outcome_label(update: &PollUpdate) -> String {
    match update.outcome.as_str() {
        "error" => update.error_class.clone().unwrap_or_else(|| "error".into()),
        other => other.to_string(),
    }
}

/// feed-rs is CPU-bound and can panic on hostile input: run it on the
/// blocking pool so a panic becomes an error for this feed alone.
async fn parse_off_thread(text: String, base: String) -> Result<ParsedFeed, String> {
    let base = base.starts_with("http").then_some(base);
    match tokio::task::spawn_blocking(move || parse::feed(&text, base.as_deref())).await {
        Ok(Ok(parsed)) => Ok(parsed),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("parser crashed: {e}")),
    }
}

/// Normalizes, fingerprints and stores one poll's items (`language` is the
/// feed document's); one item's failure is counted and the rest go on.
/// Returns Err when any item could not be stored. Public so that the
/// benchmarks time exactly this path.
pub async fn store_items<S: Store>(
    ctx: &Context<S>,
    feed: &Feed,
    items: &[ParsedItem],
    language: Option<&str>,
    fetched_at: DateTime<Utc>,
    report: &mut FeedReport,
) -> Result<(), String> {
    let learned = match ctx.store.feed_boilerplate(feed.id).await {
        Ok(l) => l,
        Err(e) => return Err(format!("cannot read boilerplate: {e}")),
    };
    let context = prepare::FeedContext {
        feed_id: feed.id,
        feed_url: feed.url.clone(),
        language: language
            .map(str::to_string)
            .or_else(|| feed.language.clone()),
    };
    let prepared = prepare::items(&context, items, &learned, fetched_at);
    if !prepared.boilerplate_shapes.is_empty()
        && let Err(e) = ctx
            .store
            .remember_boilerplate(feed.id, &prepared.boilerplate_shapes)
            .await
    {
        warn!("cannot remember boilerplate: {e}");
    }
    let folding = FeedFolding {
        feed_id: feed.id,
        policy: feed.fold_policy,
        fold_translations: feed.fold_translations,
    };
    let config = &ctx.fold;
    let results = ctx
        .store
        .ingest_items(
            folding,
            &prepared.items,
            config.window,
            |item, candidates, stats| {
                let subject = subject_of(folding, item);
                let clock = Instant::now();
                // A poisoned cache only means another decision panicked; the
                // cache itself is still consistent.
                let mut cache = ctx.profiles.lock().unwrap_or_else(|p| p.into_inner());
                let decision =
                    dedup::decide_cached(&subject, candidates, stats, config, &mut cache);
                metrics::record_fold_decision(clock.elapsed());
                debug!(candidates = candidates.len(), ?decision, "fold decision");
                decision
            },
        )
        .await;
    let mut first_error = None;
    for (item, result) in prepared.items.iter().zip(results) {
        report.items_seen += 1;
        metrics::record_item("seen");
        match result {
            Ok(Ingested::New { fold, .. }) => {
                report.items_new += 1;
                metrics::record_item("new");
                match fold {
                    Some(f) => {
                        report.items_folded += 1;
                        metrics::record_item("folded");
                        metrics::record_fold(f.method.as_str());
                    }
                    None => {
                        report.stories_created += 1;
                        metrics::record_story_created();
                    }
                }
            }
            Ok(Ingested::Updated { .. }) => {
                report.items_updated += 1;
                metrics::record_item("updated");
            }
            Ok(Ingested::Unchanged { .. }) => report.items_unchanged += 1,
            Err(e) => {
                report.items_failed += 1;
                warn!(identity = %item.identity, "cannot store item: {e}");
                first_error
                    .get_or_insert_with(|| format!("cannot store item {}: {e}", item.identity));
            }
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// The fold decision's view of an item about to be stored.
pub fn subject_of(folding: FeedFolding, item: &NewItem) -> Subject {
    Subject {
        feed_id: folding.feed_id,
        feed_policy: folding.policy,
        fold_translations: folding.fold_translations,
        url: item.url.clone(),
        canonical_url: item.canonical_url.clone(),
        origin_url: item.origin_url.clone(),
        title: item.title.clone(),
        summary: item.summary.clone(),
        content_text: item.content_text.clone(),
        lang: item.lang.clone(),
        published_at: item.published_at,
        fetched_at: item.fetched_at,
        dated_at: item.dated_at,
        signature: item.signature.clone(),
    }
}
