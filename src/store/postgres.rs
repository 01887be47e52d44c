//! PostgreSQL implementation of `Store`.

/// PostgreSQL-backed store.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: sqlx::PgPool,
}
