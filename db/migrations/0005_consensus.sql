-- 0005_consensus: what the header rules and the fork choice need.
--
-- Each connected header keeps its block version and nBits (the rules read
-- them back for later headers: the difficulty of an epoch's first block is
-- computed from the ends of earlier epochs) and its cumulative work: the
-- sum of the difficulties of the connected headers from the store's first
-- block up to it. A competing branch is adopted only when it carries more
-- work above the fork point than the stored one; the difference of two
-- cumulative works is the work between them. Works are 32-byte big-endian
-- integers, so that they compare as BLOBs in the order of the numbers.
--
-- Rows written before this migration have NULLs: the scanner fills the
-- ones its rules may read from the node (each checked against the stored
-- id) when it starts.
ALTER TABLE headers ADD COLUMN version INTEGER CHECK (version IS NULL OR version BETWEEN 1 AND 255);
ALTER TABLE headers ADD COLUMN n_bits INTEGER CHECK (n_bits IS NULL OR n_bits BETWEEN 0 AND 4294967295);
ALTER TABLE headers ADD COLUMN work BLOB CHECK (work IS NULL OR length(work) = 32);

-- Headers the auditor holds without their blocks: the ones below its first
-- block that difficulty computations read, and those it checked
-- headers-first between a checkpoint and the first block. Each is linked
-- by parent ids to the trust root (or checked by the header rules from
-- it); a block connected at one of these heights must be the one here.
-- One chain: at most one header per height.
CREATE TABLE context_headers (
    id        BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    height    INTEGER NOT NULL UNIQUE CHECK (height > 0),
    parent_id BLOB    NOT NULL CHECK (length(parent_id) = 32),
    timestamp INTEGER NOT NULL,
    version   INTEGER NOT NULL CHECK (version BETWEEN 1 AND 255),
    n_bits    INTEGER NOT NULL CHECK (n_bits BETWEEN 0 AND 4294967295)
) STRICT, WITHOUT ROWID;

-- The trust root: the header everything the auditor checked derives from.
-- A configured checkpoint, or with none the first block connected, or for
-- a store written before the header rules existed the first header they
-- were checked from. The chain the auditor follows passes through it.
CREATE TABLE trust_root (
    singleton INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 0),
    height    INTEGER NOT NULL CHECK (height > 0),
    id        BLOB    NOT NULL CHECK (length(id) = 32),
    kind      TEXT    NOT NULL CHECK (kind IN ('checkpoint', 'first_block', 'upgrade')),
    network   TEXT    NOT NULL,
    set_at    INTEGER NOT NULL -- Unix milliseconds
) STRICT;
