//! The daemon end to end: real `daemon::run` instances, real `refresh::feed`,
//! PostgreSQL (TEST_DATABASE_URL, a fresh database per test) and a local feed
//! server that counts requests per feed. Intervals and leases are seconds
//! long; timing is only ever asserted with generous bounds, and the
//! "never twice per interval" check compares timestamps that the daemon's
//! own scheduling guarantees.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use feedfold::daemon::{self, DaemonError, DaemonSettings};
use feedfold::dedup::FoldConfig;
use feedfold::fetch::{FetchConfig, Fetcher};
use feedfold::refresh::Context;
use feedfold::scheduler::SchedulerConfig;
use feedfold::store::{NewFeed, PgStore, Store};
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken;

/// A fresh database on the TEST_DATABASE_URL server, dropped at the end.
struct TestDb {
    admin_url: String,
    name: String,
    url: url::Url,
}

impl TestDb {
    async fn create() -> Option<TestDb> {
        let admin_url = crate::support::pg_admin_url("daemon")?;
        let name = format!("feedfold_daemon_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        Some(TestDb {
            admin_url,
            name,
            url,
        })
    }

    /// The server address, for the TCP proxy.
    fn server(&self) -> SocketAddr {
        let host = self.url.host_str().unwrap_or("127.0.0.1");
        let host = if host == "localhost" {
            "127.0.0.1"
        } else {
            host
        };
        format!("{host}:{}", self.url.port().unwrap_or(5432))
            .parse()
            .expect("database host is an IP address")
    }

    /// The same database reached through another address.
    fn url_via(&self, addr: SocketAddr) -> String {
        let mut url = self.url.clone();
        url.set_host(Some(&addr.ip().to_string())).unwrap();
        url.set_port(Some(addr.port())).unwrap();
        url.to_string()
    }

    async fn store(&self) -> PgStore {
        let store = PgStore::connect(self.url.as_str()).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }
}

/// Drops the database even when the test panicked, from a thread of its
/// own because `Drop` cannot await.
impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Requests received per feed number, with their times.
type Hits = Arc<Mutex<BTreeMap<u32, Vec<DateTime<Utc>>>>>;

/// A local feed server: GET /feed/N serves a small RSS document for feed N
/// after an optional delay.
struct FeedServer {
    addr: SocketAddr,
    hits: Hits,
    delay_ms: Arc<AtomicUsize>,
    _task: AbortOnDrop,
}

#[derive(Clone)]
struct ServerState {
    hits: Hits,
    delay_ms: Arc<AtomicUsize>,
}

async fn serve_feed(Path(n): Path<u32>, State(state): State<ServerState>) -> impl IntoResponse {
    state
        .hits
        .lock()
        .unwrap()
        .entry(n)
        .or_default()
        .push(Utc::now());
    let delay = state.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    (
        [(header::CONTENT_TYPE, "application/rss+xml; charset=utf-8")],
        rss(n),
    )
}

/// One item per feed, each about something different, so nothing folds.
fn rss(n: u32) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
<title>Harbour notes {n}</title><link>http://example.test/{n}/</link>
<description>Local notes number {n}</description>
<item>
  <title>Ferry timetable {n} changes for the winter season</title>
  <link>http://example.test/{n}/ferry-{n}</link>
  <guid>urn:feedfold-test:{n}:1</guid>
  <pubDate>Mon, 02 Nov 2026 08:{m:02}:00 GMT</pubDate>
  <description>The crossing numbered {n} will leave {m} minutes past the hour from
  the north quay, the operator said, while the south pier is repaired. Route {n}
  keeps its Sunday service.</description>
</item>
</channel></rss>"#,
        m = n % 60
    )
}

impl FeedServer {
    async fn start() -> FeedServer {
        let hits: Hits = Arc::default();
        let delay_ms = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/feed/{n}", axum::routing::get(serve_feed))
            .with_state(ServerState {
                hits: hits.clone(),
                delay_ms: delay_ms.clone(),
            });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FeedServer {
            addr,
            hits,
            delay_ms,
            _task: AbortOnDrop(task.abort_handle()),
        }
    }

    fn url(&self, n: u32) -> String {
        format!("http://{}/feed/{n}", self.addr)
    }

    fn hits(&self) -> BTreeMap<u32, Vec<DateTime<Utc>>> {
        self.hits.lock().unwrap().clone()
    }

    /// Feeds among 1..=n fetched at least once after `since`.
    fn fetched_since(&self, n: u32, since: DateTime<Utc>) -> usize {
        let hits = self.hits.lock().unwrap();
        (1..=n)
            .filter(|i| hits.get(i).is_some_and(|h| h.iter().any(|t| *t > since)))
            .count()
    }
}

struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn add_feeds(store: &PgStore, server: &FeedServer, n: u32) {
    for i in 1..=n {
        store
            .add_feed(&NewFeed {
                url: server.url(i),
                ..NewFeed::default()
            })
            .await
            .expect("add feed");
    }
}

/// Every interval the same, no jitter: a feed is due exactly `interval`
/// after its last poll, whatever the poll's outcome.
fn fixed(interval: Duration, lease: Duration) -> SchedulerConfig {
    SchedulerConfig {
        default_interval: interval,
        min_interval: interval,
        max_interval: interval,
        max_backoff: interval,
        jitter: 0.0,
        lease,
        tick: Duration::from_millis(500),
        shutdown_grace: Duration::from_secs(5),
        ..SchedulerConfig::default()
    }
}

fn fetcher() -> Fetcher {
    feedfold::install_crypto_provider();
    Fetcher::new(&FetchConfig {
        allow_private_networks: true,
        max_per_host: 64,
        host_spacing: Duration::ZERO,
        max_concurrent: 64,
        timeout: Duration::from_secs(20),
        ..FetchConfig::default()
    })
    .expect("fetcher")
}

/// Settings for an instance polling with the real refresh pipeline; `polls`
/// counts the polls this instance started.
fn settings(
    store: &PgStore,
    owner: &str,
    scheduler: SchedulerConfig,
    polls: Arc<AtomicUsize>,
) -> DaemonSettings {
    let ctx = Context::new(
        store.clone(),
        fetcher(),
        FoldConfig::default(),
        scheduler.clone(),
    );
    let refresh = daemon::refresh_poll(ctx);
    let mut s = DaemonSettings::new(daemon::poll_fn(move |feed| {
        polls.fetch_add(1, Ordering::Relaxed);
        refresh(feed)
    }));
    s.owner = owner.to_string();
    s.listen = String::new();
    s.scheduler = scheduler;
    s.max_concurrent = 16;
    s
}

struct Instance {
    stop: CancellationToken,
    task: JoinHandle<Result<(), DaemonError>>,
    addr: Option<SocketAddr>,
}

async fn launch(store: PgStore, settings: DaemonSettings, http: bool) -> Instance {
    let stop = CancellationToken::new();
    let (listener, addr) = if http {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        (Some(l), Some(a))
    } else {
        (None, None)
    };
    let task = tokio::spawn(daemon::run_with_listener(
        store,
        settings,
        listener,
        stop.clone().cancelled_owned(),
    ));
    Instance { stop, task, addr }
}

impl Instance {
    /// Graceful stop; returns how long the daemon took to exit.
    async fn shutdown(self) -> Duration {
        let started = Instant::now();
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("daemon exits after shutdown")
            .expect("daemon task")
            .expect("daemon result");
        started.elapsed()
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let addr = self.addr.expect("instance has a listener");
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        match client.get(format!("http://{addr}{path}")).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
            Err(e) => (0, e.to_string()),
        }
    }
}

/// Polls `cond` every 100 ms until it holds; false after `limit`.
async fn eventually<F: FnMut() -> Fut, Fut: std::future::Future<Output = bool>>(
    limit: Duration,
    mut cond: F,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cond().await
}

async fn leases_held(store: &PgStore, owner: &str) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM feeds WHERE lease_owner = $1")
        .bind(owner)
        .fetch_one(store.pool())
        .await
        .expect("count leases")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_poll_each_feed_once_per_interval() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let server = FeedServer::start().await;
    let setup = db.store().await;
    const FEEDS: u32 = 200;
    add_feeds(&setup, &server, FEEDS).await;

    let interval = Duration::from_secs(6);
    let config = fixed(interval, Duration::from_secs(60));
    let polls_a = Arc::new(AtomicUsize::new(0));
    let polls_b = Arc::new(AtomicUsize::new(0));
    let started = Utc::now();
    let (store_a, store_b) = (db.store().await, db.store().await);
    let a = launch(
        store_a.clone(),
        settings(&store_a, "instance-a", config.clone(), polls_a.clone()),
        false,
    )
    .await;
    let b = launch(
        store_b.clone(),
        settings(&store_b, "instance-b", config, polls_b.clone()),
        false,
    )
    .await;
    // At least three intervals; longer only if a loaded machine makes the
    // first round (which stores every item) slow.
    tokio::time::sleep(interval * 3).await;
    let all_polled_thrice = eventually(Duration::from_secs(120), || async {
        let hits = server.hits();
        hits.len() == FEEDS as usize && hits.values().all(|t| t.len() >= 3)
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;

    let hits = server.hits();
    assert_eq!(hits.len(), FEEDS as usize, "every feed was fetched");
    assert!(
        all_polled_thrice,
        "every feed keeps being polled: {:?}",
        hits.values().map(Vec::len).collect::<Vec<_>>()
    );
    let elapsed = (Utc::now() - started).to_std().unwrap();
    let most = (elapsed.as_secs_f64() / interval.as_secs_f64()).ceil() as usize + 1;
    for (feed, times) in &hits {
        // Never twice in one period: each fetch comes at least an interval
        // after the previous one (the poll records its next due time after
        // the fetch, and a claim takes only due feeds).
        for pair in times.windows(2) {
            let gap = (pair[1] - pair[0]).to_std().unwrap_or_default();
            assert!(
                gap + Duration::from_millis(50) >= interval,
                "feed {feed} fetched twice within {gap:?}: {times:?}"
            );
        }
        assert!(
            times.len() <= most,
            "feed {feed} fetched {} times in {elapsed:?}: {times:?}",
            times.len()
        );
    }
    let (a_polls, b_polls) = (
        polls_a.load(Ordering::Relaxed),
        polls_b.load(Ordering::Relaxed),
    );
    let total: usize = hits.values().map(Vec::len).sum();
    assert_eq!(a_polls + b_polls, total, "one fetch per poll");
    assert!(
        a_polls > 0 && b_polls > 0,
        "both instances polled: {a_polls} / {b_polls}"
    );
    assert_eq!(leases_held(&setup, "instance-a").await, 0);
    assert_eq!(leases_held(&setup, "instance-b").await, 0);
    setup.close().await;
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_of_a_crashed_instance_are_taken_over_after_expiry() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let server = FeedServer::start().await;
    let setup = db.store().await;
    const FEEDS: u32 = 20;
    add_feeds(&setup, &server, FEEDS).await;
    let lease = Duration::from_secs(4);
    let config = fixed(Duration::from_secs(3600), lease);

    // Instance a leases every feed, then hangs in its polls and dies
    // without a graceful shutdown.
    let mut stuck = DaemonSettings::new(daemon::poll_fn(|_feed| std::future::pending::<()>()));
    stuck.owner = "crashing".into();
    stuck.listen = String::new();
    stuck.scheduler = config.clone();
    stuck.max_concurrent = 64;
    let a = launch(db.store().await, stuck, false).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            leases_held(&setup, "crashing").await == FEEDS as i64
        })
        .await,
        "the first instance leases every feed"
    );
    a.task.abort();
    let _ = a.task.await;
    let expiry: DateTime<Utc> = sqlx::query_scalar(
        "SELECT min(lease_expires_at) FROM feeds WHERE lease_owner = 'crashing'",
    )
    .fetch_one(setup.pool())
    .await
    .unwrap();
    assert_eq!(
        leases_held(&setup, "crashing").await,
        FEEDS as i64,
        "a crash leaves its leases behind"
    );

    let own = db.store().await;
    let b = launch(
        own.clone(),
        settings(&own, "survivor", config, Arc::default()),
        false,
    )
    .await;
    assert!(
        eventually(Duration::from_secs(60), || async {
            server.fetched_since(FEEDS, DateTime::<Utc>::MIN_UTC) == FEEDS as usize
        })
        .await,
        "the survivor polls every feed once the leases expire: {:?}",
        server.hits().keys().collect::<Vec<_>>()
    );
    for (feed, times) in server.hits() {
        assert_eq!(times.len(), 1, "feed {feed}: {times:?}");
        assert!(
            times[0] >= expiry,
            "feed {feed} polled at {} before the crashed lease expired at {expiry}",
            times[0]
        );
    }
    b.shutdown().await;
    assert_eq!(leases_held(&setup, "crashing").await, 0);
    setup.close().await;
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_meets_the_deadline_and_releases_leases() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let server = FeedServer::start().await;
    // Polls outlast the grace period.
    server.delay_ms.store(15_000, Ordering::Relaxed);
    let setup = db.store().await;
    const FEEDS: u32 = 10;
    add_feeds(&setup, &server, FEEDS).await;
    let mut config = fixed(Duration::from_secs(3600), Duration::from_secs(600));
    config.shutdown_grace = Duration::from_secs(1);
    let own = db.store().await;
    let instance = launch(
        own.clone(),
        settings(&own, "stopping", config, Arc::default()),
        false,
    )
    .await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            server.fetched_since(FEEDS, DateTime::<Utc>::MIN_UTC) == FEEDS as usize
        })
        .await,
        "every feed is in flight"
    );
    assert_eq!(leases_held(&setup, "stopping").await, FEEDS as i64);
    let took = instance.shutdown().await;
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    assert_eq!(
        leases_held(&setup, "stopping").await,
        0,
        "leases of aborted polls are released"
    );
    setup.close().await;
    drop(db);
}

/// A minimal Prometheus text-format check: every line is a comment, a
/// HELP/TYPE line or a well-formed sample. Returns the metric family names.
fn parse_prometheus(text: &str) -> Result<HashSet<String>, String> {
    fn valid_name(n: &str) -> bool {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut families = HashSet::new();
    let mut histograms = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut parts = rest.split_whitespace();
            match parts.next() {
                Some("HELP") => {
                    let name = parts.next().ok_or(format!("line {i}: HELP without name"))?;
                    if !valid_name(name) {
                        return Err(format!("line {i}: bad name {name}"));
                    }
                    families.insert(name.to_string());
                }
                Some("TYPE") => {
                    let name = parts.next().ok_or(format!("line {i}: TYPE without name"))?;
                    let kind = parts.next().ok_or(format!("line {i}: TYPE without type"))?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(format!("line {i}: unknown type {kind}"));
                    }
                    if kind == "histogram" || kind == "summary" {
                        histograms.insert(name.to_string());
                    }
                    families.insert(name.to_string());
                }
                _ => {}
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or(format!("line {i}: no value"))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(format!("line {i}: bad metric name in {line}"));
        }
        let mut rest = &line[name_end..];
        if rest.starts_with('{') {
            // label="value" pairs; values may contain escaped quotes.
            let mut in_value = false;
            let mut escaped = false;
            let mut close = None;
            for (j, c) in rest.char_indices().skip(1) {
                match (in_value, escaped, c) {
                    (true, true, _) => escaped = false,
                    (true, false, '\\') => escaped = true,
                    (true, false, '"') => in_value = false,
                    (false, _, '"') => in_value = true,
                    (false, _, '}') => {
                        close = Some(j);
                        break;
                    }
                    _ => {}
                }
            }
            let close = close.ok_or(format!("line {i}: unclosed labels"))?;
            for pair in rest[1..close].split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or(format!("line {i}: bad label {pair}"))?;
                if !valid_name(k.trim()) || !v.starts_with('"') || !v.ends_with('"') {
                    return Err(format!("line {i}: bad label {pair}"));
                }
            }
            rest = &rest[close + 1..];
        }
        let mut fields = rest.split_whitespace();
        let value = fields.next().ok_or(format!("line {i}: no value"))?;
        if value.parse::<f64>().is_err() && !["+Inf", "-Inf", "NaN"].contains(&value) {
            return Err(format!("line {i}: bad value {value}"));
        }
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .map_err(|_| format!("line {i}: bad timestamp {ts}"))?;
        }
        let family = histograms
            .iter()
            .find(|h| {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name == format!("{h}{s}"))
            })
            .cloned()
            .unwrap_or_else(|| name.to_string());
        families.insert(family);
    }
    Ok(families)
}

#[test]
fn the_prometheus_check_rejects_garbage() {
    assert!(parse_prometheus("# TYPE x counter\nx{a=\"1\"} 3\n").is_ok());
    assert!(parse_prometheus("x{a=\"1\" 3\n").is_err());
    assert!(parse_prometheus("x three\n").is_err());
    assert!(parse_prometheus("9x 1\n").is_err());
    assert!(parse_prometheus("# TYPE x thing\n").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_report_health_readiness_and_metrics() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let server = FeedServer::start().await;
    let setup = db.store().await;
    const FEEDS: u32 = 5;
    add_feeds(&setup, &server, FEEDS).await;
    let config = fixed(Duration::from_secs(3600), Duration::from_secs(60));
    let own = db.store().await;
    let instance = launch(
        own.clone(),
        settings(&own, "observed", config, Arc::default()),
        true,
    )
    .await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM feeds WHERE last_polled_at IS NOT NULL",
            )
            .fetch_one(setup.pool())
            .await
            .unwrap_or(0)
                == FEEDS as i64
        })
        .await,
        "every feed polled and recorded"
    );
    assert_eq!(instance.get("/healthz").await.0, 200);
    assert_eq!(instance.get("/readyz").await.0, 200);
    let (status, text) = instance.get("/metrics").await;
    assert_eq!(status, 200);
    let families = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for name in daemon::metrics::NAMES {
        assert!(families.contains(name), "/metrics lacks {name}:\n{text}");
    }
    // Polls were counted (this process may run other daemons too, so only
    // a lower bound holds).
    let ok_polls: f64 = text
        .lines()
        .find(|l| l.starts_with("feedfold_polls_total{outcome=\"ok\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(ok_polls >= FEEDS as f64, "{text}");
    assert_eq!(instance.get("/nope").await.0, 404);
    instance.shutdown().await;
    setup.close().await;
    drop(db);
}

/// A TCP proxy to the database that the test can cut and restore.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    _task: AbortOnDrop,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let task = {
            let up = up.clone();
            let conns = conns.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let pipe = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    conns.lock().unwrap().push(pipe.abort_handle());
                }
            })
        };
        Proxy {
            addr,
            up,
            conns,
            _task: AbortOnDrop(task.abort_handle()),
        }
    }

    /// Drops every open connection and refuses new ones.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_fails_readiness_and_the_daemon_catches_up() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let server = FeedServer::start().await;
    let setup = db.store().await;
    const FEEDS: u32 = 10;
    add_feeds(&setup, &server, FEEDS).await;
    let proxy = Proxy::start(db.server()).await;
    let via_proxy = PgStore::connect(&db.url_via(proxy.addr))
        .await
        .expect("connect through the proxy");
    let interval = Duration::from_secs(3);
    let config = fixed(interval, Duration::from_secs(5));
    let instance = launch(
        via_proxy.clone(),
        settings(&via_proxy, "outage", config, Arc::default()),
        true,
    )
    .await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            server.fetched_since(FEEDS, DateTime::<Utc>::MIN_UTC) == FEEDS as usize
        })
        .await
    );
    assert_eq!(instance.get("/readyz").await.0, 200);

    proxy.cut();
    let cut_at = Utc::now();
    assert!(
        eventually(Duration::from_secs(30), || async {
            instance.get("/readyz").await.0 == 503
        })
        .await,
        "/readyz fails while the database is unreachable"
    );
    // Let the loop run into the outage for a couple of intervals.
    tokio::time::sleep(interval * 2).await;
    assert!(!instance.task.is_finished(), "the daemon keeps running");
    assert_eq!(
        instance.get("/healthz").await.0,
        200,
        "the loop still ticks"
    );

    proxy.restore();
    let restored_at = Utc::now();
    assert!(
        eventually(Duration::from_secs(30), || async {
            instance.get("/readyz").await.0 == 200
        })
        .await,
        "/readyz recovers with the database"
    );
    // Every feed gets a poll that started after the outage and was
    // recorded, i.e. the daemon caught up.
    assert!(
        eventually(Duration::from_secs(60), || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM feeds WHERE last_polled_at > $1")
                .bind(restored_at)
                .fetch_one(setup.pool())
                .await
                .unwrap_or(0)
                == FEEDS as i64
        })
        .await,
        "every feed is polled and recorded again after the outage (cut at {cut_at})"
    );
    let items: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(setup.pool())
        .await
        .unwrap();
    assert_eq!(items, FEEDS as i64, "each item stored exactly once");
    instance.shutdown().await;
    setup.close().await;
    drop(db);
}

// ---- The `feedfold run` process: SIGKILL mid-ingest, SIGTERM mid-poll. ----

/// A made-up word from a seed: varied enough that items never fold.
fn word(seed: u64) -> String {
    const SYLLABLES: [&str; 12] = [
        "ka", "lo", "mi", "ren", "tas", "vo", "pel", "dun", "sa", "ri", "mon", "te",
    ];
    let h = xxhash_rust::xxh3::xxh3_64(&seed.to_le_bytes());
    (0..2 + (h % 3) as usize)
        .map(|i| SYLLABLES[((h >> (i * 8)) % 12) as usize])
        .collect()
}

/// An RSS document with `n` distinct items, big enough that storing it
/// takes a while.
fn big_rss(n: u64) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Gazette</title>\
         <link>http://example.test/gazette</link>",
    );
    for i in 0..n {
        let body: Vec<String> = (0..80).map(|w| word(i * 1000 + w)).collect();
        out.push_str(&format!(
            "<item><title>{} {} {}</title><link>http://example.test/gazette/{i}</link>\
             <guid>urn:gazette:{i}</guid><pubDate>Mon, 02 Nov 2026 {:02}:{:02}:00 GMT</pubDate>\
             <description>{}</description></item>",
            word(i * 7 + 1),
            word(i * 7 + 2),
            word(i * 7 + 3),
            (i / 60) % 24,
            i % 60,
            body.join(" ")
        ));
    }
    out.push_str("</channel></rss>");
    out
}

/// Serves `body` at /feed/1 after `delay`, counting requests.
async fn serve_static(
    body: String,
    delay: Duration,
) -> (SocketAddr, Arc<AtomicUsize>, AbortOnDrop) {
    let hits = Arc::new(AtomicUsize::new(0));
    let body = Arc::new(body);
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/feed/{n}",
        axum::routing::get(move || {
            let body = body.clone();
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                (
                    [(header::CONTENT_TYPE, "application/rss+xml")],
                    body.as_str().to_owned(),
                )
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, hits, AbortOnDrop(task.abort_handle()))
}

/// A config file for `feedfold run` against `db` with one feed.
fn run_config(dir: &std::path::Path, db: &TestDb, feed: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("feedfold.toml");
    std::fs::write(
        &path,
        format!(
            "database_url = \"{}\"\nlisten = \"\"\nlog_filter = \"warn\"\n\
             [fetch]\nallow_private_networks = true\nhost_spacing = \"0s\"\ntimeout = \"60s\"\n\
             [scheduler]\nlease = \"3s\"\ntick = \"500ms\"\n{extra}\n\
             [[feeds]]\nurl = \"{feed}\"\n",
            db.url
        ),
    )
    .unwrap();
    path
}

fn spawn_feedfold(config: &std::path::Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_feedfold"))
        .args(["--config", &config.to_string_lossy(), "run"])
        .env_remove("FEEDFOLD_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("NOTIFY_SOCKET")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start feedfold run")
}

/// Waits for a child without blocking the runtime; None on timeout.
async fn wait_exit(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn count(store: &PgStore, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(store.pool())
        .await
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_ingest_then_restart_stores_every_item_once() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    const ITEMS: i64 = 1500;
    let (addr, hits, _server) = serve_static(big_rss(ITEMS as u64), Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let config = run_config(dir.path(), &db, &format!("http://{addr}/feed/1"), "");
    let setup = db.store().await;

    let mut first = spawn_feedfold(&config);
    let mid_ingest = eventually(Duration::from_secs(120), || async {
        count(&setup, "SELECT count(*) FROM items").await >= 50
    })
    .await;
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    assert!(mid_ingest, "the first run started storing items");
    let stored = count(&setup, "SELECT count(*) FROM items").await;
    eprintln!("killed with {stored} of {ITEMS} items stored");
    if stored >= ITEMS {
        eprintln!("inconclusive: the whole feed was stored before the kill");
    }

    let mut second = spawn_feedfold(&config);
    let done = eventually(Duration::from_secs(300), || async {
        count(
            &setup,
            "SELECT count(*) FROM feeds WHERE last_status = 'ok' AND last_polled_at IS NOT NULL",
        )
        .await
            == 1
            && count(&setup, "SELECT count(*) FROM items").await == ITEMS
    })
    .await;
    second.kill().expect("stop the second run");
    let _ = second.wait();
    assert!(
        done,
        "after a restart the feed is stored completely: {} items after the kill, {} now, {} fetches",
        stored,
        count(&setup, "SELECT count(*) FROM items").await,
        hits.load(Ordering::SeqCst)
    );
    assert_eq!(
        count(&setup, "SELECT count(DISTINCT identity) FROM items").await,
        ITEMS,
        "every item exactly once"
    );
    setup.close().await;
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_polls_exits_zero_within_the_deadline() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    // The poll outlasts the 2 s grace period.
    let (addr, hits, _server) = serve_static(big_rss(3), Duration::from_secs(30)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = run_config(
        dir.path(),
        &db,
        &format!("http://{addr}/feed/1"),
        "shutdown_grace = \"2s\"",
    );
    let setup = db.store().await;
    let mut child = spawn_feedfold(&config);
    let polling = eventually(Duration::from_secs(60), || async {
        hits.load(Ordering::SeqCst) > 0
    })
    .await;
    if !polling {
        let _ = child.kill();
        panic!("feedfold run never polled the feed");
    }
    let started = Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(sent.success());
    let status = wait_exit(&mut child, Duration::from_secs(30)).await;
    let took = started.elapsed();
    if status.is_none() {
        let _ = child.kill();
    }
    let status = status.expect("feedfold run exits after SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_secs(15),
        "took {took:?} with a 2 s grace"
    );
    assert_eq!(
        count(
            &setup,
            "SELECT count(*) FROM feeds WHERE lease_owner IS NOT NULL"
        )
        .await,
        0,
        "leases released"
    );
    setup.close().await;
    drop(db);
}
