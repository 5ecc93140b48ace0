-- tsunagu schema, PostgreSQL flavour: record, version and audit tables are LIST-partitioned by
-- prefecture code (0 holds national organisations' audit entries). Times are microseconds since
-- the Unix epoch (BIGINT), as on SQLite, so both engines hash them identically.

CREATE TABLE orgs (
    id        TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,
    name      TEXT NOT NULL,
    pref_code BIGINT NOT NULL,
    lgcode    TEXT UNIQUE,
    phone     TEXT NOT NULL,
    cgc_id    TEXT REFERENCES orgs(id)
);

CREATE TABLE users (
    id             BIGSERIAL PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs(id),
    login          TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    totp_secret    TEXT NOT NULL,
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    failed_count   BIGINT NOT NULL DEFAULT 0,
    locked_until   BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE pref_counters (
    pref_code   BIGINT PRIMARY KEY,
    next_record BIGINT NOT NULL
);
INSERT INTO pref_counters (pref_code, next_record) SELECT n, 0 FROM generate_series(0, 47) AS n;

CREATE TABLE records (
    pref_code          BIGINT NOT NULL,
    id                 BIGINT NOT NULL,
    owner_org          TEXT NOT NULL REFERENCES orgs(id),
    version            BIGINT NOT NULL,
    status             TEXT NOT NULL,
    case_number        TEXT NOT NULL,
    municipality_code  TEXT NOT NULL,
    serious            BOOLEAN NOT NULL,
    missing            BOOLEAN NOT NULL,
    risk_level         TEXT,
    next_review        TEXT NOT NULL,
    address_restricted BOOLEAN NOT NULL,
    name_key           TEXT NOT NULL,
    kana_key           TEXT NOT NULL,
    birth_date         TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    created_by         TEXT NOT NULL,
    updated_at         BIGINT NOT NULL,
    updated_by         TEXT NOT NULL,
    restrictions       TEXT NOT NULL,
    body               TEXT NOT NULL,
    PRIMARY KEY (pref_code, id)
) PARTITION BY LIST (pref_code);
CREATE INDEX records_owner_updated ON records(owner_org, updated_at, id);
CREATE INDEX records_owner_review ON records(owner_org, next_review, id);
CREATE INDEX records_owner_case ON records(owner_org, case_number, id);
CREATE INDEX records_serious ON records(serious, updated_at, id);

CREATE TABLE record_versions (
    pref_code    BIGINT NOT NULL,
    record_id    BIGINT NOT NULL,
    version      BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    author       TEXT NOT NULL,
    restrictions TEXT NOT NULL,
    body         TEXT NOT NULL,
    PRIMARY KEY (pref_code, record_id, version)
) PARTITION BY LIST (pref_code);

CREATE TABLE audit_log (
    pref_code  BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    actor_user BIGINT,
    actor_org  TEXT NOT NULL,
    action     TEXT NOT NULL,
    record_id  BIGINT,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    PRIMARY KEY (pref_code, seq)
) PARTITION BY LIST (pref_code);
CREATE INDEX audit_record ON audit_log(record_id, action) WHERE record_id IS NOT NULL;

DO $$
BEGIN
    FOR p IN 0..47 LOOP
        EXECUTE format('CREATE TABLE records_p%s PARTITION OF records FOR VALUES IN (%s)', lpad(p::text, 2, '0'), p);
        EXECUTE format('CREATE TABLE record_versions_p%s PARTITION OF record_versions FOR VALUES IN (%s)', lpad(p::text, 2, '0'), p);
        EXECUTE format('CREATE TABLE audit_log_p%s PARTITION OF audit_log FOR VALUES IN (%s)', lpad(p::text, 2, '0'), p);
    END LOOP;
END $$;

CREATE TABLE audit_head (
    pref_code BIGINT PRIMARY KEY,
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL
);
-- One head per chain from the start, so appends only ever update (and lock) an existing row.
INSERT INTO audit_head (pref_code, seq, hash)
SELECT n, 0, '0000000000000000000000000000000000000000000000000000000000000000' FROM generate_series(0, 47) AS n;

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE notifications (
    id          BIGSERIAL PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    kind        TEXT NOT NULL,
    record_id   BIGINT NOT NULL,
    from_org_id TEXT NOT NULL,
    at          BIGINT NOT NULL,
    read        BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX notifications_org ON notifications(org_id, id);
