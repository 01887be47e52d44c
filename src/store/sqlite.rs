//! SQLite implementation of `Store` (the embedded default).

/// SQLite-backed store.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: sqlx::SqlitePool,
}
