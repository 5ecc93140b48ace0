-- The database keeps each audit chain linear by itself: an entry is accepted only if it
-- follows its chain's head (next sequence number, the head's hash as its prev_hash), and
-- accepting it moves the head. A writer that chained its entries from an out-of-date head is
-- refused with nothing written, so the server may chain entries from heads it remembers and
-- append them in one statement. Writers no longer move audit_head themselves.
CREATE TRIGGER audit_log_follows_head AFTER INSERT ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit entry does not follow its chain head')
    WHERE NOT EXISTS (
        SELECT 1 FROM audit_head
        WHERE pref_code = NEW.pref_code AND seq = NEW.seq - 1 AND hash = NEW.prev_hash
    );
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE pref_code = NEW.pref_code;
END;
