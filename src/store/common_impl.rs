// The `Store` implementation shared by both backends. Not a module: sqlite.rs
// and postgres.rs each `include!` it, so every name below resolves against the
// including module, which provides:
//   type Db, ThisStore (with a `pool` field), fn ts / ts_opt (timestamp binds),
//   SqliteStore/PgStore::begin_write, take_locks, store_new_item, CLAIM_SQL, BACKEND,
//   migrator(), warn_about_maintenance(), CANDIDATE_KEY_COL.
// The SQL is written once: `$n` parameters work on both backends, and a list
// of ids is one parameter, `{in_ids(col, n)}` bound to `id_list(..)` (an
// array on PostgreSQL, a JSON array on SQLite), so every statement's text is
// fixed per backend and stays in the prepared-statement cache. Keep it
// portable.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row as _};

use crate::dedup::{Candidate, Decision, FeedPolicy, KeyStats, Signature, Subject};
use crate::store::{
    Counts, Feed, FeedFolding, Ingested, MAX_CANDIDATES, NewFeed, NewItem, PollUpdate, Result,
    Store, StoreError, StorySummary, not_stored,
};

type Conn = <Db as sqlx::Database>::Connection;
type DbRow = <Db as sqlx::Database>::Row;

const FEED_COLS: &str = "id, url, title, site_url, language, created_at, fold_policy, languages, \
    fold_translations, enabled, disabled_reason, etag, last_modified, poll_interval_secs, \
    next_poll_at, last_polled_at, last_success_at, last_status, last_http_status, \
    last_error_class, last_error, error_count, failing_since, last_published_at, lease_owner, \
    lease_expires_at";

const CAND_COLS: &str = "i.id, i.story_id, i.feed_id, i.url, i.canonical_url, i.origin_url, \
    i.title, i.summary, i.revision_hash, i.lang, i.published_at, i.fetched_at, i.dated_at, \
    i.fp_version, i.simhash, i.lead_hash, i.content_hash, i.headline_key, i.headline_hash, \
    i.text_len, i.republished, i.anchors, f.fold_policy, f.fold_translations, fo.method AS fold_method, \
    COALESCE(s.canonical_item_id = i.id, FALSE) AS is_canonical";

const CAND_FROM: &str = "FROM items i JOIN feeds f ON f.id = i.feed_id \
    JOIN stories s ON s.id = i.story_id LEFT JOIN folds fo ON fo.item_id = i.id";

fn sql(s: String) -> AssertSqlSafe<String> {
    // Only ever called with SQL assembled from constants and `in_ids`.
    AssertSqlSafe(s)
}

fn policy_of(s: &str) -> FeedPolicy {
    FeedPolicy::parse(s).unwrap_or_default()
}

fn feed_from_row(row: &DbRow) -> Result<Feed> {
    Ok(Feed {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        title: row.try_get("title")?,
        site_url: row.try_get("site_url")?,
        language: row.try_get("language")?,
        created_at: row.try_get("created_at")?,
        fold_policy: policy_of(&row.try_get::<String, _>("fold_policy")?),
        languages: row.try_get("languages")?,
        fold_translations: row.try_get("fold_translations")?,
        enabled: row.try_get("enabled")?,
        disabled_reason: row.try_get("disabled_reason")?,
        etag: row.try_get("etag")?,
        last_modified: row.try_get("last_modified")?,
        poll_interval_secs: row.try_get("poll_interval_secs")?,
        next_poll_at: row.try_get("next_poll_at")?,
        last_polled_at: row.try_get("last_polled_at")?,
        last_success_at: row.try_get("last_success_at")?,
        last_status: row.try_get("last_status")?,
        last_http_status: row.try_get("last_http_status")?,
        last_error_class: row.try_get("last_error_class")?,
        last_error: row.try_get("last_error")?,
        error_count: row.try_get("error_count")?,
        failing_since: row.try_get("failing_since")?,
        last_published_at: row.try_get("last_published_at")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
    })
}

/// A candidate without its article text, and the revision that names the
/// text (see `fill_texts`).
fn candidate_from_row(row: &DbRow) -> Result<(Candidate, i64)> {
    let candidate = Candidate {
        item_id: row.try_get("id")?,
        story_id: row.try_get("story_id")?,
        is_canonical: row.try_get("is_canonical")?,
        fold_method: row.try_get("fold_method")?,
        vetoed: false,
        item: Subject {
            feed_id: row.try_get("feed_id")?,
            feed_policy: policy_of(&row.try_get::<String, _>("fold_policy")?),
            fold_translations: row.try_get("fold_translations")?,
            url: row.try_get("url")?,
            canonical_url: row.try_get("canonical_url")?,
            origin_url: row.try_get("origin_url")?,
            title: row.try_get("title")?,
            summary: row.try_get("summary")?,
            content_text: String::new(),
            lang: row.try_get("lang")?,
            published_at: row.try_get("published_at")?,
            fetched_at: row.try_get("fetched_at")?,
            dated_at: row.try_get("dated_at")?,
            signature: Signature {
                fp_version: row.try_get("fp_version")?,
                simhash: row.try_get("simhash")?,
                lead_hash: row.try_get("lead_hash")?,
                content_hash: row.try_get("content_hash")?,
                headline_key: row.try_get("headline_key")?,
                headline_hash: row.try_get("headline_hash")?,
                text_len: row.try_get("text_len")?,
                republished: row.try_get("republished")?,
                anchors: row.try_get("anchors")?,
                keys: Vec::new(),
            },
        },
    };
    Ok((candidate, row.try_get("revision_hash")?))
}

/// Gives every candidate its article text: from `texts` when its revision
/// was seen before, else read in one query and remembered. A text written
/// between the candidate query and this read (another instance updating the
/// item) is taken as read, under the revision it was read with; an item
/// removed meanwhile is no candidate any more.
async fn fill_texts(
    conn: &mut Conn,
    texts: &crate::store::TextCache,
    cands: &mut Vec<Candidate>,
    revisions: &[i64],
) -> Result<()> {
    let mut missing: Vec<i64> = Vec::new();
    for (c, &rev) in cands.iter_mut().zip(revisions) {
        match texts.get(c.item_id, rev) {
            Some(t) => c.item.content_text = t.to_string(),
            None => missing.push(c.item_id),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let q = format!(
        "SELECT id, revision_hash, content_text FROM items WHERE {}",
        in_ids("id", 1)
    );
    let rows = sqlx::query(sql(q))
        .bind(id_list(&missing))
        .fetch_all(&mut *conn)
        .await?;
    let mut found = std::collections::HashSet::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let rev: i64 = row.try_get("revision_hash")?;
        let text: String = row.try_get("content_text")?;
        texts.put(id, rev, &text);
        found.insert(id);
        if let Some(c) = cands.iter_mut().find(|c| c.item_id == id) {
            c.item.content_text = text;
        }
    }
    cands.retain(|c| !missing.contains(&c.item_id) || found.contains(&c.item_id));
    Ok(())
}

/// The lookup keys of an item, deduplicated (item_keys has one row per key).
fn distinct_keys(keys: &[i64]) -> Vec<i64> {
    let mut k = keys.to_vec();
    k.sort_unstable();
    k.dedup();
    k
}

async fn insert_feed(conn: &mut Conn, feed: &NewFeed, now: DateTime<Utc>) -> Result<Option<Feed>> {
    let q = format!(
        "INSERT INTO feeds (url, title, fold_policy, languages, fold_translations, created_at, next_poll_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (url) DO NOTHING RETURNING {FEED_COLS}"
    );
    let row = sqlx::query(sql(q))
        .bind(&feed.url)
        .bind(&feed.title)
        .bind(feed.fold_policy.as_str())
        .bind(&feed.languages)
        .bind(feed.fold_translations)
        .bind(ts(now))
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(feed_from_row).transpose()
}

async fn load_feed_by_url(conn: &mut Conn, url: &str) -> Result<Option<Feed>> {
    let q = format!("SELECT {FEED_COLS} FROM feeds WHERE url = $1");
    let row = sqlx::query(sql(q))
        .bind(url)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(feed_from_row).transpose()
}

/// Recomputes a story after items left it: deletes it when empty, else fixes
/// its count, first publication and, if its canonical item left, picks a new
/// one (an item with text first, then the earliest, then the lowest id).
async fn repair_story(conn: &mut Conn, story_id: i64, now: DateTime<Utc>) -> Result<()> {
    let row = sqlx::query(
        "SELECT count(*) AS n, min(COALESCE(published_at, dated_at)) AS first \
         FROM items WHERE story_id = $1",
    )
    .bind(story_id)
    .fetch_one(&mut *conn)
    .await?;
    let n: i64 = row.try_get("n")?;
    if n == 0 {
        sqlx::query("DELETE FROM folds WHERE story_id = $1")
            .bind(story_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM stories WHERE id = $1")
            .bind(story_id)
            .execute(&mut *conn)
            .await?;
        return Ok(());
    }
    let first: Option<DateTime<Utc>> = row.try_get("first")?;
    let canonical: Option<i64> = sqlx::query(
        "SELECT s.canonical_item_id FROM stories s JOIN items i \
         ON i.id = s.canonical_item_id AND i.story_id = s.id WHERE s.id = $1",
    )
    .bind(story_id)
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| r.try_get("canonical_item_id"))
    .transpose()?;
    let canonical = match canonical {
        Some(c) => c,
        None => sqlx::query(
            "SELECT id FROM items WHERE story_id = $1 \
             ORDER BY CASE WHEN text_len > 0 THEN 0 ELSE 1 END, dated_at, id LIMIT 1",
        )
        .bind(story_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("id")?,
    };
    sqlx::query(
        "UPDATE stories SET item_count = $2, first_published_at = $3, canonical_item_id = $4, \
         updated_at = $5 WHERE id = $1",
    )
    .bind(story_id)
    .bind(i32::try_from(n).unwrap_or(i32::MAX))
    .bind(ts_opt(first))
    .bind(canonical)
    .bind(ts(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_keys(conn: &mut Conn, item_id: i64, item: &NewItem) -> Result<()> {
    let keys = distinct_keys(&item.signature.keys);
    if keys.is_empty() {
        return Ok(());
    }
    // One statement for all keys: ($1, item, dated), ($2, item, dated), ...
    let n = keys.len();
    let values = (1..=n)
        .map(|i| format!("(${i}, ${}, ${})", n + 1, n + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let mut q = sqlx::query(sql(format!(
        "INSERT INTO item_keys (key, item_id, dated_at) VALUES {values}"
    )));
    for k in keys {
        q = q.bind(k);
    }
    q.bind(item_id)
        .bind(ts(item.dated_at))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Makes `item_id` the story's canonical item. Its own statement, run after
/// the fold's writes, so that it sees an unfold committed meanwhile: a
/// promoted item unfolded meanwhile is no longer the story's to promote.
async fn promote(conn: &mut Conn, story_id: i64, item_id: i64) -> Result<()> {
    sqlx::query(
        "UPDATE stories SET canonical_item_id = $2 WHERE id = $1 \
         AND EXISTS (SELECT 1 FROM items WHERE id = $2 AND story_id = $1)",
    )
    .bind(story_id)
    .bind(item_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

type ItemQuery<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>;

/// Columns of `items` that `bind_item` binds, in its order.
const ITEM_COLS: &str = "guid, url, canonical_url, origin_url, title, summary, content_text, \
    author, lang, published_at, updated_at, fetched_at, dated_at, fp_version, simhash, band0, \
    band1, band2, band3, lead_hash, content_hash, headline_key, headline_hash, text_len, anchors, \
    revision_hash, republished";

/// `$first, $first+1, …`: one placeholder per `ITEM_COLS` column.
fn item_placeholders(first: usize) -> String {
    (first..first + ITEM_COLS.split(", ").count())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Binds an item's stored fields, from `guid` to `republished` in table
/// order, after whatever the statement bound first: INSERT and UPDATE list
/// the same columns in the same order.
fn bind_item<'q>(q: ItemQuery<'q>, item: &'q NewItem) -> ItemQuery<'q> {
    let sig = &item.signature;
    let bands = sig.bands();
    q.bind(&item.guid)
        .bind(&item.url)
        .bind(&item.canonical_url)
        .bind(&item.origin_url)
        .bind(&item.title)
        .bind(&item.summary)
        .bind(&item.content_text)
        .bind(&item.author)
        .bind(&item.lang)
        .bind(ts_opt(item.published_at))
        .bind(ts_opt(item.updated_at))
        .bind(ts(item.fetched_at))
        .bind(ts(item.dated_at))
        .bind(sig.fp_version)
        .bind(sig.simhash)
        .bind(bands[0])
        .bind(bands[1])
        .bind(bands[2])
        .bind(bands[3])
        .bind(sig.lead_hash)
        .bind(sig.content_hash)
        .bind(&sig.headline_key)
        .bind(sig.headline_hash)
        .bind(sig.text_len)
        .bind(&sig.anchors)
        .bind(item.revision_hash)
        .bind(sig.republished)
}

/// Candidate search and key statistics for a new item (see `Store::ingest_item`).
async fn find_candidates(
    conn: &mut Conn,
    window_counts: &crate::store::WindowCounts,
    texts: &crate::store::TextCache,
    item: &NewItem,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
) -> Result<(Vec<Candidate>, KeyStats)> {
    let keys = distinct_keys(&item.signature.keys);
    let mut stats = KeyStats::default();
    // The window's item count: remembered when big, else estimated (cheap
    // on PostgreSQL) and, below the exactness bound, counted. A window
    // estimated well below the bound within the last minute is counted
    // without asking again: the estimate was a round trip and a plan per
    // ingest, and its answer could not have crossed the bound since.
    let known = match window_counts.get(lo, hi) {
        Some(n) => Some(n),
        None if window_counts.recently_small(lo, hi) => None,
        None => match estimate_window_items(conn, lo, hi).await? {
            Some(n) if n >= crate::store::EXACT_WINDOW_COUNT_BELOW => {
                window_counts.put(lo, hi, n);
                Some(n)
            }
            Some(n) => {
                window_counts.note_small(lo, hi, n);
                None
            }
            None => None,
        },
    };
    // The exact count rides with the key counts (a row without a key), to
    // save its round trip.
    let count_sql = "SELECT count(*) AS n FROM items WHERE dated_at BETWEEN $1 AND $2";
    let mut window_items = known;
    if !keys.is_empty() {
        let mut q = format!(
            "SELECT key, count(*) AS n FROM item_keys WHERE {} \
             AND dated_at BETWEEN $1 AND $2 GROUP BY key",
            in_ids("key", 3)
        );
        if known.is_none() {
            q = format!("{q} UNION ALL SELECT NULL AS key, n FROM ({count_sql}) w");
        }
        let query = sqlx::query(sql(q))
            .bind(ts(lo))
            .bind(ts(hi))
            .bind(id_list(&keys));
        for row in query.fetch_all(&mut *conn).await? {
            let n: i64 = row.try_get("n")?;
            match row.try_get::<Option<i64>, _>("key")? {
                Some(k) => {
                    stats.counts.insert(k, n);
                }
                None => window_items = Some(n),
            }
        }
    }
    stats.window_items = match window_items {
        Some(n) => n,
        None => sqlx::query(count_sql)
            .bind(ts(lo))
            .bind(ts(hi))
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?,
    };
    if known.is_none() {
        window_counts.put(lo, hi, stats.window_items);
    }
    // Keys shared by very many items in the window (a common name, a round
    // figure) are no evidence of a copy, and probing them would drag in
    // thousands of rows per ingest: only rarer keys find candidates. Keys
    // no stored item carries need no probe at all.
    let probe: Vec<i64> = keys
        .iter()
        .copied()
        .filter(|k| {
            stats
                .counts
                .get(k)
                .is_some_and(|&n| n <= crate::store::MAX_PROBE_KEY_ITEMS)
        })
        .collect();
    // A zero simhash means no body features: its bands match nothing
    // (stored bands are 0..=65535, never -1), and stored zero simhashes are
    // excluded, so empty bodies do not all pair up with each other.
    let bands = if item.signature.simhash == 0 {
        [-1; 4]
    } else {
        item.signature.bands()
    };
    let w = "dated_at BETWEEN $8 AND $9";
    // Tier 0: exact signals (URL, content hash, origin link); tier 1: bands
    // and lookup keys. The cap keeps exact matches however many loose ones
    // there are; inside a tier, items sharing more signals come first (a
    // real copy shares bands, lead and sketch keys; noise shares one common
    // anchor), then the newest. The cap applies to the ids, before the wide
    // rows (article text) are read: sorting full rows of every match cost
    // SQLite 3.7 ms per ingest.
    let mut q = format!(
        "SELECT {CAND_COLS} FROM (SELECT id, min(tier) AS tier, count(*) AS hits, \
         max(dated_at) AS dated_at FROM ( \
         SELECT id, 0 AS tier, dated_at FROM items WHERE canonical_url = $1 AND {w} \
         UNION ALL SELECT id, 0, dated_at FROM items WHERE content_hash = $2 AND {w} \
         UNION ALL SELECT id, 0, dated_at FROM items WHERE canonical_url = $3 AND {w} \
         UNION ALL SELECT id, 0, dated_at FROM items WHERE origin_url = $1 AND {w} \
         UNION ALL SELECT id, 1, dated_at FROM items WHERE band0 = $4 AND simhash <> 0 AND {w} \
         UNION ALL SELECT id, 1, dated_at FROM items WHERE band1 = $5 AND simhash <> 0 AND {w} \
         UNION ALL SELECT id, 1, dated_at FROM items WHERE band2 = $6 AND simhash <> 0 AND {w} \
         UNION ALL SELECT id, 1, dated_at FROM items WHERE band3 = $7 AND simhash <> 0 AND {w}"
    );
    if !probe.is_empty() {
        q.push_str(&format!(
            " UNION ALL SELECT item_id, 1, dated_at FROM item_keys WHERE {} AND {w}",
            in_ids("key", 10)
        ));
    }
    q.push_str(&format!(
        ") u GROUP BY id ORDER BY tier, hits DESC, dated_at DESC, id DESC \
         LIMIT {MAX_CANDIDATES}) m JOIN items i ON i.id = m.id JOIN feeds f ON f.id = i.feed_id \
         JOIN stories s ON s.id = i.story_id LEFT JOIN folds fo ON fo.item_id = i.id \
         ORDER BY m.tier, m.hits DESC, m.dated_at DESC, i.id DESC"
    ));
    let mut query = sqlx::query(sql(q))
        .bind(&item.canonical_url)
        .bind(item.signature.content_hash)
        .bind(&item.origin_url)
        .bind(bands[0])
        .bind(bands[1])
        .bind(bands[2])
        .bind(bands[3])
        .bind(ts(lo))
        .bind(ts(hi));
    if !probe.is_empty() {
        query = query.bind(id_list(&probe));
    }
    let (mut cands, mut revisions): (Vec<Candidate>, Vec<i64>) = query
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(candidate_from_row)
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();

    // The canonical item of every story touched, even outside the window.
    let mut stories: Vec<i64> = cands
        .iter()
        .filter(|c| {
            !cands
                .iter()
                .any(|o| o.story_id == c.story_id && o.is_canonical)
        })
        .map(|c| c.story_id)
        .collect();
    stories.sort_unstable();
    stories.dedup();
    if !stories.is_empty() {
        let q = format!(
            "SELECT {CAND_COLS} {CAND_FROM} WHERE i.id IN \
             (SELECT canonical_item_id FROM stories WHERE {})",
            in_ids("id", 1)
        );
        let query = sqlx::query(sql(q)).bind(id_list(&stories));
        for row in query.fetch_all(&mut *conn).await? {
            let (c, rev) = candidate_from_row(&row)?;
            if !cands.iter().any(|o| o.item_id == c.item_id) {
                cands.push(c);
                revisions.push(rev);
            }
        }
    }

    fill_texts(conn, texts, &mut cands, &revisions).await?;

    // Lookup keys of the candidates, only those the item carries too: the
    // decision asks which keys a candidate shares with the item, never for
    // the rest, and all of them would be ~50 rows per candidate. The lookup
    // goes by candidate (see `CANDIDATE_KEY_COL`).
    if !cands.is_empty() && !keys.is_empty() {
        let q = format!(
            "SELECT item_id, key FROM item_keys WHERE {} AND {}",
            in_ids("item_id", 1),
            in_ids(CANDIDATE_KEY_COL, 2)
        );
        let ids: Vec<i64> = cands.iter().map(|c| c.item_id).collect();
        let query = sqlx::query(sql(q)).bind(id_list(&ids)).bind(id_list(&keys));
        let mut by_item: std::collections::HashMap<i64, Vec<i64>> = Default::default();
        for row in query.fetch_all(&mut *conn).await? {
            by_item
                .entry(row.try_get("item_id")?)
                .or_default()
                .push(row.try_get("key")?);
        }
        for c in &mut cands {
            if let Some(mut k) = by_item.remove(&c.item_id) {
                k.sort_unstable();
                c.item.signature.keys = k;
            }
        }
    }

    Ok((cands, stats))
}

/// Stored (id, revision) of the items with these identities this feed
/// already has.
async fn known_revisions<'e, E>(
    exec: E,
    feed_id: i64,
    identities: &[&str],
) -> Result<std::collections::HashMap<String, (i64, i64)>>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    let q = format!(
        "SELECT identity, id, revision_hash FROM items WHERE feed_id = $1 AND {}",
        in_texts("identity", 2)
    );
    let rows = sqlx::query(sql(q))
        .bind(feed_id)
        .bind(text_list(identities))
        .fetch_all(exec)
        .await?;
    let mut known = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        known.insert(
            row.try_get("identity")?,
            (row.try_get("id")?, row.try_get("revision_hash")?),
        );
    }
    Ok(known)
}

/// Stores one item inside an open write transaction that already holds the
/// item's fold locks (see `Store::ingest_items`). `existing` is the stored
/// (id, revision) of the item's identity, read under those locks.
#[allow(clippy::too_many_arguments)]
async fn ingest_locked<F>(
    conn: &mut Conn,
    store: &ThisStore,
    feed: FeedFolding,
    item: &NewItem,
    existing: Option<(i64, i64)>,
    window: std::time::Duration,
    decide: &mut F,
    now: DateTime<Utc>,
) -> Result<Ingested>
where
    F: FnMut(&NewItem, &[Candidate], &KeyStats) -> Decision,
{
    if let Some((item_id, rev)) = existing {
        if rev == item.revision_hash {
            return Ok(Ingested::Unchanged { item_id });
        }
        let update = format!(
            "UPDATE items SET ({ITEM_COLS}) = ({}) WHERE id = $1",
            item_placeholders(2)
        );
        bind_item(sqlx::query(sql(update)).bind(item_id), item)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM item_keys WHERE item_id = $1")
            .bind(item_id)
            .execute(&mut *conn)
            .await?;
        insert_keys(conn, item_id, item).await?;
        store
            .texts
            .put(item_id, item.revision_hash, &item.content_text);
        return Ok(Ingested::Updated { item_id });
    }

    let (lo, hi) = crate::store::window_bounds(item.dated_at, window);
    let (candidates, stats) =
        find_candidates(conn, &store.window_counts, &store.texts, item, lo, hi).await?;
    let decision = decide(item, &candidates, &stats);
    let fold = match decision {
        Decision::NewStory => None,
        Decision::Fold(f) => Some(f),
    };
    let (item_id, story_id) = store_new_item(conn, feed, item, fold.as_ref(), now).await?;
    // The next items of a poll are mostly compared with this one. Should the
    // transaction roll back, the entry stays right: the revision hashes the text.
    store
        .texts
        .put(item_id, item.revision_hash, &item.content_text);
    Ok(Ingested::New {
        item_id,
        story_id,
        fold,
    })
}

impl ThisStore {
    /// Stores `items` in one write transaction holding all their fold locks.
    /// Any item's error fails the whole transaction (no savepoints: each one
    /// makes SQLite's FTS5 flush its pending index, which cost more than the
    /// batching saved); the caller retries the items alone.
    async fn write_batch<F>(
        &self,
        feed: FeedFolding,
        items: &[&NewItem],
        window: std::time::Duration,
        decide: &mut F,
    ) -> Result<Vec<Ingested>>
    where
        F: FnMut(&NewItem, &[Candidate], &KeyStats) -> Decision + Send,
    {
        let mut lock_keys: Vec<i64> = items
            .iter()
            .flat_map(|item| crate::store::fold_lock_keys(feed.feed_id, item))
            .collect();
        lock_keys.sort_unstable();
        lock_keys.dedup();
        let now = Utc::now();
        let (_gate, mut tx) = self.begin_write().await?;
        take_locks(&mut tx, &lock_keys).await?;
        // One read for the whole batch instead of one per item. An identity
        // twice in the batch sees its first copy through `stored`, as the
        // per-item read did.
        let identities: Vec<&str> = items.iter().map(|i| i.identity.as_str()).collect();
        let mut stored = known_revisions(&mut *tx, feed.feed_id, &identities).await?;
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            let existing = stored.get(&item.identity).copied();
            let done =
                ingest_locked(&mut tx, self, feed, item, existing, window, decide, now).await?;
            match done {
                Ingested::New { item_id, .. } | Ingested::Updated { item_id } => {
                    stored.insert(item.identity.clone(), (item_id, item.revision_hash));
                }
                Ingested::Unchanged { .. } => {}
            }
            results.push(done);
        }
        tx.commit().await?;
        Ok(results)
    }
}

impl Store for ThisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn migrate(&self) -> Result<()> {
        migrator().run(&self.pool).await?;
        warn_about_maintenance(&self.pool).await;
        Ok(())
    }

    async fn ready(&self) -> Result<()> {
        let applied: Vec<i64> = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get("version"))
            .collect::<std::result::Result<_, _>>()?;
        for m in migrator().iter() {
            if !applied.contains(&m.version) {
                return Err(StoreError::NotFound(format!(
                    "migration {} ({}) is not applied; run `feedfold migrate`",
                    m.version, m.description
                )));
            }
        }
        Ok(())
    }

    async fn add_feed(&self, feed: &NewFeed) -> Result<Feed> {
        let mut conn = self.pool.acquire().await?;
        match insert_feed(&mut conn, feed, Utc::now()).await? {
            Some(f) => Ok(f),
            None => Err(StoreError::FeedExists(feed.url.clone())),
        }
    }

    async fn ensure_feed(&self, feed: &NewFeed) -> Result<(Feed, bool)> {
        let mut conn = self.pool.acquire().await?;
        if let Some(f) = insert_feed(&mut conn, feed, Utc::now()).await? {
            return Ok((f, true));
        }
        match load_feed_by_url(&mut conn, &feed.url).await? {
            Some(f) => Ok((f, false)),
            // Removed between the two statements.
            None => Err(StoreError::NotFound(feed.url.clone())),
        }
    }

    async fn feeds(&self) -> Result<Vec<Feed>> {
        let q = format!("SELECT {FEED_COLS} FROM feeds ORDER BY id");
        sqlx::query(sql(q))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(feed_from_row)
            .collect()
    }

    async fn feed(&self, id: i64) -> Result<Option<Feed>> {
        let q = format!("SELECT {FEED_COLS} FROM feeds WHERE id = $1");
        let row = sqlx::query(sql(q))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(feed_from_row).transpose()
    }

    async fn feed_by_url(&self, url: &str) -> Result<Option<Feed>> {
        let mut conn = self.pool.acquire().await?;
        load_feed_by_url(&mut conn, url).await
    }

    async fn remove_feed(&self, id: i64) -> Result<bool> {
        let now = Utc::now();
        let (_gate, mut tx) = self.begin_write().await?;
        let stories: Vec<i64> =
            sqlx::query("SELECT DISTINCT story_id FROM items WHERE feed_id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get("story_id"))
                .collect::<std::result::Result<_, _>>()?;
        lock_stories(&mut tx, &stories).await?;
        sqlx::query("DELETE FROM items WHERE feed_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("DELETE FROM feeds WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        for s in stories {
            repair_story(&mut tx, s, now).await?;
        }
        tx.commit().await?;
        Ok(gone)
    }

    async fn set_feed_enabled(&self, id: i64, enabled: bool, reason: Option<&str>) -> Result<bool> {
        let now = Utc::now();
        let res = if enabled {
            sqlx::query(
                "UPDATE feeds SET enabled = TRUE, disabled_reason = NULL, disabled_at = NULL, \
                 error_count = 0, failing_since = NULL, next_poll_at = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(ts(now))
            .execute(&self.pool)
            .await?
        } else {
            sqlx::query(
                "UPDATE feeds SET enabled = FALSE, disabled_reason = $2, disabled_at = $3 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(reason)
            .bind(ts(now))
            .execute(&self.pool)
            .await?
        };
        Ok(res.rows_affected() > 0)
    }

    async fn claim_due_feeds(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: i64,
        lease: std::time::Duration,
    ) -> Result<Vec<Feed>> {
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(1));
        let (_gate, mut tx) = self.begin_write().await?;
        let q = format!("{CLAIM_SQL} RETURNING {FEED_COLS}");
        let mut feeds = sqlx::query(sql(q))
            .bind(owner)
            .bind(ts(until))
            .bind(ts(now))
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(feed_from_row)
            .collect::<Result<Vec<_>>>()?;
        tx.commit().await?;
        feeds.sort_by(|a, b| a.next_poll_at.cmp(&b.next_poll_at).then(a.id.cmp(&b.id)));
        Ok(feeds)
    }

    async fn release_leases(&self, owner: &str) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE feeds SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = $1",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// A leased feed counts from when its lease ends, so that a scheduler
    /// does not spin on feeds another instance is polling.
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(sqlx::query(
            "SELECT min(CASE WHEN lease_expires_at IS NOT NULL AND lease_expires_at > next_poll_at \
             THEN lease_expires_at ELSE next_poll_at END) AS due FROM feeds WHERE enabled",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get("due")?)
    }

    /// `title`, `site_url`, `language`, `poll_interval_secs` and
    /// `last_published_at` replace the stored value only when given.
    async fn record_poll(&self, feed_id: i64, u: &PollUpdate) -> Result<()> {
        let now = Utc::now();
        let (_gate, mut tx) = self.begin_write().await?;
        let old_url: Option<String> = sqlx::query("SELECT url FROM feeds WHERE id = $1")
            .bind(feed_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("url"))
            .transpose()?;
        let Some(old_url) = old_url else {
            return Err(StoreError::NotFound(format!("feed {feed_id}")));
        };
        let mut error = u.error.clone();
        if let Some(new_url) = u.moved_to.as_deref().filter(|n| *n != old_url) {
            let taken: Option<i64> = sqlx::query("SELECT id FROM feeds WHERE url = $1")
                .bind(new_url)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("id"))
                .transpose()?;
            match taken {
                Some(other) => {
                    let msg = format!(
                        "feed moved to {new_url}, which is already feed {other}; kept the old URL"
                    );
                    error = Some(match error {
                        Some(e) => format!("{e}; {msg}"),
                        None => msg,
                    });
                }
                None => {
                    sqlx::query("UPDATE feeds SET url = $2 WHERE id = $1")
                        .bind(feed_id)
                        .bind(new_url)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO feed_url_history (feed_id, old_url, new_url, changed_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(feed_id)
                    .bind(&old_url)
                    .bind(new_url)
                    .bind(ts(now))
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        let (set_validators, etag, last_modified) = match &u.validators {
            Some((e, l)) => (true, e.clone(), l.clone()),
            None => (false, None, None),
        };
        sqlx::query(
            "UPDATE feeds SET \
               last_polled_at = $2, last_status = $3, last_http_status = $4, \
               last_error_class = $5, last_error = $6, \
               last_success_at = CASE WHEN $7 THEN $2 ELSE last_success_at END, \
               error_count = CASE WHEN $7 THEN 0 ELSE error_count + 1 END, \
               failing_since = CASE WHEN $7 THEN NULL ELSE COALESCE(failing_since, $2) END, \
               etag = CASE WHEN $8 THEN $9 ELSE etag END, \
               last_modified = CASE WHEN $8 THEN $10 ELSE last_modified END, \
               title = COALESCE($11, title), site_url = COALESCE($12, site_url), \
               language = COALESCE($13, language), next_poll_at = $14, \
               poll_interval_secs = COALESCE($15, poll_interval_secs), \
               last_published_at = COALESCE($16, last_published_at), \
               enabled = CASE WHEN $17 THEN FALSE ELSE enabled END, \
               disabled_reason = CASE WHEN $17 THEN $18 ELSE disabled_reason END, \
               disabled_at = CASE WHEN $17 THEN $19 ELSE disabled_at END, \
               lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $1",
        )
        .bind(feed_id)
        .bind(ts(u.started_at))
        .bind(&u.outcome)
        .bind(u.http_status)
        .bind(&u.error_class)
        .bind(&error)
        .bind(u.success)
        .bind(set_validators)
        .bind(etag)
        .bind(last_modified)
        .bind(&u.title)
        .bind(&u.site_url)
        .bind(&u.language)
        .bind(ts(u.next_poll_at))
        .bind(u.poll_interval_secs)
        .bind(ts_opt(u.last_published_at))
        .bind(u.disable.is_some())
        .bind(&u.disable)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO polls (feed_id, started_at, duration_ms, outcome, http_status, \
             error_class, error, bytes, items_seen, items_new, items_updated, items_folded) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(feed_id)
        .bind(ts(u.started_at))
        .bind(i32::try_from(u.duration_ms).unwrap_or(i32::MAX))
        .bind(&u.outcome)
        .bind(u.http_status)
        .bind(&u.error_class)
        .bind(&error)
        .bind(u.bytes)
        .bind(u.items_seen)
        .bind(u.items_new)
        .bind(u.items_updated)
        .bind(u.items_folded)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn ingest_items<F>(
        &self,
        feed: FeedFolding,
        items: &[NewItem],
        window: std::time::Duration,
        mut decide: F,
    ) -> Vec<Result<Ingested>>
    where
        F: FnMut(&NewItem, &[Candidate], &KeyStats) -> Decision + Send,
    {
        let mut out: Vec<Result<Ingested>> = items.iter().map(|i| Err(not_stored(i))).collect();
        // Re-polls mostly see known, unchanged items: answer those with one
        // read, without a write transaction or locks. Items keep their
        // identity until their feed is removed, so the answer cannot go stale
        // in a way that matters. If the read fails, the write path decides.
        let mut pending = Vec::with_capacity(items.len());
        let identities: Vec<&str> = items.iter().map(|i| i.identity.as_str()).collect();
        let known = known_revisions(&self.pool, feed.feed_id, &identities).await;
        for (i, item) in items.iter().enumerate() {
            match known.as_ref().ok().and_then(|k| k.get(&item.identity)) {
                Some(&(item_id, rev)) if rev == item.revision_hash => {
                    out[i] = Ok(Ingested::Unchanged { item_id });
                }
                _ => pending.push(i),
            }
        }
        for chunk in pending.chunks(crate::store::MAX_INGEST_BATCH) {
            let batch: Vec<&NewItem> = chunk.iter().map(|&i| &items[i]).collect();
            match self.write_batch(feed, &batch, window, &mut decide).await {
                Ok(done) => {
                    for (&i, r) in chunk.iter().zip(done) {
                        out[i] = Ok(r);
                    }
                }
                // An item's error, or the transaction's (a deadlock between
                // two batches, a lost connection): every item is tried
                // alone, so one item's error costs that item only.
                Err(_) if chunk.len() > 1 => {
                    for &i in chunk {
                        out[i] = self
                            .write_batch(feed, &[&items[i]], window, &mut decide)
                            .await
                            .and_then(|mut one| one.pop().ok_or_else(|| not_stored(&items[i])));
                    }
                }
                Err(e) => out[chunk[0]] = Err(e),
            }
        }
        out
    }

    async fn feed_boilerplate(&self, feed_id: i64) -> Result<Vec<i64>> {
        sqlx::query(
            "SELECT shape_hash FROM feed_boilerplate WHERE feed_id = $1 ORDER BY shape_hash",
        )
        .bind(feed_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("shape_hash")?))
        .collect()
    }

    async fn remember_boilerplate(&self, feed_id: i64, shapes: &[i64]) -> Result<()> {
        if shapes.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let (_gate, mut tx) = self.begin_write().await?;
        for s in distinct_keys(shapes) {
            sqlx::query(
                "INSERT INTO feed_boilerplate (feed_id, shape_hash, seen_count, last_seen) \
                 VALUES ($1, $2, 1, $3) ON CONFLICT (feed_id, shape_hash) DO UPDATE SET \
                 seen_count = feed_boilerplate.seen_count + 1, last_seen = excluded.last_seen",
            )
            .bind(feed_id)
            .bind(s)
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Also splits off a story's founding item when the story has other
    /// items; an item alone in its story has nothing to unfold (None).
    async fn unfold(&self, item_id: i64) -> Result<Option<i64>> {
        let now = Utc::now();
        let (_gate, mut tx) = self.begin_write().await?;
        let story: Option<i64> = sqlx::query("SELECT story_id FROM items WHERE id = $1")
            .bind(item_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("story_id"))
            .transpose()?;
        if let Some(story) = story {
            lock_stories(&mut tx, &[story]).await?;
        }
        let row = sqlx::query(
            "SELECT i.story_id, COALESCE(i.published_at, i.dated_at) AS first, \
             (SELECT count(*) FROM items o WHERE o.story_id = i.story_id) AS n, \
             (SELECT count(*) FROM folds fo WHERE fo.item_id = i.id) AS folded \
             FROM items i WHERE i.id = $1",
        )
        .bind(item_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("item {item_id}")));
        };
        let old_story: i64 = row.try_get("story_id")?;
        let first: DateTime<Utc> = row.try_get("first")?;
        let n: i64 = row.try_get("n")?;
        let folded: i64 = row.try_get("folded")?;
        if folded == 0 && n <= 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let new_story: i64 = sqlx::query(
            "INSERT INTO stories (canonical_item_id, first_published_at, item_count, created_at, \
             updated_at) VALUES ($1, $2, 1, $3, $3) RETURNING id",
        )
        .bind(item_id)
        .bind(ts(first))
        .bind(ts(now))
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        sqlx::query("UPDATE items SET story_id = $2 WHERE id = $1")
            .bind(item_id)
            .bind(new_story)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM folds WHERE item_id = $1")
            .bind(item_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO fold_vetoes (item_id, story_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (item_id, story_id) DO NOTHING",
        )
        .bind(item_id)
        .bind(old_story)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        repair_story(&mut tx, old_story, now).await?;
        tx.commit().await?;
        Ok(Some(new_story))
    }

    async fn newest_stories(
        &self,
        since: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<StorySummary>> {
        let base = "SELECT s.id, s.first_published_at, s.item_count, i.title, i.url \
                    FROM stories s LEFT JOIN items i ON i.id = s.canonical_item_id";
        let order = "ORDER BY s.first_published_at DESC NULLS LAST, s.id DESC";
        let rows = match since {
            Some(t) => {
                sqlx::query(sql(format!(
                    "{base} WHERE s.first_published_at >= $1 {order} LIMIT $2"
                )))
                .bind(ts(t))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sql(format!("{base} {order} LIMIT $1")))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(StorySummary {
                story_id: r.try_get("id")?,
                title: r.try_get("title")?,
                url: r.try_get("url")?,
                first_published_at: r.try_get("first_published_at")?,
                copies: i64::from(r.try_get::<i32, _>("item_count")?),
                feeds: Vec::new(),
            });
        }
        if !out.is_empty() {
            let q = format!(
                "SELECT DISTINCT i.story_id, COALESCE(f.title, f.url) AS name FROM items i \
                 JOIN feeds f ON f.id = i.feed_id WHERE {} ORDER BY 1, 2",
                in_ids("i.story_id", 1)
            );
            let ids: Vec<i64> = out.iter().map(|s| s.story_id).collect();
            let query = sqlx::query(sql(q)).bind(id_list(&ids));
            for r in query.fetch_all(&self.pool).await? {
                let sid: i64 = r.try_get("story_id")?;
                let name: String = r.try_get("name")?;
                if let Some(s) = out.iter_mut().find(|s| s.story_id == sid) {
                    s.feeds.push(name);
                }
            }
        }
        Ok(out)
    }

    async fn counts(&self) -> Result<Counts> {
        let r = sqlx::query(
            "SELECT (SELECT count(*) FROM feeds) AS feeds, \
             (SELECT count(*) FROM feeds WHERE enabled AND error_count > 0) AS failing, \
             (SELECT count(*) FROM feeds WHERE NOT enabled) AS disabled, \
             (SELECT count(*) FROM items) AS items, \
             (SELECT count(*) FROM stories) AS stories, \
             (SELECT count(*) FROM folds) AS folds",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Counts {
            feeds: r.try_get("feeds")?,
            feeds_failing: r.try_get("failing")?,
            feeds_disabled: r.try_get("disabled")?,
            items: r.try_get("items")?,
            stories: r.try_get("stories")?,
            folds: r.try_get("folds")?,
        })
    }

    fn pool_state(&self) -> (u32, u32) {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        (self.pool.size().saturating_sub(idle), idle)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod migration_files {
    /// Every file in `migrations/<backend>` is embedded, in order: a file
    /// added without its entry in `migrator()` would never be applied.
    #[test]
    fn every_migration_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(super::BACKEND);
        let mut files: Vec<(i64, String)> = std::fs::read_dir(&dir)
            .expect("migrations directory")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                let version = name[..4].parse().expect("NNNN_ prefix");
                (version, std::fs::read_to_string(&p).expect("readable"))
            })
            .collect();
        files.sort();
        let embedded: Vec<(i64, String)> = super::migrator()
            .iter()
            .map(|m| (m.version, m.sql.as_ref().to_string()))
            .collect();
        assert_eq!(embedded, files, "{}", dir.display());
    }
}
