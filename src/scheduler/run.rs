//! The polling loop: lease due feeds, poll them with bounded concurrency,
//! sleep until the next one is due, drain on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::SchedulerConfig;
use crate::daemon::metrics;
use crate::store::{Feed, Store, StoreError};

/// First wait after a database error in the loop; doubles up to the max.
const DB_BACKOFF_MIN: Duration = Duration::from_secs(1);
const DB_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long shutdown tries to release leases.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// Shortest idle wait when a feed is due but leased (in flight here or held
/// by another instance): long enough not to hammer the database, short
/// enough that the next due feed is picked up promptly.
const LEASED_WAIT: Duration = Duration::from_secs(1);

/// The part of the store the loop needs. Every `Store` is one (blanket impl);
/// tests fake this small trait instead of the whole store.
pub trait Leases: Clone + Send + Sync + 'static {
    /// Leases up to `limit` due feeds to `owner` until `now + lease`.
    fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: i64,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<Feed>, StoreError>> + Send;

    /// Releases every lease `owner` holds.
    fn release_all(&self, owner: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The earliest next poll time among enabled feeds.
    fn next_due(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;
}

impl<S: Store> Leases for S {
    fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: i64,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<Feed>, StoreError>> + Send {
        Store::claim_due_feeds(self, owner, now, limit, lease)
    }

    fn release_all(&self, owner: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
        Store::release_leases(self, owner)
    }

    fn next_due(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send {
        Store::next_due_at(self)
    }
}

/// Where the loop reads wall-clock time. Production uses the system clock;
/// paused-clock tests use `Tokio`, which advances with `tokio::time` so that
/// due times and sleeps agree.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    Tokio {
        origin_utc: DateTime<Utc>,
        origin: Instant,
    },
}

impl Clock {
    /// A clock that reads `start` now and advances with `tokio::time`.
    pub fn tokio_at(start: DateTime<Utc>) -> Clock {
        Clock::Tokio {
            origin_utc: start,
            origin: Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Tokio { origin_utc, origin } => {
                *origin_utc
                    + chrono::Duration::from_std(origin.elapsed()).unwrap_or(chrono::Duration::MAX)
            }
        }
    }
}

/// Live state of the loop, shared with /healthz and the systemd status line.
#[derive(Debug, Default)]
pub struct LoopStatus {
    last_tick: Mutex<Option<Instant>>,
    in_flight: AtomicUsize,
    claimed_last: AtomicUsize,
    polls_started: AtomicU64,
    next_due: Mutex<Option<DateTime<Utc>>>,
}

impl LoopStatus {
    /// Marks the loop as alive. The daemon also calls it while it waits for
    /// the database at start, which is the loop's work at that point.
    pub fn touch(&self) {
        if let Ok(mut t) = self.last_tick.lock() {
            *t = Some(Instant::now());
        }
    }

    pub fn last_tick(&self) -> Option<Instant> {
        self.last_tick.lock().ok().and_then(|t| *t)
    }

    /// True when the loop went round within `within`.
    pub fn ticked_within(&self, within: Duration) -> bool {
        self.last_tick().is_some_and(|t| t.elapsed() <= within)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Feeds leased by the most recent claim.
    pub fn claimed_last(&self) -> usize {
        self.claimed_last.load(Ordering::Relaxed)
    }

    pub fn polls_started(&self) -> u64 {
        self.polls_started.load(Ordering::Relaxed)
    }

    /// The earliest due time the loop saw last (None: no enabled feed).
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.next_due.lock().ok().and_then(|t| *t)
    }

    fn set_next_due(&self, at: Option<DateTime<Utc>>) {
        if let Ok(mut t) = self.next_due.lock() {
            *t = at;
        }
    }
}

/// Decrements the in-flight count even when a poll is aborted or panics.
struct InFlight(Arc<LoopStatus>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a loop run did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    pub polls_started: u64,
    pub polls_finished: u64,
    /// Polls still running when the shutdown grace ran out.
    pub polls_aborted: usize,
    /// Leases released at the end; None if releasing failed (they expire).
    pub leases_released: Option<u64>,
}

/// The polling loop over a lease source `L` (any `Store`).
pub struct Scheduler<L> {
    leases: L,
    owner: String,
    config: SchedulerConfig,
    max_concurrent: usize,
    clock: Clock,
    status: Arc<LoopStatus>,
}

impl<L: Leases> Scheduler<L> {
    /// `owner` names this instance in leases; it must differ between
    /// instances sharing a database. At most `max_concurrent` polls run at
    /// once.
    pub fn new(
        leases: L,
        owner: impl Into<String>,
        config: SchedulerConfig,
        max_concurrent: usize,
    ) -> Scheduler<L> {
        Scheduler {
            leases,
            owner: owner.into(),
            config,
            max_concurrent: max_concurrent.max(1),
            clock: Clock::System,
            status: Arc::new(LoopStatus::default()),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> Scheduler<L> {
        self.clock = clock;
        self
    }

    /// Shares an existing status (the daemon creates it before the loop).
    pub fn with_status(mut self, status: Arc<LoopStatus>) -> Scheduler<L> {
        self.status = status;
        self
    }

    pub fn status(&self) -> Arc<LoopStatus> {
        self.status.clone()
    }

    /// Runs until `shutdown` is cancelled, then stops claiming, waits up to
    /// `shutdown_grace` for in-flight polls (aborting the rest) and releases
    /// this owner's leases. Database errors are logged and retried with
    /// backoff; the loop never exits on them.
    pub async fn run<F, Fut>(self, poll: F, shutdown: CancellationToken) -> RunSummary
    where
        F: Fn(Feed) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let poll = Arc::new(poll);
        let permits = Arc::new(Semaphore::new(self.max_concurrent));
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut db_backoff = DB_BACKOFF_MIN;
        let mut summary = RunSummary::default();
        let tick = self.config.tick.max(Duration::from_millis(10));
        info!(owner = %self.owner, max_concurrent = self.max_concurrent, "scheduler started");

        loop {
            if shutdown.is_cancelled() {
                break;
            }
            self.status.touch();
            while let Some(done) = tasks.try_join_next() {
                finished(done, &mut summary);
            }
            let free = permits.available_permits();
            let mut wait = tick;
            if free > 0 {
                let limit = (free as i64).min(self.config.batch.max(1));
                let now = self.clock.now();
                let claim = self
                    .leases
                    .claim(&self.owner, now, limit, self.config.lease);
                tokio::pin!(claim);
                let claimed = tokio::select! {
                    r = &mut claim => r,
                    _ = shutdown.cancelled() => {
                        // Dropping a claim mid-commit does not stop the
                        // commit: it could land after the release below and
                        // strand its leases until they expire. Let it finish
                        // (bounded), and release what it took.
                        let _ = tokio::time::timeout(RELEASE_TIMEOUT, claim).await;
                        break;
                    }
                };
                match claimed {
                    Err(e) => {
                        warn!(error = %e, retry_in = ?db_backoff, "cannot claim due feeds");
                        wait = db_backoff;
                        db_backoff = (db_backoff * 2).min(DB_BACKOFF_MAX);
                    }
                    Ok(feeds) => {
                        db_backoff = DB_BACKOFF_MIN;
                        let n = feeds.len();
                        self.status.claimed_last.store(n, Ordering::Relaxed);
                        if n > 0 {
                            debug!(claimed = n, "leased due feeds");
                            metrics::leases_claimed(n as u64);
                        }
                        for feed in feeds {
                            // Only this loop takes permits, and it asked for
                            // no more feeds than were free.
                            let Ok(permit) = permits.clone().acquire_owned().await else {
                                break;
                            };
                            self.status.in_flight.fetch_add(1, Ordering::Relaxed);
                            self.status.polls_started.fetch_add(1, Ordering::Relaxed);
                            summary.polls_started += 1;
                            let guard = InFlight(self.status.clone());
                            let poll = poll.clone();
                            let lease = self.config.lease;
                            tasks.spawn(async move {
                                let _permit = permit;
                                let _guard = guard;
                                let id = feed.id;
                                let started = Instant::now();
                                poll(feed).await;
                                if started.elapsed() > lease {
                                    warn!(
                                        feed_id = id,
                                        took = ?started.elapsed(),
                                        "poll outlived its lease; another instance may have polled this feed too"
                                    );
                                    metrics::lease_expired();
                                }
                            });
                        }
                        if n as i64 == limit {
                            // More may be due; the semaphore paces us.
                            continue;
                        }
                        let next = tokio::select! {
                            _ = shutdown.cancelled() => break,
                            r = self.leases.next_due() => r,
                        };
                        wait = match next {
                            Ok(at) => {
                                self.status.set_next_due(at);
                                match at {
                                    Some(at) => match (at - self.clock.now()).to_std() {
                                        Ok(d) if !d.is_zero() => d.min(tick),
                                        _ => LEASED_WAIT.min(tick),
                                    },
                                    None => tick,
                                }
                            }
                            Err(e) => {
                                warn!(error = %e, "cannot read the next due time");
                                tick
                            }
                        };
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => finished(done, &mut summary),
            }
        }

        let grace = self.config.shutdown_grace;
        if !tasks.is_empty() {
            info!(in_flight = tasks.len(), grace = ?grace, "stopping: waiting for in-flight polls");
        }
        let drained = tokio::time::timeout(grace, async {
            while let Some(done) = tasks.join_next().await {
                finished(done, &mut summary);
            }
        })
        .await;
        if drained.is_err() {
            summary.polls_aborted = tasks.len();
            warn!(
                aborted = tasks.len(),
                "shutdown grace ran out; aborting polls"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        // Bounded: with the database down, the leases expire on their own and
        // the shutdown deadline matters more.
        match tokio::time::timeout(RELEASE_TIMEOUT, self.leases.release_all(&self.owner)).await {
            Ok(Ok(n)) => {
                summary.leases_released = Some(n);
                info!(released = n, "scheduler stopped; leases released");
            }
            Ok(Err(e)) => warn!(error = %e, "cannot release leases; they will expire"),
            Err(_) => warn!("releasing leases timed out; they will expire"),
        }
        summary
    }
}

fn finished(done: Result<(), JoinError>, summary: &mut RunSummary) {
    match done {
        Ok(()) => summary.polls_finished += 1,
        Err(e) if e.is_panic() => {
            summary.polls_finished += 1;
            error!(error = %e, "a poll panicked; its feed is retried once its lease expires");
        }
        Err(_) => {}
    }
}

/// Runs the polling loop on `store` until `shutdown` is cancelled. See
/// `Scheduler::run`.
pub async fn run<L, F, Fut>(
    store: L,
    owner: String,
    config: SchedulerConfig,
    max_concurrent: usize,
    poll: F,
    shutdown: CancellationToken,
) -> RunSummary
where
    L: Leases,
    F: Fn(Feed) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Scheduler::new(store, owner, config, max_concurrent)
        .run(poll, shutdown)
        .await
}
