//! When to poll each feed next, and the loop that polls feeds when they are
//! due.
//!
//! `plan_next` is pure: it turns one poll's outcome (and the hints the
//! publisher sent) into the next poll time. The loop in `run` leases due feeds
//! from the store and hands them to a poll function; it never does HTTP
//! itself. Both use `tokio::time` for waiting so that tests can run on a
//! paused clock.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::Feed;

mod run;

pub use run::{Clock, Leases, LoopStatus, RunSummary, Scheduler, run};

/// Scheduling knobs; defaults are documented in feedfold.example.toml.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Interval for a feed we know nothing about yet.
    #[serde(with = "crate::config::duration")]
    pub default_interval: Duration,
    /// No healthy feed is polled more often than this, whatever it publishes.
    #[serde(with = "crate::config::duration")]
    pub min_interval: Duration,
    /// Every healthy feed is polled at least this often, whatever its hints say.
    #[serde(with = "crate::config::duration")]
    pub max_interval: Duration,
    /// Cap on the exponential backoff of a failing feed.
    #[serde(with = "crate::config::duration")]
    pub max_backoff: Duration,
    /// A feed failing continuously this long is disabled.
    #[serde(with = "crate::config::duration")]
    pub disable_after: Duration,
    /// Up to this fraction of the interval is added at random, so that feeds
    /// added together drift apart instead of polling in the same second.
    pub jitter: f64,
    /// How long a claimed feed stays leased to this instance. A crashed
    /// instance's feeds are polled again by others once it runs out.
    #[serde(with = "crate::config::duration")]
    pub lease: Duration,
    /// How many due feeds one claim takes at most.
    pub batch: i64,
    /// How often the idle loop looks for due work (feeds added by the CLI or
    /// another instance are noticed this fast).
    #[serde(with = "crate::config::duration")]
    pub tick: Duration,
    /// How long a graceful shutdown waits for in-flight polls.
    #[serde(with = "crate::config::duration")]
    pub shutdown_grace: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            default_interval: Duration::from_secs(3600),
            min_interval: Duration::from_secs(600),
            max_interval: Duration::from_secs(24 * 3600),
            max_backoff: Duration::from_secs(24 * 3600),
            disable_after: Duration::from_secs(7 * 24 * 3600),
            jitter: 0.1,
            lease: Duration::from_secs(600),
            batch: 64,
            tick: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What one poll came to, as far as scheduling cares.
#[derive(Debug, Clone, PartialEq)]
pub enum PollKind {
    Ok,
    NotModified,
    Failed,
    /// 429, or 503 with Retry-After.
    RateLimited {
        retry_after: Option<Duration>,
    },
    /// 410: the publisher retired the feed.
    Gone,
}

/// Publisher hints that ask us to poll less often: RSS `<ttl>`,
/// `sy:updatePeriod`/`sy:updateFrequency`, and Cache-Control max-age/Expires.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hints {
    pub ttl: Option<Duration>,
    pub update_interval: Option<Duration>,
    pub max_age: Option<Duration>,
}

/// One poll's outcome plus what it learned about the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct PollSignal<'a> {
    pub kind: PollKind,
    pub hints: Hints,
    /// Publication dates of the items in the fetched document (any order);
    /// they tell how often the feed publishes.
    pub item_dates: &'a [DateTime<Utc>],
}

/// When to poll next, written to the feed by `record_poll`.
#[derive(Debug, Clone, PartialEq)]
pub struct NextPoll {
    pub at: DateTime<Utc>,
    /// The feed's regular interval, without jitter or backoff. It is kept
    /// unchanged through failures, so that a 304 after an outage resumes the
    /// old rhythm instead of the backoff delay.
    pub interval_secs: i32,
    /// Some(reason) disables the feed.
    pub disable: Option<String>,
}

/// How many recent item dates the adaptive interval looks at: enough for a
/// stable median, few enough to follow a feed that changes its rhythm.
const RECENT_ITEMS: usize = 20;

/// Decides the next poll of `feed` after a poll that ended with `signal`.
/// `feed` is the state before this poll (in particular `error_count` does not
/// yet count a failure of this poll).
pub fn plan_next(
    feed: &Feed,
    signal: &PollSignal<'_>,
    config: &SchedulerConfig,
    now: DateTime<Utc>,
) -> NextPoll {
    let regular = feed
        .poll_interval_secs
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s as u64))
        .unwrap_or(config.default_interval);
    let regular_secs = secs_i32(regular);
    let jitter = jitter_fraction(feed.id, now, config.jitter);
    match &signal.kind {
        PollKind::Ok | PollKind::NotModified => {
            let base = adaptive_interval(signal.item_dates, now).unwrap_or(
                // A 304 says nothing about the rhythm: keep the one we had.
                if signal.kind == PollKind::NotModified {
                    regular
                } else {
                    config.default_interval
                },
            );
            let hinted = [
                signal.hints.ttl,
                signal.hints.update_interval,
                signal.hints.max_age,
            ]
            .into_iter()
            .flatten()
            .fold(base, Duration::max);
            let interval = clamp(hinted, config.min_interval, config.max_interval);
            NextPoll {
                at: after(now, interval.mul_f64(1.0 + jitter)),
                interval_secs: secs_i32(interval),
                disable: None,
            }
        }
        PollKind::Failed => {
            let delay = backoff(feed.error_count, config).mul_f64(1.0 + jitter);
            let delay = delay.min(config.max_backoff.max(config.min_interval));
            let disable = feed.failing_since.and_then(|since| {
                let failing = (now - since).to_std().unwrap_or_default();
                (failing >= config.disable_after).then(|| {
                    format!(
                        "failing since {} ({})",
                        since.format("%Y-%m-%d %H:%M UTC"),
                        humantime::format_duration(Duration::from_secs(failing.as_secs()))
                    )
                })
            });
            NextPoll {
                at: after(now, delay),
                interval_secs: regular_secs,
                disable,
            }
        }
        PollKind::RateLimited { retry_after } => {
            // Being told to slow down never makes us poll sooner than the
            // feed's regular rhythm, nor before Retry-After (jitter only
            // ever adds).
            let wait = match retry_after {
                Some(wait) => *wait,
                None => backoff(feed.error_count, config),
            };
            let delay = wait
                .max(regular)
                .max(config.min_interval)
                .mul_f64(1.0 + jitter);
            NextPoll {
                at: after(now, delay),
                interval_secs: regular_secs,
                disable: None,
            }
        }
        PollKind::Gone => NextPoll {
            at: after(now, config.max_interval),
            interval_secs: regular_secs,
            disable: Some("410 Gone".to_string()),
        },
    }
}

/// min_interval doubled once per earlier consecutive failure, so the first
/// failure retries after min_interval; capped at max_backoff.
fn backoff(error_count_before: i32, config: &SchedulerConfig) -> Duration {
    let doublings = error_count_before.clamp(0, 30) as u32;
    let cap = config.max_backoff.max(config.min_interval);
    config
        .min_interval
        .checked_mul(1u32 << doublings)
        .unwrap_or(cap)
        .min(cap)
}

/// Half the median gap between the feed's recent items, or a quarter of the
/// time since its newest item if that is longer: a feed that published
/// hourly last year but nothing since should not be polled every half hour.
/// None when there are too few dated items to tell.
fn adaptive_interval(item_dates: &[DateTime<Utc>], now: DateTime<Utc>) -> Option<Duration> {
    // Future-dated items (bad clocks, scheduled posts) say nothing about the
    // rhythm so far.
    let mut dates: Vec<DateTime<Utc>> = item_dates
        .iter()
        .copied()
        .filter(|d| *d <= now + chrono::Duration::minutes(5))
        .collect();
    dates.sort_unstable_by(|a, b| b.cmp(a));
    dates.dedup();
    dates.truncate(RECENT_ITEMS);
    if dates.len() < 2 {
        return None;
    }
    let mut gaps: Vec<Duration> = dates
        .windows(2)
        .map(|w| (w[0] - w[1]).to_std().unwrap_or_default())
        .collect();
    gaps.sort_unstable();
    let median = if gaps.len() % 2 == 1 {
        gaps[gaps.len() / 2]
    } else {
        (gaps[gaps.len() / 2 - 1] + gaps[gaps.len() / 2]) / 2
    };
    let since_newest = (now - dates[0]).to_std().unwrap_or_default();
    Some((median / 2).max(since_newest / 4))
}

/// A fraction in [0, max) that depends only on the feed and the time, so
/// plans are reproducible in tests yet spread across feeds and polls.
fn jitter_fraction(feed_id: i64, now: DateTime<Utc>, max: f64) -> f64 {
    if max.is_nan() || max <= 0.0 {
        return 0.0;
    }
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&feed_id.to_le_bytes());
    buf[8..].copy_from_slice(&now.timestamp_micros().to_le_bytes());
    let h = xxhash_rust::xxh3::xxh3_64(&buf);
    // 53 bits fill an f64 mantissa exactly: uniform in [0, 1).
    let unit = (h >> 11) as f64 / (1u64 << 53) as f64;
    unit * max.min(1.0)
}

fn clamp(d: Duration, min: Duration, max: Duration) -> Duration {
    d.max(min).min(max.max(min))
}

fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(365))
}

fn secs_i32(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests;
