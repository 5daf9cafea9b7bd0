-- 0001_init: the chain state the scanner keeps.
--
-- Ids (headers, transactions, boxes, tokens) are 32-byte BLOBs. Heights,
-- indexes and amounts are INTEGERs: SQLite's signed 64-bit integer holds
-- every Ergo amount exactly (they are at most 2^63-1). Tables are STRICT, so
-- a value of the wrong type is rejected rather than converted.
--
-- Only main-chain state is kept apart from headers: DisconnectBlock deletes
-- what a block created and restores what it spent, so a transaction or box
-- id is unique in its table. Headers are never deleted; a disconnected
-- header stays with main_chain = 0 so that reconnecting it only flips the
-- flag.

-- Every header ConnectBlock has seen.
CREATE TABLE headers (
    id         BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    height     INTEGER NOT NULL CHECK (height > 0),
    parent_id  BLOB    NOT NULL CHECK (length(parent_id) = 32),
    timestamp  INTEGER NOT NULL, -- the header's, milliseconds since the Unix epoch
    main_chain INTEGER NOT NULL CHECK (main_chain IN (0, 1))
) STRICT, WITHOUT ROWID;

-- At most one main-chain header per height; MainChainID's lookup.
CREATE UNIQUE INDEX headers_main_chain_height ON headers (height) WHERE main_chain = 1;

-- The cursor: the last connected block, or after a disconnect its parent
-- (which need not be stored when the store started above it). No row: the
-- store is empty and accepts any first block.
CREATE TABLE tip (
    singleton INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 0),
    height    INTEGER NOT NULL CHECK (height >= 0),
    id        BLOB    NOT NULL CHECK (length(id) = 32)
) STRICT;

-- Transactions that created, spent or read a stored box.
CREATE TABLE transactions (
    id       BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    block_id BLOB    NOT NULL REFERENCES headers (id),
    height   INTEGER NOT NULL CHECK (height > 0),
    tx_index INTEGER NOT NULL CHECK (tx_index >= 0), -- position in the block
    UNIQUE (block_id, tx_index) -- also DisconnectBlock's lookup
) STRICT, WITHOUT ROWID;

-- Relevant boxes. A rowid table: an ErgoTree can be kilobytes, too large a
-- row for a WITHOUT ROWID b-tree.
--
-- The spent_* columns are the spend journal: they name the block that spent
-- the box, so DisconnectBlock restores exactly what that block spent.
CREATE TABLE boxes (
    id              BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    tx_id           BLOB    NOT NULL REFERENCES transactions (id) DEFERRABLE INITIALLY DEFERRED,
    block_id        BLOB    NOT NULL CHECK (length(block_id) = 32),
    height          INTEGER NOT NULL CHECK (height > 0),
    output_index    INTEGER NOT NULL CHECK (output_index >= 0),
    value           INTEGER NOT NULL CHECK (value >= 0), -- nanoERG
    ergo_tree       BLOB    NOT NULL,
    -- sha256 of the tree without its segregated constants; NULL when the
    -- tree's constants do not parse.
    template_hash   BLOB    CHECK (template_hash IS NULL OR length(template_hash) = 32),
    creation_height INTEGER NOT NULL CHECK (creation_height >= 0),
    -- Serialized register values, verbatim; contiguous from R4.
    r4 BLOB,
    r5 BLOB CHECK (r5 IS NULL OR r4 IS NOT NULL),
    r6 BLOB CHECK (r6 IS NULL OR r5 IS NOT NULL),
    r7 BLOB CHECK (r7 IS NULL OR r6 IS NOT NULL),
    r8 BLOB CHECK (r8 IS NULL OR r7 IS NOT NULL),
    r9 BLOB CHECK (r9 IS NULL OR r8 IS NOT NULL),
    spent_tx_id     BLOB    REFERENCES transactions (id) DEFERRABLE INITIALLY DEFERRED,
    spent_block_id  BLOB,
    spent_height    INTEGER,
    CHECK ((spent_tx_id IS NULL) = (spent_block_id IS NULL)
       AND (spent_tx_id IS NULL) = (spent_height IS NULL))
) STRICT;

CREATE INDEX boxes_block ON boxes (block_id); -- DisconnectBlock: what the block created
CREATE INDEX boxes_tx ON boxes (tx_id); -- a transaction's outputs; the foreign key
CREATE INDEX boxes_spent_block ON boxes (spent_block_id) WHERE spent_block_id IS NOT NULL; -- DisconnectBlock: what the block spent
CREATE INDEX boxes_spent_tx ON boxes (spent_tx_id) WHERE spent_tx_id IS NOT NULL; -- the foreign key
CREATE INDEX boxes_template ON boxes (template_hash) WHERE template_hash IS NOT NULL;

-- A valid chain spends a box once; a second spend means the store and the
-- chain it is given have diverged.
CREATE TRIGGER boxes_spent_once BEFORE UPDATE OF spent_tx_id ON boxes
WHEN OLD.spent_tx_id IS NOT NULL AND NEW.spent_tx_id IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'box already spent');
END;

CREATE TABLE box_tokens (
    box_id   BLOB    NOT NULL REFERENCES boxes (id),
    position INTEGER NOT NULL CHECK (position >= 0),
    token_id BLOB    NOT NULL CHECK (length(token_id) = 32),
    amount   INTEGER NOT NULL CHECK (amount > 0),
    PRIMARY KEY (box_id, position)
) STRICT, WITHOUT ROWID;

CREATE INDEX box_tokens_token ON box_tokens (token_id);

-- Stored boxes read by data inputs.
CREATE TABLE data_input_reads (
    tx_id    BLOB    NOT NULL REFERENCES transactions (id) DEFERRABLE INITIALLY DEFERRED,
    position INTEGER NOT NULL CHECK (position >= 0), -- index among the transaction's data inputs
    box_id   BLOB    NOT NULL REFERENCES boxes (id),
    block_id BLOB    NOT NULL CHECK (length(block_id) = 32),
    height   INTEGER NOT NULL CHECK (height > 0),
    PRIMARY KEY (tx_id, position)
) STRICT, WITHOUT ROWID;

CREATE INDEX data_input_reads_box ON data_input_reads (box_id);
CREATE INDEX data_input_reads_block ON data_input_reads (block_id);
