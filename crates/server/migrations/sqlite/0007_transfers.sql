-- Transfers when a family moves (転出・転入). One row per offer in `transfers`; its records (the
-- one offered, then its siblings: one family transfer) in `transfer_records`. On PostgreSQL not partitioned:
-- transfers are few beside records, and every query names the organisation, the transfer or
-- the record. Times are microseconds since the Unix epoch, as elsewhere.
CREATE TABLE transfers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The origin's prefecture: the audit chain of the transfer's entries.
    pref_code   INTEGER NOT NULL,
    from_org    TEXT NOT NULL REFERENCES orgs(id),
    to_org      TEXT NOT NULL REFERENCES orgs(id),
    -- pending, confirmed, declined, withdrawn (crates/record transfer::TransferStatus)
    status      TEXT NOT NULL,
    message     TEXT NOT NULL,
    -- JSON list of the fields not provided beyond the owner's restrictions.
    withhold    TEXT NOT NULL,
    offered_at  INTEGER NOT NULL,
    offered_by  TEXT NOT NULL,
    decided_at  INTEGER,
    decided_by  TEXT,
    reason      TEXT
);
CREATE INDEX transfers_from ON transfers(from_org, id);
CREATE INDEX transfers_to ON transfers(to_org, id);

CREATE TABLE transfer_records (
    transfer_id   INTEGER NOT NULL REFERENCES transfers(id),
    record_id     INTEGER NOT NULL,
    position      INTEGER NOT NULL,
    -- True while the transfer is pending; cleared with its status in the same transaction.
    pending       INTEGER NOT NULL,
    new_record_id INTEGER,
    PRIMARY KEY (transfer_id, record_id)
);
-- One open offer per record, kept by the database whatever the code does: a second pending row
-- for a record fails to insert.
CREATE UNIQUE INDEX transfer_records_one_open ON transfer_records(record_id) WHERE pending;
CREATE INDEX transfer_records_record ON transfer_records(record_id);

-- On the record's own row, so that every read decides its tier from the row alone: the pending
-- offer (destination, what it withholds) or, once confirmed, where the record went (JSON,
-- storage::RecordTransfer); and for a record a transfer registered, where it came from
-- (storage::StoredProvenance).
ALTER TABLE records ADD COLUMN transfer TEXT;
ALTER TABLE records ADD COLUMN provenance TEXT;

-- A notification about a transfer names it.
ALTER TABLE notifications ADD COLUMN transfer_id INTEGER;
