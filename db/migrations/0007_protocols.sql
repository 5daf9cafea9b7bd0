-- 0007_protocols: protocols over time — added to a running store,
-- rescanned, removed (issue 15).
--
-- Each protocol the store has judged for has a row. Its cursor is the
-- height its history is complete to: its verdicts and lineage steps, and
-- the boxes, spends and reads its judgements made relevant, are those of
-- a store that judged it at every block from its start up to the cursor.
-- A block at height h is judged for the protocols whose cursor is h-1,
-- which move to h in that block's transaction: the follower's new blocks
-- for the protocols at the tip, a backfill's already connected blocks for
-- one added later (or rescanned). DisconnectBlock of height h brings every
-- cursor above h-1 back to h-1, in its transaction. A cursor is never
-- above the tip nor below the store's first block less one.
CREATE TABLE protocols (
    name          TEXT    NOT NULL PRIMARY KEY,
    -- active: in the configuration; inactive: removed from it, its rows
    -- kept and no longer judged (its cursor stays); pruned: its rows
    -- deleted by `auditor prune` (the row keeps its generation).
    state         TEXT    NOT NULL CHECK (state IN ('active', 'inactive', 'pruned')),
    -- The configured start_height its history was judged from; NULL for
    -- a protocol judged before this migration (adopted at the next start).
    start_height  INTEGER CHECK (start_height IS NULL OR start_height >= 1),
    cursor        INTEGER NOT NULL CHECK (cursor >= 0),
    -- The first height of its backfill, under way or done; NULL when it
    -- was judged from the store's first block.
    backfill_from INTEGER CHECK (backfill_from IS NULL OR backfill_from >= 1),
    -- How many times its history was begun again (a rescan, a changed
    -- start_height, a return after a prune): part of the message ids of
    -- its verdicts, so that a verdict judged again is published anew.
    generation    INTEGER NOT NULL CHECK (generation >= 0),
    changed_at    INTEGER NOT NULL -- Unix milliseconds of the last change but the cursor's
) STRICT, WITHOUT ROWID;

-- Every protocol judged so far was judged at every block the store
-- connected (from its start_height): complete to the tip.
INSERT INTO protocols (name, state, cursor, generation, changed_at)
SELECT protocol, 'active', coalesce((SELECT height FROM tip), 0), 0, CAST(unixepoch('subsec') * 1000 AS INTEGER)
FROM (SELECT protocol FROM verdicts UNION SELECT protocol FROM lineage_steps);

-- A verdict event's protocol, so that a rescan finds the events it
-- retracts; and whether a retraction of it was written (by a disconnect
-- or a rescan), so that no event is retracted twice.
ALTER TABLE outbox ADD COLUMN protocol TEXT CHECK (protocol IS NULL OR kind = 'verdict');
ALTER TABLE outbox ADD COLUMN retracted INTEGER NOT NULL DEFAULT 0 CHECK (retracted IN (0, 1));
UPDATE outbox SET protocol = json_extract(CAST(payload AS TEXT), '$.data.protocol')
WHERE kind = 'verdict' AND json_valid(CAST(payload AS TEXT));
-- The events of a connection that is no longer the block's current one
-- were retracted by its disconnect.
UPDATE outbox SET retracted = 1 WHERE kind = 'verdict' AND NOT EXISTS (
    SELECT 1 FROM headers h WHERE h.id = outbox.block_id AND h.main_chain = 1 AND h.connects = outbox.connects);

-- A lineage step's number is now its place among its protocol's steps in
-- the block (it was its place among every protocol's), so that a
-- protocol's rows do not depend on which other protocols judged the block
-- with it: a backfilled protocol's equal those of one judged from the start.
CREATE TABLE lineage_steps_new (
    token_id    BLOB    NOT NULL CHECK (length(token_id) = 32),
    protocol    TEXT    NOT NULL,
    height      INTEGER NOT NULL CHECK (height > 0),
    step        INTEGER NOT NULL CHECK (step >= 0), -- order among the protocol's steps within the block
    block_id    BLOB    NOT NULL CHECK (length(block_id) = 32),
    tx_id       BLOB    NOT NULL CHECK (length(tx_id) = 32),
    current_box BLOB    NOT NULL CHECK (length(current_box) = 32),
    broken      INTEGER NOT NULL CHECK (broken IN (0, 1)),
    closed      INTEGER NOT NULL CHECK (closed IN (0, 1)),
    minted      INTEGER NOT NULL CHECK (minted >= 0),
    burnt       INTEGER NOT NULL CHECK (burnt >= 0),
    PRIMARY KEY (token_id, protocol, height, step)
) STRICT, WITHOUT ROWID;
INSERT INTO lineage_steps_new
SELECT token_id, protocol, height, row_number() OVER (PARTITION BY block_id, protocol ORDER BY step) - 1,
    block_id, tx_id, current_box, broken, closed, minted, burnt
FROM lineage_steps;
DROP TABLE lineage_steps;
ALTER TABLE lineage_steps_new RENAME TO lineage_steps;
CREATE INDEX lineage_steps_block ON lineage_steps (block_id);
