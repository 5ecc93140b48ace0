-- The who-viewed index leaves the commit path. Every read by another organisation appends an
-- entry, and this index, ordered by record id, cost every batch of read audits a page write per
-- entry (docs/benchmarks.md, run 10). An indexer fills `audit_views` behind the log instead
-- (see view_index.rs); the owner's list of viewers reads it up to the chain's watermark in
-- `audit_views_done` and the log after that, so the list is complete at once.
DROP INDEX audit_record;

-- Derived from audit_log, rebuilt from it when the watermark's hash no longer matches the log
-- (after a restore, say).
CREATE TABLE audit_views (
    pref_code BIGINT NOT NULL,
    record_id BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (pref_code, record_id, seq)
);
-- Per chain: the indexer has read the log up to `seq`, whose entry has `hash`.
CREATE TABLE audit_views_done (
    pref_code BIGINT PRIMARY KEY,
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL
);
