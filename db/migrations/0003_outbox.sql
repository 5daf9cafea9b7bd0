-- 0003_outbox: events waiting to be published (PROTOCOL.md §6).
--
-- ConnectBlock and DisconnectBlock write a block's events here in the
-- block's own transaction; the relay publishes them in seq order and marks
-- each published when JetStream acknowledges it. Rows are history, not
-- chain state: a disconnect adds retractions rather than deleting, and the
-- state digest does not cover this table.
CREATE TABLE outbox (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT, -- publish order
    msg_id    TEXT    NOT NULL UNIQUE,           -- the Nats-Msg-Id header
    subject   TEXT    NOT NULL,
    payload   BLOB    NOT NULL,                  -- the event, CloudEvents JSON
    kind      TEXT    NOT NULL CHECK (kind IN ('verdict', 'retraction', 'rollback', 'report')),
    -- The block whose connection (verdict) or disconnection (retraction,
    -- rollback) wrote the row, and which connection of it that was.
    block_id  BLOB    CHECK (block_id IS NULL OR length(block_id) = 32),
    connects  INTEGER CHECK (connects IS NULL OR connects >= 1),
    written   INTEGER NOT NULL,                  -- Unix milliseconds
    published INTEGER                            -- Unix milliseconds of the ack; NULL until then
) STRICT;

CREATE INDEX outbox_pending ON outbox (seq) WHERE published IS NULL;
CREATE INDEX outbox_block ON outbox (block_id, connects) WHERE kind = 'verdict'; -- DisconnectBlock's retractions

-- How many times each header was connected: part of the message ids of its
-- events, so that a block connected again after a disconnect publishes anew
-- instead of being dropped as a duplicate of its first connection.
ALTER TABLE headers ADD COLUMN connects INTEGER NOT NULL DEFAULT 1 CHECK (connects >= 1);
