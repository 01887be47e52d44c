//! Integration tests: the `Store` contract, run on SQLite always and on
//! PostgreSQL when TEST_DATABASE_URL is set (a fresh database per test).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use feedfold::dedup::{Candidate, Decision, FeedPolicy, Fold, FoldMethod, KeyStats};
use feedfold::fingerprint::hash64;
use feedfold::store::{
    FeedFolding, Ingested, NewFeed, NewItem, Opened, PgStore, PollUpdate, SqliteStore, Store,
    StoreError,
};

use crate::support::{at, fresh_sqlite, item, with_pg};

const WINDOW: Duration = Duration::from_secs(14 * 24 * 3600);

/// Ad-hoc SQL for assertions the trait does not expose (audit tables).
trait Raw: Store {
    fn scalar(&self, sql: &'static str) -> impl Future<Output = i64> + Send;
}

impl Raw for SqliteStore {
    async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.pool())
            .await
            .expect(sql)
    }
}

impl Raw for PgStore {
    async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.pool())
            .await
            .expect(sql)
    }
}

impl Raw for Opened {
    async fn scalar(&self, sql: &'static str) -> i64 {
        match self {
            Opened::Sqlite(s) => s.scalar(sql).await,
            Opened::Postgres(s) => s.scalar(sql).await,
        }
    }
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    crate::support::with_sqlite(super::$case).await;
                }
            )*
        }
        /// The runtime-dispatching `Opened` store delegates every call.
        mod opened {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    crate::support::with_sqlite(|s| super::$case(feedfold::store::Opened::Sqlite(s))).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    crate::support::with_pg(super::$case).await;
                }
            )*
        }
    };
}

contract!(
    migrate_is_idempotent_and_ready,
    feeds_add_ensure_list_enable_remove,
    record_poll_tracks_success_failure_disable_and_moves,
    claims_lease_feeds_until_expiry,
    ingest_new_unchanged_updated,
    fold_updates_story_and_canonical,
    candidates_come_from_every_signal_within_the_window,
    story_canonical_is_a_candidate_even_outside_the_window,
    key_stats_count_keys_in_the_window,
    unfold_splits_and_vetoes,
    remove_feed_repairs_stories,
    concurrent_copies_fold_into_one_story,
    boilerplate_is_remembered_per_feed,
    empty_bodies_do_not_pair_by_band,
    exact_matches_survive_the_candidate_cap,
    concurrent_claims_never_share_a_feed,
    a_batch_sees_its_own_items_and_a_failure_costs_one_item,
    candidates_carry_the_text_of_their_stored_revision,
    a_batch_sees_an_identity_it_stored_earlier_in_the_batch,
);

fn folding(feed_id: i64) -> FeedFolding {
    FeedFolding {
        feed_id,
        policy: FeedPolicy::Normal,
        fold_translations: true,
    }
}

fn new_feed(url: &str, title: &str) -> NewFeed {
    NewFeed {
        url: url.to_string(),
        title: Some(title.to_string()),
        ..Default::default()
    }
}

async fn add<S: Store>(s: &S, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let f = s
            .add_feed(&new_feed(
                &format!("https://feed{i}.example/rss"),
                &format!("Feed {i}"),
            ))
            .await
            .expect("add feed");
        ids.push(f.id);
    }
    ids
}

fn new_story(_: &[Candidate], _: &KeyStats) -> Decision {
    Decision::NewStory
}

fn fold_into(c: &Candidate, becomes_canonical: bool) -> Decision {
    Decision::Fold(Fold {
        story_id: c.story_id,
        matched_item_id: c.item_id,
        method: FoldMethod::ContentHash,
        distance: Some(0),
        score: Some(1.0),
        detail: Some("test".into()),
        becomes_canonical,
        promotes: None,
    })
}

fn fold_first(c: &[Candidate], _: &KeyStats) -> Decision {
    c.first()
        .map_or(Decision::NewStory, |c| fold_into(c, false))
}

async fn ingest_new<S: Store>(s: &S, feed: i64, it: &NewItem) -> (i64, i64) {
    match s
        .ingest_item(folding(feed), it, WINDOW, new_story)
        .await
        .expect("ingest")
    {
        Ingested::New {
            item_id, story_id, ..
        } => (item_id, story_id),
        other => panic!("expected a new item, got {other:?}"),
    }
}

/// Ingests `it` as a new story and returns the candidate item ids it saw.
async fn seen_by<S: Store>(s: &S, feed: i64, it: &NewItem) -> Vec<i64> {
    let mut seen = Vec::new();
    s.ingest_item(
        folding(feed),
        it,
        WINDOW,
        |c: &[Candidate], _: &KeyStats| {
            seen = c.iter().map(|c| c.item_id).collect();
            Decision::NewStory
        },
    )
    .await
    .expect("ingest");
    seen
}

fn poll(success: bool, next: DateTime<Utc>) -> PollUpdate {
    PollUpdate {
        duration_ms: 12,
        outcome: if success { "ok" } else { "error" }.into(),
        http_status: Some(if success { 200 } else { 500 }),
        error_class: (!success).then(|| "http_5xx".into()),
        error: (!success).then(|| "server error".into()),
        bytes: 1234,
        items_seen: 3,
        items_new: 2,
        items_folded: 1,
        success,
        next_poll_at: next,
        ..PollUpdate::started(Utc::now())
    }
}

async fn migrate_is_idempotent_and_ready<S: Store>(s: S) {
    s.migrate().await.expect("second migrate");
    s.migrate().await.expect("third migrate");
    s.ready().await.expect("ready");
    assert!(matches!(s.backend(), "sqlite" | "postgres"));
    let c = s.counts().await.unwrap();
    assert_eq!((c.feeds, c.items, c.stories, c.folds), (0, 0, 0, 0));
}

async fn feeds_add_ensure_list_enable_remove<S: Store>(s: S) {
    let a = s
        .add_feed(&new_feed("https://a.example/feed", "A"))
        .await
        .unwrap();
    assert_eq!(a.title.as_deref(), Some("A"));
    assert!(a.enabled);
    assert_eq!(a.error_count, 0);
    assert!(matches!(
        s.add_feed(&new_feed("https://a.example/feed", "again")).await,
        Err(StoreError::FeedExists(u)) if u == "https://a.example/feed"
    ));
    let (same, created) = s
        .ensure_feed(&new_feed("https://a.example/feed", "x"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(same.id, a.id);
    assert_eq!(
        same.title.as_deref(),
        Some("A"),
        "ensure does not overwrite"
    );
    let (b, created) = s
        .ensure_feed(&NewFeed {
            url: "https://b.example/feed".into(),
            fold_policy: FeedPolicy::OriginalOnly,
            fold_translations: false,
            languages: Some("en,de".into()),
            title: None,
        })
        .await
        .unwrap();
    assert!(created);
    assert_eq!(b.fold_policy, FeedPolicy::OriginalOnly);
    assert!(!b.fold_translations);
    assert_eq!(b.languages.as_deref(), Some("en,de"));

    let all = s.feeds().await.unwrap();
    assert_eq!(
        all.iter().map(|f| f.id).collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
    assert_eq!(s.feed(b.id).await.unwrap().unwrap(), b);
    assert_eq!(
        s.feed_by_url("https://a.example/feed")
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    assert!(
        s.feed_by_url("https://none.example/")
            .await
            .unwrap()
            .is_none()
    );

    assert!(
        s.set_feed_enabled(a.id, false, Some("410 Gone"))
            .await
            .unwrap()
    );
    let off = s.feed(a.id).await.unwrap().unwrap();
    assert!(!off.enabled);
    assert_eq!(off.disabled_reason.as_deref(), Some("410 Gone"));
    assert_eq!(s.counts().await.unwrap().feeds_disabled, 1);
    // A failing feed that is enabled again starts clean and is due now.
    s.record_poll(a.id, &poll(false, at(1000))).await.unwrap();
    assert!(s.set_feed_enabled(a.id, true, None).await.unwrap());
    let on = s.feed(a.id).await.unwrap().unwrap();
    assert!(on.enabled);
    assert_eq!(on.disabled_reason, None);
    assert_eq!(on.error_count, 0);
    assert_eq!(on.failing_since, None);
    assert!(on.next_poll_at <= Utc::now());
    assert!(!s.set_feed_enabled(9999, true, None).await.unwrap());

    assert!(s.remove_feed(a.id).await.unwrap());
    assert!(!s.remove_feed(a.id).await.unwrap());
    assert_eq!(s.feeds().await.unwrap().len(), 1);
    assert_eq!(s.counts().await.unwrap().feeds, 1);
}

async fn record_poll_tracks_success_failure_disable_and_moves<S: Store + Raw>(s: S) {
    let ids = add(&s, 2).await;
    let f = ids[0];
    let next = at(24);

    let mut ok = poll(true, next);
    ok.validators = Some((
        Some("\"v1\"".into()),
        Some("Mon, 02 Mar 2026 09:00:00 GMT".into()),
    ));
    ok.title = Some("Renamed".into());
    ok.poll_interval_secs = Some(900);
    s.record_poll(f, &ok).await.unwrap();
    let feed = s.feed(f).await.unwrap().unwrap();
    assert_eq!(feed.etag.as_deref(), Some("\"v1\""));
    assert_eq!(feed.title.as_deref(), Some("Renamed"));
    assert_eq!(feed.last_status.as_deref(), Some("ok"));
    assert_eq!(feed.last_http_status, Some(200));
    assert_eq!(feed.poll_interval_secs, Some(900));
    assert_eq!(feed.next_poll_at, next);
    assert!(feed.last_success_at.is_some());

    // Failures count up; failing_since marks the first one.
    let first_fail = poll(false, next);
    s.record_poll(f, &first_fail).await.unwrap();
    let mut second = poll(false, next);
    second.started_at = first_fail.started_at + chrono::Duration::minutes(5);
    s.record_poll(f, &second).await.unwrap();
    let feed = s.feed(f).await.unwrap().unwrap();
    assert_eq!(feed.error_count, 2);
    assert_eq!(
        feed.failing_since.map(|t| t.timestamp_micros()),
        Some(first_fail.started_at.timestamp_micros())
    );
    assert_eq!(feed.last_error.as_deref(), Some("server error"));
    assert_eq!(
        feed.etag.as_deref(),
        Some("\"v1\""),
        "validators kept when not given"
    );
    assert_eq!(
        feed.title.as_deref(),
        Some("Renamed"),
        "title kept when not given"
    );
    assert_eq!(s.counts().await.unwrap().feeds_failing, 1);

    s.record_poll(f, &poll(true, next)).await.unwrap();
    let feed = s.feed(f).await.unwrap().unwrap();
    assert_eq!(feed.error_count, 0);
    assert_eq!(feed.failing_since, None);
    assert_eq!(s.scalar("SELECT count(*) FROM polls").await, 4);

    // A permanent move updates the URL and keeps the old one in history.
    let mut moved = poll(true, next);
    moved.moved_to = Some("https://moved.example/rss".into());
    s.record_poll(f, &moved).await.unwrap();
    assert_eq!(
        s.feed(f).await.unwrap().unwrap().url,
        "https://moved.example/rss"
    );
    assert_eq!(s.scalar("SELECT count(*) FROM feed_url_history").await, 1);

    // A move onto another feed's URL keeps the old URL and says why.
    let other_url = s.feed(ids[1]).await.unwrap().unwrap().url;
    let mut clash = poll(true, next);
    clash.moved_to = Some(other_url.clone());
    s.record_poll(f, &clash).await.unwrap();
    let feed = s.feed(f).await.unwrap().unwrap();
    assert_eq!(feed.url, "https://moved.example/rss");
    assert!(
        feed.last_error
            .as_deref()
            .unwrap_or("")
            .contains(&other_url)
    );
    assert_eq!(s.scalar("SELECT count(*) FROM feed_url_history").await, 1);

    let mut gone = poll(false, next);
    gone.outcome = "gone".into();
    gone.http_status = Some(410);
    gone.disable = Some("410 Gone".into());
    s.record_poll(f, &gone).await.unwrap();
    let feed = s.feed(f).await.unwrap().unwrap();
    assert!(!feed.enabled);
    assert_eq!(feed.disabled_reason.as_deref(), Some("410 Gone"));

    assert!(matches!(
        s.record_poll(9999, &poll(true, next)).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn claims_lease_feeds_until_expiry<S: Store>(s: S) {
    let ids = add(&s, 3).await;
    let now = Utc::now() + chrono::Duration::seconds(1);
    let lease = Duration::from_secs(60);

    let a = s.claim_due_feeds("A", now, 2, lease).await.unwrap();
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|f| f.lease_owner.as_deref() == Some("A")));
    let b = s.claim_due_feeds("B", now, 10, lease).await.unwrap();
    assert_eq!(b.len(), 1, "only the unleased feed is left");
    assert!(
        s.claim_due_feeds("B", now, 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.claim_due_feeds("A", now + chrono::Duration::seconds(30), 10, lease)
            .await
            .unwrap()
            .is_empty()
    );

    // A crashed owner's leases expire and are claimed again.
    let later = now + chrono::Duration::seconds(61);
    let again = s.claim_due_feeds("C", later, 10, lease).await.unwrap();
    assert_eq!(again.len(), 3);

    // record_poll clears the lease and moves the feed into the future.
    s.record_poll(again[0].id, &poll(true, now + chrono::Duration::hours(1)))
        .await
        .unwrap();
    let polled = s.feed(again[0].id).await.unwrap().unwrap();
    assert_eq!(polled.lease_owner, None);
    assert_eq!(polled.lease_expires_at, None);

    // A graceful stop releases the rest at once.
    assert_eq!(s.release_leases("C").await.unwrap(), 2);
    let d = s.claim_due_feeds("D", later, 10, lease).await.unwrap();
    assert_eq!(d.len(), 2, "the polled feed is not due yet");
    assert!(!d.iter().any(|f| f.id == again[0].id));

    // Disabled feeds are never claimed.
    s.release_leases("D").await.unwrap();
    for id in &ids {
        s.set_feed_enabled(*id, false, Some("test")).await.unwrap();
    }
    assert!(
        s.claim_due_feeds("E", later, 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.next_due_at().await.unwrap(), None);
    s.set_feed_enabled(ids[1], true, None).await.unwrap();
    assert!(s.next_due_at().await.unwrap().is_some());
}

/// `ingest_items` writes a poll in one transaction: a later item folds into
/// an earlier one of the same batch, and an item whose write fails (here its
/// decision names a story that does not exist) fails the batch, which is
/// redone item by item, so that it fails alone.
async fn a_batch_sees_its_own_items_and_a_failure_costs_one_item<S: Store + Raw>(s: S) {
    let f = add(&s, 1).await[0];
    let text = "Port authority approves a second container terminal after two years of review";
    let items = vec![
        item("batch-a", text, at(0)),
        item("batch-b", text, at(1)),
        item(
            "batch-c",
            "Rail freight volumes fell for a fourth month",
            at(2),
        ),
        item(
            "batch-d",
            "Ferry operator adds a winter route to the islands",
            at(3),
        ),
    ];
    let mut calls_for_c = 0;
    let results = s
        .ingest_items(folding(f), &items, WINDOW, |it, cands, stats| {
            match it.identity.as_str() {
                "batch-b" => fold_first(cands, stats),
                "batch-c" => {
                    calls_for_c += 1;
                    Decision::Fold(Fold {
                        story_id: i64::MAX,
                        matched_item_id: 1,
                        method: FoldMethod::ContentHash,
                        distance: None,
                        score: None,
                        detail: None,
                        becomes_canonical: false,
                        promotes: None,
                    })
                }
                _ => Decision::NewStory,
            }
        })
        .await;
    assert_eq!(results.len(), 4);
    let Ok(Ingested::New {
        item_id: a,
        story_id: story_a,
        fold: None,
    }) = results[0]
    else {
        panic!("a founds a story: {:?}", results[0]);
    };
    match &results[1] {
        Ok(Ingested::New {
            story_id,
            fold: Some(fold),
            ..
        }) => {
            assert_eq!(*story_id, story_a);
            assert_eq!(fold.matched_item_id, a);
        }
        other => panic!("b folds into a within the batch: {other:?}"),
    }
    assert!(
        matches!(results[2], Err(StoreError::NotFound(_))),
        "{:?}",
        results[2]
    );
    assert_eq!(calls_for_c, 2, "the failed item is retried alone once");
    assert!(matches!(results[3], Ok(Ingested::New { fold: None, .. })));
    assert_eq!(s.scalar("SELECT count(*) FROM items").await, 3);
    assert_eq!(s.scalar("SELECT count(*) FROM stories").await, 2);
    assert_eq!(
        s.scalar("SELECT count(*) FROM items WHERE identity = 'batch-c'")
            .await,
        0
    );

    // The next poll answers the stored items without a decision and stores
    // the one that failed.
    let again = s
        .ingest_items(folding(f), &items, WINDOW, |it, _, _| {
            assert_eq!(it.identity, "batch-c", "only the missing item is decided");
            Decision::NewStory
        })
        .await;
    assert!(matches!(again[0], Ok(Ingested::Unchanged { item_id }) if item_id == a));
    assert!(matches!(again[1], Ok(Ingested::Unchanged { .. })));
    assert!(matches!(again[2], Ok(Ingested::New { fold: None, .. })));
    assert!(matches!(again[3], Ok(Ingested::Unchanged { .. })));
    assert_eq!(s.scalar("SELECT count(*) FROM items").await, 4);
}

/// The stored revisions of a batch are read once, before its first item:
/// an identity that comes again later in the batch must still be answered
/// from the copy the batch itself stored.
async fn a_batch_sees_an_identity_it_stored_earlier_in_the_batch<S: Store + Raw>(s: S) {
    let f = add(&s, 1).await[0];
    let first = item(
        "twice",
        "Council votes to extend the night bus network",
        at(0),
    );
    let changed = item(
        "twice",
        "Council votes to extend the night bus network to the airport",
        at(0),
    );
    let items = vec![first.clone(), first.clone(), changed.clone()];
    let mut decided = 0;
    let results = s
        .ingest_items(folding(f), &items, WINDOW, |_, _, _| {
            decided += 1;
            Decision::NewStory
        })
        .await;
    assert_eq!(decided, 1, "only the first copy is new");
    let Ok(Ingested::New { item_id, .. }) = results[0] else {
        panic!("the first copy is stored: {:?}", results[0]);
    };
    assert!(
        matches!(results[1], Ok(Ingested::Unchanged { item_id: i }) if i == item_id),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(results[2], Ok(Ingested::Updated { item_id: i }) if i == item_id),
        "{:?}",
        results[2]
    );
    assert_eq!(s.scalar("SELECT count(*) FROM items").await, 1);
    assert_eq!(s.scalar("SELECT count(*) FROM stories").await, 1);
}

async fn ingest_new_unchanged_updated<S: Store>(s: S) {
    let f = add(&s, 1).await[0];
    let mut it = item(
        "guid-1",
        "Harbour cranes idle as dock workers strike for a third day",
        at(0),
    );
    it.signature.keys = vec![11, 12];
    let (id, story) = ingest_new(&s, f, &it).await;

    let again = s.ingest_item(
        folding(f),
        &it,
        WINDOW,
        |_: &[Candidate], _: &KeyStats| -> Decision {
            panic!("decide must not run for a known item")
        },
    );
    assert_eq!(again.await.unwrap(), Ingested::Unchanged { item_id: id });

    let mut edited = it.clone();
    edited.content_text.push_str(" Talks resume on Friday.");
    edited.revision_hash = hash64(&edited.content_text);
    edited.signature.keys = vec![13];
    assert_eq!(
        s.ingest_item(folding(f), &edited, WINDOW, new_story)
            .await
            .unwrap(),
        Ingested::Updated { item_id: id }
    );
    let c = s.counts().await.unwrap();
    assert_eq!((c.items, c.stories), (1, 1));
    let top = s.newest_stories(None, 10).await.unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].story_id, story);
    assert_eq!(top[0].copies, 1);

    // The keys were replaced: the old ones no longer count.
    let mut probe = item("probe", "unrelated", at(1));
    probe.signature.keys = vec![11, 13];
    let mut stats = KeyStats::default();
    let mut keys_of_edited = Vec::new();
    s.ingest_item(
        folding(f),
        &probe,
        WINDOW,
        |c: &[Candidate], k: &KeyStats| {
            stats = k.clone();
            keys_of_edited = c
                .iter()
                .find(|c| c.item_id == id)
                .map(|c| c.item.signature.keys.clone())
                .unwrap_or_default();
            Decision::NewStory
        },
    )
    .await
    .unwrap();
    assert_eq!(stats.counts.get(&11), None);
    assert_eq!(stats.counts.get(&13), Some(&1));
    assert_eq!(keys_of_edited, vec![13]);
}

/// Ingests `it` as a new story and returns the text the decision saw for
/// candidate `id`.
async fn text_seen_by<S: Store>(s: &S, feed: i64, it: &NewItem, id: i64) -> Option<String> {
    let mut text = None;
    s.ingest_item(
        folding(feed),
        it,
        WINDOW,
        |c: &[Candidate], _: &KeyStats| {
            text = c
                .iter()
                .find(|c| c.item_id == id)
                .map(|c| c.item.content_text.clone());
            Decision::NewStory
        },
    )
    .await
    .expect("ingest");
    text
}

/// The store remembers candidates' texts between ingests (by item and
/// revision): an update, and a write it did not make (another instance),
/// must still reach the next decision.
async fn candidates_carry_the_text_of_their_stored_revision<S: Store + Raw>(s: S) {
    let f = add(&s, 1).await[0];
    let probe = |n: u32| {
        let mut p = item(&format!("probe-{n}"), &format!("Unrelated note {n}"), at(1));
        p.signature.keys = vec![21];
        p
    };
    let mut a = item("a", "Ferry service resumes after the storm", at(0));
    a.signature.keys = vec![21];
    let (id, _) = ingest_new(&s, f, &a).await;
    for n in 0..2 {
        assert_eq!(
            text_seen_by(&s, f, &probe(n), id).await.as_deref(),
            Some(a.content_text.as_str())
        );
    }

    let mut edited = a.clone();
    edited.content_text = "Ferry service resumes on Monday after the storm".into();
    edited.revision_hash = hash64(&edited.content_text);
    assert_eq!(
        s.ingest_item(folding(f), &edited, WINDOW, new_story)
            .await
            .unwrap(),
        Ingested::Updated { item_id: id }
    );
    assert_eq!(
        text_seen_by(&s, f, &probe(2), id).await.as_deref(),
        Some(edited.content_text.as_str())
    );

    let written = s
        .scalar(
            "UPDATE items SET content_text = 'Rewritten by another instance', \
             revision_hash = 99 WHERE identity = 'a' RETURNING id",
        )
        .await;
    assert_eq!(written, id);
    assert_eq!(
        text_seen_by(&s, f, &probe(3), id).await.as_deref(),
        Some("Rewritten by another instance")
    );
}

async fn fold_updates_story_and_canonical<S: Store + Raw>(s: S) {
    let ids = add(&s, 3).await;
    let text = "The central bank held rates at four percent and signalled one cut before summer";
    let first = item("wire-1", text, at(2));
    let (first_id, story) = ingest_new(&s, ids[0], &first).await;

    let copy = item("copy-1", text, at(3));
    let mut saw = Vec::new();
    let got = s
        .ingest_item(
            folding(ids[1]),
            &copy,
            WINDOW,
            |c: &[Candidate], _: &KeyStats| {
                saw = c.to_vec();
                fold_first(c, &KeyStats::default())
            },
        )
        .await
        .unwrap();
    assert_eq!(saw.len(), 1);
    assert_eq!(saw[0].item_id, first_id);
    assert!(saw[0].is_canonical);
    assert_eq!(saw[0].fold_method, None);
    assert_eq!(saw[0].item.feed_id, ids[0]);
    assert_eq!(saw[0].item.content_text, text);
    assert_eq!(saw[0].item.signature, first.signature);
    let Ingested::New {
        story_id,
        fold: Some(fold),
        item_id: copy_id,
    } = got
    else {
        panic!("expected a fold, got {got:?}");
    };
    assert_eq!(story_id, story);
    assert_eq!(fold.matched_item_id, first_id);
    let c = s.counts().await.unwrap();
    assert_eq!((c.items, c.stories, c.folds), (2, 1, 1));
    assert_eq!(
        s.scalar("SELECT count(*) FROM folds WHERE method = 'content-hash' AND distance = 0")
            .await,
        1
    );

    // The true original arrives late, earlier-dated: it becomes canonical.
    let mut original = item("orig-1", text, at(0));
    original.title = Some("Rates held, one cut signalled".into());
    let mut saw = Vec::new();
    let got = s
        .ingest_item(
            folding(ids[2]),
            &original,
            WINDOW,
            |c: &[Candidate], _: &KeyStats| {
                saw = c.to_vec();
                let canon = c
                    .iter()
                    .find(|c| c.is_canonical)
                    .expect("canonical candidate");
                fold_into(canon, true)
            },
        )
        .await
        .unwrap();
    assert_eq!(saw.len(), 2);
    let copy_cand = saw
        .iter()
        .find(|c| c.item_id == copy_id)
        .expect("copy is a candidate");
    assert_eq!(copy_cand.fold_method.as_deref(), Some("content-hash"));
    assert!(!copy_cand.is_canonical);
    let Ingested::New {
        item_id: orig_id, ..
    } = got
    else {
        panic!("{got:?}")
    };

    let top = s.newest_stories(None, 10).await.unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].copies, 3);
    assert_eq!(
        top[0].title.as_deref(),
        Some("Rates held, one cut signalled")
    );
    assert_eq!(top[0].url.as_deref(), Some("https://news.example/orig-1"));
    assert_eq!(top[0].first_published_at, Some(at(0)));
    assert_eq!(top[0].feeds, vec!["Feed 0", "Feed 1", "Feed 2"]);
    assert_eq!(
        s.scalar("SELECT canonical_item_id FROM stories").await,
        orig_id
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM story_copies WHERE is_canonical")
            .await,
        1
    );
    // The public views agree.
    assert_eq!(
        s.scalar("SELECT CAST(copies AS BIGINT) FROM story_overview")
            .await,
        3
    );
    assert_eq!(
        s.scalar("SELECT canonical_item_id FROM story_overview")
            .await,
        orig_id
    );
    assert_eq!(s.scalar("SELECT count(*) FROM story_copies").await, 3);
    assert_eq!(
        s.scalar("SELECT count(*) FROM story_copies WHERE fold_method IS NOT NULL")
            .await,
        2
    );
    assert_eq!(
        s.scalar("SELECT item_id FROM story_first_carriers").await,
        orig_id
    );
    assert_eq!(s.scalar("SELECT count(*) FROM feed_errors").await, 0);
    assert!(s.newest_stories(Some(at(1)), 10).await.unwrap().is_empty());
    assert_eq!(s.newest_stories(Some(at(0)), 10).await.unwrap().len(), 1);
}

async fn candidates_come_from_every_signal_within_the_window<S: Store>(s: S) {
    let f = add(&s, 2).await;
    let mut base = item("base", "base text about a mining merger", at(0));
    base.signature.simhash = 0x0001_0002_0003_0004;
    base.canonical_url = Some("https://origin.example/merger".into());
    base.origin_url = Some("https://wire.example/merger".into());
    base.signature.keys = vec![501, 502];
    let (base_id, _) = ingest_new(&s, f[0], &base).await;

    // Each probe shares exactly one signal with `base`.
    let unrelated = |id: &str| {
        let mut it = item(id, &format!("unrelated text {id}"), at(1));
        it.signature.simhash = 0x0f0f_0e0e_0d0d_0c0c;
        it
    };
    let mut probes: Vec<(&str, NewItem)> = Vec::new();
    let mut p = unrelated("same-url");
    p.canonical_url = base.canonical_url.clone();
    probes.push(("canonical url", p));
    let mut p = unrelated("same-content");
    p.signature.content_hash = base.signature.content_hash;
    probes.push(("content hash", p));
    let mut p = unrelated("cites-base");
    p.origin_url = base.canonical_url.clone();
    probes.push(("origin -> canonical", p));
    let mut p = unrelated("is-cited");
    p.canonical_url = base.origin_url.clone();
    probes.push(("canonical -> origin", p));
    for (i, sh) in [
        0x0f0f_0e0e_0d0d_0004_u64,
        0x0f0f_0e0e_0003_0c0c,
        0x0f0f_0002_0d0d_0c0c,
        0x0001_0e0e_0d0d_0c0c,
    ]
    .into_iter()
    .enumerate()
    {
        let mut p = unrelated(["band0", "band1", "band2", "band3"][i]);
        p.signature.simhash = sh as i64;
        probes.push((["band 0", "band 1", "band 2", "band 3"][i], p));
    }
    let mut p = unrelated("shares-key");
    p.signature.keys = vec![999, 502];
    probes.push(("lookup key", p));

    for (signal, p) in &probes {
        let seen = seen_by(&s, f[1], p).await;
        assert!(
            seen.contains(&base_id),
            "{signal}: base not found among {seen:?}"
        );
    }

    // Nothing shared: base is not a candidate.
    let seen = seen_by(&s, f[1], &unrelated("nothing")).await;
    assert!(!seen.contains(&base_id), "unrelated probe saw base");

    // Same content, same feed, but dated outside the window: not a candidate.
    let mut late = item("late", "base text about a mining merger", at(24 * 20));
    late.signature.simhash = base.signature.simhash;
    late.canonical_url = base.canonical_url.clone();
    assert!(!seen_by(&s, f[0], &late).await.contains(&base_id));
    let mut early = late.clone();
    early.identity = "early".into();
    early.dated_at = at(-24 * 15);
    assert!(!seen_by(&s, f[0], &early).await.contains(&base_id));
}

async fn story_canonical_is_a_candidate_even_outside_the_window<S: Store>(s: S) {
    let f = add(&s, 3).await;
    let mut orig = item("orig", "original report on river flooding", at(0));
    orig.signature.simhash = 0x0101_0202_0303_0404;
    let (orig_id, story) = ingest_new(&s, f[0], &orig).await;
    let mut copy = item("copy", "original report on river flooding", at(24 * 10));
    copy.signature.simhash = 0x0505_0606_0707_0808;
    copy.signature.keys = vec![77];
    let got = s
        .ingest_item(folding(f[1]), &copy, WINDOW, fold_first)
        .await
        .unwrap();
    let Ingested::New {
        item_id: copy_id, ..
    } = got
    else {
        panic!("{got:?}")
    };

    // Matches only the copy (key 77), 20 days after the original.
    let mut late = item("late", "a later follow-up", at(24 * 20));
    late.signature.simhash = 0x0909_0a0a_0b0b_0c0c;
    late.signature.keys = vec![77];
    let mut saw = Vec::new();
    s.ingest_item(
        folding(f[2]),
        &late,
        WINDOW,
        |c: &[Candidate], _: &KeyStats| {
            saw = c.to_vec();
            Decision::NewStory
        },
    )
    .await
    .unwrap();
    assert_eq!(saw.len(), 2, "{saw:?}");
    let canon = saw
        .iter()
        .find(|c| c.item_id == orig_id)
        .expect("canonical included");
    assert!(canon.is_canonical);
    assert_eq!(canon.story_id, story);
    let c = saw
        .iter()
        .find(|c| c.item_id == copy_id)
        .expect("copy found");
    assert_eq!(c.item.signature.keys, vec![77]);
    assert_eq!(c.fold_method.as_deref(), Some("content-hash"));
}

async fn key_stats_count_keys_in_the_window<S: Store>(s: S) {
    let f = add(&s, 1).await[0];
    for (i, hours) in [0_i64, 5, 30, 24 * 30].into_iter().enumerate() {
        let mut it = item(&format!("k{i}"), &format!("text number {i}"), at(hours));
        it.signature.simhash = (0x1000_2000_3000_4000_i64) + i as i64 * 0x0001_0001_0001_0001;
        it.signature.keys = vec![42, 100 + i as i64];
        ingest_new(&s, f, &it).await;
    }
    let mut probe = item("probe", "probe text", at(10));
    probe.signature.simhash = 0x7777_6666_5555_4444;
    probe.signature.keys = vec![42, 101, 555];
    let mut stats = KeyStats::default();
    s.ingest_item(
        folding(f),
        &probe,
        WINDOW,
        |_: &[Candidate], k: &KeyStats| {
            stats = k.clone();
            Decision::NewStory
        },
    )
    .await
    .unwrap();
    assert_eq!(
        stats.counts.get(&42),
        Some(&3),
        "the item 30 days out is not counted"
    );
    assert_eq!(stats.counts.get(&101), Some(&1));
    assert_eq!(stats.counts.get(&555).copied().unwrap_or(0), 0);
    assert_eq!(stats.window_items, 3);
}

async fn unfold_splits_and_vetoes<S: Store + Raw>(s: S) {
    let f = add(&s, 3).await;
    let text = "A ferry ran aground near the harbour entrance with no injuries reported";
    let (a, story) = ingest_new(&s, f[0], &item("a", text, at(0))).await;
    let b_item = item("b", text, at(1));
    let Ingested::New { item_id: b, .. } = s
        .ingest_item(folding(f[1]), &b_item, WINDOW, fold_first)
        .await
        .unwrap()
    else {
        panic!("b did not fold")
    };
    let Ingested::New { item_id: c, .. } = s
        .ingest_item(folding(f[2]), &item("c", text, at(2)), WINDOW, fold_first)
        .await
        .unwrap()
    else {
        panic!("c did not fold")
    };
    assert_eq!(s.counts().await.unwrap().stories, 1);

    let split = s.unfold(b).await.unwrap().expect("b was folded");
    assert_ne!(split, story);
    let counts = s.counts().await.unwrap();
    assert_eq!((counts.stories, counts.folds), (2, 1));
    assert_eq!(s.scalar("SELECT count(*) FROM fold_vetoes").await, 1);
    let top = s.newest_stories(None, 10).await.unwrap();
    let old = top.iter().find(|t| t.story_id == story).unwrap();
    assert_eq!(old.copies, 2);
    let new = top.iter().find(|t| t.story_id == split).unwrap();
    assert_eq!(new.copies, 1);
    assert_eq!(new.url.as_deref(), Some("https://news.example/b"));
    assert_eq!(s.unfold(b).await.unwrap(), None, "alone in its story now");

    // Unfolding the canonical founder: the others stay and get a new canonical.
    let split_a = s.unfold(a).await.unwrap().expect("a shares its story");
    let top = s.newest_stories(None, 10).await.unwrap();
    assert_eq!(top.len(), 3);
    let old = top.iter().find(|t| t.story_id == story).unwrap();
    assert_eq!(old.copies, 1);
    assert_eq!(old.url.as_deref(), Some("https://news.example/c"));
    assert_eq!(old.first_published_at, Some(at(2)));
    assert!(top.iter().any(|t| t.story_id == split_a && t.copies == 1));
    let _ = c;
    assert!(matches!(
        s.unfold(424242).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn remove_feed_repairs_stories<S: Store + Raw>(s: S) {
    let f = add(&s, 3).await;
    let text = "Wildfire forces evacuation of two hill villages overnight";
    let (a, story) = ingest_new(&s, f[0], &item("a", text, at(0))).await;
    let Ingested::New { item_id: b, .. } = s
        .ingest_item(folding(f[1]), &item("b", text, at(1)), WINDOW, fold_first)
        .await
        .unwrap()
    else {
        panic!("no fold")
    };
    ingest_new(&s, f[2], &item("solo", "a different story entirely", at(5))).await;
    let _ = a;

    assert!(s.remove_feed(f[0]).await.unwrap());
    let c = s.counts().await.unwrap();
    assert_eq!((c.feeds, c.items, c.stories, c.folds), (2, 2, 2, 1));
    let top = s.newest_stories(None, 10).await.unwrap();
    let st = top
        .iter()
        .find(|t| t.story_id == story)
        .expect("story survives");
    assert_eq!(st.copies, 1);
    assert_eq!(st.url.as_deref(), Some("https://news.example/b"));
    assert_eq!(st.feeds, vec!["Feed 1"]);
    assert_eq!(
        s.scalar("SELECT count(*) FROM folds WHERE matched_item_id IS NULL")
            .await,
        1
    );
    assert_eq!(
        s.scalar("SELECT canonical_item_id FROM stories WHERE id IN (SELECT story_id FROM folds)")
            .await,
        b
    );

    assert!(s.remove_feed(f[1]).await.unwrap());
    let c = s.counts().await.unwrap();
    assert_eq!((c.items, c.stories, c.folds), (1, 1, 0));
}

async fn concurrent_copies_fold_into_one_story<S: Store>(s: S) {
    const N: usize = 16;
    let feeds = add(&s, N).await;
    let text = "Parliament passed the budget late on Thursday after a marathon session";
    let mut tasks = Vec::new();
    for (i, feed) in feeds.into_iter().enumerate() {
        let s = s.clone();
        let mut it = item(&format!("copy-{i}"), text, at(i as i64));
        // Different simhashes: only the content hash ties them together.
        it.signature.simhash = hash64(&format!("copy {i}"));
        tasks.push(tokio::spawn(async move {
            s.ingest_item(folding(feed), &it, WINDOW, fold_first).await
        }));
    }
    let mut stories = Vec::new();
    for t in tasks {
        match t.await.expect("task").expect("ingest") {
            Ingested::New { story_id, .. } => stories.push(story_id),
            other => panic!("{other:?}"),
        }
    }
    stories.dedup();
    let c = s.counts().await.unwrap();
    assert_eq!(c.stories, 1, "copies ended in {} stories", c.stories);
    assert_eq!(c.items, N as i64);
    assert_eq!(c.folds, N as i64 - 1);
    assert_eq!(s.newest_stories(None, 5).await.unwrap()[0].copies, N as i64);
}

async fn boilerplate_is_remembered_per_feed<S: Store>(s: S) {
    let f = add(&s, 2).await;
    s.remember_boilerplate(f[0], &[5, 3, 5]).await.unwrap();
    s.remember_boilerplate(f[0], &[3]).await.unwrap();
    s.remember_boilerplate(f[0], &[]).await.unwrap();
    assert_eq!(s.feed_boilerplate(f[0]).await.unwrap(), vec![3, 5]);
    assert!(s.feed_boilerplate(f[1]).await.unwrap().is_empty());
}

async fn empty_bodies_do_not_pair_by_band<S: Store>(s: S) {
    let f = add(&s, 2).await;
    let mut a = item("headline-only-a", "", at(0));
    a.signature.simhash = 0;
    let (a_id, _) = ingest_new(&s, f[0], &a).await;
    let mut b = item("headline-only-b", "", at(1));
    b.signature.simhash = 0;
    assert!(!seen_by(&s, f[1], &b).await.contains(&a_id));
    // A body whose low band happens to be zero does not pull them in either.
    let mut c = item("body", "a body with text", at(2));
    c.signature.simhash = 0x1234_5678_9abc_0000;
    assert!(!seen_by(&s, f[1], &c).await.contains(&a_id));
    // Their headline key still finds them.
    let mut d = item("headline-only-d", "", at(3));
    d.signature.simhash = 0;
    d.signature.keys = vec![4711];
    ingest_new(&s, f[0], &d).await;
    let mut e = item("headline-only-e", "", at(4));
    e.signature.simhash = 0;
    e.signature.keys = vec![4711];
    assert_eq!(seen_by(&s, f[1], &e).await.len(), 1);
}

async fn exact_matches_survive_the_candidate_cap<S: Store>(s: S) {
    let f = add(&s, 2).await;
    let mut old = item("old", "the one real copy", at(0));
    old.signature.simhash = 0x0101_0101_0101_0101;
    let (old_id, _) = ingest_new(&s, f[0], &old).await;
    // More newer band-sharing items than the cap.
    for i in 0..feedfold::store::MAX_CANDIDATES as i64 + 5 {
        let mut it = item(&format!("noise-{i}"), &format!("noise {i}"), at(1 + i % 48));
        it.signature.simhash = 0x0202_0202_0202_0000 | (i & 0xff);
        ingest_new(&s, f[0], &it).await;
    }
    let mut probe = item("probe", "the one real copy", at(50));
    // Shares band 3 with every noise item.
    probe.signature.simhash = 0x0202_0303_0303_0042;
    let seen = seen_by(&s, f[1], &probe).await;
    assert_eq!(seen.len(), feedfold::store::MAX_CANDIDATES);
    assert!(
        seen.contains(&old_id),
        "the content-hash match was cut by the cap"
    );
}

async fn concurrent_claims_never_share_a_feed<S: Store>(s: S) {
    let ids = add(&s, 60).await;
    let now = Utc::now() + chrono::Duration::seconds(1);
    let mut tasks = Vec::new();
    for owner in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for _ in 0..3 {
                let got = s
                    .claim_due_feeds(
                        &format!("instance-{owner}"),
                        now,
                        4,
                        Duration::from_secs(300),
                    )
                    .await
                    .expect("claim");
                mine.extend(got.into_iter().map(|f| f.id));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "a feed was claimed twice");
    assert_eq!(
        n,
        ids.len(),
        "8 owners x 3 rounds x 4 cover all 60 feeds once"
    );
}

// ---------------------------------------------------------------------------
// Backend-specific behaviour.

#[tokio::test]
async fn sqlite_refuses_a_second_instance() {
    let (s, dir) = fresh_sqlite().await;
    let lock = s.lock_instance().expect("first lock");
    assert!(lock.path().is_some_and(|p| p.ends_with("feedfold.db.lock")));
    let url = format!("sqlite://{}", dir.path().join("feedfold.db").display());
    let other = SqliteStore::open(&url).await.expect("open again");
    match other.lock_instance() {
        Err(StoreError::Locked(msg)) => {
            assert!(msg.contains("another feedfold instance"), "{msg}");
            assert!(msg.contains("feedfold.db"), "{msg}");
        }
        other => panic!("second instance was not refused: {other:?}"),
    }
    // The same through `Opened`, as the daemon takes it.
    let opened = Opened::Sqlite(other.clone());
    assert!(matches!(opened.lock_instance(), Err(StoreError::Locked(_))));
    drop(lock);
    let again = opened
        .lock_instance()
        .expect("lock is free after the first instance stops");
    assert!(again.is_some());
}

#[tokio::test]
async fn open_dispatches_on_the_url() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        format!("sqlite:{}", dir.path().join("a.db").display()),
        format!("sqlite://{}", dir.path().join("b.db").display()),
        dir.path().join("c.db").display().to_string(),
        "sqlite::memory:".to_string(),
    ] {
        let Opened::Sqlite(s) = feedfold::store::open(&url).await.expect(&url) else {
            panic!("{url} did not open SQLite");
        };
        s.migrate().await.expect(&url);
        s.ready().await.expect(&url);
        let f = s
            .add_feed(&new_feed("https://x.example/", "X"))
            .await
            .unwrap();
        assert_eq!(s.feeds().await.unwrap()[0].id, f.id, "{url}");
        let text = "Two copies of one story";
        ingest_new(&s, f.id, &item("one", text, at(0))).await;
        let g = s
            .add_feed(&new_feed("https://y.example/", "Y"))
            .await
            .unwrap();
        s.ingest_item(folding(g.id), &item("two", text, at(1)), WINDOW, fold_first)
            .await
            .unwrap();
        let c = s.counts().await.unwrap();
        assert_eq!((c.items, c.stories, c.folds), (2, 1, 1), "{url}");
        let (in_use, idle) = s.pool_state();
        assert!(in_use + idle >= 1, "{url}");
    }
    assert!(dir.path().join("a.db").exists());
    assert!(dir.path().join("b.db").exists());
    assert!(dir.path().join("c.db").exists());
    assert!(matches!(
        feedfold::store::open("mysql://h/db").await,
        Err(StoreError::UnsupportedUrl(_))
    ));
}

#[tokio::test]
async fn sqlite_not_ready_before_migrate_and_full_text_search_works() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path().join("x.db").to_str().unwrap())
        .await
        .unwrap();
    assert!(s.ready().await.is_err());
    s.migrate().await.unwrap();
    s.ready().await.unwrap();
    let f = s
        .add_feed(&new_feed("https://x.example/", "X"))
        .await
        .unwrap();
    let mut it = item("fts", "Glaciers retreat faster than forecast", at(0));
    ingest_new(&s, f.id, &it).await;
    let hits: i64 =
        sqlx::query_scalar("SELECT count(*) FROM items_fts WHERE items_fts MATCH 'glaciers'")
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert_eq!(hits, 1);
    it.content_text = "Sea ice recovers slightly".into();
    it.revision_hash += 1;
    s.ingest_item(folding(f.id), &it, WINDOW, new_story)
        .await
        .unwrap();
    for (q, n) in [("glaciers", 0_i64), ("sea", 1)] {
        let hits: i64 =
            sqlx::query_scalar("SELECT count(*) FROM items_fts WHERE items_fts MATCH $1")
                .bind(q)
                .fetch_one(s.pool())
                .await
                .unwrap();
        assert_eq!(hits, n, "{q}");
    }
}

#[tokio::test]
async fn postgres_notifies_new_stories_and_copies() {
    with_pg(|s: PgStore| async move {
        let mut listener = sqlx::postgres::PgListener::connect_with(s.pool())
            .await
            .unwrap();
        listener
            .listen_all(["feedfold_stories", "feedfold_copies"])
            .await
            .unwrap();
        let f = add(&s, 2).await;
        let text = "Rail strike suspended pending a new offer";
        let (_, story) = ingest_new(&s, f[0], &item("n1", text, at(0))).await;
        s.ingest_item(folding(f[1]), &item("n2", text, at(1)), WINDOW, fold_first)
            .await
            .unwrap();
        let first = listener.recv().await.unwrap();
        assert_eq!(
            (first.channel(), first.payload()),
            ("feedfold_stories", story.to_string().as_str())
        );
        let second = listener.recv().await.unwrap();
        assert_eq!(
            (second.channel(), second.payload()),
            ("feedfold_copies", story.to_string().as_str())
        );
        let hits: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM items WHERE search @@ to_tsquery('simple', 'strike')",
        )
        .fetch_one(s.pool())
        .await
        .unwrap();
        assert_eq!(hits, 2);
    })
    .await;
}

#[tokio::test]
async fn postgres_unreachable_is_an_error() {
    // A closed port: connect must fail with an error, not hang or panic.
    let r = PgStore::connect("postgres://postgres@127.0.0.1:1/none").await;
    assert!(r.is_err());
}

/// Fold-path latency with a large PostgreSQL table. A benchmark, not a
/// check: run it by hand and read the numbers. It loads FF_BENCH_ROWS items
/// into a fresh database, or uses an already loaded FF_BENCH_URL as is.
/// `TEST_DATABASE_URL=... FF_BENCH_ROWS=1000000 cargo test --release --test it
///  store::bench_pg_ingest_latency -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints ingest latency with FF_BENCH_ROWS stored items"]
async fn bench_pg_ingest_latency() {
    if let Ok(url) = std::env::var("FF_BENCH_URL") {
        let s = PgStore::connect(&url).await.expect("FF_BENCH_URL");
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
            .fetch_one(s.pool())
            .await
            .unwrap();
        bench_probes(&s, rows).await;
        return;
    }
    with_pg(|s: PgStore| async move {
        let rows: i64 = std::env::var("FF_BENCH_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        let t0 = std::time::Instant::now();
        let mut tx = s.pool().begin().await.unwrap();
        for q in [
            "INSERT INTO feeds (url, title) SELECT 'https://bench' || g || '.example/rss', \
             'Bench ' || g FROM generate_series(1, 100) g",
            "INSERT INTO stories (id, canonical_item_id, first_published_at, item_count) \
             SELECT g, g, timestamptz '2026-01-01' + g * interval '31 seconds', 1 \
             FROM generate_series(1, $1) g",
            "INSERT INTO items (id, feed_id, identity, url, title, content_text, fetched_at, \
             dated_at, published_at, story_id, fp_version, simhash, band0, band1, band2, band3, \
             content_hash, lead_hash, text_len, revision_hash) \
             SELECT g, 1 + g % 100, 'id' || g, 'https://bench.example/' || g, 'Title ' || g, \
             repeat('word' || (g % 977) || ' ', 30), d, d, d, g, 1, h, \
             (h & 65535)::int, ((h >> 16) & 65535)::int, ((h >> 32) & 65535)::int, \
             ((h >> 48) & 65535)::int, h # 12345, h # 777, 30, h \
             FROM (SELECT g, timestamptz '2026-01-01' + g * interval '31 seconds' AS d, \
                   ('x' || md5(g::text))::bit(64)::bigint AS h \
                   FROM generate_series(1, $1) g) src",
            "INSERT INTO item_keys (key, item_id, dated_at) SELECT lead_hash, id, dated_at FROM items",
            "SELECT setval('stories_id_seq', $1)",
            "SELECT setval('items_id_seq', $1)",
        ] {
            let query = sqlx::query(q);
            let query = if q.contains("$1") { query.bind(rows) } else { query };
            query.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
        sqlx::query("VACUUM ANALYZE").execute(s.pool()).await.unwrap();
        println!("loaded {rows} items in {:.1?}", t0.elapsed());
        bench_probes(&s, rows).await;
    })
    .await;
}

/// 300 new items spread over the loaded period (2026-01-01 + 31 s per row).
async fn bench_probes(s: &PgStore, rows: i64) {
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let span_secs = (rows * 31).max(1);
    let tag = rand::random::<u32>();
    let mut lat = Vec::new();
    let mut candidates = 0usize;
    for i in 0..300_i64 {
        let when = start + chrono::Duration::seconds((i * 7919 * 31 * 97) % span_secs);
        let mut it = item(
            &format!("probe-{tag}-{i}"),
            &format!("bench probe {tag} {i}"),
            when,
        );
        it.signature.keys = vec![
            hash64(&format!("lead {tag} {i}")),
            hash64(&format!("anchor {i}")),
        ];
        let t = std::time::Instant::now();
        s.ingest_item(
            folding(1 + i % 100),
            &it,
            WINDOW,
            |c: &[Candidate], _: &KeyStats| {
                candidates += c.len();
                Decision::NewStory
            },
        )
        .await
        .unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    println!(
        "ingest_item (new item: locks, candidate search, key stats, decide, insert, commit) \
         over {rows} items: p50 {:.2?} p90 {:.2?} p99 {:.2?} max {:.2?}; mean candidates {:.1}",
        p(0.5),
        p(0.9),
        p(0.99),
        lat[lat.len() - 1],
        candidates as f64 / lat.len() as f64
    );
}

/// SQLite ingest cost through the API as the table grows. A benchmark:
/// `FF_BENCH_ROWS=20000 cargo test --release --test it
///  store::bench_sqlite_ingest -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints SQLite ingest latency"]
async fn bench_sqlite_ingest() {
    let rows: i64 = std::env::var("FF_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (s, dir) = fresh_sqlite().await;
    let feeds = add(&s, 50).await;
    let start = at(0);
    let mut lat = Vec::new();
    let t0 = std::time::Instant::now();
    for i in 0..rows {
        let when = start + chrono::Duration::seconds(i * 97);
        let mut it = item(
            &format!("bench-{i}"),
            &format!("bench body {i} {}", "word ".repeat(40)),
            when,
        );
        it.signature.keys = vec![
            hash64(&format!("lead {i}")),
            hash64(&format!("anchor {}", i % 5000)),
        ];
        // Every 10th item is an exact copy of the one before it.
        if i % 10 == 9 {
            it.signature.content_hash = Some(hash64(&format!(
                "bench body {} {}",
                i - 1,
                "word ".repeat(40)
            )));
        }
        let t = std::time::Instant::now();
        let ch = it.signature.content_hash;
        s.ingest_item(
            folding(feeds[(i % 50) as usize]),
            &it,
            WINDOW,
            |c: &[Candidate], _: &KeyStats| {
                c.iter()
                    .find(|c| c.item.signature.content_hash == ch)
                    .map_or(Decision::NewStory, |c| fold_into(c, false))
            },
        )
        .await
        .unwrap();
        lat.push(t.elapsed());
    }
    let total = t0.elapsed();
    let last: Vec<_> = lat[lat.len().saturating_sub(1000)..].to_vec();
    let mut sorted = last.clone();
    sorted.sort();
    let p = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
    let size = std::fs::metadata(dir.path().join("feedfold.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    let c = s.counts().await.unwrap();
    println!(
        "sqlite: {rows} ingests in {total:.1?} ({:.0}/s); last 1000: p50 {:.2?} p99 {:.2?}; \
         {} stories, {} folds; db {:.1} MB (+WAL)",
        rows as f64 / total.as_secs_f64(),
        p(0.5),
        p(0.99),
        c.stories,
        c.folds,
        size as f64 / 1e6
    );
}
