//! Ingest throughput (prepare → fold → store) against the database's own
//! bulk-load floor, and fold-decision latency with millions of stories
//! stored. Databases are fresh per run: PostgreSQL gets `ffbench_<pid>_*`
//! (dropped after), SQLite a temp file.

use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rand::Rng;
use sqlx::Row;

use feedfold::dedup::{self, FoldConfig, Signature};
use feedfold::fetch::{FetchConfig, Fetcher};
use feedfold::refresh::{self, Context, FeedReport, prepare, subject_of};
use feedfold::scheduler::SchedulerConfig;
use feedfold::store::{Feed, FeedFolding, Ingested, NewFeed, NewItem, PgStore, SqliteStore, Store};

use crate::corpus::{Article, Gen, GenConfig};
use crate::fp::parsed_item;
use crate::util::{ms, num, percentile, ratio, row};

const FEEDS: usize = 200;

pub fn admin_url() -> String {
    std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh PostgreSQL database for one benchmark, dropped by `drop`.
///
/// Filling a large store takes most of a run (half an hour at 1M items),
/// so a store can be kept for profiling (`BENCH_KEEP_DB=1`) and measured
/// again later (`BENCH_REUSE_DB=name`) without filling it again.
pub struct PgDb {
    admin: String,
    pub name: String,
    pub url: String,
    keep: bool,
}

impl PgDb {
    /// `reusable`: whether this benchmark honours `BENCH_KEEP_DB` and
    /// `BENCH_REUSE_DB`.
    pub async fn create(tag: &str, reusable: bool) -> anyhow::Result<PgDb> {
        let admin = admin_url();
        let reuse = std::env::var("BENCH_REUSE_DB")
            .ok()
            .filter(|n| reusable && !n.is_empty());
        let name = reuse
            .clone()
            .unwrap_or_else(|| format!("ffbench_{}_{tag}", std::process::id()));
        let mut u = url::Url::parse(&admin).context("BENCH_DATABASE_URL")?;
        u.set_path(&format!("/{name}"));
        let conn = sqlx::PgPool::connect(&admin).await.with_context(|| {
            format!(
                "PostgreSQL unreachable at {}",
                feedfold::store::redact_url(&admin)
            )
        })?;
        if reuse.is_none() {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .execute(&conn)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&conn)
                .await?;
        }
        conn.close().await;
        let keep = reuse.is_some() || (reusable && std::env::var_os("BENCH_KEEP_DB").is_some());
        Ok(PgDb {
            admin,
            name,
            url: u.to_string(),
            keep,
        })
    }

    pub async fn drop(self) {
        if self.keep {
            println!(
                "  kept database {} (BENCH_REUSE_DB={0} measures it again)",
                self.name
            );
            return;
        }
        if let Ok(conn) = sqlx::PgPool::connect(&self.admin).await {
            let q = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(q)).execute(&conn).await {
                eprintln!("cannot drop {}: {e}", self.name);
            }
            conn.close().await;
        }
    }
}

/// Plain bulk loading of already-prepared rows into the same schema, with
/// one story per item: the physical floor that feedfold's ingest is
/// compared to.
#[derive(Clone)]
pub enum Bulk {
    Pg(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

/// Writes out what the load left dirty, so that the timed part does not pay
/// the load's checkpoint (gigabytes of WAL at 1M rows; PostgreSQL warned of
/// checkpoints 4 s apart). Needs superuser or `pg_checkpoint`; without
/// either, the run goes on and says so.
async fn checkpoint(conn: &mut sqlx::PgConnection) {
    if let Err(e) = sqlx::query("CHECKPOINT").execute(conn).await {
        eprintln!("  no CHECKPOINT before timing ({e}); the load's writes may overlap it");
    }
}

/// One row to bulk-load: the item and its feed.
pub struct LoadRow<'a> {
    pub feed_id: i64,
    pub item: &'a NewItem,
}

fn copy_text(out: &mut String, v: Option<&str>) {
    match v {
        None => out.push_str("\\N"),
        Some(s) => {
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

fn copy_num<T: std::fmt::Display>(out: &mut String, v: Option<T>) {
    match v {
        None => out.push_str("\\N"),
        Some(v) => out.push_str(&v.to_string()),
    }
}

fn copy_ts(out: &mut String, v: Option<DateTime<Utc>>) {
    match v {
        None => out.push_str("\\N"),
        Some(t) => out.push_str(&t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
    }
}

fn sqlite_ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

const ITEM_COLS: &str = "id, feed_id, identity, guid, url, canonical_url, origin_url, title, summary, \
    content_text, author, lang, published_at, updated_at, fetched_at, dated_at, story_id, fp_version, \
    simhash, band0, band1, band2, band3, lead_hash, content_hash, headline_key, headline_hash, \
    text_len, anchors, revision_hash";

fn unique_keys(sig: &Signature) -> Vec<i64> {
    let mut seen = HashSet::new();
    sig.keys
        .iter()
        .copied()
        .filter(|k| seen.insert(*k))
        .collect()
}

impl Bulk {
    /// Items already stored: a reused database starts from them.
    pub async fn stored_items(&self) -> anyhow::Result<usize> {
        let q = "SELECT count(*) FROM items";
        let n: i64 = match self {
            Bulk::Pg(pool) => sqlx::query_scalar(q).fetch_one(pool).await?,
            Bulk::Sqlite(pool) => sqlx::query_scalar(q).fetch_one(pool).await?,
        };
        Ok(n as usize)
    }

    /// What autovacuum does on a production server after a bulk load:
    /// statistics and visibility maps. CI's PostgreSQL runs without
    /// autovacuum, and a store measured unvacuumed would measure that
    /// (heap reads behind every index-only scan) instead of feedfold. SQLite
    /// needs nothing: its planner does not depend on statistics here.
    pub async fn maintain(&self) -> anyhow::Result<Option<Duration>> {
        match self {
            Bulk::Pg(pool) => {
                let start = Instant::now();
                sqlx::query("VACUUM ANALYZE").execute(pool).await?;
                checkpoint(&mut *pool.acquire().await?).await;
                Ok(Some(start.elapsed()))
            }
            Bulk::Sqlite(_) => Ok(None),
        }
    }

    /// Loads `rows` (identity prefixed with `prefix`) in one transaction and
    /// returns how long it took.
    pub async fn load(&self, rows: &[LoadRow<'_>], prefix: &str) -> anyhow::Result<Duration> {
        let start = Instant::now();
        match self {
            Bulk::Pg(pool) => load_pg(pool, rows, prefix).await?,
            Bulk::Sqlite(pool) => load_sqlite(pool, rows, prefix).await?,
        }
        Ok(start.elapsed())
    }
}

/// The highest item and story ids: bulk rows are numbered after them.
const MAX_IDS: &str = "SELECT (SELECT coalesce(max(id), 0) FROM items) AS item, \
    (SELECT coalesce(max(id), 0) FROM stories) AS story";

async fn load_pg(pool: &sqlx::PgPool, rows: &[LoadRow<'_>], prefix: &str) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let ids = sqlx::query(MAX_IDS).fetch_one(&mut *tx).await?;
    let (max_item, max_story): (i64, i64) = (ids.try_get("item")?, ids.try_get("story")?);
    let mut stories = String::new();
    let mut items = String::new();
    let mut keys = String::new();
    for (i, r) in rows.iter().enumerate() {
        let item_id = max_item + 1 + i as i64;
        let story_id = max_story + 1 + i as i64;
        let it = r.item;
        let sig = &it.signature;
        stories.push_str(&format!("{story_id}\t{item_id}\t"));
        copy_ts(&mut stories, it.published_at.or(Some(it.dated_at)));
        stories.push_str("\t1\n");

        let b = sig.bands();
        items.push_str(&format!("{item_id}\t{}\t", r.feed_id));
        copy_text(&mut items, Some(&format!("{prefix}{}", it.identity)));
        for v in [
            &it.guid,
            &it.url,
            &it.canonical_url,
            &it.origin_url,
            &it.title,
            &it.summary,
        ] {
            items.push('\t');
            copy_text(&mut items, v.as_deref());
        }
        items.push('\t');
        copy_text(&mut items, Some(&it.content_text));
        for v in [&it.author, &it.lang] {
            items.push('\t');
            copy_text(&mut items, v.as_deref());
        }
        for t in [
            it.published_at,
            it.updated_at,
            Some(it.fetched_at),
            Some(it.dated_at),
        ] {
            items.push('\t');
            copy_ts(&mut items, t);
        }
        items.push_str(&format!(
            "\t{story_id}\t{}\t{}\t{}\t{}\t{}\t{}\t",
            sig.fp_version, sig.simhash, b[0], b[1], b[2], b[3]
        ));
        copy_num(&mut items, sig.lead_hash);
        items.push('\t');
        copy_num(&mut items, sig.content_hash);
        items.push('\t');
        copy_text(&mut items, sig.headline_key.as_deref());
        items.push('\t');
        copy_num(&mut items, sig.headline_hash);
        items.push_str(&format!("\t{}\t", sig.text_len));
        copy_text(&mut items, sig.anchors.as_deref());
        items.push_str(&format!("\t{}\n", it.revision_hash));

        for k in unique_keys(sig) {
            keys.push_str(&format!("{k}\t{item_id}\t"));
            copy_ts(&mut keys, Some(it.dated_at));
            keys.push('\n');
        }
    }
    for (sql, data) in [
        (
            "COPY stories (id, canonical_item_id, first_published_at, item_count) FROM STDIN"
                .to_string(),
            stories,
        ),
        (format!("COPY items ({ITEM_COLS}) FROM STDIN"), items),
        (
            "COPY item_keys (key, item_id, dated_at) FROM STDIN".to_string(),
            keys,
        ),
    ] {
        let t = Instant::now();
        let mut copy = tx.copy_in_raw(&sql).await?;
        for chunk in data.as_bytes().chunks(1 << 20) {
            copy.send(chunk).await?;
        }
        copy.finish().await?;
        if std::env::var_os("BENCH_VERBOSE").is_some() {
            eprintln!(
                "    {} bytes: {:.3} s  {}",
                data.len(),
                t.elapsed().as_secs_f64(),
                &sql[..30]
            );
        }
    }
    let n = rows.len() as i64;
    sqlx::query("SELECT setval(pg_get_serial_sequence('items', 'id'), $1)")
        .bind(max_item + n.max(1))
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT setval(pg_get_serial_sequence('stories', 'id'), $1)")
        .bind(max_story + n.max(1))
        .execute(&mut *tx)
        .await?;
    let t = Instant::now();
    tx.commit().await?;
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprintln!("    commit: {:.3} s", t.elapsed().as_secs_f64());
    }
    Ok(())
}

async fn load_sqlite(
    pool: &sqlx::SqlitePool,
    rows: &[LoadRow<'_>],
    prefix: &str,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let ids = sqlx::query(MAX_IDS).fetch_one(&mut *tx).await?;
    let (max_item, max_story): (i64, i64) = (ids.try_get("item")?, ids.try_get("story")?);
    let item_sql = format!(
        "INSERT INTO items ({ITEM_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
         $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30)"
    );
    for (i, r) in rows.iter().enumerate() {
        let item_id = max_item + 1 + i as i64;
        let story_id = max_story + 1 + i as i64;
        let it = r.item;
        let sig = &it.signature;
        let b = sig.bands();
        // canonical_item_id is set for the whole batch at the end: a deferred
        // reference to a not-yet-inserted item makes SQLite rescan stories
        // on every later item insert (no index on canonical_item_id).
        sqlx::query("INSERT INTO stories (id, first_published_at, item_count) VALUES ($1, $2, 1)")
            .bind(story_id)
            .bind(sqlite_ts(it.published_at.unwrap_or(it.dated_at)))
            .execute(&mut *tx)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(item_sql.as_str()))
            .bind(item_id)
            .bind(r.feed_id)
            .bind(format!("{prefix}{}", it.identity))
            .bind(&it.guid)
            .bind(&it.url)
            .bind(&it.canonical_url)
            .bind(&it.origin_url)
            .bind(&it.title)
            .bind(&it.summary)
            .bind(&it.content_text)
            .bind(&it.author)
            .bind(&it.lang)
            .bind(it.published_at.map(sqlite_ts))
            .bind(it.updated_at.map(sqlite_ts))
            .bind(sqlite_ts(it.fetched_at))
            .bind(sqlite_ts(it.dated_at))
            .bind(story_id)
            .bind(sig.fp_version)
            .bind(sig.simhash)
            .bind(b[0])
            .bind(b[1])
            .bind(b[2])
            .bind(b[3])
            .bind(sig.lead_hash)
            .bind(sig.content_hash)
            .bind(&sig.headline_key)
            .bind(sig.headline_hash)
            .bind(sig.text_len)
            .bind(&sig.anchors)
            .bind(it.revision_hash)
            .execute(&mut *tx)
            .await?;
        for k in unique_keys(sig) {
            sqlx::query("INSERT INTO item_keys (key, item_id, dated_at) VALUES ($1, $2, $3)")
                .bind(k)
                .bind(item_id)
                .bind(sqlite_ts(it.dated_at))
                .execute(&mut *tx)
                .await?;
        }
    }
    sqlx::query("UPDATE stories SET canonical_item_id = id + $1 WHERE id > $2 AND id <= $3")
        .bind(max_item - max_story)
        .bind(max_story)
        .bind(max_story + rows.len() as i64)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The store under test plus a bulk loader on the same database.
enum Opened {
    Pg(PgStore, PgDb),
    Sqlite(SqliteStore, tempfile::TempDir),
}

async fn open(backend: &str, tag: &str) -> anyhow::Result<(Opened, Bulk)> {
    match backend {
        "postgres" | "pg" => {
            let db = PgDb::create(tag, true).await?;
            let store = match PgStore::connect(&db.url).await {
                Ok(s) => s,
                Err(e) => {
                    db.drop().await;
                    bail!("cannot open store: {e}");
                }
            };
            store.migrate().await?;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(&db.url)
                .await?;
            Ok((Opened::Pg(store, db), Bulk::Pg(pool)))
        }
        "sqlite" => {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("bench.db");
            let store = SqliteStore::open(&path.to_string_lossy()).await?;
            store.migrate().await?;
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(60))
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await?;
            Ok((Opened::Sqlite(store, dir), Bulk::Sqlite(pool)))
        }
        other => bail!("unknown backend {other} (sqlite or postgres)"),
    }
}

async fn add_feeds<S: Store>(store: &S, n: usize) -> anyhow::Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let (f, _) = store
            .ensure_feed(&NewFeed {
                url: format!("https://news{i}.example.com/feed"),
                title: Some(Gen::site_name(i)),
                ..Default::default()
            })
            .await?;
        ids.push(f.id);
    }
    Ok(ids)
}

fn feed_context(feed: usize, feed_id: i64) -> prepare::FeedContext {
    prepare::FeedContext {
        feed_id,
        feed_url: format!("https://news{feed}.example.com/feed"),
        language: Some(Gen::feed_lang(feed).to_string()),
    }
}

/// Articles grouped into polls: runs of consecutive articles per feed, as a
/// refresh sees them (a feed carries the few items published since its last
/// poll).
fn polls(arts: Vec<Article>, per_poll: usize) -> Vec<(usize, Vec<Article>)> {
    let mut open: BTreeMap<usize, Vec<Article>> = BTreeMap::new();
    let mut out = Vec::new();
    for a in arts {
        let f = a.feed;
        let v = open.entry(f).or_default();
        v.push(a);
        if v.len() >= per_poll {
            out.push((f, std::mem::take(v)));
        }
    }
    out.extend(open.into_iter().filter(|(_, v)| !v.is_empty()));
    out
}

/// Prepares articles as the fill and the floor need them (per feed batch).
fn prepare_all(arts: &[Article], feed_ids: &[i64], now: DateTime<Utc>) -> Vec<(i64, NewItem)> {
    let mut by_feed: BTreeMap<usize, Vec<feedfold::parse::ParsedItem>> = BTreeMap::new();
    for a in arts {
        by_feed.entry(a.feed).or_default().push(parsed_item(a));
    }
    let mut out = Vec::with_capacity(arts.len());
    for (feed, items) in by_feed {
        let id = feed_ids[feed];
        let p = prepare::items(&feed_context(feed, id), &items, &[], now);
        out.extend(p.items.into_iter().map(|i| (id, i)));
    }
    out
}

#[derive(Default)]
struct Tally {
    new: u64,
    folded: u64,
    updated: u64,
    unchanged: u64,
    failed: u64,
}

/// One refresh's worth of work minus the fetch and parse: exactly
/// `refresh::store_items`, the daemon's own path (boilerplate, prepare,
/// batched ingest with the cached fold decision).
async fn ingest_poll<S: Store>(
    ctx: &Context<S>,
    feed: usize,
    stored: &Feed,
    arts: &[Article],
    now: DateTime<Utc>,
) -> Tally {
    let parsed: Vec<_> = arts.iter().map(parsed_item).collect();
    let mut report = FeedReport::default();
    if let Err(e) = refresh::store_items(
        ctx,
        stored,
        &parsed,
        Some(Gen::feed_lang(feed)),
        now,
        &mut report,
    )
    .await
    {
        eprintln!("ingest error: {e}");
    }
    Tally {
        new: u64::from(report.stories_created),
        folded: u64::from(report.items_folded),
        updated: u64::from(report.items_updated),
        unchanged: u64::from(report.items_unchanged),
        failed: u64::from(report.items_failed),
    }
}

/// Real generated articles prepared once per fill; rows beyond them are
/// recycled from this pool with fresh identities, URLs, dates and random
/// fingerprints and keys (so band and key collisions stay those of
/// unrelated stories). Preparing a million articles would cost minutes of
/// CPU that measure nothing.
const FILL_POOL: usize = 20_000;

/// Fills the store up to `target` items through the bulk loader; rows are
/// made on a second thread while the loader writes.
async fn fill(
    generator: Gen,
    bulk: &Bulk,
    feed_ids: &[i64],
    have: usize,
    target: usize,
) -> anyhow::Result<(Gen, usize)> {
    if target <= have {
        return Ok((generator, have));
    }
    let need = target - have;
    let chunk = 5_000;
    let (tx, rx) = mpsc::sync_channel::<Vec<(i64, NewItem)>>(2);
    let ids = feed_ids.to_vec();
    let producer = std::thread::spawn(move || {
        let mut generator = generator;
        let mut rng = crate::corpus::rng(have as u64 ^ 0xf111);
        let mut pool: Vec<(i64, NewItem)> = Vec::new();
        let mut made = 0usize;
        while made < need {
            let n = (need - made).min(chunk);
            let rows = if pool.len() < FILL_POOL {
                let arts = generator.articles(n);
                let now = arts.last().map(|a| a.published).unwrap_or_else(Utc::now);
                let rows = prepare_all(&arts, &ids, now);
                pool.extend(rows.iter().cloned());
                rows
            } else {
                (0..n)
                    .map(|k| {
                        let (feed_id, src) = &pool[(made + k) % pool.len()];
                        let at = generator.advance();
                        (*feed_id, recycle(src, made + k, at, &mut rng))
                    })
                    .collect()
            };
            made += n;
            if tx.send(rows).is_err() {
                break;
            }
        }
        generator
    });
    let start = Instant::now();
    let mut loaded = 0usize;
    let mut batch_no = 0usize;
    while let Ok(rows) = tokio::task::block_in_place(|| rx.recv()) {
        let lr: Vec<LoadRow<'_>> = rows
            .iter()
            .map(|(f, i)| LoadRow {
                feed_id: *f,
                item: i,
            })
            .collect();
        bulk.load(&lr, &format!("fill{have}-{batch_no}:")).await?;
        loaded += lr.len();
        batch_no += 1;
    }
    let generator = producer
        .join()
        .map_err(|_| anyhow::anyhow!("fill producer panicked"))?;
    println!(
        "  filled {} items in {:.1} s",
        num(loaded as f64),
        start.elapsed().as_secs_f64()
    );
    if let Some(t) = bulk.maintain().await? {
        println!(
            "  VACUUM ANALYZE and CHECKPOINT (autovacuum's and the checkpointer's work) in {:.1} s",
            t.as_secs_f64()
        );
    }
    Ok((generator, have + loaded))
}

fn recycle(src: &NewItem, n: usize, at: DateTime<Utc>, rng: &mut rand::rngs::StdRng) -> NewItem {
    let mut it = src.clone();
    it.identity = format!("{}#r{n}", it.identity);
    it.guid = it.guid.map(|g| format!("{g}#r{n}"));
    it.url = it.url.map(|u| format!("{u}?r={n}"));
    it.canonical_url = it.canonical_url.map(|u| format!("{u}?r={n}"));
    it.published_at = Some(at);
    it.fetched_at = at;
    it.dated_at = at;
    it.revision_hash = rng.random();
    let sig = &mut it.signature;
    sig.simhash = rng.random();
    sig.lead_hash = sig.lead_hash.map(|_| rng.random());
    sig.content_hash = sig.content_hash.map(|_| rng.random());
    sig.headline_hash = sig.headline_hash.map(|_| rng.random());
    for k in sig.keys.iter_mut() {
        *k = rng.random();
    }
    it
}

pub async fn ingest(
    backend: &str,
    sizes: &[usize],
    batch: usize,
    concurrency: usize,
    seed: u64,
) -> anyhow::Result<()> {
    let (opened, bulk) = open(backend, "ingest").await?;
    let result = match &opened {
        Opened::Pg(store, _) => ingest_run(store, &bulk, sizes, batch, concurrency, seed).await,
        Opened::Sqlite(store, _) => ingest_run(store, &bulk, sizes, batch, concurrency, seed).await,
    };
    match opened {
        Opened::Pg(store, db) => {
            store.close().await;
            if let Bulk::Pg(p) = &bulk {
                p.close().await;
            }
            db.drop().await;
        }
        Opened::Sqlite(store, dir) => {
            store.close().await;
            drop(dir);
        }
    }
    result
}

async fn ingest_run<S: Store>(
    store: &S,
    bulk: &Bulk,
    sizes: &[usize],
    batch: usize,
    concurrency: usize,
    seed: u64,
) -> anyhow::Result<()> {
    let name = if store.backend() == "postgres" {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let feed_ids = add_feeds(store, FEEDS).await?;
    let max = sizes.iter().copied().max().unwrap_or(batch);
    // Chronology: everything generated spans ~90 days ending now, so the
    // 14-day fold window holds ~15% of the store at the largest size.
    let span = 90.0 * 86400.0;
    let total = (max + 2 * batch * sizes.len()) as f64;
    let cfg = GenConfig {
        mean_gap_secs: span / total,
        start: Utc::now() - chrono::Duration::seconds(span as i64),
        ..GenConfig::default()
    };
    // A reused store already holds the first seed's articles: a new seed
    // keeps the timed batch from repeating them.
    let mut have = bulk.stored_items().await?;
    let mut generator = Gen::new(seed ^ have as u64, cfg);
    // Each run adds fewer than 1,000 articles per stored item it starts
    // from, so numbering from `have` × 1,000 never repeats an identity.
    generator.number_after(have as u64 * 1000);
    let mut feeds = Vec::with_capacity(feed_ids.len());
    for &id in &feed_ids {
        feeds.push(store.feed(id).await?.context("bench feed vanished")?);
    }
    let ctx = Context::new(
        store.clone(),
        Fetcher::new(&FetchConfig::default())?,
        FoldConfig::default(),
        SchedulerConfig::default(),
    );
    let mut sorted = sizes.to_vec();
    sorted.sort_unstable();
    for size in sorted {
        let (g, h) = fill(generator, bulk, &feed_ids, have, size.saturating_sub(batch)).await?;
        generator = g;
        have = h;
        let arts = generator.articles(batch);
        let n = arts.len();
        let work = polls(arts, 5);
        let now = Utc::now();
        let cpu0 = crate::util::cpu_seconds();
        let start = Instant::now();
        let results: Vec<Tally> = futures_util::stream::iter(work.iter())
            .map(|(feed, arts)| ingest_poll(&ctx, *feed, &feeds[*feed], arts, now))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let secs = start.elapsed().as_secs_f64();
        let cpu = crate::util::cpu_seconds() - cpu0;
        let mut t = Tally::default();
        for r in results {
            t.new += r.new;
            t.folded += r.folded;
            t.updated += r.updated;
            t.unchanged += r.unchanged;
            t.failed += r.failed;
        }
        // The floor loads the same articles, prepared again outside the
        // timed section.
        let all: Vec<Article> = work.into_iter().flat_map(|(_, a)| a).collect();
        let prepared = prepare_all(&all, &feed_ids, now);
        let ours = n as f64 / secs;
        have += n;
        println!(
            "ingest {name} at {} stored: {n} items in {secs:.2} s = {} items/s (bench process CPU {:.1} s); new stories {}, folded {}, updated {}, unchanged {}, failed {}",
            num((have) as f64),
            num(ours),
            cpu,
            t.new,
            t.folded,
            t.updated,
            t.unchanged,
            t.failed
        );
        let rows: Vec<LoadRow<'_>> = prepared
            .iter()
            .map(|(f, i)| LoadRow {
                feed_id: *f,
                item: i,
            })
            .collect();
        let floor_time = bulk.load(&rows, "floor:").await?;
        let floor = rows.len() as f64 / floor_time.as_secs_f64();
        have += rows.len();
        println!(
            "  bulk-load floor: {} rows in {:.2} s = {} rows/s",
            rows.len(),
            floor_time.as_secs_f64(),
            num(floor)
        );
        let target = if name == "PostgreSQL" {
            "≥ 5,000/s; ≥ 1/3 of floor"
        } else {
            "-"
        };
        row(
            &format!(
                "ingest items/s into {name}, {} stored (conc. {concurrency})",
                short(size)
            ),
            &num(ours),
            &format!("{} (bulk load)", num(floor)),
            &ratio(ours, floor),
            target,
        );
        if t.failed > 0 {
            bail!("{} items failed to ingest", t.failed);
        }
    }
    Ok(())
}

pub fn short(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

// ------------------------------------------------------------ fold latency

/// Synthetic stored items with ids in (from, to]: md5-derived 64-bit
/// simhashes (so bands spread as real ones do and collide as unrelated
/// stories do), random lead and content hashes, two random lookup keys,
/// unique URLs, short text, dated over the two years before now. One story
/// per item.
async fn synthetic_sql(
    conn: &mut sqlx::PgConnection,
    from: i64,
    to: i64,
    feed0: i64,
    feeds: i64,
) -> anyhow::Result<()> {
    const H: &str = "('x' || md5(";
    let h = |salt: &str| format!("{H}'{salt}' || g))::bit(64)::bigint");
    let dated = "now() - ((('x' || substr(md5('d' || g), 1, 8))::bit(32)::bigint % 63072000) * interval '1 second')";
    let items = format!(
        "INSERT INTO items (id, feed_id, identity, guid, url, canonical_url, title, content_text, lang, \
         published_at, fetched_at, dated_at, story_id, fp_version, simhash, band0, band1, band2, band3, \
         lead_hash, content_hash, text_len, revision_hash) \
         SELECT g, {feed0} + g % {feeds}, 'syn:' || g, 'syn:' || g, u, u, 'Council weighs plan ' || g, \
           'The council said the market report for district ' || g || ' showed rates and prices rising after the vote', \
           'en', d, d, d, g, {fp}, s, (s & 65535)::int, ((s >> 16) & 65535)::int, ((s >> 32) & 65535)::int, \
           ((s >> 48) & 65535)::int, {lead}, {content}, 18, {rev} \
         FROM (SELECT g, {simhash} AS s, {dated} AS d, \
                 'https://synthetic' || (g % 997) || '.example.com/' || g AS u \
               FROM generate_series({f}::bigint, {to}::bigint) g) t",
        fp = feedfold::fingerprint::FP_VERSION,
        lead = h("l"),
        content = h("c"),
        rev = h("r"),
        simhash = h("s"),
        f = from + 1,
    );
    let stories = format!(
        "INSERT INTO stories (id, canonical_item_id, first_published_at, item_count) \
         SELECT g, g, {dated}, 1 FROM generate_series({f}::bigint, {to}::bigint) g",
        f = from + 1
    );
    let keys = format!(
        "INSERT INTO item_keys (key, item_id, dated_at) \
         SELECT {H}k || '/' || g))::bit(64)::bigint, g, {dated} \
         FROM generate_series({f}::bigint, {to}::bigint) g, generate_series(1, 2) k",
        f = from + 1
    );
    for q in [stories, items, keys] {
        let t = Instant::now();
        sqlx::query(sqlx::AssertSqlSafe(q.clone()))
            .execute(&mut *conn)
            .await?;
        if std::env::var_os("BENCH_VERBOSE").is_some() {
            eprintln!("    {:.2} s: {}", t.elapsed().as_secs_f64(), &q[..40]);
        }
    }
    Ok(())
}

/// Secondary indexes of the tables bulk-loaded: dropped before a large
/// load and rebuilt after, as one would restore a dump.
async fn secondary_indexes(pool: &sqlx::PgPool) -> anyhow::Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i \
         WHERE i.schemaname = 'public' AND i.tablename IN ('items', 'stories', 'item_keys') \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect())
}

/// Unique and primary-key constraints of items and item_keys that no
/// foreign key depends on: (table, name, definition).
async fn droppable_constraints(
    pool: &sqlx::PgPool,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let rows = sqlx::query(
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c \
         WHERE c.contype IN ('u', 'p') AND c.conrelid::regclass::text IN ('items', 'item_keys') \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<String, _>(0),
                r.get::<String, _>(1),
                r.get::<String, _>(2),
            )
        })
        .collect())
}

pub async fn fold_latency(sizes: &[usize], samples: usize, seed: u64) -> anyhow::Result<()> {
    let db = PgDb::create("fold", false).await?;
    let r = fold_latency_run(&db, sizes, samples, seed).await;
    db.drop().await;
    r
}

async fn fold_latency_run(
    db: &PgDb,
    sizes: &[usize],
    samples: usize,
    seed: u64,
) -> anyhow::Result<()> {
    let store = PgStore::connect(&db.url).await?;
    store.migrate().await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&db.url)
        .await?;
    let feed_ids = add_feeds(&store, FEEDS).await?;
    let now = Utc::now();
    let fold = FoldConfig::default();
    let mut sorted = sizes.to_vec();
    sorted.sort_unstable();
    let mut generator = Gen::new(
        seed ^ 0x5eed,
        GenConfig {
            start: now - chrono::Duration::days(2),
            mean_gap_secs: 30.0,
            ..GenConfig::default()
        },
    );
    let mut p99s = Vec::new();
    let mut have = 0usize;
    for size in sorted {
        if size > have {
            let start = Instant::now();
            let indexes = secondary_indexes(&pool).await?;
            for (name, _) in &indexes {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {name}")))
                    .execute(&pool)
                    .await?;
            }
            // Unique constraints nobody references are rebuilt too: one
            // sorted build beats ten million random inserts.
            let constraints = droppable_constraints(&pool).await?;
            for (table, name, _) in &constraints {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "ALTER TABLE {table} DROP CONSTRAINT {name}"
                )))
                .execute(&pool)
                .await?;
            }
            // Rows are made by the server (generate_series + md5-derived
            // 64-bit values): shipping 10M rows through COPY costs more
            // than the whole rest of the suite.
            let mut conn = pool.acquire().await?;
            sqlx::query("SET session_replication_role = replica")
                .execute(&mut *conn)
                .await?;
            sqlx::query("SET synchronous_commit = off")
                .execute(&mut *conn)
                .await?;
            let feed0 = feed_ids.iter().copied().min().unwrap_or(1);
            let step = 500_000usize;
            let mut at = have;
            while at < size {
                let to = (at + step).min(size);
                synthetic_sql(
                    &mut conn,
                    at as i64,
                    to as i64,
                    feed0,
                    feed_ids.len() as i64,
                )
                .await?;
                at = to;
            }
            sqlx::query("SET session_replication_role = DEFAULT")
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "SELECT setval(pg_get_serial_sequence('items', 'id'), (SELECT max(id) FROM items)), \
                 setval(pg_get_serial_sequence('stories', 'id'), (SELECT max(id) FROM stories))",
            )
            .execute(&mut *conn)
            .await?;
            drop(conn);
            have = size;
            let loaded = start.elapsed().as_secs_f64();
            let mut conn = pool.acquire().await?;
            sqlx::query("SET maintenance_work_mem = '1GB'")
                .execute(&mut *conn)
                .await?;
            for (_, def) in &indexes {
                sqlx::query(sqlx::AssertSqlSafe(def.clone()))
                    .execute(&mut *conn)
                    .await?;
            }
            for (table, name, def) in &constraints {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {name} {def}"
                )))
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query("VACUUM ANALYZE").execute(&mut *conn).await?;
            checkpoint(&mut conn).await;
            drop(conn);
            println!(
                "fold-latency: {} synthetic stories loaded in {loaded:.0} s, indexes rebuilt in {:.0} s",
                num(have as f64),
                start.elapsed().as_secs_f64() - loaded
            );
        }
        // Timed: real generated articles (a third of them syndicated copies
        // of earlier ones in this run), one ingest at a time.
        let arts = generator.articles(samples);
        let prepared = prepare_all(&arts, &feed_ids, Utc::now());
        let mut total = Vec::with_capacity(prepared.len());
        let mut decide_only = Vec::with_capacity(prepared.len());
        let mut cands = Vec::with_capacity(prepared.len());
        let mut folded = 0;
        for (feed_id, item) in &prepared {
            let folding = FeedFolding {
                feed_id: *feed_id,
                policy: Default::default(),
                fold_translations: true,
            };
            let subject = subject_of(folding, item);
            let mut d = Duration::ZERO;
            let mut nc = 0usize;
            let start = Instant::now();
            let r = store
                .ingest_item(folding, item, fold.window, |c, s| {
                    let t = Instant::now();
                    let dec = dedup::decide(&subject, c, s, &fold);
                    d = t.elapsed();
                    nc = c.len();
                    dec
                })
                .await?;
            total.push(start.elapsed());
            decide_only.push(d);
            cands.push(nc);
            if matches!(r, Ingested::New { fold: Some(_), .. }) {
                folded += 1;
            }
        }
        total.sort_unstable();
        decide_only.sort_unstable();
        let (p50, p99) = (percentile(&total, 50.0), percentile(&total, 99.0));
        let mean_c = cands.iter().sum::<usize>() as f64 / cands.len().max(1) as f64;
        println!(
            "fold-latency at {} stories: ingest_item p50 {} p99 {} max {}; decide alone p50 {} p99 {}; {:.1} candidates/item; {folded} of {} folded",
            num(have as f64),
            ms(p50),
            ms(p99),
            ms(*total.last().unwrap_or(&Duration::ZERO)),
            ms(percentile(&decide_only, 50.0)),
            ms(percentile(&decide_only, 99.0)),
            mean_c,
            prepared.len()
        );
        have += prepared.len();
        p99s.push(p99);
        row(
            &format!(
                "fold decision (ingest_item) p50 / p99, {} stories, PG",
                short(size)
            ),
            &format!("{} / {}", ms(p50), ms(p99)),
            &format!(
                "decide alone {} / {}",
                ms(percentile(&decide_only, 50.0)),
                ms(percentile(&decide_only, 99.0))
            ),
            "-",
            "p99 < 10 ms at 10M",
        );
    }
    if let (Some(first), Some(last)) = (p99s.first(), p99s.last())
        && p99s.len() > 1
    {
        println!(
            "fold-latency: p99 grew {:.2}× from the smallest to the largest store",
            last.as_secs_f64() / first.as_secs_f64().max(1e-9)
        );
    }
    store.close().await;
    pool.close().await;
    Ok(())
}
