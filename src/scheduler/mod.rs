//! Scheduling (interim copy of the API; the daemon branch replaces this file).

use chrono::{DateTime, Utc};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    #[serde(with = "crate::config::duration")]
    pub default_interval: Duration,
    #[serde(with = "crate::config::duration")]
    pub min_interval: Duration,
    #[serde(with = "crate::config::duration")]
    pub max_interval: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            default_interval: Duration::from_secs(3600),
            min_interval: Duration::from_secs(600),
            max_interval: Duration::from_secs(86400),
        }
    }
}

pub enum PollKind {
    Ok,
    NotModified,
    Failed,
    RateLimited { retry_after: Option<Duration> },
    Gone,
}

#[derive(Default)]
pub struct Hints {
    pub ttl: Option<Duration>,
    pub update_interval: Option<Duration>,
    pub max_age: Option<Duration>,
}

pub struct PollSignal<'a> {
    pub kind: PollKind,
    pub hints: Hints,
    pub item_dates: &'a [DateTime<Utc>],
}

pub struct NextPoll {
    pub at: DateTime<Utc>,
    pub interval_secs: i32,
    pub disable: Option<String>,
}

pub fn plan_next(
    _feed: &crate::store::Feed,
    signal: &PollSignal<'_>,
    config: &SchedulerConfig,
    now: DateTime<Utc>,
) -> NextPoll {
    let secs = config.default_interval.as_secs() as i64;
    NextPoll {
        at: now + chrono::Duration::seconds(secs),
        interval_secs: secs as i32,
        disable: matches!(signal.kind, PollKind::Gone).then(|| "410 Gone".to_string()),
    }
}
