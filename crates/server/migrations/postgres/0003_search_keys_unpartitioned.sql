-- Person search (issue 4): `search_keys` becomes one table instead of one per prefecture.
-- A search is nationwide, so a lookup never knows the prefecture: on the partitioned table each
-- range scan descended all 48 partitions' indexes and merged them (S1 in docs/benchmarks.md:
-- p50 7.9 ms at 1,000,000 records, against 1.2 ms on SQLite's single table). One B-tree makes
-- it one descent. Writes still name the whole key (kind, key, birth, record_id, pref_code), so
-- they stay primary-key probes. `search_docs` stays partitioned: it is read by
-- (pref_code, record_id), one arm per prefecture.
CREATE TABLE search_keys_all (
    kind      TEXT NOT NULL,
    key       TEXT COLLATE "C" NOT NULL,
    birth     BIGINT NOT NULL,
    record_id BIGINT NOT NULL,
    pref_code BIGINT NOT NULL
);

-- Copied first and indexed after: one sorted index build instead of 20 million inserts into it.
INSERT INTO search_keys_all (kind, key, birth, record_id, pref_code)
    SELECT kind, key, birth, record_id, pref_code FROM search_keys;

DROP TABLE search_keys;

ALTER TABLE search_keys_all RENAME TO search_keys;

ALTER TABLE search_keys
    ADD CONSTRAINT search_keys_pkey PRIMARY KEY (kind, key, birth, record_id, pref_code);

ANALYZE search_keys;
