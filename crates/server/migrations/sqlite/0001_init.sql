-- tsunagu schema, SQLite flavour. Times are microseconds since the Unix epoch (BIGINT) so that
-- both engines store, order and hash them identically.

CREATE TABLE orgs (
    id        TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,
    name      TEXT NOT NULL,
    pref_code INTEGER NOT NULL,
    lgcode    TEXT UNIQUE,
    phone     TEXT NOT NULL,
    cgc_id    TEXT REFERENCES orgs(id)
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id         TEXT NOT NULL REFERENCES orgs(id),
    login          TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    totp_secret    TEXT NOT NULL,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    failed_count   INTEGER NOT NULL DEFAULT 0,
    locked_until   INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Per prefecture counters: record ids are pref_code * 10^12 + n, so an id names its partition.
CREATE TABLE pref_counters (
    pref_code   INTEGER PRIMARY KEY,
    next_record INTEGER NOT NULL
);
WITH RECURSIVE p(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM p WHERE n < 47)
INSERT INTO pref_counters (pref_code, next_record) SELECT n, 0 FROM p;

CREATE TABLE records (
    pref_code          INTEGER NOT NULL,
    id                 INTEGER NOT NULL,
    owner_org          TEXT NOT NULL REFERENCES orgs(id),
    version            INTEGER NOT NULL,
    status             TEXT NOT NULL,
    case_number        TEXT NOT NULL,
    municipality_code  TEXT NOT NULL,
    serious            INTEGER NOT NULL,
    missing            INTEGER NOT NULL,
    risk_level         TEXT,
    next_review        TEXT NOT NULL,
    address_restricted INTEGER NOT NULL,
    name_key           TEXT NOT NULL,
    kana_key           TEXT NOT NULL,
    birth_date         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    created_by         TEXT NOT NULL,
    updated_at         INTEGER NOT NULL,
    updated_by         TEXT NOT NULL,
    restrictions       TEXT NOT NULL,
    body               TEXT NOT NULL,
    PRIMARY KEY (pref_code, id)
);
CREATE INDEX records_owner_updated ON records(owner_org, updated_at, id);
CREATE INDEX records_owner_review ON records(owner_org, next_review, id);
CREATE INDEX records_owner_case ON records(owner_org, case_number, id);
CREATE INDEX records_serious ON records(serious, updated_at, id);

CREATE TABLE record_versions (
    pref_code    INTEGER NOT NULL,
    record_id    INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    author       TEXT NOT NULL,
    restrictions TEXT NOT NULL,
    body         TEXT NOT NULL,
    PRIMARY KEY (pref_code, record_id, version)
);

-- The operation log: one hash chain per prefecture (0 for national organisations).
CREATE TABLE audit_log (
    pref_code  INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    actor_user INTEGER,
    actor_org  TEXT NOT NULL,
    action     TEXT NOT NULL,
    record_id  INTEGER,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    PRIMARY KEY (pref_code, seq)
);
CREATE INDEX audit_record ON audit_log(record_id, action) WHERE record_id IS NOT NULL;

CREATE TABLE audit_head (
    pref_code INTEGER PRIMARY KEY,
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL
);
-- One head per chain from the start, so appends only ever update (and lock) an existing row.
INSERT INTO audit_head (pref_code, seq, hash)
SELECT pref_code, 0, '0000000000000000000000000000000000000000000000000000000000000000' FROM pref_counters;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    kind        TEXT NOT NULL,
    record_id   INTEGER NOT NULL,
    from_org_id TEXT NOT NULL,
    at          INTEGER NOT NULL,
    read        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notifications_org ON notifications(org_id, id);
