package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/async-emission/auditor/ergo"
)

// What an auditor running with HA reads to compare its main chain with
// what the stream holds (package ha), and how it records the outbox rows
// it does not publish itself.

// BlockEvents is a main-chain block and the verdict events of its current
// connection that no retraction retracted (a rescan's, or a prune's
// marking), in outbox order.
type BlockEvents struct {
	ID        ergo.Digest
	ParentID  ergo.Digest
	Height    uint32
	Timestamp uint64 // the header's, Unix milliseconds
	Connects  int
	Verdicts  []Message
}

// ChainEvents is the main chain's verdict events from a height up, read
// in one transaction together with the outbox row they correspond to: the
// chain they describe is the one the outbox rows up to OutboxSeq built.
type ChainEvents struct {
	// OutboxSeq is the last outbox row written (0: none).
	OutboxSeq int64
	// Tip is the store's tip; HasTip is false for an empty store.
	Tip    Tip
	HasTip bool
	// Blocks are the main-chain blocks with verdict events at heights
	// from From up, in ascending height.
	Blocks []BlockEvents
	// From and To are the heights read; Complete is true when they reach
	// the tip, false when the limit stopped the read at To.
	From, To uint32
	Complete bool
	// Main tells, for each id asked for, whether it is a main-chain block.
	Main map[ergo.Digest]bool
	// Protocols are the protocols' histories as of the same read.
	Protocols []ProtocolHistory
}

// ChainEvents reads the main chain's verdict events at heights from and
// above, whole blocks at a time, stopping after the block at which more
// than limit events above the height newAbove have been read (limit 0: no
// limit), and whether each of ids is a main-chain block, all in one read
// transaction with the outbox's last row.
func (s *Store) ChainEvents(ctx context.Context, from, newAbove uint32, limit int, ids []ergo.Digest) (*ChainEvents, error) {
	op := fmt.Sprintf("read the main chain's events from height %d", from)
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, storageError(ctx, op, "begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	out := &ChainEvents{From: from, Main: make(map[ergo.Digest]bool, len(ids))}
	// The first read fixes the transaction's snapshot: every later read
	// sees the same commit.
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM outbox`).Scan(&out.OutboxSeq); err != nil {
		return nil, storageError(ctx, op, "outbox", err)
	}
	if out.Tip, out.HasTip, err = readTip(ctx, tx); err != nil {
		return nil, storageError(ctx, op, "tip", err)
	}
	out.To, out.Complete = out.Tip.Height, true
	if !out.HasTip || out.Tip.Height < from {
		out.To = from
	} else if err := readBlockEvents(ctx, tx, out, eventsQuery{newAbove: newAbove, limit: limit}); err != nil {
		return nil, storageError(ctx, op, "", err)
	}
	if out.Protocols, err = readProtocolHistories(ctx, tx); err != nil {
		return nil, storageError(ctx, op, "the protocols", err)
	}
	for _, id := range ids {
		var main bool
		err := tx.QueryRowContext(ctx, `SELECT main_chain FROM headers WHERE id = ?`, id[:]).Scan(&main)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, storageError(ctx, op, "header "+id.String(), err)
		}
		out.Main[id] = main
	}
	return out, nil
}

// ProtocolChainEvents is ChainEvents for one protocol's verdict events, at
// heights from to to (the tip when lower): whole blocks at a time,
// stopping after the block at which more than limit events have been read
// (limit 0: no limit). Only Blocks, From, To and Complete are set.
func (s *Store) ProtocolChainEvents(ctx context.Context, protocol string, from, to uint32, limit int) (*ChainEvents, error) {
	op := fmt.Sprintf("read protocol %s's events from height %d to %d", protocol, from, to)
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, storageError(ctx, op, "begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	out := &ChainEvents{From: from, To: to, Complete: true}
	if err := readBlockEvents(ctx, tx, out, eventsQuery{limit: limit, protocol: protocol, to: to}); err != nil {
		return nil, storageError(ctx, op, "", err)
	}
	return out, nil
}

// eventsQuery narrows readBlockEvents: the limit of events above the
// height newAbove, one protocol's events (""), heights up to to (0: no
// bound).
type eventsQuery struct {
	newAbove, to uint32
	limit        int
	protocol     string
}

func readBlockEvents(ctx context.Context, tx *sql.Tx, out *ChainEvents, q eventsQuery) error {
	newAbove, limit := q.newAbove, q.limit
	to := q.to
	if to == 0 {
		to = math.MaxUint32
	}
	rows, err := tx.QueryContext(ctx, `SELECT h.id, h.parent_id, h.height, h.timestamp, h.connects, o.msg_id, o.subject, o.payload
		FROM headers h JOIN outbox o ON o.block_id = h.id AND o.connects = h.connects AND o.kind = 'verdict' AND o.retracted = 0
		WHERE h.main_chain = 1 AND h.height BETWEEN ? AND ? AND (?3 = '' OR o.protocol = ?3) ORDER BY h.height, o.seq`,
		out.From, to, q.protocol)
	if err != nil {
		return err
	}
	defer rows.Close()
	counted := 0
	for rows.Next() {
		var (
			id, parent []byte
			b          BlockEvents
			ts         int64
			m          Message
		)
		if err := rows.Scan(&id, &parent, &b.Height, &ts, &b.Connects, &m.ID, &m.Subject, &m.Payload); err != nil {
			return err
		}
		if err := scanDigest(id, &b.ID); err != nil {
			return err
		}
		n := len(out.Blocks)
		if n == 0 || out.Blocks[n-1].ID != b.ID {
			// A new block: stop before it once the last one reached the limit.
			if limit > 0 && counted >= limit {
				out.To, out.Complete = out.Blocks[n-1].Height, false
				return nil
			}
			if err := scanDigest(parent, &b.ParentID); err != nil {
				return err
			}
			b.Timestamp = uint64(ts)
			out.Blocks = append(out.Blocks, b)
			n++
		}
		out.Blocks[n-1].Verdicts = append(out.Blocks[n-1].Verdicts, m)
		if b.Height > newAbove {
			counted++
		}
	}
	return rows.Err()
}

// Header returns the stored header id with whether it is on the main
// chain; ok is false when it is not stored (context headers are not
// looked at).
func (s *Store) Header(ctx context.Context, id ergo.Digest) (r HeaderRecord, main, ok bool, err error) {
	row := s.r.QueryRowContext(ctx, `SELECT id, parent_id, height, timestamp, version, n_bits, work, 1, main_chain
		FROM headers WHERE id = ?`, id[:])
	if r, ok, err = scanHeaderRecord(row, &main); err != nil {
		err = storageError(ctx, "header "+id.String(), "", err)
	}
	return r, main, ok, err
}

// SupersedeOutbox marks the unpublished outbox rows seqs, and those up to
// through (0: none), superseded: done with without being published (see
// migrations/0008_outbox_superseded.sql). It returns how many rows it
// marked.
func (s *Store) SupersedeOutbox(ctx context.Context, seqs []int64, through int64) (int64, error) {
	list := make([]string, len(seqs))
	for i, q := range seqs {
		list[i] = fmt.Sprint(q)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE outbox SET published = ?, superseded = 1
		WHERE published IS NULL AND (seq <= ? OR seq IN (SELECT value FROM json_each(?)))`,
		time.Now().UnixMilli(), through, "["+strings.Join(list, ",")+"]")
	if err != nil {
		return 0, storageError(ctx, fmt.Sprintf("mark outbox rows superseded (%d and up to %d)", len(seqs), through), "", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, storageError(ctx, "mark outbox rows superseded", "", err)
	}
	return n, nil
}

// MainChainConnects returns, for each of ids that is a main-chain block,
// how many times it was connected (the connection its current events
// carry in their ids).
func (s *Store) MainChainConnects(ctx context.Context, ids []ergo.Digest) (map[ergo.Digest]int, error) {
	op := fmt.Sprintf("read the connections of %d blocks", len(ids))
	list := make([]string, len(ids))
	for i, id := range ids {
		list[i] = `"` + id.String() + `"`
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, connects FROM headers
		WHERE main_chain = 1 AND id IN (SELECT unhex(value) FROM json_each(?))`, "["+strings.Join(list, ",")+"]")
	if err != nil {
		return nil, storageError(ctx, op, "", err)
	}
	defer rows.Close()
	out := make(map[ergo.Digest]int, len(ids))
	for rows.Next() {
		var b []byte
		var id ergo.Digest
		var c int
		if err := rows.Scan(&b, &c); err != nil {
			return nil, storageError(ctx, op, "", err)
		}
		if err := scanDigest(b, &id); err != nil {
			return nil, storageError(ctx, op, "", err)
		}
		out[id] = c
	}
	if err := rows.Err(); err != nil {
		return nil, storageError(ctx, op, "", err)
	}
	return out, nil
}

// OutboxMessages returns the outbox's messages of the ids, those it
// holds, by id.
func (s *Store) OutboxMessages(ctx context.Context, ids []string) (map[string]Message, error) {
	op := fmt.Sprintf("read %d outbox messages", len(ids))
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, storageError(ctx, op, "", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT msg_id, subject, payload FROM outbox WHERE msg_id IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return nil, storageError(ctx, op, "", err)
	}
	defer rows.Close()
	out := make(map[string]Message, len(ids))
	for rows.Next() {
		var m Message
		if err := rows.Scan(&m.ID, &m.Subject, &m.Payload); err != nil {
			return nil, storageError(ctx, op, "", err)
		}
		out[m.ID] = m
	}
	if err := rows.Err(); err != nil {
		return nil, storageError(ctx, op, "", err)
	}
	return out, nil
}

// OutboxSuperseded counts the outbox rows superseded.
func (s *Store) OutboxSuperseded(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE superseded = 1`).Scan(&n); err != nil {
		return 0, storageError(ctx, "count the superseded outbox rows", "", err)
	}
	return n, nil
}
