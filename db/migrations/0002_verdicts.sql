-- 0002_verdicts: the rules' conclusions (PROTOCOL.md §3–4).
--
-- Like the chain state of 0001, these rows describe the main chain only:
-- DisconnectBlock deletes the rows a block wrote (by block_id), which puts
-- every lineage back where it was.

-- One verdict per (box, protocol, kind): 'created' from the block that
-- creates the box, 'spent' (emission.escaped only) from the block that
-- spends an emission box.
CREATE TABLE verdicts (
    box_id   BLOB    NOT NULL CHECK (length(box_id) = 32),
    protocol TEXT    NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('created', 'spent')),
    class    TEXT    NOT NULL CHECK (class IN ('state', 'funnel', 'emission', 'emitted', 'participant')),
    verdict  TEXT    NOT NULL CHECK (verdict IN ('verified', 'invalid')),
    -- The reason codes, sorted and distinct, as a JSON array; [] when verified.
    reasons  TEXT    NOT NULL CHECK (json_valid(reasons) AND json_type(reasons) = 'array'),
    lineage  BLOB    CHECK (lineage IS NULL OR length(lineage) = 32), -- async token id
    tx_id    BLOB    NOT NULL CHECK (length(tx_id) = 32),
    tx_index INTEGER NOT NULL CHECK (tx_index >= 0),
    block_id BLOB    NOT NULL CHECK (length(block_id) = 32),
    height   INTEGER NOT NULL CHECK (height > 0),
    PRIMARY KEY (box_id, protocol, kind),
    CHECK ((verdict = 'verified') = (reasons = '[]'))
) STRICT, WITHOUT ROWID;

CREATE INDEX verdicts_block ON verdicts (block_id);
CREATE INDEX verdicts_height ON verdicts (height);
CREATE INDEX verdicts_lineage ON verdicts (lineage) WHERE lineage IS NOT NULL;

-- The lineage journal: one row per transaction that changed a lineage,
-- holding the lineage's state after it. A lineage's state is its last row
-- (by height, then step); the rows of a disconnected block go with it.
CREATE TABLE lineage_steps (
    token_id    BLOB    NOT NULL CHECK (length(token_id) = 32),
    protocol    TEXT    NOT NULL,
    height      INTEGER NOT NULL CHECK (height > 0),
    step        INTEGER NOT NULL CHECK (step >= 0), -- order within the block
    block_id    BLOB    NOT NULL CHECK (length(block_id) = 32),
    tx_id       BLOB    NOT NULL CHECK (length(tx_id) = 32),
    current_box BLOB    NOT NULL CHECK (length(current_box) = 32),
    broken      INTEGER NOT NULL CHECK (broken IN (0, 1)),
    closed      INTEGER NOT NULL CHECK (closed IN (0, 1)),
    minted      INTEGER NOT NULL CHECK (minted >= 0), -- supply minted by this transaction
    burnt       INTEGER NOT NULL CHECK (burnt >= 0),  -- tokens of the lineage it destroyed
    PRIMARY KEY (token_id, protocol, height, step)
) STRICT, WITHOUT ROWID;

CREATE INDEX lineage_steps_block ON lineage_steps (block_id);
