//! SQLite implementation of `Store` (the embedded default).
//!
//! Writers serialise on `BEGIN IMMEDIATE`, which is what makes folding
//! race-free here: the candidate search and the insert of one ingest run
//! while no other connection can write. Timestamps are stored as fixed-width
//! RFC 3339 text (see migrations/sqlite), so text order is time order.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

type Db = sqlx::Sqlite;
type ThisStore = SqliteStore;

const BACKEND: &str = "sqlite";

/// SQLite-backed store.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: sqlx::SqlitePool,
    /// The database file; None for an in-memory database.
    path: Option<Arc<PathBuf>>,
    window_counts: crate::store::WindowCounts,
    texts: crate::store::TextCache,
    /// One writer at a time inside this process. SQLite allows one writer
    /// anyway; queueing here (fairly, without holding a connection) instead
    /// of in SQLite's busy handler keeps a burst of concurrent feeds from
    /// running into "database is locked".
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

/// Held by the one daemon that may use a SQLite file; released on drop.
#[derive(Debug)]
pub struct InstanceLock {
    _file: Option<File>,
    path: Option<PathBuf>,
}

impl InstanceLock {
    /// The lock file, None for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    Migrator::with_migrations(vec![Migration::new(
        1,
        "init".into(),
        MigrationType::Simple,
        include_str!("../../migrations/sqlite/0001_init.sql").into_sql_str(),
        false,
    )])
});

fn migrator() -> &'static Migrator {
    &MIGRATOR
}

impl SqliteStore {
    /// Opens (creating if missing) a SQLite database. Accepts `sqlite:PATH`,
    /// `sqlite://PATH`, `sqlite::memory:` and a plain file path.
    pub async fn open(url_or_path: &str) -> crate::store::Result<SqliteStore> {
        let memory = matches!(
            url_or_path,
            "sqlite::memory:" | "sqlite://:memory:" | ":memory:"
        );
        let opts = if memory {
            SqliteConnectOptions::from_str("sqlite::memory:")?
        } else if url_or_path.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url_or_path)?
        } else {
            SqliteConnectOptions::new().filename(url_or_path)
        };
        let opts = opts
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .synchronous(SqliteSynchronous::Normal);
        let opts = if memory {
            opts
        } else {
            opts.journal_mode(SqliteJournalMode::Wal)
        };
        let path = (!memory).then(|| Arc::new(opts.get_filename().to_path_buf()));
        // An in-memory database lives in its one connection: keep exactly one,
        // forever.
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(opts)
                .await?
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await?
        };
        Ok(SqliteStore {
            pool,
            path,
            window_counts: Default::default(),
            texts: Default::default(),
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The pool, for callers that need SQLite itself (tests, ad-hoc SQL).
    pub fn pool(&self) -> &sqlx::SqlitePool {
        &self.pool
    }

    /// The database file, None for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref().map(PathBuf::as_path)
    }

    /// Refuses a second daemon on the same database file: takes an exclusive
    /// lock on `<db>.lock` beside it. The OS drops the lock when the process
    /// dies, so a crash never leaves a stale lock behind.
    pub fn lock_instance(&self) -> crate::store::Result<InstanceLock> {
        use crate::store::StoreError;
        let Some(db) = self.path() else {
            return Ok(InstanceLock {
                _file: None,
                path: None,
            });
        };
        let mut lock_path = db.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                StoreError::Locked(format!(
                    "cannot create lock file {}: {e}",
                    lock_path.display()
                ))
            })?;
        match file.try_lock() {
            Ok(()) => Ok(InstanceLock {
                _file: Some(file),
                path: Some(lock_path),
            }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(format!(
                "another feedfold instance is using {} (lock file {} is held); \
                 SQLite supports one daemon per database, use PostgreSQL to run several",
                db.display(),
                lock_path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Locked(format!(
                "cannot lock {}: {e}",
                lock_path.display()
            ))),
        }
    }
}

/// Fixed-width UTC text: text comparison in SQL equals time comparison.
fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn ts_opt(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<String> {
    t.map(ts)
}

impl SqliteStore {
    /// Opens a write transaction behind the process-wide write gate. The
    /// guard is returned first so that it is dropped after the transaction.
    async fn begin_write(
        &self,
    ) -> crate::store::Result<(
        tokio::sync::OwnedMutexGuard<()>,
        sqlx::Transaction<'static, Db>,
    )> {
        let gate = self.write_gate.clone().lock_owned().await;
        Ok((gate, self.pool.begin_with("BEGIN IMMEDIATE").await?))
    }
}

/// SQLite seeks the primary key (key, item_id) for both lists, in process.
const CANDIDATE_KEY_COL: &str = "key";

/// SQLite needs no maintenance process: its planner chooses feedfold's
/// indexes without statistics.
async fn warn_about_maintenance(_pool: &sqlx::SqlitePool) {}

/// `BEGIN IMMEDIATE` already serialises every writer.
async fn take_locks(_conn: &mut sqlx::SqliteConnection, _keys: &[i64]) -> crate::store::Result<()> {
    Ok(())
}

/// `BEGIN IMMEDIATE` already excludes concurrent folds into these stories.
async fn lock_stories(
    _conn: &mut sqlx::SqliteConnection,
    _ids: &[i64],
) -> crate::store::Result<()> {
    Ok(())
}

/// No cheap estimate on SQLite; the window is counted (and cached when big).
async fn estimate_window_items(
    _conn: &mut sqlx::SqliteConnection,
    _lo: chrono::DateTime<chrono::Utc>,
    _hi: chrono::DateTime<chrono::Utc>,
) -> crate::store::Result<Option<i64>> {
    Ok(None)
}

/// Writes a new item, its story (new or updated), keys and fold record:
/// statement by statement, as SQLite round trips are function calls. No
/// notification: SQLite has no push channel.
async fn store_new_item(
    conn: &mut sqlx::SqliteConnection,
    feed: crate::store::FeedFolding,
    item: &crate::store::NewItem,
    fold: Option<&crate::dedup::Fold>,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::store::Result<(i64, i64)> {
    use sqlx::Row as _;
    let published = item.published_at.unwrap_or(item.dated_at);
    let story_id = match fold {
        None => sqlx::query(
            "INSERT INTO stories (first_published_at, item_count, created_at, updated_at) \
             VALUES ($1, 1, $2, $2) RETURNING id",
        )
        .bind(ts(published))
        .bind(ts(now))
        .fetch_one(&mut *conn)
        .await?
        .try_get("id")?,
        Some(f) => {
            let n = sqlx::query(
                "UPDATE stories SET item_count = item_count + 1, \
                 first_published_at = CASE WHEN first_published_at IS NULL \
                   OR first_published_at > $2 THEN $2 ELSE first_published_at END, \
                 updated_at = $3 WHERE id = $1",
            )
            .bind(f.story_id)
            .bind(ts(published))
            .bind(ts(now))
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(crate::store::StoreError::NotFound(format!(
                    "story {} chosen by the fold decision",
                    f.story_id
                )));
            }
            f.story_id
        }
    };
    let insert = format!(
        "INSERT INTO items (feed_id, identity, story_id, {ITEM_COLS}) \
         VALUES ($1, $2, $3, {}) RETURNING id",
        item_placeholders(4)
    );
    let item_id: i64 = bind_item(
        sqlx::query(sql(insert))
            .bind(feed.feed_id)
            .bind(&item.identity)
            .bind(story_id),
        item,
    )
    .fetch_one(&mut *conn)
    .await?
    .try_get("id")?;
    insert_keys(conn, item_id, item).await?;
    match fold {
        None => {
            sqlx::query("UPDATE stories SET canonical_item_id = $2 WHERE id = $1")
                .bind(story_id)
                .bind(item_id)
                .execute(&mut *conn)
                .await?;
        }
        Some(f) => {
            insert_fold(conn, item_id, f, now).await?;
            if f.becomes_canonical || f.promotes.is_some() {
                promote(conn, story_id, f.promotes.unwrap_or(item_id)).await?;
            }
        }
    }
    Ok((item_id, story_id))
}

/// Records why `item_id` joined its story.
async fn insert_fold(
    conn: &mut sqlx::SqliteConnection,
    item_id: i64,
    f: &crate::dedup::Fold,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::store::Result<()> {
    sqlx::query(
        "INSERT INTO folds (item_id, story_id, matched_item_id, method, distance, \
         score, detail, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(item_id)
    .bind(f.story_id)
    .bind(f.matched_item_id)
    .bind(f.method.as_str())
    .bind(f.distance)
    .bind(f.score)
    .bind(&f.detail)
    .bind(ts(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A list of ids as one parameter: a JSON array, matched by `in_ids`.
fn id_list(ids: &[i64]) -> String {
    let inner: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("[{}]", inner.join(","))
}

/// `col` is one of the ids bound as `$n`.
fn in_ids(col: &str, n: usize) -> String {
    format!("{col} IN (SELECT value FROM json_each(${n}))")
}

/// A list of strings as one parameter: a JSON array, matched by
/// `in_texts`.
fn text_list(values: &[&str]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".into())
}

/// `col` is one of the strings bound as `$n`.
fn in_texts(col: &str, n: usize) -> String {
    in_ids(col, n)
}

const CLAIM_SQL: &str = "UPDATE feeds SET lease_owner = $1, lease_expires_at = $2 \
    WHERE id IN (SELECT id FROM feeds WHERE enabled AND next_poll_at <= $3 \
    AND (lease_expires_at IS NULL OR lease_expires_at < $3) ORDER BY next_poll_at, id LIMIT $4)";

include!("common_impl.rs");
