-- 0008_outbox_superseded: outbox rows an auditor running with HA did not
-- publish itself (README.md, High availability).
--
-- A standby publishes nothing, and a leader taking over publishes what the
-- stream lacks, found by comparing the stream with its own main chain,
-- rather than the rows its outbox holds from before. Such rows are done
-- with without being published: they get superseded = 1 and, so that every
-- query for pending rows stays "published IS NULL", published is set to the
-- time they were superseded. Without HA no row is ever superseded.
ALTER TABLE outbox ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0 CHECK (superseded IN (0, 1));
