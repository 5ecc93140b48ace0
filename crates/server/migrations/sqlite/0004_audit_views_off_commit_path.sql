-- The who-viewed index leaves the commit path. Every read by another organisation appends an
-- entry, and this index, ordered by record id, made each entry dirty a leaf page of its own in
-- the commit that makes the read's entry durable (docs/benchmarks.md, run 10). The index now
-- lives in a file of its own, derived from this log and filled behind it (see view_index.rs);
-- the owner's list of viewers reads it up to its watermark and the log after that.
DROP INDEX audit_record;
