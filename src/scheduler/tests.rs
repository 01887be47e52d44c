use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::dedup::FeedPolicy;
use crate::store::StoreError;

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86400);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap()
}

fn ago(d: Duration) -> DateTime<Utc> {
    t0() - chrono::Duration::from_std(d).unwrap()
}

fn feed(id: i64) -> Feed {
    Feed {
        id,
        url: format!("http://127.0.0.1/feed/{id}"),
        title: None,
        site_url: None,
        language: None,
        created_at: ago(30 * DAY),
        fold_policy: FeedPolicy::Normal,
        languages: None,
        fold_translations: false,
        enabled: true,
        disabled_reason: None,
        etag: None,
        last_modified: None,
        poll_interval_secs: None,
        next_poll_at: t0(),
        last_polled_at: None,
        last_success_at: None,
        last_status: None,
        last_http_status: None,
        last_error_class: None,
        last_error: None,
        error_count: 0,
        failing_since: None,
        last_published_at: None,
        lease_owner: None,
        lease_expires_at: None,
    }
}

fn no_jitter() -> SchedulerConfig {
    SchedulerConfig {
        jitter: 0.0,
        ..SchedulerConfig::default()
    }
}

/// Item dates every `gap`, the newest `newest_age` ago.
fn every(gap: Duration, n: usize, newest_age: Duration) -> Vec<DateTime<Utc>> {
    (0..n).map(|i| ago(newest_age + gap * i as u32)).collect()
}

fn signal(kind: PollKind, hints: Hints, dates: &[DateTime<Utc>]) -> PollSignal<'_> {
    PollSignal {
        kind,
        hints,
        item_dates: dates,
    }
}

#[test]
fn healthy_polls_follow_rhythm_and_hints() {
    struct Case {
        name: &'static str,
        kind: PollKind,
        previous_interval: Option<i32>,
        hints: Hints,
        dates: Vec<DateTime<Utc>>,
        want: Duration,
    }
    let none = Hints::default();
    let cases = [
        Case {
            name: "nothing known: default interval",
            kind: PollKind::Ok,
            previous_interval: None,
            hints: none.clone(),
            dates: vec![],
            want: HOUR,
        },
        Case {
            name: "one item says nothing about rhythm",
            kind: PollKind::Ok,
            previous_interval: Some(7200),
            hints: none.clone(),
            dates: every(HOUR, 1, MIN),
            want: HOUR,
        },
        Case {
            name: "hourly publisher: half the median gap",
            kind: PollKind::Ok,
            previous_interval: None,
            hints: none.clone(),
            dates: every(HOUR, 10, 5 * MIN),
            want: 30 * MIN,
        },
        Case {
            name: "every two minutes: clamped to min",
            kind: PollKind::Ok,
            previous_interval: None,
            hints: none.clone(),
            dates: every(2 * MIN, 20, MIN),
            want: 10 * MIN,
        },
        Case {
            name: "weekly publisher: clamped to max",
            kind: PollKind::Ok,
            previous_interval: None,
            hints: none.clone(),
            dates: every(7 * DAY, 5, HOUR),
            want: DAY,
        },
        Case {
            name: "went quiet: a quarter of the silence",
            kind: PollKind::Ok,
            previous_interval: None,
            hints: none.clone(),
            dates: every(HOUR, 10, 2 * DAY),
            want: 12 * HOUR,
        },
        Case {
            name: "median ignores one burst",
            kind: PollKind::Ok,
            previous_interval: None,
            hints: none.clone(),
            dates: {
                let mut d = every(4 * HOUR, 6, 10 * MIN);
                d.push(ago(10 * MIN + Duration::from_secs(5)));
                d
            },
            want: 2 * HOUR,
        },
        Case {
            name: "future-dated items are ignored",
            kind: PollKind::Ok,
            previous_interval: None,
            hints: none.clone(),
            dates: {
                let mut d = every(HOUR, 6, 5 * MIN);
                d.push(t0() + chrono::Duration::days(30));
                d.push(t0() + chrono::Duration::days(31));
                d
            },
            want: 30 * MIN,
        },
        Case {
            name: "ttl raises the interval",
            kind: PollKind::Ok,
            previous_interval: None,
            hints: Hints {
                ttl: Some(3 * HOUR),
                ..Hints::default()
            },
            dates: every(HOUR, 10, 5 * MIN),
            want: 3 * HOUR,
        },
        Case {
            name: "sy:updatePeriod raises the interval",
            kind: PollKind::Ok,
            previous_interval: None,
            hints: Hints {
                update_interval: Some(6 * HOUR),
                ..Hints::default()
            },
            dates: vec![],
            want: 6 * HOUR,
        },
        Case {
            name: "the largest hint wins",
            kind: PollKind::Ok,
            previous_interval: None,
            hints: Hints {
                ttl: Some(2 * HOUR),
                update_interval: Some(HOUR),
                max_age: Some(5 * HOUR),
            },
            dates: vec![],
            want: 5 * HOUR,
        },
        Case {
            name: "hints never lower the interval",
            kind: PollKind::Ok,
            previous_interval: None,
            hints: Hints {
                max_age: Some(MIN),
                ..Hints::default()
            },
            dates: vec![],
            want: HOUR,
        },
        Case {
            name: "a huge max-age is clamped to max",
            kind: PollKind::Ok,
            previous_interval: None,
            hints: Hints {
                max_age: Some(30 * DAY),
                ..Hints::default()
            },
            dates: vec![],
            want: DAY,
        },
        Case {
            name: "304 keeps the previous interval",
            kind: PollKind::NotModified,
            previous_interval: Some(7200),
            hints: none.clone(),
            dates: vec![],
            want: 2 * HOUR,
        },
        Case {
            name: "304 on a new feed uses the default",
            kind: PollKind::NotModified,
            previous_interval: None,
            hints: none.clone(),
            dates: vec![],
            want: HOUR,
        },
        Case {
            name: "304 with a max-age hint",
            kind: PollKind::NotModified,
            previous_interval: Some(1800),
            hints: Hints {
                max_age: Some(4 * HOUR),
                ..Hints::default()
            },
            dates: vec![],
            want: 4 * HOUR,
        },
    ];
    for case in cases {
        let mut f = feed(1);
        f.poll_interval_secs = case.previous_interval;
        let next = plan_next(
            &f,
            &signal(case.kind, case.hints, &case.dates),
            &no_jitter(),
            t0(),
        );
        assert_eq!(
            next.interval_secs as u64,
            case.want.as_secs(),
            "{}",
            case.name
        );
        assert_eq!(
            next.at,
            t0() + chrono::Duration::from_std(case.want).unwrap(),
            "{}",
            case.name
        );
        assert_eq!(next.disable, None, "{}", case.name);
    }
}

#[test]
fn failures_back_off_exponentially_up_to_the_cap() {
    // (error count before this poll, expected delay)
    let cases = [
        (0, 10 * MIN),
        (1, 20 * MIN),
        (2, 40 * MIN),
        (3, 80 * MIN),
        (7, 1280 * MIN),
        (8, DAY),
        (40, DAY),
        (i32::MAX, DAY),
        (-1, 10 * MIN),
    ];
    for (errors, want) in cases {
        let mut f = feed(1);
        f.error_count = errors;
        f.poll_interval_secs = Some(5400);
        f.failing_since = Some(ago(HOUR));
        let next = plan_next(
            &f,
            &signal(PollKind::Failed, Hints::default(), &[]),
            &no_jitter(),
            t0(),
        );
        assert_eq!(
            next.at,
            t0() + chrono::Duration::from_std(want).unwrap(),
            "error_count {errors}"
        );
        assert_eq!(
            next.interval_secs, 5400,
            "failures keep the regular interval"
        );
        assert_eq!(next.disable, None);
    }
}

#[test]
fn jittered_backoff_never_exceeds_the_cap() {
    let config = SchedulerConfig::default();
    for id in 0..500 {
        let mut f = feed(id);
        f.error_count = 8;
        let next = plan_next(
            &f,
            &signal(PollKind::Failed, Hints::default(), &[]),
            &config,
            t0(),
        );
        let delay = (next.at - t0()).to_std().unwrap();
        assert!(delay <= DAY, "feed {id}: {delay:?}");
        assert!(
            delay >= Duration::from_secs(1280 * 60),
            "feed {id}: {delay:?}"
        );
    }
}

#[test]
fn failing_for_too_long_disables() {
    let cases: [(Option<Duration>, bool); 5] = [
        (None, false),
        (Some(HOUR), false),
        (Some(6 * DAY + 23 * HOUR), false),
        (Some(7 * DAY), true),
        (Some(30 * DAY), true),
    ];
    for (failing_for, disabled) in cases {
        let mut f = feed(1);
        f.error_count = 50;
        f.failing_since = failing_for.map(ago);
        let next = plan_next(
            &f,
            &signal(PollKind::Failed, Hints::default(), &[]),
            &no_jitter(),
            t0(),
        );
        assert_eq!(next.disable.is_some(), disabled, "{failing_for:?}");
        if let Some(reason) = next.disable {
            assert!(reason.starts_with("failing since 20"), "{reason}");
        }
    }
    // Only failures disable: a success after a long outage does not.
    let mut f = feed(1);
    f.failing_since = Some(ago(30 * DAY));
    let next = plan_next(
        &f,
        &signal(PollKind::Ok, Hints::default(), &[]),
        &no_jitter(),
        t0(),
    );
    assert_eq!(next.disable, None);
}

#[test]
fn rate_limits_are_respected() {
    // (retry_after, error count, regular interval, expected minimum delay)
    let cases = [
        (Some(2 * HOUR), 0, 10 * MIN, 2 * HOUR),
        (Some(45 * MIN), 6, 10 * MIN, 45 * MIN),
        (Some(3 * DAY), 0, HOUR, 3 * DAY),
        // A short Retry-After never makes us poll sooner than usual...
        (Some(Duration::from_secs(5)), 0, 6 * HOUR, 6 * HOUR),
        // ...nor more often than the minimum interval.
        (Some(Duration::from_secs(5)), 0, 10 * MIN, 10 * MIN),
        // Without Retry-After: exponential backoff, at least the rhythm.
        (None, 0, 10 * MIN, 10 * MIN),
        (None, 3, 10 * MIN, 80 * MIN),
        (None, 0, 2 * HOUR, 2 * HOUR),
    ];
    let config = SchedulerConfig::default();
    for (retry_after, errors, regular, want) in cases {
        for id in 0..200 {
            let mut f = feed(id);
            f.error_count = errors;
            f.poll_interval_secs = Some(regular.as_secs() as i32);
            let next = plan_next(
                &f,
                &signal(PollKind::RateLimited { retry_after }, Hints::default(), &[]),
                &config,
                t0(),
            );
            let delay = (next.at - t0()).to_std().unwrap();
            assert!(delay >= want, "{retry_after:?}: {delay:?} < {want:?}");
            assert!(
                delay <= want.mul_f64(1.0 + config.jitter),
                "{retry_after:?}: {delay:?} beyond jitter"
            );
            assert_eq!(next.interval_secs as u64, regular.as_secs());
            assert_eq!(next.disable, None);
        }
    }
}

#[test]
fn gone_disables() {
    let next = plan_next(
        &feed(1),
        &signal(PollKind::Gone, Hints::default(), &[]),
        &SchedulerConfig::default(),
        t0(),
    );
    assert_eq!(next.disable.as_deref(), Some("410 Gone"));
}

#[test]
fn jitter_is_bounded_and_spreads_feeds() {
    let config = SchedulerConfig::default();
    let mut offsets = Vec::new();
    for id in 0..1000 {
        let next = plan_next(
            &feed(id),
            &signal(PollKind::Ok, Hints::default(), &[]),
            &config,
            t0(),
        );
        assert_eq!(next.interval_secs, 3600);
        let extra = (next.at - t0()).to_std().unwrap() - HOUR;
        assert!(extra < HOUR.mul_f64(config.jitter), "feed {id}: {extra:?}");
        offsets.push(extra.as_secs());
    }
    let mean = offsets.iter().sum::<u64>() as f64 / offsets.len() as f64;
    // Uniform over [0, 360 s): mean 180 s.
    assert!((150.0..210.0).contains(&mean), "mean jitter {mean}");
    offsets.sort_unstable();
    offsets.dedup();
    assert!(
        offsets.len() > 300,
        "only {} distinct offsets",
        offsets.len()
    );
    // Same feed, same time: same plan.
    let a = plan_next(
        &feed(7),
        &signal(PollKind::Ok, Hints::default(), &[]),
        &config,
        t0(),
    );
    let b = plan_next(
        &feed(7),
        &signal(PollKind::Ok, Hints::default(), &[]),
        &config,
        t0(),
    );
    assert_eq!(a, b);
}

#[test]
fn config_reads_durations_and_rejects_unknown_keys() {
    let c: SchedulerConfig = toml::from_str("min_interval = \"5m\"\nbatch = 10\n").unwrap();
    assert_eq!(c.min_interval, 5 * MIN);
    assert_eq!(c.batch, 10);
    assert_eq!(c.max_interval, DAY);
    assert!(toml::from_str::<SchedulerConfig>("min_intervall = \"5m\"").is_err());
    let round: SchedulerConfig =
        toml::from_str(&toml::to_string(&SchedulerConfig::default()).unwrap()).unwrap();
    assert_eq!(round, SchedulerConfig::default());
}

// ---- The loop, on a paused clock with a fake lease table. ----

#[derive(Default)]
struct FakeState {
    feeds: Vec<Feed>,
    /// Claims that fail before claims start working (a database outage).
    failing_claims: usize,
    claim_calls: usize,
    released_by: Vec<String>,
    /// How long a claim's commit takes to land. It lands even if the caller
    /// stops waiting, as a database commit does.
    claim_takes: Duration,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<FakeState>>);

impl Fake {
    fn with_feeds(feeds: Vec<Feed>) -> Fake {
        let fake = Fake::default();
        fake.0.lock().unwrap().feeds = feeds;
        fake
    }

    /// What `record_poll` does for the scheduler: new due time, lease cleared.
    fn record(&self, id: i64, next: &NextPoll, success: bool, now: DateTime<Utc>) {
        let mut s = self.0.lock().unwrap();
        let f = s.feeds.iter_mut().find(|f| f.id == id).unwrap();
        f.next_poll_at = next.at;
        f.poll_interval_secs = Some(next.interval_secs);
        f.lease_owner = None;
        f.lease_expires_at = None;
        if success {
            f.error_count = 0;
            f.failing_since = None;
        } else {
            f.error_count += 1;
            f.failing_since.get_or_insert(now);
        }
        if next.disable.is_some() {
            f.enabled = false;
        }
    }

    fn feed(&self, id: i64) -> Feed {
        let s = self.0.lock().unwrap();
        s.feeds.iter().find(|f| f.id == id).unwrap().clone()
    }
}

impl Fake {
    fn claim_now(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Feed>, StoreError> {
        let mut s = self.0.lock().unwrap();
        s.claim_calls += 1;
        if s.failing_claims > 0 {
            s.failing_claims -= 1;
            return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
        }
        let mut due: Vec<&mut Feed> = s
            .feeds
            .iter_mut()
            .filter(|f| {
                f.enabled && f.next_poll_at <= now && f.lease_expires_at.is_none_or(|e| e <= now)
            })
            .collect();
        due.sort_by_key(|f| f.next_poll_at);
        let until = now + chrono::Duration::from_std(lease).unwrap();
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|f| {
                f.lease_owner = Some(owner.to_string());
                f.lease_expires_at = Some(until);
                f.clone()
            })
            .collect())
    }
}

impl Leases for Fake {
    async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Feed>, StoreError> {
        let takes = self.0.lock().unwrap().claim_takes;
        if takes.is_zero() {
            return self.claim_now(owner, now, limit, lease);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (fake, owner) = (self.clone(), owner.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(takes).await;
            let _ = tx.send(fake.claim_now(&owner, now, limit, lease));
        });
        rx.await
            .unwrap_or(Err(StoreError::Database(sqlx::Error::PoolClosed)))
    }

    async fn release_all(&self, owner: &str) -> Result<u64, StoreError> {
        let mut s = self.0.lock().unwrap();
        s.released_by.push(owner.to_string());
        let mut n = 0;
        for f in s.feeds.iter_mut() {
            if f.lease_owner.as_deref() == Some(owner) {
                f.lease_owner = None;
                f.lease_expires_at = None;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let s = self.0.lock().unwrap();
        Ok(s.feeds
            .iter()
            .filter(|f| f.enabled)
            .map(|f| f.next_poll_at)
            .min())
    }
}

/// (feed id, when it was polled)
type PollLog = Arc<Mutex<Vec<(i64, DateTime<Utc>)>>>;

fn test_config() -> SchedulerConfig {
    SchedulerConfig {
        jitter: 0.0,
        tick: Duration::from_secs(30),
        ..SchedulerConfig::default()
    }
}

/// Starts a scheduler whose polls log their time, then plan the next poll
/// from `kind` and record it like refresh does.
fn start(
    fake: &Fake,
    owner: &str,
    config: SchedulerConfig,
    max_concurrent: usize,
    kind: PollKind,
    poll_takes: Duration,
) -> (
    PollLog,
    CancellationToken,
    tokio::task::JoinHandle<RunSummary>,
) {
    let log: PollLog = Arc::default();
    let token = CancellationToken::new();
    let clock = Clock::tokio_at(t0());
    let poll = {
        let fake = fake.clone();
        let log = log.clone();
        let config = config.clone();
        move |f: Feed| {
            let fake = fake.clone();
            let log = log.clone();
            let config = config.clone();
            let kind = kind.clone();
            async move {
                log.lock().unwrap().push((f.id, clock.now()));
                tokio::time::sleep(poll_takes).await;
                let now = clock.now();
                let success = matches!(kind, PollKind::Ok | PollKind::NotModified);
                let next = plan_next(
                    &fake.feed(f.id),
                    &PollSignal {
                        kind,
                        hints: Hints::default(),
                        item_dates: &[],
                    },
                    &config,
                    now,
                );
                fake.record(f.id, &next, success, now);
            }
        }
    };
    let scheduler = Scheduler::new(fake.clone(), owner, config, max_concurrent).with_clock(clock);
    let handle = tokio::spawn(scheduler.run(poll, token.clone()));
    (log, token, handle)
}

fn polls_of(log: &PollLog, id: i64) -> Vec<Duration> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(f, _)| *f == id)
        .map(|(_, at)| (*at - t0()).to_std().unwrap())
        .collect()
}

/// `got` happened at `want` or at most `slack` later.
fn near(got: Duration, want: Duration, slack: Duration) -> bool {
    got >= want && got <= want + slack
}

#[tokio::test(start_paused = true)]
async fn polls_each_feed_when_due() {
    let mut feeds = vec![feed(1), feed(2), feed(3)];
    feeds[1].next_poll_at = t0() + chrono::Duration::minutes(25);
    feeds[2].next_poll_at = t0() + chrono::Duration::minutes(90);
    let fake = Fake::with_feeds(feeds);
    let (log, token, handle) = start(
        &fake,
        "a",
        test_config(),
        4,
        PollKind::Ok,
        Duration::from_secs(2),
    );
    tokio::time::sleep(3 * HOUR - MIN).await;
    token.cancel();
    let summary = handle.await.unwrap();
    let slack = Duration::from_secs(3);
    let expect: [(i64, &[Duration]); 3] = [
        (1, &[Duration::ZERO, HOUR, 2 * HOUR]),
        (2, &[25 * MIN, 85 * MIN, 145 * MIN]),
        (3, &[90 * MIN, 150 * MIN]),
    ];
    for (id, want) in expect {
        let got = polls_of(&log, id);
        assert_eq!(got.len(), want.len(), "feed {id}: {got:?}");
        // Each poll happens when due; the next is due an interval after the
        // previous poll finished (2 s later).
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let w = *w + Duration::from_secs(2) * i as u32;
            assert!(near(*g, w, slack), "feed {id} poll {i}: {g:?}, want {w:?}");
        }
    }
    assert_eq!(summary.polls_started, 8);
    assert_eq!(summary.polls_finished, 8);
    assert_eq!(fake.0.lock().unwrap().released_by, vec!["a".to_string()]);
}

#[tokio::test(start_paused = true)]
async fn jitter_spreads_feeds_added_together() {
    let fake = Fake::with_feeds((1..=50).map(feed).collect());
    let config = SchedulerConfig {
        jitter: 0.1,
        ..test_config()
    };
    let (log, token, handle) = start(&fake, "a", config, 50, PollKind::Ok, Duration::ZERO);
    tokio::time::sleep(HOUR + 10 * MIN).await;
    token.cancel();
    handle.await.unwrap();
    let mut seconds = Vec::new();
    for id in 1..=50 {
        let got = polls_of(&log, id);
        assert_eq!(got.len(), 2, "feed {id}: {got:?}");
        assert_eq!(got[0], Duration::ZERO);
        assert!(
            near(got[1], HOUR, 6 * MIN + Duration::from_secs(1)),
            "feed {id}: second poll at {:?}",
            got[1]
        );
        seconds.push(got[1].as_secs());
    }
    seconds.sort_unstable();
    seconds.dedup();
    assert!(seconds.len() > 30, "second polls bunch up: {seconds:?}");
}

#[tokio::test(start_paused = true)]
async fn failing_feed_backs_off() {
    let fake = Fake::with_feeds(vec![feed(1)]);
    let (log, token, handle) = start(
        &fake,
        "a",
        test_config(),
        4,
        PollKind::Failed,
        Duration::ZERO,
    );
    tokio::time::sleep(2 * HOUR).await;
    token.cancel();
    handle.await.unwrap();
    let got = polls_of(&log, 1);
    let want = [Duration::ZERO, 10 * MIN, 30 * MIN, 70 * MIN];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(near(*g, w, Duration::from_secs(1)), "{got:?}");
    }
    assert_eq!(fake.feed(1).error_count, 4);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_respected() {
    let fake = Fake::with_feeds(vec![feed(1)]);
    // The regular rhythm (10 min) is shorter than Retry-After, which wins.
    let config = SchedulerConfig {
        jitter: 0.1,
        default_interval: 10 * MIN,
        ..test_config()
    };
    let (log, token, handle) = start(
        &fake,
        "a",
        config,
        4,
        PollKind::RateLimited {
            retry_after: Some(45 * MIN),
        },
        Duration::ZERO,
    );
    tokio::time::sleep(2 * HOUR).await;
    token.cancel();
    handle.await.unwrap();
    let got = polls_of(&log, 1);
    assert!(got.len() >= 2, "{got:?}");
    for pair in got.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= 45 * MIN && gap <= (45 * MIN).mul_f64(1.1) + Duration::from_secs(1),
            "{got:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded() {
    let fake = Fake::with_feeds((1..=20).map(feed).collect());
    let running = Arc::new(Mutex::new((0usize, 0usize)));
    let token = CancellationToken::new();
    let poll = {
        let fake = fake.clone();
        let running = running.clone();
        move |f: Feed| {
            let fake = fake.clone();
            let running = running.clone();
            async move {
                {
                    let mut r = running.lock().unwrap();
                    r.0 += 1;
                    r.1 = r.1.max(r.0);
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
                running.lock().unwrap().0 -= 1;
                let next = NextPoll {
                    at: t0() + chrono::Duration::days(1),
                    interval_secs: 3600,
                    disable: None,
                };
                fake.record(f.id, &next, true, t0());
            }
        }
    };
    let scheduler =
        Scheduler::new(fake.clone(), "a", test_config(), 3).with_clock(Clock::tokio_at(t0()));
    let handle = tokio::spawn(scheduler.run(poll, token.clone()));
    tokio::time::sleep(5 * MIN).await;
    token.cancel();
    let summary = handle.await.unwrap();
    assert_eq!(summary.polls_finished, 20);
    assert_eq!(running.lock().unwrap().1, 3);
}

#[tokio::test(start_paused = true)]
async fn database_errors_are_retried() {
    let fake = Fake::with_feeds(vec![feed(1)]);
    fake.0.lock().unwrap().failing_claims = 4;
    let (log, token, handle) = start(&fake, "a", test_config(), 4, PollKind::Ok, Duration::ZERO);
    tokio::time::sleep(2 * MIN).await;
    token.cancel();
    handle.await.unwrap();
    let got = polls_of(&log, 1);
    assert_eq!(got.len(), 1, "{got:?}");
    // Backoff 1 + 2 + 4 + 8 s before the fifth claim succeeds.
    assert!(
        near(got[0], Duration::from_secs(15), Duration::from_secs(1)),
        "{got:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_in_flight_polls() {
    let fake = Fake::with_feeds(vec![feed(1), feed(2)]);
    let config = SchedulerConfig {
        shutdown_grace: Duration::from_secs(30),
        ..test_config()
    };
    let (log, token, handle) = start(&fake, "a", config, 4, PollKind::Ok, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stop = tokio::time::Instant::now();
    token.cancel();
    let summary = handle.await.unwrap();
    let took = stop.elapsed();
    assert!(
        near(took, Duration::from_secs(9), Duration::from_secs(1)),
        "{took:?}"
    );
    assert_eq!(summary.polls_finished, 2);
    assert_eq!(summary.polls_aborted, 0);
    assert_eq!(log.lock().unwrap().len(), 2);
    // Both polls recorded their result, so no lease was left to release.
    assert_eq!(summary.leases_released, Some(0));
    assert!(fake.feed(1).next_poll_at > t0());
}

#[tokio::test(start_paused = true)]
async fn shutdown_aborts_polls_past_the_grace_and_releases_leases() {
    let fake = Fake::with_feeds(vec![feed(1)]);
    let config = SchedulerConfig {
        shutdown_grace: Duration::from_secs(30),
        ..test_config()
    };
    let (_log, token, handle) = start(&fake, "a", config, 4, PollKind::Ok, 10 * MIN);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.feed(1).lease_owner.as_deref(), Some("a"));
    let stop = tokio::time::Instant::now();
    token.cancel();
    let summary = handle.await.unwrap();
    assert!(near(
        stop.elapsed(),
        Duration::from_secs(30),
        Duration::from_secs(1)
    ));
    assert_eq!(summary.polls_aborted, 1);
    assert_eq!(summary.leases_released, Some(1));
    let f = fake.feed(1);
    assert_eq!(f.lease_owner, None);
    assert_eq!(f.next_poll_at, t0(), "the aborted poll recorded nothing");
}

#[tokio::test(start_paused = true)]
async fn no_claims_after_shutdown() {
    let mut late = feed(2);
    late.next_poll_at = t0() + chrono::Duration::minutes(5);
    let fake = Fake::with_feeds(vec![feed(1), late]);
    let (log, token, handle) = start(&fake, "a", test_config(), 4, PollKind::Ok, 10 * MIN);
    tokio::time::sleep(MIN).await;
    token.cancel();
    handle.await.unwrap();
    let calls = fake.0.lock().unwrap().claim_calls;
    tokio::time::sleep(HOUR).await;
    assert_eq!(fake.0.lock().unwrap().claim_calls, calls);
    assert_eq!(polls_of(&log, 2), Vec::<Duration>::new());
}

/// A shutdown that arrives while a claim is committing must not cut it off:
/// the commit would land after the leases were released and strand them
/// until they expire, so another instance could not poll those feeds.
#[tokio::test(start_paused = true)]
async fn shutdown_during_a_claim_releases_what_it_claimed() {
    let fake = Fake::with_feeds(vec![feed(1), feed(2)]);
    fake.0.lock().unwrap().claim_takes = Duration::from_secs(2);
    let (log, token, handle) = start(&fake, "a", test_config(), 4, PollKind::Ok, 10 * MIN);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        fake.0.lock().unwrap().claim_calls,
        0,
        "claim still committing"
    );
    token.cancel();
    let summary = handle.await.unwrap();
    tokio::time::sleep(HOUR).await;
    assert_eq!(fake.0.lock().unwrap().claim_calls, 1);
    assert_eq!(summary.polls_started, 0, "nothing is polled after shutdown");
    assert_eq!(summary.leases_released, Some(2));
    for id in [1, 2] {
        assert_eq!(fake.feed(id).lease_owner, None, "feed {id} lease stranded");
    }
    assert!(log.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn expired_leases_of_a_stuck_instance_are_taken_over() {
    let fake = Fake::with_feeds(vec![feed(1)]);
    let config = SchedulerConfig {
        lease: 10 * MIN,
        shutdown_grace: Duration::from_secs(1),
        ..test_config()
    };
    // Instance a hangs in its poll and never records.
    let (log_a, token_a, handle_a) = start(&fake, "a", config.clone(), 1, PollKind::Ok, 100 * DAY);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(polls_of(&log_a, 1), vec![Duration::ZERO]);
    let (log_b, token_b, handle_b) = start(&fake, "b", config, 4, PollKind::Ok, Duration::ZERO);
    tokio::time::sleep(30 * MIN).await;
    token_a.cancel();
    token_b.cancel();
    handle_a.await.unwrap();
    handle_b.await.unwrap();
    let got = polls_of(&log_b, 1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(near(got[0], 10 * MIN, Duration::from_secs(31)), "{got:?}");
}
