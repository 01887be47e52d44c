//! Polling fan-out and daemon memory against a local feed server. The
//! server and the daemon (`feedfold run`) run as child processes, so the
//! CPU and RSS numbers are the daemon's alone, not the harness's (which
//! holds the setup's 10,000 feeds and its own store). It listens on many loopback
//! addresses (127.1.x.y), one per simulated host, because politeness is per
//! host: 10,000 feeds on one host would be a 10,000-second cycle by design.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};

use feedfold::fetch::FetchConfig;
use feedfold::store::{NewFeed, SqliteStore, Store};

use crate::corpus::{self, Gen, GenConfig};
use crate::util::{cpu_seconds, mb_of_kb, num, proc_status_kb, ratio, row};

pub fn host_ip(h: usize) -> String {
    format!("127.1.{}.{}", h / 250, h % 250 + 1)
}

pub fn feed_url(i: usize, hosts: usize, port: u16) -> String {
    format!("http://{}:{port}/feed/{i}.xml", host_ip(i % hosts.max(1)))
}

struct ServerState {
    fragments: Vec<String>,
    versions: Vec<AtomicU64>,
    requests: AtomicU64,
    changed_per_mille: u64,
    items: u64,
}

fn etag(feed: usize, version: u64) -> String {
    format!("\"f{feed}-v{version}\"")
}

/// The feed document of `feed` at `version`: the newest ITEMS_PER_FEED of
/// its items, item j having guid urn:f{feed}:{j}.
fn document(st: &ServerState, feed: usize, version: u64) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel><title>Feed {feed}</title><link>https://news{feed}.example.com/</link><description>bench</description><language>en</language>\n"
    );
    let newest = version + st.items;
    for j in (version + 1..=newest).rev() {
        let frag = &st.fragments[(feed * 31 + j as usize) % st.fragments.len()];
        s.push_str(&frag.replace("{GUID}", &format!("urn:f{feed}:{j}")));
    }
    s.push_str("</channel></rss>\n");
    s
}

async fn handle(
    State(st): State<Arc<ServerState>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let n = st.requests.fetch_add(1, Ordering::Relaxed);
    let Some(feed) = name
        .strip_suffix(".xml")
        .and_then(|s| s.parse::<usize>().ok())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(ver) = st.versions.get(feed) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut version = ver.load(Ordering::Relaxed);
    let inm = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if let Some(tag) = inm {
        // Deterministic "did this feed publish since last poll" draw.
        let draw = (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ feed as u64)
            .wrapping_mul(0xbf58_476d_1ce4_e5b9)
            >> 32;
        if tag == etag(feed, version) && draw % 1000 >= st.changed_per_mille {
            return (
                StatusCode::NOT_MODIFIED,
                [(header::ETAG, etag(feed, version))],
            )
                .into_response();
        }
        if tag == etag(feed, version) {
            version = ver.fetch_add(1, Ordering::Relaxed) + 1;
        }
    }
    (
        StatusCode::OK,
        [
            (header::ETAG, etag(feed, version)),
            (
                header::CONTENT_TYPE,
                "application/rss+xml; charset=utf-8".into(),
            ),
        ],
        document(&st, feed, version),
    )
        .into_response()
}

/// Item fragments with a {GUID} placeholder, from the generator: short
/// bodies (a feed excerpt), as most feeds carry.
fn fragments() -> Vec<String> {
    let mut g = Gen::new(
        7,
        GenConfig {
            min_bytes: 600,
            max_bytes: 1_500,
            ..GenConfig::default()
        },
    );
    (0..200)
        .map(|_| {
            let a = g.next_article();
            format!(
                "<item><title>{}</title><link>{}</link><guid isPermaLink=\"false\">{{GUID}}</guid><pubDate>{}</pubDate><description>{}</description></item>\n",
                corpus::escape(&a.title),
                corpus::escape(&a.url),
                a.published.format("%a, %d %b %Y %H:%M:%S +0000"),
                corpus::escape(&a.html),
            )
        })
        .collect()
}

pub async fn serve(
    feeds: usize,
    hosts: usize,
    port: u16,
    changed: f64,
    items: u64,
) -> anyhow::Result<()> {
    let st = Arc::new(ServerState {
        fragments: fragments(),
        versions: (0..feeds).map(|_| AtomicU64::new(0)).collect(),
        requests: AtomicU64::new(0),
        changed_per_mille: (changed * 1000.0).round() as u64,
        items: items.max(1),
    });
    let app = axum::Router::new()
        .route("/feed/{name}", axum::routing::get(handle))
        .with_state(st.clone());
    for h in 0..hosts.min(feeds.max(1)) {
        let addr = format!("{}:{port}", host_ip(h));
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("bind {addr}"))?;
        let app = app.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    println!("ready");
    // Exit when the parent goes away (it also kills us when done).
    let parent = std::os::unix::process::parent_id();
    while std::os::unix::process::parent_id() == parent {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("server: {} requests", st.requests.load(Ordering::Relaxed));
    Ok(())
}

/// A running `serve` child; killed on drop.
pub struct Server {
    child: tokio::process::Child,
    pub port: u16,
}

impl Server {
    pub async fn start(
        feeds: usize,
        hosts: usize,
        changed: f64,
        items: u64,
    ) -> anyhow::Result<Server> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let exe = std::env::current_exe()?;
        let mut child = tokio::process::Command::new(exe)
            .args([
                "serve",
                "--feeds",
                &feeds.to_string(),
                "--hosts",
                &hosts.to_string(),
                "--port",
                &port.to_string(),
                "--changed",
                &changed.to_string(),
                "--items",
                &items.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        match tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await {
            Ok(Ok(Some(l))) if l == "ready" => Ok(Server { child, port }),
            other => bail!("feed server did not start: {other:?}"),
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

pub async fn fanout(feeds: usize, hosts: usize, feedfold: &Path) -> anyhow::Result<()> {
    let hosts = hosts.min(feeds).max(1);
    // 2% of feeds changed since the last poll. Every item they carry is new
    // to the store (see the seeding below), and ingesting costs far more than
    // polling.
    let server = Server::start(feeds, hosts, 0.02, 5).await?;
    let port = server.port;
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("fanout.db").to_string_lossy()).await?;
    store.migrate().await?;
    for i in 0..feeds {
        store
            .add_feed(&NewFeed {
                url: feed_url(i, hosts, port),
                ..Default::default()
            })
            .await?;
    }
    // The floor loop runs as many requests at once as the daemon's default.
    let concurrency = FetchConfig::default().max_concurrent;

    // Seeding: every feed is stored as polled once, with the server's
    // current ETag, so the measured cycle is a steady-state one. (A real
    // warm-up cycle would ingest every feed's items first, which measures
    // ingest, not polling.)
    let seeded_at = chrono::Utc::now();
    for (i, f) in store.feeds().await?.into_iter().enumerate() {
        let feed_no = f
            .url
            .rsplit('/')
            .next()
            .and_then(|n| n.strip_suffix(".xml"))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(i);
        let update = feedfold::store::PollUpdate {
            duration_ms: 1,
            outcome: "ok".into(),
            http_status: Some(200),
            success: true,
            validators: Some((Some(etag(feed_no, 0)), None)),
            poll_interval_secs: Some(3600),
            ..feedfold::store::PollUpdate::started(seeded_at)
        };
        store.record_poll(f.id, &update).await?;
    }

    let list = store.feeds().await?;
    let etags: Vec<(String, Option<String>)> = list
        .iter()
        .map(|f| (f.url.clone(), f.etag.clone()))
        .collect();
    store.close().await;
    let db = dir.path().join("fanout.db");
    let (wall, cpu, peak, outcomes) = daemon_cycle(&db, feeds, feedfold).await?;
    let per_k = cpu / feeds as f64 * 1000.0;
    println!(
        "fanout: feedfold run, cycle {wall:.1} s, CPU {cpu:.2} s ({per_k:.3} s per 1,000 polls), peak RSS {}, outcomes {outcomes:?}",
        mb_of_kb(peak)
    );

    // Floor: the same URLs and validators through a plain reqwest loop, in
    // its own process so its CPU and RSS are its own.
    let mut list = tempfile::NamedTempFile::new()?;
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(list.as_file_mut());
        for (url, tag) in &etags {
            writeln!(w, "{url}\t{}", tag.as_deref().unwrap_or(""))?;
        }
        w.flush()?;
    }
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .arg("fanout-floor")
        .arg(list.path())
        .arg(concurrency.to_string())
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "fanout-floor failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("fanout-floor output")?;
    let floor_wall = v["wall"].as_f64().unwrap_or(f64::NAN);
    let floor_cpu = v["cpu"].as_f64().unwrap_or(f64::NAN);
    let floor_peak = v["peak_kb"].as_u64().unwrap_or(0);
    println!(
        "fanout floor (plain reqwest loop, {concurrency} concurrent, no politeness, own process): {floor_wall:.1} s, CPU {floor_cpu:.2} s, peak RSS {}, statuses {}",
        mb_of_kb(floor_peak),
        v["statuses"]
    );
    server.stop().await;

    let k = short_feeds(feeds);
    row(
        &format!("{k}-feed 304 cycle, wall (s)"),
        &format!("{wall:.1}"),
        &format!("{floor_wall:.1} (reqwest, no politeness)"),
        &ratio(wall, floor_wall),
        "< 60 s",
    );
    row(
        "CPU s per 1,000 polls",
        &format!("{per_k:.3}"),
        &format!("{:.3}", floor_cpu / feeds as f64 * 1000.0),
        &ratio(cpu, floor_cpu),
        "-",
    );
    row(
        &format!("{k}-feed cycle peak RSS"),
        &mb_of_kb(peak),
        &mb_of_kb(floor_peak),
        &ratio(peak as f64, floor_peak as f64),
        "< 100 MB",
    );
    Ok(())
}

fn short_feeds(n: usize) -> String {
    crate::ingest::short(n)
}

/// The floor's process: GETs every "url<TAB>etag" line of `list`,
/// `concurrency` at a time, and prints wall, CPU and peak RSS as JSON.
pub async fn floor(list: &Path, concurrency: usize) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(list)?;
    let urls: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(u, t)| (u.to_string(), t.to_string()))
        .collect();
    let client = reqwest::Client::builder().no_proxy().build()?;
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let statuses: Vec<u16> = futures_util::stream::iter(urls)
        .map(|(url, tag)| {
            let client = client.clone();
            async move {
                let mut req = client.get(&url);
                if !tag.is_empty() {
                    req = req.header("If-None-Match", tag);
                }
                match req.send().await {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        let _ = r.bytes().await;
                        s
                    }
                    Err(_) => 0,
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let mut by_status: HashMap<String, usize> = HashMap::new();
    for s in statuses {
        *by_status.entry(s.to_string()).or_default() += 1;
    }
    let peak = proc_status_kb("self", "VmHWM").unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({"wall": wall, "cpu": cpu, "peak_kb": peak, "statuses": by_status})
    );
    Ok(())
}

/// Makes every seeded feed due, starts `feedfold run` on the database and
/// waits until it has polled each feed once: the daemon's own wall time,
/// CPU and peak RSS for one cycle (scheduler, leases and all), with default
/// politeness and concurrency. Returns (wall s, CPU s, peak kB, outcomes).
async fn daemon_cycle(
    db: &Path,
    feeds: usize,
    feedfold: &Path,
) -> anyhow::Result<(f64, f64, u64, HashMap<String, i64>)> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await?;
    sqlx::query(
        "UPDATE feeds SET next_poll_at = strftime('%Y-%m-%dT%H:%M:%f000Z', 'now', '-1 second')",
    )
    .execute(&pool)
    .await?;
    let seeded: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM polls")
        .fetch_one(&pool)
        .await?;
    let config = db.with_extension("toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"sqlite:{}\"\nlisten = \"\"\nlog_filter = \"warn\"\n\n[fetch]\nallow_private_networks = true\n",
            db.display()
        ),
    )?;
    let start = Instant::now();
    let mut child = start_daemon(feedfold, &config)?;
    let pid = child.id().context("daemon pid")?.to_string();
    let count = "SELECT count(*) FROM polls WHERE id > $1";
    let deadline = Duration::from_secs(600);
    loop {
        if let Some(err) = exited_early(&mut child).await {
            return Err(err);
        }
        let done: i64 = sqlx::query_scalar(count)
            .bind(seeded)
            .fetch_one(&pool)
            .await
            .unwrap_or(0);
        if done >= feeds as i64 {
            break;
        }
        if start.elapsed() > deadline {
            bail!("feedfold run polled {done} of {feeds} feeds in {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = crate::util::proc_cpu_seconds(&pid).unwrap_or(f64::NAN);
    let peak = proc_status_kb(&pid, "VmHWM").unwrap_or(0);
    let _ = child.start_kill();
    let _ = child.wait().await;
    let mut outcomes = HashMap::new();
    for (outcome, n) in sqlx::query_as::<_, (String, i64)>(
        "SELECT outcome, count(*) FROM polls WHERE id > $1 GROUP BY outcome",
    )
    .bind(seeded)
    .fetch_all(&pool)
    .await?
    {
        outcomes.insert(outcome, n);
    }
    pool.close().await;
    Ok((wall, cpu, peak, outcomes))
}

/// `feedfold run` against the local server with `feeds` feeds: RSS when the
/// daemon has started and polled everything once and waits (idle), and over
/// the following polling cycles (steady state).
pub async fn memory(
    feeds: usize,
    hosts: usize,
    feedfold: &Path,
    interval: u64,
    seconds: u64,
) -> anyhow::Result<()> {
    let hosts = hosts.min(feeds).max(1);
    // One item per feed: the first cycle ingests 1,000 items, which must end
    // well inside the first interval for the idle sample to be idle.
    let server = Server::start(feeds, hosts, 0.02, 1).await?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("daemon.db");
    let mut toml = format!(
        "database_url = \"{}\"\nlisten = \"\"\nlog_filter = \"warn\"\n\n[fetch]\nallow_private_networks = true\n\n[scheduler]\ndefault_interval = \"{interval}s\"\nmin_interval = \"{interval}s\"\nmax_interval = \"{interval}s\"\njitter = 0.1\ntick = \"1s\"\n\n",
        db.display()
    );
    for i in 0..feeds {
        toml.push_str(&format!(
            "[[feeds]]\nurl = \"{}\"\n",
            feed_url(i, hosts, server.port)
        ));
    }
    let config = dir.path().join("feedfold.toml");
    std::fs::write(&config, toml)?;
    let mut child = start_daemon(feedfold, &config)?;
    let pid = child.id().context("daemon pid")?.to_string();
    let started = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let total = Duration::from_secs(interval + seconds);
    while started.elapsed() < total {
        if let Some(err) = exited_early(&mut child).await {
            server.stop().await;
            return Err(err);
        }
        if let Some(kb) = proc_status_kb(&pid, "VmRSS") {
            samples.push((started.elapsed().as_secs_f64(), kb));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let hwm = proc_status_kb(&pid, "VmHWM").unwrap_or(0);
    let polls = count_polls(&db).await.unwrap_or(-1);
    let _ = child.start_kill();
    let _ = child.wait().await;
    server.stop().await;
    // Idle: the quietest moment after the first cycle (the last third of
    // the first interval, before feeds fall due again).
    let iv = interval as f64;
    let idle = samples
        .iter()
        .filter(|(t, _)| *t >= iv * 2.0 / 3.0 && *t < iv)
        .map(|(_, kb)| *kb)
        .min()
        .unwrap_or(0);
    let steady: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= iv)
        .map(|(_, kb)| *kb)
        .collect();
    let steady_mean = steady.iter().sum::<u64>() / steady.len().max(1) as u64;
    let steady_max = steady.iter().copied().max().unwrap_or(0);
    println!(
        "memory: {feeds} feeds, {polls} polls in {:.0} s; idle RSS {}, steady-state mean {} max {}, peak (VmHWM) {}",
        started.elapsed().as_secs_f64(),
        mb_of_kb(idle),
        mb_of_kb(steady_mean),
        mb_of_kb(steady_max),
        mb_of_kb(hwm)
    );
    let k = short_feeds(feeds);
    row(
        &format!("daemon RSS idle, {k} feeds"),
        &mb_of_kb(idle),
        "-",
        "-",
        "< 100 MB",
    );
    row(
        &format!(
            "daemon RSS steady-state mean / peak, {k} feeds ({} polls)",
            num(polls as f64)
        ),
        &format!("{} / {}", mb_of_kb(steady_mean), mb_of_kb(hwm)),
        "-",
        "-",
        "< 100 MB",
    );
    Ok(())
}

/// `feedfold run` with a config file, its stderr kept for `exited_early`.
fn start_daemon(feedfold: &Path, config: &Path) -> anyhow::Result<tokio::process::Child> {
    tokio::process::Command::new(feedfold)
        .arg("--config")
        .arg(config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", feedfold.display()))
}

/// The daemon's exit, with the end of its log, if it has stopped.
async fn exited_early(child: &mut tokio::process::Child) -> Option<anyhow::Error> {
    let status = child.try_wait().ok()??;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = e.read_to_string(&mut err).await;
    }
    Some(anyhow::anyhow!(
        "feedfold run exited early ({status}): {}",
        err.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
    ))
}

async fn count_polls(db: &Path) -> anyhow::Result<i64> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .read_only(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM polls")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(n)
}
