-- Nationwide person search (issue 4). Keys are maintained on every record write, in the same
-- transaction; `tsunagu-server rebuild-search-index` recomputes them from the records.
-- The table is its own index (WITHOUT ROWID): a lookup is one range scan of
-- (kind, key[, birth]) with a LIMIT. Text compares as UTF-8 bytes (BINARY), as on PostgreSQL
-- with COLLATE "C", so prefix ranges mean the same on both engines.
CREATE TABLE search_keys (
    kind      TEXT NOT NULL,
    key       TEXT NOT NULL,
    birth     INTEGER NOT NULL,
    record_id INTEGER NOT NULL,
    pref_code INTEGER NOT NULL,
    PRIMARY KEY (kind, key, birth, record_id, pref_code)
) WITHOUT ROWID;

-- What search may show of a record (name, reading, sex, birth date, guardian names: never the
-- address), so ranking never loads a record body.
CREATE TABLE search_docs (
    pref_code INTEGER NOT NULL,
    record_id INTEGER NOT NULL,
    owner_org TEXT NOT NULL,
    serious   INTEGER NOT NULL,
    birth     INTEGER NOT NULL,
    fields    TEXT NOT NULL,
    PRIMARY KEY (pref_code, record_id)
);
