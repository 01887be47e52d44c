//! Persistence. One `Store` trait with a SQLite (embedded default) and a
//! PostgreSQL implementation; the contract suite in `tests/` runs against both.
//! Schema and migrations: `migrations/{sqlite,postgres}`, never edited once
//! landed. The schema is a public interface documented in docs/sql.md.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::dedup::{Candidate, Decision, FeedPolicy, Fold, KeyStats, Signature};

pub mod postgres;
pub mod sqlite;

pub use postgres::PgStore;
pub use sqlite::{InstanceLock, SqliteStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL `{0}`: use sqlite:PATH, a file path, or postgres://...")]
    UnsupportedUrl(String),
    #[error("{0}")]
    Locked(String),
    #[error("feed already exists: {0}")]
    FeedExists(String),
    #[error("not found: {0}")]
    NotFound(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A feed as stored, with its polling state.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    pub id: i64,
    pub url: String,
    pub title: Option<String>,
    pub site_url: Option<String>,
    pub language: Option<String>,
    pub created_at: DateTime<Utc>,
    pub fold_policy: FeedPolicy,
    pub languages: Option<String>,
    pub fold_translations: bool,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub poll_interval_secs: Option<i32>,
    pub next_poll_at: DateTime<Utc>,
    pub last_polled_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub last_http_status: Option<i32>,
    pub last_error_class: Option<String>,
    pub last_error: Option<String>,
    pub error_count: i32,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_published_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
}

/// A feed to add (CLI, OPML import or the config's feed list).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewFeed {
    pub url: String,
    pub title: Option<String>,
    pub fold_policy: FeedPolicy,
    pub languages: Option<String>,
    pub fold_translations: bool,
}

/// What one poll did to a feed; written in one statement with the poll log.
#[derive(Debug, Clone, PartialEq)]
pub struct PollUpdate {
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    /// ok, not_modified, error, rate_limited or gone.
    pub outcome: String,
    pub http_status: Option<i32>,
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub bytes: i64,
    pub items_seen: i32,
    pub items_new: i32,
    pub items_updated: i32,
    pub items_folded: i32,
    /// True resets the error count and failing_since.
    pub success: bool,
    /// Some(..) replaces the stored validators.
    pub validators: Option<(Option<String>, Option<String>)>,
    /// The feed moved permanently (301/308): store the new URL, keep the old
    /// one in feed_url_history.
    pub moved_to: Option<String>,
    pub title: Option<String>,
    pub site_url: Option<String>,
    pub language: Option<String>,
    pub next_poll_at: DateTime<Utc>,
    pub poll_interval_secs: Option<i32>,
    /// Some(reason) disables the feed (410 Gone, failing too long).
    pub disable: Option<String>,
    pub last_published_at: Option<DateTime<Utc>>,
}

impl PollUpdate {
    /// A poll that started at `started_at` and has recorded nothing yet:
    /// no outcome, no validators, no feed changes, next poll at the start.
    pub fn started(started_at: DateTime<Utc>) -> PollUpdate {
        PollUpdate {
            started_at,
            duration_ms: 0,
            outcome: String::new(),
            http_status: None,
            error_class: None,
            error: None,
            bytes: 0,
            items_seen: 0,
            items_new: 0,
            items_updated: 0,
            items_folded: 0,
            success: false,
            validators: None,
            moved_to: None,
            title: None,
            site_url: None,
            language: None,
            next_poll_at: started_at,
            poll_interval_secs: None,
            disable: None,
            last_published_at: None,
        }
    }
}

/// An item ready to store: normalized text plus its signature.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewItem {
    pub identity: String,
    pub guid: Option<String>,
    pub url: Option<String>,
    pub canonical_url: Option<String>,
    pub origin_url: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub content_text: String,
    pub author: Option<String>,
    pub lang: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub fetched_at: DateTime<Utc>,
    pub dated_at: DateTime<Utc>,
    /// Changes when anything a reader sees changes; decides "updated".
    pub revision_hash: i64,
    pub signature: Signature,
}

/// What ingesting one item did.
#[derive(Debug, Clone, PartialEq)]
pub enum Ingested {
    New {
        item_id: i64,
        story_id: i64,
        fold: Option<Fold>,
    },
    /// The item was known and changed; it was updated in place and keeps its
    /// story.
    Updated { item_id: i64 },
    /// The item was known and unchanged.
    Unchanged { item_id: i64 },
}

/// One line of `feedfold stories`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorySummary {
    pub story_id: i64,
    pub title: Option<String>,
    pub url: Option<String>,
    pub first_published_at: Option<DateTime<Utc>>,
    pub copies: i64,
    pub feeds: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub feeds: i64,
    pub feeds_failing: i64,
    pub feeds_disabled: i64,
    pub items: i64,
    pub stories: i64,
    pub folds: i64,
}

/// The feed-side facts that folding needs about the subject's feed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeedFolding {
    pub feed_id: i64,
    pub policy: FeedPolicy,
    pub fold_translations: bool,
}

/// Storage for feeds, items and stories. Implementations must make
/// `ingest_item` race-free: concurrent ingests of copies of one story, from
/// any number of tasks or processes, end in one story.
pub trait Store: Clone + Send + Sync + 'static {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;

    /// Applies the embedded migrations.
    fn migrate(&self) -> impl Future<Output = Result<()>> + Send;

    /// Ok when the database answers and every embedded migration is applied.
    fn ready(&self) -> impl Future<Output = Result<()>> + Send;

    /// Adds a feed; `FeedExists` if its URL is already stored.
    fn add_feed(&self, feed: &NewFeed) -> impl Future<Output = Result<Feed>> + Send;

    /// Adds a feed unless its URL is stored; returns it and whether it was new.
    fn ensure_feed(&self, feed: &NewFeed) -> impl Future<Output = Result<(Feed, bool)>> + Send;

    fn feeds(&self) -> impl Future<Output = Result<Vec<Feed>>> + Send;

    fn feed(&self, id: i64) -> impl Future<Output = Result<Option<Feed>>> + Send;

    fn feed_by_url(&self, url: &str) -> impl Future<Output = Result<Option<Feed>>> + Send;

    /// Removes a feed with its items; stories left without items go too.
    fn remove_feed(&self, id: i64) -> impl Future<Output = Result<bool>> + Send;

    /// Enables or disables a feed. Enabling resets its error state and makes
    /// it due now.
    fn set_feed_enabled(
        &self,
        id: i64,
        enabled: bool,
        reason: Option<&str>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Atomically leases up to `limit` enabled feeds whose next poll is due
    /// and whose lease is free or expired, to `owner` until `now + lease`.
    fn claim_due_feeds(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: i64,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<Feed>>> + Send;

    /// Releases every lease held by `owner` (graceful shutdown).
    fn release_leases(&self, owner: &str) -> impl Future<Output = Result<u64>> + Send;

    /// The earliest next_poll_at among enabled feeds, for the scheduler's sleep.
    fn next_due_at(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>>> + Send;

    /// Records a poll's outcome on the feed, appends it to `polls`, and clears
    /// the feed's lease.
    fn record_poll(
        &self,
        feed_id: i64,
        update: &PollUpdate,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Stores one poll's items, returning one result per item in order. A
    /// known identity with the same revision is left alone; a changed one
    /// is updated in place. A new item is folded: the store finds
    /// candidates (same canonical or origin URL, content hash, any simhash
    /// band, any lookup key; dated within `window` of the item), plus the
    /// canonical item of every story they belong to, measures `KeyStats`,
    /// and calls `decide` while holding locks that serialise every ingest
    /// that could pair with this one as a copy (`fold_lock_keys`). A
    /// candidate's `signature.keys` holds only the keys it shares with the
    /// item.
    ///
    /// Items are written up to `MAX_INGEST_BATCH` per transaction: one
    /// commit and one lock round per batch instead of per item. When a
    /// batch fails (an item's error, a deadlock, a lost connection), each of
    /// its items is retried alone, so one bad item never costs the others.
    /// Later items of a batch see the earlier ones.
    fn ingest_items<F>(
        &self,
        feed: FeedFolding,
        items: &[NewItem],
        window: Duration,
        decide: F,
    ) -> impl Future<Output = Vec<Result<Ingested>>> + Send
    where
        F: FnMut(&NewItem, &[Candidate], &KeyStats) -> Decision + Send;

    /// `ingest_items` for a single item.
    fn ingest_item<F>(
        &self,
        feed: FeedFolding,
        item: &NewItem,
        window: Duration,
        mut decide: F,
    ) -> impl Future<Output = Result<Ingested>> + Send
    where
        F: FnMut(&[Candidate], &KeyStats) -> Decision + Send,
    {
        async move {
            let mut results = self
                .ingest_items(feed, std::slice::from_ref(item), window, |_, c, s| {
                    decide(c, s)
                })
                .await;
            results.pop().unwrap_or_else(|| Err(not_stored(item)))
        }
    }

    /// Paragraph-shape hashes learned as this feed's boilerplate.
    fn feed_boilerplate(&self, feed_id: i64) -> impl Future<Output = Result<Vec<i64>>> + Send;

    /// Adds shapes to a feed's boilerplate (incrementing seen counts).
    fn remember_boilerplate(
        &self,
        feed_id: i64,
        shapes: &[i64],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Moves an item into a story of its own and vetoes the old fold.
    /// Returns the new story id, or None if the item was not folded.
    fn unfold(&self, item_id: i64) -> impl Future<Output = Result<Option<i64>>> + Send;

    fn newest_stories(
        &self,
        since: Option<DateTime<Utc>>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<StorySummary>>> + Send;

    fn counts(&self) -> impl Future<Output = Result<Counts>> + Send;

    /// Pool gauges for /metrics: (in use, idle).
    fn pool_state(&self) -> (u32, u32);

    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// Which backend a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// postgres:// or postgresql:// select PostgreSQL; sqlite: URLs and plain
    /// paths select SQLite. Anything else with a scheme is refused by name.
    pub fn of_url(url: &str) -> Result<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") || !url.contains("://") {
            Ok(Backend::Sqlite)
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }
}

/// A store opened from a URL, for callers that pick the backend at runtime
/// (the CLI and the daemon). Each arm is a full `Store`.
#[derive(Clone)]
pub enum Opened {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Opened {
    pub fn kind(&self) -> Backend {
        match self {
            Opened::Sqlite(_) => Backend::Sqlite,
            Opened::Postgres(_) => Backend::Postgres,
        }
    }

    /// For a daemon: on SQLite, refuses a second instance on the same file
    /// (`StoreError::Locked`) and returns the guard to hold while running;
    /// on PostgreSQL, where instances share the work through leases, None.
    pub fn lock_instance(&self) -> Result<Option<InstanceLock>> {
        match self {
            Opened::Sqlite(s) => s.lock_instance().map(Some),
            Opened::Postgres(_) => Ok(None),
        }
    }
}

/// Opens the database a URL names (`Backend::of_url`): a SQLite file is
/// created if missing, a PostgreSQL pool is connected. Migrations are not
/// applied here; call `Store::migrate`.
pub async fn open(url: &str) -> Result<Opened> {
    match Backend::of_url(url)? {
        Backend::Sqlite => Ok(Opened::Sqlite(SqliteStore::open(url).await?)),
        Backend::Postgres => Ok(Opened::Postgres(PgStore::connect(url).await?)),
    }
}

/// A database URL with its password replaced, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Candidate-window bounds for an item.
pub fn window_bounds(dated_at: DateTime<Utc>, window: Duration) -> (DateTime<Utc>, DateTime<Utc>) {
    let w = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::days(14));
    (dated_at - w, dated_at + w)
}

/// The most candidates one ingest looks at: exact matches (URL, content
/// hash, origin link) first, then band and key matches; within each, items
/// sharing more signals first, then the newest. The canonical items of their stories come on top of this.
pub const MAX_CANDIDATES: usize = 100;

/// The result of an item that `Store::ingest_items` could not store.
pub(crate) fn not_stored(item: &NewItem) -> StoreError {
    StoreError::NotFound(format!("item {} was not stored", item.identity))
}

/// Items written per transaction by `Store::ingest_items`. Large enough to
/// amortise the commit and the lock round, small enough that a batch holds
/// its locks briefly and that redoing a failed batch item by item is cheap.
pub const MAX_INGEST_BATCH: usize = 32;

/// A lookup key carried by more items than this inside the window is too
/// common to find candidates by (it still counts in `KeyStats`).
pub const MAX_PROBE_KEY_ITEMS: i64 = 1000;

/// Lock keys for one ingest. Two items that the candidate search could pair
/// as copies (same identity in one feed, a shared band, content hash,
/// canonical/origin URL, lead, sketch or headline key) share at least one
/// key, so taking all of them in sorted order serialises exactly the ingests
/// that could race into two stories, without deadlocks. Canonical and origin
/// URLs hash under one prefix because one item's origin is matched against
/// another's canonical.
///
/// Anchor keys (names and figures) are left out: much of a day's news shares
/// some of them, and locking them serialised nearly every pair of
/// concurrent batches (PostgreSQL ingest ran 40% faster without them in the
/// benchmark, with the same decisions). Only a translation is found by
/// anchors alone, so two translations of one story stored at the same
/// instant can land in two stories: a missed fold, never a wrong one.
pub(crate) fn fold_lock_keys(feed_id: i64, item: &NewItem) -> Vec<i64> {
    use crate::fingerprint::hash64;
    let mut keys = Vec::with_capacity(8 + item.signature.keys.len());
    keys.push(hash64(&format!("identity:{feed_id}:{}", item.identity)));
    // A zero simhash (no body) never pairs by band; see the candidate search.
    if item.signature.simhash != 0 {
        for (i, b) in item.signature.bands().iter().enumerate() {
            keys.push(hash64(&format!("band{i}:{b}")));
        }
    }
    if let Some(h) = item.signature.content_hash {
        keys.push(hash64(&format!("content:{h}")));
    }
    for u in [&item.canonical_url, &item.origin_url]
        .into_iter()
        .flatten()
    {
        keys.push(hash64(&format!("url:{u}")));
    }
    let anchor_keys: std::collections::HashSet<i64> = item
        .signature
        .anchors
        .iter()
        .flat_map(|a| a.split(' '))
        .map(crate::fingerprint::anchors::anchor_key)
        .collect();
    for k in item
        .signature
        .keys
        .iter()
        .filter(|k| !anchor_keys.contains(k))
    {
        keys.push(hash64(&format!("key:{k}")));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_sorted_unique_and_shared_by_copies_not_by_names() {
        let mut a = NewItem {
            identity: "a".into(),
            canonical_url: Some("https://x.example/1".into()),
            ..Default::default()
        };
        a.signature.simhash = 0x1111_2222_3333_4444;
        a.signature.content_hash = Some(7);
        let ka = fold_lock_keys(1, &a);
        assert!(ka.windows(2).all(|w| w[0] < w[1]));

        // Shares only the content hash.
        let mut b = NewItem {
            identity: "b".into(),
            ..Default::default()
        };
        b.signature.simhash = !a.signature.simhash;
        b.signature.content_hash = Some(7);
        let kb = fold_lock_keys(2, &b);
        assert!(ka.iter().any(|k| kb.contains(k)));

        // Cites a's canonical URL as its origin.
        let mut c = NewItem {
            identity: "c".into(),
            origin_url: Some("https://x.example/1".into()),
            ..Default::default()
        };
        c.signature.simhash = !a.signature.simhash;
        let kc = fold_lock_keys(3, &c);
        assert!(ka.iter().any(|k| kc.contains(k)));

        // Shares a band only.
        let mut d = NewItem {
            identity: "d".into(),
            ..Default::default()
        };
        d.signature.simhash = 0x7777_8888_9999_4444;
        let kd = fold_lock_keys(4, &d);
        assert!(ka.iter().any(|k| kd.contains(k)));

        // Shares nothing: different bands everywhere, no hashes or URLs.
        let mut e = NewItem {
            identity: "e".into(),
            ..Default::default()
        };
        e.signature.simhash = 0x0101_0202_0303_0505;
        let ke = fold_lock_keys(5, &e);
        assert!(!ka.iter().any(|k| ke.contains(k)));

        // Shares a lead key (a truncated copy): locked together.
        let lead = crate::fingerprint::key("lead", 42);
        let anchor = crate::fingerprint::anchors::anchor_key("zlnsk");
        let mut f = NewItem {
            identity: "f".into(),
            ..Default::default()
        };
        f.signature.simhash = 0x0f0f_0e0e_0d0d_0c0c;
        f.signature.keys = vec![lead, anchor];
        f.signature.anchors = Some("zlnsk".into());
        let mut g = e.clone();
        g.signature.keys = vec![lead];
        assert!(
            fold_lock_keys(6, &f)
                .iter()
                .any(|k| fold_lock_keys(7, &g).contains(k))
        );

        // Shares only an anchor (a name): not locked together.
        let mut h = e.clone();
        h.signature.keys = vec![anchor];
        h.signature.anchors = Some("zlnsk 2026".into());
        f.signature.keys = vec![anchor];
        let (kf, kh) = (fold_lock_keys(6, &f), fold_lock_keys(8, &h));
        assert!(!kf.iter().any(|k| kh.contains(k)));
    }

    /// A 28-day window starting mid-hour.
    fn four_weeks() -> (DateTime<Utc>, DateTime<Utc>) {
        let lo = DateTime::parse_from_rfc3339("2026-03-01T10:05:00Z")
            .unwrap()
            .to_utc();
        (lo, lo + chrono::Duration::days(28))
    }

    #[test]
    fn windows_estimated_small_are_counted_without_asking_again() {
        let c = WindowCounts::default();
        let (lo, hi) = four_weeks();
        assert!(!c.recently_small(lo, hi));
        c.note_small(lo, hi, EXACT_WINDOW_COUNT_BELOW / 2);
        assert!(!c.recently_small(lo, hi), "too close to the bound");
        c.note_small(lo, hi, 800);
        assert!(c.recently_small(lo, hi));
        assert_eq!(c.get(lo, hi), None, "an estimate is never the count");
        c.put(lo, hi, 50_000);
        assert!(!c.recently_small(lo, hi));
        assert_eq!(c.get(lo, hi), Some(50_000));
    }

    #[test]
    fn text_cache_answers_only_the_same_revision_and_stays_bounded() {
        let c = TextCache::default();
        c.put(1, 10, "first");
        assert_eq!(c.get(1, 10).as_deref(), Some("first"));
        assert_eq!(c.get(1, 11), None, "another revision is another text");
        c.put(1, 11, "second");
        assert_eq!(c.get(1, 10), None);
        assert_eq!(c.get(1, 11).as_deref(), Some("second"));
        let big = "x".repeat(TextCache::MAX_BYTES / 32);
        for id in 2..100 {
            c.put(id, 0, &big);
        }
        let map = c.inner.lock().unwrap();
        assert!(map.bytes <= TextCache::MAX_BYTES);
        assert_eq!(map.by_id.len(), map.order.len());
        assert!(!map.by_id.contains_key(&1), "the oldest left first");
        assert!(map.by_id.contains_key(&99));
    }

    #[test]
    fn window_counts_cache_only_big_windows_per_hour_bucket() {
        let c = WindowCounts::default();
        let (lo, hi) = four_weeks();
        c.put(lo, hi, EXACT_WINDOW_COUNT_BELOW - 1);
        assert_eq!(c.get(lo, hi), None, "small windows stay exact");
        c.put(lo, hi, 50_000);
        assert_eq!(c.get(lo, hi), Some(50_000));
        let m = chrono::Duration::minutes(30);
        assert_eq!(c.get(lo + m, hi + m), Some(50_000), "same hour");
        let h = chrono::Duration::hours(1);
        assert_eq!(c.get(lo + h, hi + h), None, "next hour");
    }

    #[test]
    fn backend_of_url() {
        assert_eq!(
            Backend::of_url("postgres://h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(Backend::of_url("sqlite::memory:").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of_url("feedfold.db").unwrap(), Backend::Sqlite);
        assert!(Backend::of_url("mysql://h/db").is_err());
    }
}

/// Hour-bucketed (lo, hi) -> (counted at, items).
type WindowMap = std::collections::HashMap<(i64, i64), (std::time::Instant, i64)>;

/// Windows holding fewer items than this are counted exactly every time.
pub(crate) const EXACT_WINDOW_COUNT_BELOW: i64 = 10_000;

/// `KeyStats::window_items` for big windows, reused for a minute per
/// hour-bucketed window. Counting a 28-day window of a million-item table on
/// every ingest costs tens of milliseconds, while the rarity it feeds does
/// not move measurably when the denominator is off by an hour's items out of
/// 10,000 or more. Small windows are never cached, so they stay exact.
#[derive(Clone, Default)]
pub(crate) struct WindowCounts {
    inner: std::sync::Arc<std::sync::Mutex<WindowMap>>,
}

impl WindowCounts {
    const TTL: Duration = Duration::from_secs(60);

    fn key(lo: DateTime<Utc>, hi: DateTime<Utc>) -> (i64, i64) {
        (
            lo.timestamp().div_euclid(3600),
            hi.timestamp().div_euclid(3600),
        )
    }

    pub(crate) fn get(&self, lo: DateTime<Utc>, hi: DateTime<Utc>) -> Option<i64> {
        let map = self.inner.lock().ok()?;
        map.get(&Self::key(lo, hi))
            .filter(|(at, n)| at.elapsed() < Self::TTL && *n >= EXACT_WINDOW_COUNT_BELOW)
            .map(|(_, n)| *n)
    }

    /// The window was estimated at under half the exactness bound within
    /// the last minute (see `note_small`): it needs an exact count, and
    /// asking for an estimate again would only say so again.
    pub(crate) fn recently_small(&self, lo: DateTime<Utc>, hi: DateTime<Utc>) -> bool {
        let Ok(map) = self.inner.lock() else {
            return false;
        };
        map.get(&Self::key(lo, hi))
            .is_some_and(|(at, n)| at.elapsed() < Self::TTL && *n < EXACT_WINDOW_COUNT_BELOW / 2)
    }

    /// Remembers an estimate far enough below the exactness bound that the
    /// window cannot reach the bound within the minute it is kept.
    pub(crate) fn note_small(&self, lo: DateTime<Utc>, hi: DateTime<Utc>, estimate: i64) {
        if estimate >= EXACT_WINDOW_COUNT_BELOW / 2 {
            return;
        }
        self.insert(lo, hi, estimate);
    }

    pub(crate) fn put(&self, lo: DateTime<Utc>, hi: DateTime<Utc>, n: i64) {
        if n < EXACT_WINDOW_COUNT_BELOW {
            return;
        }
        self.insert(lo, hi, n);
    }

    fn insert(&self, lo: DateTime<Utc>, hi: DateTime<Utc>, n: i64) {
        if let Ok(mut map) = self.inner.lock() {
            if map.len() >= 4096 {
                map.retain(|_, (at, _)| at.elapsed() < Self::TTL);
                if map.len() >= 4096 {
                    map.clear();
                }
            }
            map.insert(Self::key(lo, hi), (std::time::Instant::now(), n));
        }
    }
}

/// Article texts of stored items, by id and revision, for the candidate
/// search. Reading a candidate's `content_text` was most of the candidate
/// query: with 100 candidates per ingest PostgreSQL spent about 1 ms
/// planning and executing it and 5 ms more detoasting and sending the texts
/// (auto_explain, 5k items). Consecutive ingests see mostly the same
/// candidates, so only texts not seen before are read.
///
/// The revision makes a cached text safe to reuse: `revision_hash` hashes
/// the title, summary, text, link and date, and every write of an item's
/// text writes its revision in the same statement. Bounded by bytes; when
/// full, the oldest entries go first.
#[derive(Clone, Default)]
pub(crate) struct TextCache {
    inner: std::sync::Arc<std::sync::Mutex<TextMap>>,
}

#[derive(Default)]
struct TextMap {
    by_id: std::collections::HashMap<i64, (i64, std::sync::Arc<str>)>,
    order: std::collections::VecDeque<i64>,
    bytes: usize,
}

impl TextCache {
    /// About 2,000 articles of 4 KB: the candidates of a 14-day window at
    /// tens of thousands of items, a few MB of the daemon's memory.
    const MAX_BYTES: usize = 8 << 20;

    /// The text stored as `revision` of item `id`, if seen before.
    pub(crate) fn get(&self, id: i64, revision: i64) -> Option<std::sync::Arc<str>> {
        let map = self.inner.lock().ok()?;
        map.by_id
            .get(&id)
            .filter(|(rev, _)| *rev == revision)
            .map(|(_, text)| text.clone())
    }

    pub(crate) fn put(&self, id: i64, revision: i64, text: &str) {
        if text.len() > Self::MAX_BYTES / 16 {
            return;
        }
        let Ok(mut map) = self.inner.lock() else {
            return;
        };
        if let Some((_, old)) = map.by_id.remove(&id) {
            map.bytes -= old.len();
        } else {
            map.order.push_back(id);
        }
        map.bytes += text.len();
        map.by_id.insert(id, (revision, std::sync::Arc::from(text)));
        while map.bytes > Self::MAX_BYTES {
            let Some(old_id) = map.order.pop_front() else {
                break;
            };
            if let Some((_, old)) = map.by_id.remove(&old_id) {
                map.bytes -= old.len();
            }
        }
    }
}

/// Dispatches to the backend `open` picked, so callers that choose the
/// database at runtime can hold one concrete `Store` type.
macro_rules! on_backend {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Opened::Sqlite($s) => $e,
            Opened::Postgres($s) => $e,
        }
    };
}

impl Store for Opened {
    fn backend(&self) -> &'static str {
        on_backend!(self, s => s.backend())
    }

    async fn migrate(&self) -> Result<()> {
        on_backend!(self, s => s.migrate().await)
    }

    async fn ready(&self) -> Result<()> {
        on_backend!(self, s => s.ready().await)
    }

    async fn add_feed(&self, feed: &NewFeed) -> Result<Feed> {
        on_backend!(self, s => s.add_feed(feed).await)
    }

    async fn ensure_feed(&self, feed: &NewFeed) -> Result<(Feed, bool)> {
        on_backend!(self, s => s.ensure_feed(feed).await)
    }

    async fn feeds(&self) -> Result<Vec<Feed>> {
        on_backend!(self, s => s.feeds().await)
    }

    async fn feed(&self, id: i64) -> Result<Option<Feed>> {
        on_backend!(self, s => s.feed(id).await)
    }

    async fn feed_by_url(&self, url: &str) -> Result<Option<Feed>> {
        on_backend!(self, s => s.feed_by_url(url).await)
    }

    async fn remove_feed(&self, id: i64) -> Result<bool> {
        on_backend!(self, s => s.remove_feed(id).await)
    }

    async fn set_feed_enabled(&self, id: i64, enabled: bool, reason: Option<&str>) -> Result<bool> {
        on_backend!(self, s => s.set_feed_enabled(id, enabled, reason).await)
    }

    async fn claim_due_feeds(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Feed>> {
        on_backend!(self, s => s.claim_due_feeds(owner, now, limit, lease).await)
    }

    async fn release_leases(&self, owner: &str) -> Result<u64> {
        on_backend!(self, s => s.release_leases(owner).await)
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>> {
        on_backend!(self, s => s.next_due_at().await)
    }

    async fn record_poll(&self, feed_id: i64, update: &PollUpdate) -> Result<()> {
        on_backend!(self, s => s.record_poll(feed_id, update).await)
    }

    async fn ingest_items<F>(
        &self,
        feed: FeedFolding,
        items: &[NewItem],
        window: Duration,
        decide: F,
    ) -> Vec<Result<Ingested>>
    where
        F: FnMut(&NewItem, &[Candidate], &KeyStats) -> Decision + Send,
    {
        on_backend!(self, s => s.ingest_items(feed, items, window, decide).await)
    }

    async fn feed_boilerplate(&self, feed_id: i64) -> Result<Vec<i64>> {
        on_backend!(self, s => s.feed_boilerplate(feed_id).await)
    }

    async fn remember_boilerplate(&self, feed_id: i64, shapes: &[i64]) -> Result<()> {
        on_backend!(self, s => s.remember_boilerplate(feed_id, shapes).await)
    }

    async fn unfold(&self, item_id: i64) -> Result<Option<i64>> {
        on_backend!(self, s => s.unfold(item_id).await)
    }

    async fn newest_stories(
        &self,
        since: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<StorySummary>> {
        on_backend!(self, s => s.newest_stories(since, limit).await)
    }

    async fn counts(&self) -> Result<Counts> {
        on_backend!(self, s => s.counts().await)
    }

    fn pool_state(&self) -> (u32, u32) {
        on_backend!(self, s => s.pool_state())
    }

    async fn close(&self) {
        on_backend!(self, s => s.close().await)
    }
}
