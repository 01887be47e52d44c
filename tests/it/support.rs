//! Shared test helpers.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/corpus/dev` beside the project root, if present. Tests that
/// need it print why they skip when it is absent.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/dev");
    if dir.join("truth.tsv").exists() {
        Some(dir)
    } else {
        eprintln!("skipping: corpus not found at {}", dir.display());
        None
    }
}

// ---------------------------------------------------------------------------
// Databases for the store contract suite (and anyone else who needs one).

use std::future::Future;

use chrono::{DateTime, TimeZone, Utc};
use feedfold::dedup::Signature;
use feedfold::fingerprint::hash64;
use feedfold::store::{NewItem, PgStore, SqliteStore, Store};

/// A migrated SQLite store in a fresh temporary directory (kept alive by the
/// returned guard).
pub async fn fresh_sqlite() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("feedfold.db");
    let store = SqliteStore::open(path.to_str().expect("utf-8 temp path"))
        .await
        .expect("open sqlite");
    store.migrate().await.expect("migrate sqlite");
    (store, dir)
}

/// The PostgreSQL server tests create scratch databases on
/// (TEST_DATABASE_URL). None, with the reason printed, when it is unset;
/// when FEEDFOLD_REQUIRE_POSTGRES is set (as in CI) an unset URL is a
/// failure, so a run cannot pass by skipping PostgreSQL silently.
pub fn pg_admin_url(suite: &str) -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("FEEDFOLD_REQUIRE_POSTGRES").is_some() => {
            panic!("FEEDFOLD_REQUIRE_POSTGRES is set but TEST_DATABASE_URL is not ({suite})")
        }
        _ => {
            eprintln!("skipping postgres ({suite}): TEST_DATABASE_URL unset");
            None
        }
    }
}

/// A fresh PostgreSQL database `ff_<random>` created through
/// TEST_DATABASE_URL; dropped by `drop_db`.
pub struct FreshPg {
    pub url: String,
    admin: String,
    name: String,
}

impl FreshPg {
    /// None (with a printed reason) when TEST_DATABASE_URL is unset. Panics
    /// when it is set but unusable: a configured database must not be
    /// skipped silently.
    pub async fn create() -> Option<FreshPg> {
        use sqlx::Connection;
        let admin = pg_admin_url("store contract")?;
        let name = format!("ff_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unreachable: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin).expect("TEST_DATABASE_URL parses");
        url.set_path(&format!("/{name}"));
        Some(FreshPg {
            url: url.to_string(),
            admin,
            name,
        })
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> PgStore {
        let store = PgStore::connect(&self.url).await.expect("connect test db");
        store.migrate().await.expect("migrate postgres");
        store
    }

    pub async fn drop_db(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
            let _ = conn.close().await;
        }
    }
}

/// A migrated store in a fresh PostgreSQL database, or None (printed) when
/// TEST_DATABASE_URL is unset. Call `drop_db` on the guard when done.
pub async fn fresh_pg() -> Option<(PgStore, FreshPg)> {
    let db = FreshPg::create().await?;
    Some((db.store().await, db))
}

/// Runs `case` on a migrated store in a fresh PostgreSQL database and drops
/// the database afterwards, also when the case panics (the panic is then
/// re-raised). Skips with a message when TEST_DATABASE_URL is unset.
pub async fn with_pg<F, Fut>(case: F)
where
    F: FnOnce(PgStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = FreshPg::create().await else {
        return;
    };
    let store = db.store().await;
    let outcome = tokio::spawn(case(store.clone())).await;
    store.close().await;
    db.drop_db().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Runs `case` on a migrated SQLite store in a temporary directory.
pub async fn with_sqlite<F, Fut>(case: F)
where
    F: FnOnce(SqliteStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (store, _dir) = fresh_sqlite().await;
    let outcome = tokio::spawn(case(store.clone())).await;
    store.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A fixed instant for fixtures: 2026-03-02 09:00 UTC plus `hours`.
pub fn at(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("valid date")
        + chrono::Duration::hours(hours)
}

/// A stored-item fixture: identity, text and date. Its simhash and content
/// hash derive from the text, so two fixtures with the same text are exact
/// copies; tests overwrite signature fields to isolate one signal.
pub fn item(identity: &str, text: &str, dated_at: DateTime<Utc>) -> NewItem {
    NewItem {
        identity: identity.to_string(),
        guid: Some(identity.to_string()),
        url: Some(format!("https://news.example/{identity}")),
        canonical_url: None,
        origin_url: None,
        title: Some(format!("Headline for {identity}")),
        summary: None,
        content_text: text.to_string(),
        author: None,
        lang: Some("en".into()),
        published_at: Some(dated_at),
        updated_at: None,
        fetched_at: dated_at,
        dated_at,
        revision_hash: hash64(&format!("{identity}\u{1}{text}")),
        signature: Signature {
            fp_version: 1,
            simhash: hash64(&format!("simhash:{text}")),
            lead_hash: None,
            content_hash: (!text.is_empty()).then(|| hash64(text)),
            headline_key: None,
            headline_hash: None,
            text_len: text.split_whitespace().count() as i32,
            anchors: None,
            keys: Vec::new(),
            republished: false,
        },
    }
}
