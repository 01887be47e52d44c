-- The exact-signal branches of the candidate search (canonical URL, content
-- hash, origin link) filter on the fold window too. With single-column
-- indexes, PostgreSQL's plan depended on column statistics: on a table not
-- yet analysed (a fresh bulk load, or a server running without autovacuum)
-- it estimated thousands of rows per URL and ANDed each lookup with a scan of
-- the whole window on items_dated_idx, 70 ms per candidate search at 400k
-- items. An index over (signal, dated_at) answers the whole condition, so the
-- plan no longer depends on statistics. Prefix lookups on the signal alone
-- use the same indexes. SQLite already chose the signal's index without
-- statistics, so its schema keeps the single-column ones.
--
-- The candidates' shared keys are read per candidate (item_id, then key):
-- an index on both answers that from the index alone, and still serves the
-- cascade from items, as the (item_id) index it replaces did.
DROP INDEX items_content_hash_idx;
DROP INDEX items_canonical_url_idx;
DROP INDEX items_origin_url_idx;
CREATE INDEX items_content_hash_dated_idx ON items (content_hash, dated_at)
    WHERE content_hash IS NOT NULL;
CREATE INDEX items_canonical_url_dated_idx ON items (canonical_url, dated_at)
    WHERE canonical_url IS NOT NULL;
CREATE INDEX items_origin_url_dated_idx ON items (origin_url, dated_at)
    WHERE origin_url IS NOT NULL;
DROP INDEX item_keys_item_idx;
CREATE INDEX item_keys_item_key_idx ON item_keys (item_id, key);
