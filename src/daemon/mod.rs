//! `feedfold run`: the long-running process. It waits for the database,
//! serves /healthz, /readyz and /metrics, runs the scheduler loop, talks to
//! systemd, and drains on shutdown. It knows nothing of feed formats: polling
//! one feed is the `poll` function in `DaemonSettings`.
//!
//! Like mini-redis, `run` takes its shutdown future as an argument so that
//! tests drive the whole daemon; `shutdown_signal` is the production one.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::scheduler::{LoopStatus, Scheduler, SchedulerConfig};
use crate::store::{Feed, Store, StoreError};

mod http;
pub mod metrics;
mod systemd;

/// Default address of the HTTP listener (health, readiness, metrics).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9187";

/// The future one poll returns.
pub type PollFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
/// Polls one leased feed to completion, recording the outcome (and clearing
/// the lease) through the store. In production it is `refresh::feed`.
pub type PollFn = Arc<dyn Fn(Feed) -> PollFuture + Send + Sync + 'static>;

/// Boxes a closure as a `PollFn`.
pub fn poll_fn<F, Fut>(f: F) -> PollFn
where
    F: Fn(Feed) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |feed| Box::pin(f(feed)) as PollFuture)
}

/// The production poll: `refresh::feed` with a shared context. The report
/// is already logged and recorded by refresh, so it is dropped here.
pub fn refresh_poll<S: Store>(ctx: crate::refresh::Context<S>) -> PollFn {
    let ctx = Arc::new(ctx);
    poll_fn(move |feed| {
        let ctx = ctx.clone();
        async move {
            crate::refresh::feed(&ctx, feed).await;
        }
    })
}

/// Everything `run` needs besides the store.
#[derive(Clone)]
pub struct DaemonSettings {
    /// This instance's name in feed leases; unique among instances sharing a
    /// database (`default_owner()` is).
    pub owner: String,
    /// Address for /healthz, /readyz and /metrics; empty disables the listener.
    pub listen: String,
    pub scheduler: SchedulerConfig,
    /// Polls running at once, across all hosts.
    pub max_concurrent: usize,
    pub poll: PollFn,
}

impl DaemonSettings {
    /// Defaults for everything but the poll function.
    pub fn new(poll: PollFn) -> DaemonSettings {
        DaemonSettings {
            owner: default_owner(),
            listen: DEFAULT_LISTEN.to_string(),
            scheduler: SchedulerConfig::default(),
            max_concurrent: 32,
            poll,
        }
    }
}

impl fmt::Debug for DaemonSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonSettings")
            .field("owner", &self.owner)
            .field("listen", &self.listen)
            .field("scheduler", &self.scheduler)
            .field("max_concurrent", &self.max_concurrent)
            .finish_non_exhaustive()
    }
}

/// host-pid-random: readable in the feeds table, and unique even when two
/// containers share a hostname and a pid.
pub fn default_owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "feedfold".to_string());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("HTTP listener failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid log filter `{filter}`: {message}")]
    LogFilter { filter: String, message: String },
}

/// Runs the daemon until `shutdown` resolves, then stops claiming feeds,
/// lets in-flight polls finish within the grace period, releases leases and
/// returns. Database outages never end it; only a refused database (a locked
/// SQLite file, a migration that cannot apply) or an unusable listen address
/// does.
pub async fn run<S: Store>(
    store: S,
    settings: DaemonSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DaemonError> {
    let listener = if settings.listen.trim().is_empty() {
        None
    } else {
        let addr = settings.listen.trim().to_string();
        Some(
            TcpListener::bind(&addr)
                .await
                .map_err(|source| DaemonError::Bind { addr, source })?,
        )
    };
    run_with_listener(store, settings, listener, shutdown).await
}

/// `run` with a listener the caller bound (tests bind port 0 and read the
/// address first); `settings.listen` is ignored.
pub async fn run_with_listener<S: Store>(
    store: S,
    settings: DaemonSettings,
    listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DaemonError> {
    metrics::init();
    let token = CancellationToken::new();
    let body = serve(store, settings, listener, token.clone());
    tokio::pin!(shutdown);
    tokio::pin!(body);
    loop {
        tokio::select! {
            _ = &mut shutdown, if !token.is_cancelled() => {
                info!("shutdown requested");
                systemd::stopping();
                token.cancel();
            }
            r = &mut body => return r,
        }
    }
}

/// How long /healthz tolerates a silent loop. The loop goes round at least
/// once per tick, but a database outage legitimately stretches a round to a
/// pool acquire timeout plus the loop's backoff (up to 30 s); only longer
/// silence means it is stuck.
fn stale_after(config: &SchedulerConfig) -> Duration {
    config.tick * 3 + Duration::from_secs(60)
}

/// Aborts a spawned task when dropped, so that dropping `run` (a test
/// simulating a crash, or an embedder giving up) stops everything it
/// started instead of leaving a headless loop polling feeds.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

async fn serve<S: Store>(
    store: S,
    settings: DaemonSettings,
    listener: Option<TcpListener>,
    token: CancellationToken,
) -> Result<(), DaemonError> {
    let status = Arc::new(LoopStatus::default());
    let stale = stale_after(&settings.scheduler);
    let server = match listener {
        Some(listener) => {
            let addr: Option<SocketAddr> = listener.local_addr().ok();
            info!(addr = ?addr, "serving /healthz, /readyz and /metrics");
            let app = http::router(store.clone(), status.clone(), stale);
            let stop = token.clone();
            Some(AbortOnDrop(tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            })))
        }
        None => None,
    };

    let result = async {
        if !wait_for_database(&store, &token, &status).await? {
            return Ok(());
        }
        let housekeeping = AbortOnDrop(tokio::spawn(housekeeping(
            store.clone(),
            status.clone(),
            settings.scheduler.tick,
            token.clone(),
        )));
        let _watchdog = systemd::watchdog_interval().map(|every| {
            AbortOnDrop(tokio::spawn(watchdog(
                every,
                status.clone(),
                stale,
                token.clone(),
            )))
        });
        let poll = settings.poll.clone();
        let scheduler = Scheduler::new(
            store.clone(),
            settings.owner.clone(),
            settings.scheduler.clone(),
            settings.max_concurrent,
        )
        .with_status(status.clone());
        let loop_task = AbortOnDrop(tokio::spawn(
            scheduler.run(move |feed| poll(feed), token.clone()),
        ));
        systemd::ready();
        info!(owner = %settings.owner, "daemon ready");
        let summary = match loop_task.join().await {
            Ok(summary) => Some(summary),
            Err(e) => {
                warn!(error = %e, "scheduler task failed");
                None
            }
        };
        token.cancel();
        let _ = housekeeping.join().await;
        info!(summary = ?summary, "daemon stopped");
        Ok(())
    }
    .await;

    // A failed start must not leave the listener running.
    token.cancel();
    if let Some(server) = server {
        match server.join().await {
            Ok(Err(e)) if result.is_ok() => return Err(DaemonError::Serve(e)),
            Ok(Err(e)) => warn!(error = %e, "HTTP listener failed"),
            _ => {}
        }
    }
    store.close().await;
    result
}

/// Applies migrations, retrying with backoff while the database is
/// unreachable. Ok(false) if shutdown came first.
async fn wait_for_database<S: Store>(
    store: &S,
    token: &CancellationToken,
    status: &LoopStatus,
) -> Result<bool, DaemonError> {
    let mut delay = Duration::from_secs(1);
    loop {
        status.touch();
        let attempt = tokio::select! {
            _ = token.cancelled() => return Ok(false),
            r = store.migrate() => r,
        };
        match attempt {
            Ok(()) => return Ok(true),
            Err(e) if !retryable(&e) => return Err(e.into()),
            Err(e) => warn!(error = %e, retry_in = ?delay, "database not ready; retrying"),
        }
        tokio::select! {
            _ = token.cancelled() => return Ok(false),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Opens the database with `connect`, retrying with backoff (and a log line
/// saying why) while it is unreachable, so that a daemon started before its
/// database comes up waits instead of crash-looping. None if `shutdown` is
/// cancelled first; Err for errors that waiting cannot fix.
pub async fn connect_with_retry<S, F, Fut>(
    mut connect: F,
    shutdown: &CancellationToken,
) -> Result<Option<S>, DaemonError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let mut delay = Duration::from_secs(1);
    loop {
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            r = connect() => r,
        };
        match attempt {
            Ok(store) => return Ok(Some(store)),
            Err(e) if !retryable(&e) => return Err(e.into()),
            Err(e) => {
                warn!(error = %e, retry_in = ?delay, "cannot connect to the database; retrying")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Connection trouble is worth waiting out; a locked SQLite file, a bad URL
/// or a migration the database refuses is not.
fn retryable(e: &StoreError) -> bool {
    use sqlx::migrate::MigrateError;
    match e {
        StoreError::Database(_) => true,
        StoreError::Migrate(MigrateError::Execute(inner))
        | StoreError::Migrate(MigrateError::ExecuteMigration(inner, _)) => transient(inner),
        _ => false,
    }
}

fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        // Class 08 is connection exceptions, 57P0x the server shutting down
        // or starting up.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// Each tick, but at most every few seconds (counting feeds is a query):
/// refresh the feed gauges, pool gauges and the systemd status.
async fn housekeeping<S: Store>(
    store: S,
    status: Arc<LoopStatus>,
    tick: Duration,
    token: CancellationToken,
) {
    let tick = tick.max(Duration::from_secs(5));
    loop {
        let (in_use, idle) = store.pool_state();
        metrics::set_db_connections(in_use, idle);
        let counts = tokio::time::timeout(tick, store.counts()).await;
        let feeds = match counts {
            Ok(Ok(c)) => {
                metrics::set_feeds(c.feeds, c.feeds_failing, c.feeds_disabled);
                format!(
                    "; feeds {} ({} failing, {} disabled)",
                    c.feeds, c.feeds_failing, c.feeds_disabled
                )
            }
            _ => "; database unreachable".to_string(),
        };
        metrics::upkeep();
        let next = status
            .next_due()
            .map(|t| format!(", next due {}", t.format("%H:%M:%S")))
            .unwrap_or_default();
        systemd::status(&format!(
            "{} in flight, {} claimed last{next}{feeds}",
            status.in_flight(),
            status.claimed_last(),
        ));
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// Pings the systemd watchdog at half of WATCHDOG_USEC while the loop is
/// healthy. A task of its own, so that a slow database call elsewhere can
/// never delay a ping: only a stuck loop withholds it.
async fn watchdog(
    every: Duration,
    status: Arc<LoopStatus>,
    stale: Duration,
    token: CancellationToken,
) {
    loop {
        if status.ticked_within(stale) {
            systemd::watchdog();
        } else {
            warn!("scheduler loop is stuck; withholding the watchdog ping");
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT. A second one exits the process
/// at once with status 130, for an operator who does not want to wait for
/// the drain.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            warn!(error = %e, "cannot install signal handlers; falling back to Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(
        signal = name,
        "shutting down; a second signal exits at once"
    );
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        warn!("second signal: exiting without draining");
        std::process::exit(130);
    });
}

/// Parses `RUST_LOG`-style directives; empty means "info".
fn log_filter(filter: &str) -> Result<tracing_subscriber::EnvFilter, DaemonError> {
    let filter = if filter.trim().is_empty() {
        "info"
    } else {
        filter
    };
    tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| DaemonError::LogFilter {
        filter: filter.to_string(),
        message: e.to_string(),
    })
}

/// Sets up tracing: human-readable text, or one JSON object per line for log
/// shippers. `filter` uses the `RUST_LOG` syntax ("info",
/// "feedfold=debug,sqlx=warn"). A second call keeps the first subscriber.
pub fn init_logging(json: bool, filter: &str) -> Result<(), DaemonError> {
    let env_filter = log_filter(filter)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    // Err only means a subscriber is already installed (tests, embedders).
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_differ_between_calls() {
        assert_ne!(default_owner(), default_owner());
    }

    #[test]
    fn connection_errors_are_retried_and_refusals_are_not() {
        let io = StoreError::Database(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(retryable(&io));
        assert!(retryable(&StoreError::Database(sqlx::Error::PoolTimedOut)));
        assert!(!retryable(&StoreError::Locked(
            "another feedfold holds db.sqlite".into()
        )));
        assert!(!retryable(&StoreError::UnsupportedUrl("mysql://x".into())));
        assert!(!retryable(&StoreError::Migrate(
            sqlx::migrate::MigrateError::VersionMissing(3)
        )));
        assert!(retryable(&StoreError::Migrate(
            sqlx::migrate::MigrateError::Execute(sqlx::Error::PoolTimedOut)
        )));
    }

    #[test]
    fn log_filters_are_validated() {
        assert!(log_filter("info,feedfold=debug,sqlx=warn").is_ok());
        assert!(log_filter("").is_ok());
        assert!(matches!(
            log_filter("feedfold=loud"),
            Err(DaemonError::LogFilter { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn connect_retries_until_the_database_answers() {
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let token = CancellationToken::new();
        let started = tokio::time::Instant::now();
        let got = connect_with_retry(
            || async {
                if attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 3 {
                    Err(StoreError::Database(sqlx::Error::PoolTimedOut))
                } else {
                    Ok(42)
                }
            },
            &token,
        )
        .await
        .unwrap();
        assert_eq!(got, Some(42));
        assert_eq!(attempts.into_inner(), 4);
        // Waited 1 + 2 + 4 s between attempts.
        assert_eq!(started.elapsed().as_secs(), 7);

        let refused: Result<Option<()>, _> = connect_with_retry(
            || async { Err(StoreError::Locked("feedfold.db is in use by pid 7".into())) },
            &token,
        )
        .await;
        assert!(matches!(
            refused,
            Err(DaemonError::Store(StoreError::Locked(_)))
        ));

        token.cancel();
        let cancelled: Result<Option<()>, _> = connect_with_retry(
            || async { Err(StoreError::Database(sqlx::Error::PoolTimedOut)) },
            &token,
        )
        .await;
        assert!(matches!(cancelled, Ok(None)));
    }

    #[tokio::test]
    async fn first_sigterm_resolves_the_shutdown_signal() {
        let signal = shutdown_signal();
        tokio::pin!(signal);
        // One poll installs the handlers, so the signal below cannot kill
        // the test process.
        tokio::select! {
            biased;
            _ = &mut signal => panic!("resolved before any signal"),
            _ = std::future::ready(()) => {}
        }
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(10), signal)
            .await
            .expect("SIGTERM resolves shutdown_signal");
    }
}
