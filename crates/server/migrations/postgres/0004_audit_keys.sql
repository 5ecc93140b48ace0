-- The audit log against whoever runs the database (docs/operations.md, The audit log):
-- every entry carries a MAC under a key kept apart from the database (empty on entries written
-- before the key existed; the server keys such chains at start), signed checkpoints of the
-- heads are stored beside the log, the heads cannot be deleted, and every partition refuses
-- TRUNCATE (a statement trigger on the parent does not fire for TRUNCATE of a partition).
ALTER TABLE audit_log ADD COLUMN mac TEXT NOT NULL DEFAULT '';

CREATE TABLE audit_checkpoints (
    id        BIGSERIAL PRIMARY KEY,
    at        BIGINT NOT NULL,
    key_id    TEXT NOT NULL,
    body      TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE FUNCTION audit_head_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_head rows are only ever moved';
END $$;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE OR INSERT ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_fixed();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_head_fixed();

DO $$
BEGIN
    FOR p IN 0..47 LOOP
        EXECUTE format('CREATE TRIGGER audit_log_p%s_no_truncate BEFORE TRUNCATE ON audit_log_p%s FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()', lpad(p::text, 2, '0'), lpad(p::text, 2, '0'));
    END LOOP;
END $$;

-- Lists: a row whose casework the owner restricted is sorted and filtered for partners without
-- its hidden values (`CaseQuery::mask_others`). Kept by every write from here on.
ALTER TABLE records ADD COLUMN casework_restricted BOOLEAN NOT NULL DEFAULT false;
UPDATE records SET casework_restricted = true
WHERE (restrictions::jsonb -> 'groups') ? 'casework';

-- Refused reads (`record.access_refused`) by time, for `tsunagu-server refused-reads`; partial,
-- so no other entry pays for it.
CREATE INDEX audit_refused ON audit_log(at) WHERE action = 'record.access_refused';
