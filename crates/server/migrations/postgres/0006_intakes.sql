-- Intake reports (通告受理), saved the moment staff type them, before anyone knows which child
-- they concern. Times are microseconds since the Unix epoch, as elsewhere. The intake as typed
-- is `body` (JSON, crates/record intake::IntakeInput); the columns beside it are what lists,
-- the safety clock and links are decided on. Not partitioned on PostgreSQL: intakes are few
-- beside records (a report a case), and every query names the organisation or the record.
CREATE TABLE intakes (
    id              BIGSERIAL PRIMARY KEY,
    pref_code       BIGINT NOT NULL,
    org_id          TEXT NOT NULL REFERENCES orgs(id),
    status          TEXT NOT NULL,
    record_id       BIGINT,
    version         BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    safety_hours    BIGINT NOT NULL,
    due_at          BIGINT NOT NULL,
    confirmed_at    BIGINT,
    confirmation    TEXT,
    -- How many of the safety clock's reminder points were notified (intake::rules::stage):
    -- raised by one conditional UPDATE, so two servers never notify a point twice.
    reminded_stage  BIGINT NOT NULL DEFAULT 0,
    received_by     TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX intakes_org ON intakes(org_id, id);
CREATE INDEX intakes_record ON intakes(record_id);
CREATE INDEX intakes_unconfirmed_due ON intakes(due_at) WHERE confirmed_at IS NULL;

-- Per-organisation settings (issue 19 brings their administration); for now the hours of the
-- safety clock. No row: the defaults.
CREATE TABLE org_settings (
    org_id        TEXT PRIMARY KEY REFERENCES orgs(id),
    safety_hours  BIGINT
);

-- A notification about an intake (sent to a record's owner, a safety reminder) names it;
-- record_id is then the linked record, or 0 for an intake not linked yet (the column stays
-- NOT NULL: SQLite would have to rebuild the table to drop that).
ALTER TABLE notifications ADD COLUMN intake_id BIGINT;
