//! PostgreSQL implementation of `Store`.
//!
//! Several daemons may share one database. Folding stays race-free through
//! transaction-scoped advisory locks on every key an ingest could match on
//! (`fold_lock_keys`), taken in sorted order before the candidate search;
//! under READ COMMITTED the search after the wait sees the winner's row.
//! Feeds are leased with `FOR UPDATE SKIP LOCKED`.

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::PgPoolOptions;

type Db = sqlx::Postgres;
type ThisStore = PgStore;

const BACKEND: &str = "postgres";

/// PostgreSQL-backed store.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: sqlx::PgPool,
    window_counts: crate::store::WindowCounts,
    texts: crate::store::TextCache,
}

static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    let migration = |version, name: &str, sql: &'static str| {
        Migration::new(
            version,
            name.to_string().into(),
            MigrationType::Simple,
            sql.into_sql_str(),
            false,
        )
    };
    Migrator::with_migrations(vec![
        migration(
            1,
            "init",
            include_str!("../../migrations/postgres/0001_init.sql"),
        ),
        migration(
            2,
            "fold query indexes",
            include_str!("../../migrations/postgres/0002_fold_query_indexes.sql"),
        ),
    ])
});

fn migrator() -> &'static Migrator {
    &MIGRATOR
}

impl PgStore {
    /// Connects a pool of up to 10 connections. Fails fast when the server
    /// is unreachable; the daemon retries with backoff around this.
    pub async fn connect(url: &str) -> crate::store::Result<PgStore> {
        Self::connect_with(url, 10).await
    }

    /// Like `connect`, with the pool size (at least 1). Every concurrent
    /// ingest holds one connection for its transaction.
    pub async fn connect_with(url: &str, max_connections: u32) -> crate::store::Result<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(PgStore {
            pool,
            window_counts: Default::default(),
            texts: Default::default(),
        })
    }

    /// The pool, for callers that need PostgreSQL itself (LISTEN, tests).
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    t
}

fn ts_opt(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<chrono::DateTime<chrono::Utc>> {
    t
}

impl PgStore {
    /// Opens a write transaction; PostgreSQL needs no process-side gate
    /// (advisory locks serialise conflicting ingests).
    async fn begin_write(&self) -> crate::store::Result<((), sqlx::Transaction<'static, Db>)> {
        Ok(((), self.pool.begin().await?))
    }
}

/// How the candidates' shared keys are filtered. The planner preferred the
/// primary key (key, item_id) for `key = ANY(..) AND item_id = ANY(..)` and
/// read every stored item of each of the item's keys, 10k index entries for
/// 100 candidates at 1M items (13 ms); the unary plus keeps `key` out of the
/// index condition, so the lookup walks (item_id, key) per candidate, index
/// only (0.5 ms).
const CANDIDATE_KEY_COL: &str = "+key";

/// Warns when autovacuum is off. Without it nothing keeps statistics and
/// visibility maps current as the tables grow, so the planner misjudges
/// the fold queries and index-only scans read the heap: ingest slows as the
/// store grows. The schema keeps the hot plans independent of statistics
/// where it can (migration 0002), but not the costs of an unvacuumed table.
async fn warn_about_maintenance(pool: &sqlx::PgPool) {
    let setting: Result<String, _> = sqlx::query_scalar("SELECT current_setting('autovacuum')")
        .fetch_one(pool)
        .await;
    if let Ok(s) = setting
        && s == "off"
    {
        tracing::warn!(
            "PostgreSQL runs with autovacuum off: run VACUUM ANALYZE regularly (or enable \
             autovacuum), else ingest slows as the store grows"
        );
    }
}

/// Takes the advisory locks in the array's (sorted) order: every ingest
/// sorts the same way, so two ingests never wait on each other in a cycle.
///
/// The same statement makes the rest of the ingest transaction use generic
/// plans. PostgreSQL kept custom plans for the candidate query (its
/// estimated cost varies with the window), and planning the nine-branch
/// union cost 0.6 ms per item, about as much as running it. Every branch
/// is an equality on an index prefix, so the generic plan is the same.
async fn take_locks(conn: &mut sqlx::PgConnection, keys: &[i64]) -> crate::store::Result<()> {
    sqlx::query(
        "SELECT set_config('plan_cache_mode', 'force_generic_plan', true), \
         (SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(k, n))",
    )
    .bind(keys)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Row-locks stories before `unfold`/`remove_feed` recount them. A
/// concurrent fold increments the same row, so the two serialise: either the
/// fold waits and increments the repaired count, or the recount runs after
/// the fold committed and sees its item.
async fn lock_stories(conn: &mut sqlx::PgConnection, ids: &[i64]) -> crate::store::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT id FROM stories WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    Ok(())
}

/// The planner's row estimate for the window, from the `dated_at`
/// histogram (within a few percent of the count on a million rows, in
/// about 0.3 ms instead of 10 to 30 ms for counting). The bounds are inlined
/// so that the estimate always comes from a custom plan: a cached generic
/// plan would report a default selectivity instead.
async fn estimate_window_items(
    conn: &mut sqlx::PgConnection,
    lo: chrono::DateTime<chrono::Utc>,
    hi: chrono::DateTime<chrono::Utc>,
) -> crate::store::Result<Option<i64>> {
    use sqlx::Row as _;
    // Both bounds are formatted by chrono, never taken from input.
    let q = format!(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM items WHERE dated_at BETWEEN '{}' AND '{}'",
        lo.to_rfc3339(),
        hi.to_rfc3339()
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(q))
        .persistent(false)
        .fetch_one(&mut *conn)
        .await?;
    let plan: serde_json::Value = match row.try_get::<serde_json::Value, _>(0) {
        Ok(v) => v,
        Err(_) => match serde_json::from_str(&row.try_get::<String, _>(0)?) {
            Ok(v) => v,
            Err(_) => return Ok(None),
        },
    };
    Ok(plan
        .get(0)
        .and_then(|p| p.get("Plan"))
        .and_then(|p| p.get("Plan Rows"))
        .and_then(|r| r.as_f64())
        .map(|r| r as i64))
}

/// Writes a new item with its story (new, or updated by the fold), its keys,
/// its fold record and the notification (delivered at commit, so listeners never
/// see a story that rolled back) in one statement: done statement by
/// statement these were five to six round trips per item, each a parse,
/// a plan and a wait on a loaded machine. The item's id is drawn first so
/// that a new story names its canonical item as it is inserted (the foreign
/// key is deferred). A fold that promotes another item runs that as its own
/// statement afterwards (see `promote`).
async fn store_new_item(
    conn: &mut sqlx::PgConnection,
    feed: crate::store::FeedFolding,
    item: &crate::store::NewItem,
    fold: Option<&crate::dedup::Fold>,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::store::Result<(i64, i64)> {
    use sqlx::Row as _;
    // $1, $2 and $3..$29 (bind_item) fill the item; then keys, publication, now.
    let item_values = item_placeholders(3);
    let tail = format!(
        "i AS (INSERT INTO items (id, feed_id, identity, story_id, {ITEM_COLS}) \
         SELECT n.id, $1, $2, s.id, {item_values} FROM n, s RETURNING id, story_id, dated_at), \
         k AS (INSERT INTO item_keys (key, item_id, dated_at) \
         SELECT k.key, i.id, i.dated_at FROM i, unnest($30::bigint[]) AS k(key))"
    );
    let q = match fold {
        None => format!(
            "WITH n AS (SELECT nextval('items_id_seq') AS id), \
             s AS (INSERT INTO stories (canonical_item_id, first_published_at, item_count, \
             created_at, updated_at) SELECT n.id, $31, 1, $32, $32 FROM n RETURNING id), {tail} \
             SELECT i.id, i.story_id, pg_notify('feedfold_stories', i.story_id::text) IS NULL \
             AS notified FROM i"
        ),
        Some(_) => format!(
            "WITH n AS (SELECT nextval('items_id_seq') AS id), \
             s AS (UPDATE stories SET item_count = item_count + 1, \
             first_published_at = CASE WHEN first_published_at IS NULL \
               OR first_published_at > $31 THEN $31 ELSE first_published_at END, \
             updated_at = $32, \
             canonical_item_id = CASE WHEN $34 THEN n.id ELSE canonical_item_id END \
             FROM n WHERE stories.id = $33 RETURNING stories.id), {tail}, \
             f AS (INSERT INTO folds (item_id, story_id, matched_item_id, method, distance, \
             score, detail, decided_at) SELECT i.id, i.story_id, $35, $36, $37, $38, $39, $32 FROM i) \
             SELECT i.id, i.story_id, pg_notify('feedfold_copies', i.story_id::text) IS NULL \
             AS notified FROM i"
        ),
    };
    let published = item.published_at.unwrap_or(item.dated_at);
    let keys = distinct_keys(&item.signature.keys);
    let mut query = bind_item(
        sqlx::query(sql(q)).bind(feed.feed_id).bind(&item.identity),
        item,
    )
    .bind(keys)
    .bind(published)
    .bind(now);
    if let Some(f) = fold {
        query = query
            .bind(f.story_id)
            .bind(f.becomes_canonical && f.promotes.is_none())
            .bind(f.matched_item_id)
            .bind(f.method.as_str())
            .bind(f.distance)
            .bind(f.score)
            .bind(&f.detail);
    }
    let Some(row) = query.fetch_optional(&mut *conn).await? else {
        // Only a fold writes nothing: its story is gone.
        let story = fold.map_or(0, |f| f.story_id);
        return Err(crate::store::StoreError::NotFound(format!(
            "story {story} chosen by the fold decision"
        )));
    };
    let item_id: i64 = row.try_get("id")?;
    let story_id: i64 = row.try_get("story_id")?;
    if let Some(p) = fold.and_then(|f| f.promotes) {
        promote(conn, story_id, p).await?;
    }
    Ok((item_id, story_id))
}

/// A list of ids as one parameter: a bigint[] array, matched by `in_ids`.
fn id_list(ids: &[i64]) -> Vec<i64> {
    ids.to_vec()
}

/// `col` is one of the ids bound as `$n`. `= ANY` is an index condition
/// (one bitmap or index scan over all the ids); the former
/// `IN (SELECT unnest(..))` was a semi-join that generic plans estimated at
/// 10 rows and ran as a sequential scan of item_keys: the shared-keys query
/// took 6.7 ms per ingest at 5k items (8.6 ms against 0.4 ms in EXPLAIN
/// ANALYZE on 30k keys), and grew with the table.
fn in_ids(col: &str, n: usize) -> String {
    format!("{col} = ANY(${n}::bigint[])")
}

/// A list of strings as one parameter: a text[] array, matched by
/// `in_texts`.
fn text_list(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// `col` is one of the strings bound as `$n` (see `in_ids`).
fn in_texts(col: &str, n: usize) -> String {
    format!("{col} = ANY(${n}::text[])")
}

const CLAIM_SQL: &str = "UPDATE feeds SET lease_owner = $1, lease_expires_at = $2 \
    WHERE id IN (SELECT id FROM feeds WHERE enabled AND next_poll_at <= $3 \
    AND (lease_expires_at IS NULL OR lease_expires_at < $3) ORDER BY next_poll_at, id LIMIT $4 \
    FOR UPDATE SKIP LOCKED)";

include!("common_impl.rs");
