-- The audit log against whoever runs the database (docs/operations.md, The audit log):
-- every entry carries a MAC under a key kept apart from the database (empty on entries written
-- before the key existed; the server keys such chains at start), signed checkpoints of the
-- heads are stored beside the log, and the heads cannot be deleted.
ALTER TABLE audit_log ADD COLUMN mac TEXT NOT NULL DEFAULT '';

CREATE TABLE audit_checkpoints (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    key_id    TEXT NOT NULL,
    body      TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;

-- A head row is only ever moved (by the chain trigger), never removed or added.
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'audit_head rows cannot be deleted'); END;
CREATE TRIGGER audit_head_no_insert BEFORE INSERT ON audit_head
BEGIN SELECT RAISE(ABORT, 'audit_head rows cannot be added'); END;

-- Lists: a row whose casework the owner restricted is sorted and filtered for partners without
-- its hidden values (`CaseQuery::mask_others`). Kept by every write from here on.
ALTER TABLE records ADD COLUMN casework_restricted INTEGER NOT NULL DEFAULT 0;
UPDATE records SET casework_restricted = 1
WHERE EXISTS (SELECT 1 FROM json_each(records.restrictions, '$.groups') WHERE value = 'casework');

-- Refused reads (`record.access_refused`) by time, for `tsunagu-server refused-reads`; partial,
-- so no other entry pays for it.
CREATE INDEX audit_refused ON audit_log(at) WHERE action = 'record.access_refused';
