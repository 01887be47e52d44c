-- feedfold schema, PostgreSQL. This file never changes once landed: add a new
-- migration instead. Table, column and view names are a public interface
-- (docs/sql.md).

CREATE TABLE feeds (
    id                    BIGSERIAL PRIMARY KEY,
    url                   TEXT NOT NULL UNIQUE,
    title                 TEXT,
    site_url              TEXT,
    language              TEXT,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- 'normal', 'original_only' (its items are never folded into another
    -- story, but copies may fold into it) or 'never' (never folds either way).
    fold_policy           TEXT NOT NULL DEFAULT 'normal',
    -- Comma-separated ISO 639-1 codes the feed publishes in, when known.
    languages             TEXT,
    fold_translations     BOOLEAN NOT NULL DEFAULT TRUE,
    enabled               BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason       TEXT,
    disabled_at           TIMESTAMPTZ,
    -- Conditional GET validators from the last 200 response.
    etag                  TEXT,
    last_modified         TEXT,
    poll_interval_secs    INTEGER,
    next_poll_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_polled_at        TIMESTAMPTZ,
    last_success_at       TIMESTAMPTZ,
    last_status           TEXT,
    last_http_status      INTEGER,
    last_error_class      TEXT,
    last_error            TEXT,
    error_count           INTEGER NOT NULL DEFAULT 0,
    failing_since         TIMESTAMPTZ,
    last_published_at     TIMESTAMPTZ,
    -- Lease: which daemon instance is polling this feed, and until when.
    lease_owner           TEXT,
    lease_expires_at      TIMESTAMPTZ
);
CREATE INDEX feeds_due_idx ON feeds (next_poll_at) WHERE enabled;

-- Old URLs of feeds that moved permanently (301/308).
CREATE TABLE feed_url_history (
    id          BIGSERIAL PRIMARY KEY,
    feed_id     BIGINT NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    old_url     TEXT NOT NULL,
    new_url     TEXT NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per poll, for feed health over time.
CREATE TABLE polls (
    id           BIGSERIAL PRIMARY KEY,
    feed_id      BIGINT NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    started_at   TIMESTAMPTZ NOT NULL,
    duration_ms  INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    http_status  INTEGER,
    error_class  TEXT,
    error        TEXT,
    bytes        BIGINT NOT NULL DEFAULT 0,
    items_seen   INTEGER NOT NULL DEFAULT 0,
    items_new    INTEGER NOT NULL DEFAULT 0,
    items_updated INTEGER NOT NULL DEFAULT 0,
    items_folded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX polls_feed_idx ON polls (feed_id, started_at DESC);

CREATE TABLE stories (
    id                  BIGSERIAL PRIMARY KEY,
    canonical_item_id   BIGINT,
    first_published_at  TIMESTAMPTZ,
    item_count          INTEGER NOT NULL DEFAULT 0,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stories_newest_idx ON stories (first_published_at DESC NULLS LAST, id DESC);

CREATE TABLE items (
    id              BIGSERIAL PRIMARY KEY,
    feed_id         BIGINT NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
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
    published_at    TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ,
    fetched_at      TIMESTAMPTZ NOT NULL,
    -- published_at if plausible, else fetched_at: the time folding windows use.
    dated_at        TIMESTAMPTZ NOT NULL,
    story_id        BIGINT NOT NULL REFERENCES stories(id),
    -- Fingerprints (src/fingerprint). Hashes are u64 bit patterns stored as i64.
    fp_version      SMALLINT NOT NULL,
    simhash         BIGINT NOT NULL,
    band0           INTEGER NOT NULL,
    band1           INTEGER NOT NULL,
    band2           INTEGER NOT NULL,
    band3           INTEGER NOT NULL,
    lead_hash       BIGINT,
    content_hash    BIGINT,
    headline_key    TEXT,
    headline_hash   BIGINT,
    text_len        INTEGER NOT NULL DEFAULT 0,
    -- The item shows republisher marks (stripped feed template, an
    -- off-site pointer); canonical choice prefers unmarked copies.
    republished     BOOLEAN NOT NULL DEFAULT FALSE,
    anchors         TEXT,
    -- Hash of everything that makes an item "changed" on re-poll.
    revision_hash   BIGINT NOT NULL,
    search          tsvector GENERATED ALWAYS AS (
                        to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(content_text, ''))
                    ) STORED,
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
CREATE INDEX items_search_idx ON items USING GIN (search);
-- Candidate windows count the items dated inside them (rarity denominator).
CREATE INDEX items_dated_idx ON items (dated_at);

ALTER TABLE stories ADD CONSTRAINT stories_canonical_item_fk
    FOREIGN KEY (canonical_item_id) REFERENCES items(id) DEFERRABLE INITIALLY DEFERRED;

-- Lookup keys for candidate search: lead hash, headline hash and anchor
-- hashes, each already mixed with its kind (src/dedup). Opaque to SQL users.
CREATE TABLE item_keys (
    key       BIGINT NOT NULL,
    item_id   BIGINT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    dated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key, item_id)
);
CREATE INDEX item_keys_item_idx ON item_keys (item_id);
CREATE INDEX item_keys_key_dated_idx ON item_keys (key, dated_at);

-- Why each folded item sits in its story. Items that founded their story
-- have no row here.
CREATE TABLE folds (
    item_id          BIGINT PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    story_id         BIGINT NOT NULL REFERENCES stories(id),
    -- NULL once the matched item is gone (its feed was removed): the record
    -- of how this item joined its story stays.
    matched_item_id  BIGINT REFERENCES items(id) ON DELETE SET NULL,
    method           TEXT NOT NULL,
    distance         INTEGER,
    score            DOUBLE PRECISION,
    detail           TEXT,
    decided_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX folds_story_idx ON folds (story_id);
CREATE INDEX folds_matched_idx ON folds (matched_item_id);

-- Folds undone by `feedfold unfold`: never fold this item into that story again.
CREATE TABLE fold_vetoes (
    item_id    BIGINT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    story_id   BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (item_id, story_id)
);

-- Boilerplate learned per feed: hashes of paragraph shapes that recur across
-- the feed's items (src/normalize).
CREATE TABLE feed_boilerplate (
    feed_id     BIGINT NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    shape_hash  BIGINT NOT NULL,
    seen_count  INTEGER NOT NULL DEFAULT 1,
    last_seen   TIMESTAMPTZ NOT NULL DEFAULT now(),
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
SELECT DISTINCT ON (i.story_id) i.story_id, i.feed_id, f.title AS feed_title,
       i.id AS item_id, i.dated_at AS carried_at
FROM items i JOIN feeds f ON f.id = i.feed_id
ORDER BY i.story_id, i.dated_at, i.id;

CREATE VIEW feed_errors AS
SELECT id AS feed_id, url, title, enabled, disabled_reason, last_status, last_http_status,
       last_error_class, last_error, error_count, failing_since, last_polled_at, next_poll_at
FROM feeds
WHERE error_count > 0 OR NOT enabled;
