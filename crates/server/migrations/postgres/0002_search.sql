-- Nationwide person search (issue 4), PostgreSQL flavour: LIST-partitioned by prefecture like
-- the record tables. Keys are maintained on every record write, in the same transaction;
-- `tsunagu-server rebuild-search-index` recomputes them from the records.
-- COLLATE "C": keys compare as UTF-8 bytes, as on SQLite, so a prefix range
-- (key >= p AND key < p || U+10FFFF) is an index range scan and means the same on both engines.
CREATE TABLE search_keys (
    kind      TEXT NOT NULL,
    key       TEXT COLLATE "C" NOT NULL,
    birth     BIGINT NOT NULL,
    record_id BIGINT NOT NULL,
    pref_code BIGINT NOT NULL,
    PRIMARY KEY (kind, key, birth, record_id, pref_code)
) PARTITION BY LIST (pref_code);

-- What search may show of a record (never the address), so ranking never loads a body.
CREATE TABLE search_docs (
    pref_code BIGINT NOT NULL,
    record_id BIGINT NOT NULL,
    owner_org TEXT NOT NULL,
    serious   BOOLEAN NOT NULL,
    birth     BIGINT NOT NULL,
    fields    TEXT NOT NULL,
    PRIMARY KEY (pref_code, record_id)
) PARTITION BY LIST (pref_code);

DO $$
BEGIN
    FOR p IN 0..47 LOOP
        EXECUTE format('CREATE TABLE search_keys_p%s PARTITION OF search_keys FOR VALUES IN (%s)', lpad(p::text, 2, '0'), p);
        EXECUTE format('CREATE TABLE search_docs_p%s PARTITION OF search_docs FOR VALUES IN (%s)', lpad(p::text, 2, '0'), p);
    END LOOP;
END $$;
