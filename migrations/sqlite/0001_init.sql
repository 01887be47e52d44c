-- feedfold schema, SQLite. This file never changes once landed: add a new
-- migration instead. Table, column and view names are a public interface
-- (docs/sql.md) and match migrations/postgres.
--
-- SQLite dialect notes:
-- * Timestamps are TEXT, RFC 3339 in UTC with exactly six fractional digits
--   and a `Z` suffix (`2026-11-28T13:56:06.123000Z`). The fixed width makes
--   text comparison equal to time comparison, so `dated_at BETWEEN ...` and
--   `ORDER BY` work on the text. Defaults below produce the same shape.
-- * Booleans are INTEGER 0/1.
-- * Full-text search is the FTS5 table `items_fts(title, content_text)`,
--   an external-content index over `items` kept current by triggers.

CREATE TABLE feeds (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    url                   TEXT NOT NULL UNIQUE,
    title                 TEXT,
    site_url              TEXT,
    language              TEXT,
    created_at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    -- 'normal', 'original_only' (its items are never folded into another
    -- story, but copies may fold into it) or 'never' (never folds either way).
    fold_policy           TEXT NOT NULL DEFAULT 'normal',
    -- Comma-separated ISO 639-1 codes the feed publishes in, when known.
    languages             TEXT,
    fold_translations     INTEGER NOT NULL DEFAULT 1,
    enabled               INTEGER NOT NULL DEFAULT 1,
    disabled_reason       TEXT,
    disabled_at           TEXT,
    -- Conditional GET validators from the last 200 response.
    etag                  TEXT,
    last_modified         TEXT,
    poll_interval_secs    INTEGER,
    next_poll_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    last_polled_at        TEXT,
    last_success_at       TEXT,
    last_status           TEXT,
    last_http_status      INTEGER,
    last_error_class      TEXT,
    last_error            TEXT,
    error_count           INTEGER NOT NULL DEFAULT 0,
    failing_since         TEXT,
    last_published_at     TEXT,
    -- Lease: which daemon instance is polling this feed, and until when.
    lease_owner           TEXT,
    lease_expires_at      TEXT
);
CREATE INDEX feeds_due_idx ON feeds (next_poll_at) WHERE enabled;

-- Old URLs of feeds that moved permanently (301/308).
CREATE TABLE feed_url_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    feed_id     INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    old_url     TEXT NOT NULL,
    new_url     TEXT NOT NULL,
    changed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);

-- One row per poll, for feed health over time.
CREATE TABLE polls (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    feed_id      INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    started_at   TEXT NOT NULL,
    duration_ms  INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    http_status  INTEGER,
    error_class  TEXT,
    error        TEXT,
    bytes        INTEGER NOT NULL DEFAULT 0,
    items_seen   INTEGER NOT NULL DEFAULT 0,
    items_new    INTEGER NOT NULL DEFAULT 0,
    items_updated INTEGER NOT NULL DEFAULT 0,
    items_folded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX polls_feed_idx ON polls (feed_id, started_at DESC);

CREATE TABLE stories (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Checked at commit: a story and its first item are written in one
    -- transaction.
    canonical_item_id   INTEGER REFERENCES items(id) DEFERRABLE INITIALLY DEFERRED,
    first_published_at  TEXT,
    item_count          INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);
CREATE INDEX stories_newest_idx ON stories (first_published_at DESC, id DESC);

CREATE TABLE items (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    feed_id         INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    -- Stable per-feed identity: guid, else link, else a content hash.
    identity        TEXT NOT NULL,
    guid            TEXT,
    url             TEXT,
    canonical_url   TEXT,
    -- Canonical URL of the original this item cites ("appeared first on",
    -- rel=canonical, "Source:"), if any.
    origin_url      TEXT,
    title           TEXT,
    summary         TEXT,
    content_text    TEXT NOT NULL DEFAULT '',
    author          TEXT,
    lang            TEXT,
    published_at    TEXT,
    updated_at      TEXT,
    fetched_at      TEXT NOT NULL,
    -- published_at if plausible, else fetched_at: the time folding windows use.
    dated_at        TEXT NOT NULL,
    story_id        INTEGER NOT NULL REFERENCES stories(id),
    -- Fingerprints (src/fingerprint). Hashes are u64 bit patterns stored as i64.
    fp_version      INTEGER NOT NULL,
    simhash         INTEGER NOT NULL,
    band0           INTEGER NOT NULL,
    band1           INTEGER NOT NULL,
    band2           INTEGER NOT NULL,
    band3           INTEGER NOT NULL,
    lead_hash       INTEGER,
    content_hash    INTEGER,
    headline_key    TEXT,
    headline_hash   INTEGER,
    text_len        INTEGER NOT NULL DEFAULT 0,
    -- The item shows republisher marks (stripped feed template, an
    -- off-site pointer); canonical choice prefers unmarked copies.
    republished     INTEGER NOT NULL DEFAULT 0,
    anchors         TEXT,
    -- Hash of everything that makes an item "changed" on re-poll.
    revision_hash   INTEGER NOT NULL,
    UNIQUE (feed_id, identity)
);
CREATE INDEX items_story_idx ON items (story_id);
CREATE INDEX items_feed_idx ON items (feed_id, dated_at DESC);
CREATE INDEX items_band0_idx ON items (band0, dated_at);
CREATE INDEX items_band1_idx ON items (band1, dated_at);
CREATE INDEX items_band2_idx ON items (band2, dated_at);
CREATE INDEX items_band3_idx ON items (band3, dated_at);
CREATE INDEX items_content_hash_idx ON items (content_hash) WHERE content_hash IS NOT NULL;
CREATE INDEX items_canonical_url_idx ON items (canonical_url) WHERE canonical_url IS NOT NULL;
CREATE INDEX items_origin_url_idx ON items (origin_url) WHERE origin_url IS NOT NULL;
-- Candidate windows count the items dated inside them (rarity denominator).
CREATE INDEX items_dated_idx ON items (dated_at);

-- Full-text search over title and body (PostgreSQL: items.search).
CREATE VIRTUAL TABLE items_fts USING fts5(
    title, content_text, content = 'items', content_rowid = 'id'
);
CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
    INSERT INTO items_fts (rowid, title, content_text)
    VALUES (new.id, new.title, new.content_text);
END;
CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
    INSERT INTO items_fts (items_fts, rowid, title, content_text)
    VALUES ('delete', old.id, old.title, old.content_text);
END;
CREATE TRIGGER items_fts_update AFTER UPDATE OF title, content_text ON items BEGIN
    INSERT INTO items_fts (items_fts, rowid, title, content_text)
    VALUES ('delete', old.id, old.title, old.content_text);
    INSERT INTO items_fts (rowid, title, content_text)
    VALUES (new.id, new.title, new.content_text);
END;

-- Lookup keys for candidate search: lead hash, headline hash and anchor
-- hashes, each already mixed with its kind (src/dedup). Opaque to SQL users.
CREATE TABLE item_keys (
    key       INTEGER NOT NULL,
    item_id   INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    dated_at  TEXT NOT NULL,
    PRIMARY KEY (key, item_id)
);
CREATE INDEX item_keys_item_idx ON item_keys (item_id);
CREATE INDEX item_keys_key_dated_idx ON item_keys (key, dated_at);

-- Why each folded item sits in its story. Items that founded their story
-- have no row here.
CREATE TABLE folds (
    item_id          INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    story_id         INTEGER NOT NULL REFERENCES stories(id),
    -- NULL once the matched item is gone (its feed was removed): the record
    -- of how this item joined its story stays.
    matched_item_id  INTEGER REFERENCES items(id) ON DELETE SET NULL,
    method           TEXT NOT NULL,
    distance         INTEGER,
    score            REAL,
    detail           TEXT,
    decided_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);
CREATE INDEX folds_story_idx ON folds (story_id);
CREATE INDEX folds_matched_idx ON folds (matched_item_id);

-- Folds undone by `feedfold unfold`: never fold this item into that story again.
CREATE TABLE fold_vetoes (
    item_id    INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    story_id   INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    PRIMARY KEY (item_id, story_id)
);

-- Boilerplate learned per feed: hashes of paragraph shapes that recur across
-- the feed's items (src/normalize).
CREATE TABLE feed_boilerplate (
    feed_id     INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    shape_hash  INTEGER NOT NULL,
    seen_count  INTEGER NOT NULL DEFAULT 1,
    last_seen   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    PRIMARY KEY (feed_id, shape_hash)
);

-- Views: the stable way to ask the common questions (docs/sql.md).
CREATE VIEW story_overview AS
SELECT s.id AS story_id, s.first_published_at, s.item_count AS copies,
       i.id AS canonical_item_id, i.title, i.url, i.feed_id AS canonical_feed_id,
       f.title AS canonical_feed_title, s.updated_at
FROM stories s
JOIN items i ON i.id = s.canonical_item_id
JOIN feeds f ON f.id = i.feed_id;

CREATE VIEW story_copies AS
SELECT i.story_id, i.id AS item_id, i.feed_id, f.title AS feed_title, f.url AS feed_url,
       i.title, i.url, i.lang, i.published_at, i.fetched_at,
       (s.canonical_item_id = i.id) AS is_canonical,
       fo.method AS fold_method, fo.distance AS fold_distance, fo.score AS fold_score,
       fo.matched_item_id, fo.detail AS fold_detail
FROM items i
JOIN stories s ON s.id = i.story_id
JOIN feeds f ON f.id = i.feed_id
LEFT JOIN folds fo ON fo.item_id = i.id;

CREATE VIEW story_first_carriers AS
SELECT story_id, feed_id, feed_title, item_id, carried_at
FROM (
    SELECT i.story_id, i.feed_id, f.title AS feed_title, i.id AS item_id, i.dated_at AS carried_at,
           row_number() OVER (PARTITION BY i.story_id ORDER BY i.dated_at, i.id) AS rn
    FROM items i JOIN feeds f ON f.id = i.feed_id
)
WHERE rn = 1;

CREATE VIEW feed_errors AS
SELECT id AS feed_id, url, title, enabled, disabled_reason, last_status, last_http_status,
       last_error_class, last_error, error_count, failing_since, last_polled_at, next_poll_at
FROM feeds
WHERE error_count > 0 OR NOT enabled;
