package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/rules"
)

// Message is one event in the outbox: its JetStream message id, subject
// and payload.
type Message struct {
	ID      string
	Subject string
	Payload []byte
}

// OutboxRow is a message waiting in the outbox, with its place in the
// publish order.
type OutboxRow struct {
	Seq int64
	Message
	// Written is when the row was written, in its block's transaction
	// (millisecond precision).
	Written time.Time
}

// BlockRef is the block an event comes from.
type BlockRef struct {
	ID        ergo.Digest
	Height    uint32
	Timestamp uint64 // the header's, Unix milliseconds
	// Connects counts the block's connections, 1 the first time: a block
	// connected again after a disconnect makes new message ids.
	Connects int
	// Generation, for a verdict, is its protocol's: how many times its
	// history was begun again (a rescan). A verdict judged again makes a
	// new message id.
	Generation int
}

// Reorg describes the fork a disconnect belongs to. DisconnectBlock
// without one describes a rollback of the block alone.
type Reorg struct {
	ForkID     ergo.Digest // the common ancestor of the two branches
	ForkHeight uint32
	Depth      uint32 // blocks disconnected down to the fork point
	OldTip     Tip    // the tip before the reorg
	NewTip     Tip    // the tip of the branch the scanner moves to, as far as it knows
}

// EventEncoder builds the outbox's messages; the NATS publisher's encoder,
// adapted by the command that wires both. Its payloads must be a function
// of the arguments alone, so that they can be rebuilt.
type EventEncoder interface {
	Verdict(v *rules.Verdict, box *ergo.Box, b BlockRef) (Message, error)
	Retraction(original Message, b BlockRef) (Message, error)
	Rollback(r Reorg, b BlockRef) (Message, error)
	// Rescinded is the retraction of original, a verdict event of block b,
	// by a rescan that judges its protocol again (RescanProtocol).
	Rescinded(original Message, b BlockRef, r Rescan) (Message, error)
}

// Rescan describes why verdicts are retracted without a disconnect: their
// protocol is judged again from FromHeight, in its generation Generation.
type Rescan struct {
	Protocol   string
	FromHeight uint32
	Generation int
}

// events is the store's encoder and the callback told of new rows.
type events struct {
	mu      sync.RWMutex
	enc     EventEncoder
	written func()
}

// SetEvents makes ConnectBlock and DisconnectBlock write their events to
// the outbox with enc, in the block's transaction, and call written (which
// must not block) after each commit that wrote some. Call it before the
// first block; a nil enc writes none.
func (s *Store) SetEvents(enc EventEncoder, written func()) {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	s.events.enc, s.events.written = enc, written
}

func (s *Store) encoder() (EventEncoder, func()) {
	s.events.mu.RLock()
	defer s.events.mu.RUnlock()
	return s.events.enc, s.events.written
}

// outboxWriter writes one block's events within its transaction.
type outboxWriter struct {
	ctx  context.Context
	tx   *sql.Tx
	enc  EventEncoder
	ref  BlockRef
	rows int
}

// put writes m, an event of kind about o.ref; protocol is a verdict's, ""
// for the other kinds.
func (o *outboxWriter) put(kind, protocol string, m Message) error {
	var p any // NULL
	if protocol != "" {
		p = protocol
	}
	_, err := o.tx.ExecContext(o.ctx, `INSERT INTO outbox (msg_id, subject, payload, kind, block_id, connects, written, protocol)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, m.ID, m.Subject, m.Payload, kind, o.ref.ID[:], o.ref.Connects, time.Now().UnixMilli(), p)
	if err != nil {
		return fmt.Errorf("outbox message %s: %w", m.ID, err)
	}
	o.rows++
	return nil
}

// connects reads how many times the block has been connected.
func readConnects(ctx context.Context, tx *sql.Tx, id ergo.Digest) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT connects FROM headers WHERE id = ?`, id[:]).Scan(&n)
	return n, err
}

// writeVerdictEvents writes an event for each of the judgement's verdicts.
func (c *connectTx) writeVerdictEvents(b *ergo.FullBlock, j *rules.Judgement, enc EventEncoder) (int, error) {
	if len(j.Verdicts) == 0 {
		return 0, nil
	}
	connects, err := readConnects(c.ctx, c.tx, c.block)
	if err != nil {
		return 0, err
	}
	o := &outboxWriter{ctx: c.ctx, tx: c.tx, enc: enc,
		ref: BlockRef{ID: c.block, Height: uint32(c.height), Timestamp: b.Header.Timestamp, Connects: connects}}
	outputs := map[ergo.Digest]*ergo.Box{}
	for i := range b.Transactions {
		outs := b.Transactions[i].Outputs
		for k := range outs {
			outputs[outs[k].TrustedID()] = &outs[k]
		}
	}
	for i := range j.Verdicts {
		v := &j.Verdicts[i]
		box, ok := outputs[v.BoxID]
		if !ok { // a spent verdict: the box is stored
			sb, found, err := readBox(c.ctx, c.tx, v.BoxID)
			if err != nil {
				return 0, err
			}
			if !found {
				return 0, corrupt("verdict on box %s, which is neither stored nor created by the block", v.BoxID)
			}
			box = sb.ergoBox()
		}
		ref := o.ref
		ref.Generation = c.generations[v.Protocol]
		m, err := enc.Verdict(v, box, ref)
		if err != nil {
			return 0, err
		}
		if err := o.put("verdict", v.Protocol, m); err != nil {
			return 0, err
		}
	}
	return o.rows, nil
}

// writeRetractions writes, for a block being disconnected, a retraction of
// every verdict event its current connection wrote and no retraction has
// retracted yet (published or not: the relay may be publishing one as the
// block goes), and one rollback event.
func writeRetractions(ctx context.Context, tx *sql.Tx, enc EventEncoder, ref BlockRef, r Reorg) (int, error) {
	o := &outboxWriter{ctx: ctx, tx: tx, enc: enc, ref: ref}
	originals, err := liveVerdictEvents(ctx, tx, `block_id = ? AND connects = ?`, ref.ID[:], ref.Connects)
	if err != nil {
		return 0, err
	}
	for _, orig := range originals {
		m, err := enc.Retraction(orig.Message, ref)
		if err != nil {
			return 0, err
		}
		if err := o.retract(orig, m); err != nil {
			return 0, err
		}
	}
	m, err := enc.Rollback(r, ref)
	if err != nil {
		return 0, err
	}
	if err := o.put("rollback", "", m); err != nil {
		return 0, err
	}
	return o.rows, nil
}

// liveVerdictEvents returns the verdict events that no retraction has
// retracted and that where selects, in publish order.
func liveVerdictEvents(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]OutboxRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, msg_id, subject, payload FROM outbox
		WHERE kind = 'verdict' AND retracted = 0 AND `+where+` ORDER BY seq`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OutboxRow
	for rows.Next() {
		var r OutboxRow
		if err := rows.Scan(&r.Seq, &r.ID, &r.Subject, &r.Payload); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// retract writes m, the retraction of orig, and marks orig retracted.
func (o *outboxWriter) retract(orig OutboxRow, m Message) error {
	if err := o.put("retraction", "", m); err != nil {
		return err
	}
	if _, err := o.tx.ExecContext(o.ctx, `UPDATE outbox SET retracted = 1 WHERE seq = ?`, orig.Seq); err != nil {
		return fmt.Errorf("outbox message %s: mark retracted: %w", orig.ID, err)
	}
	return nil
}

// AppendEvent writes a message that belongs to no block (a report's
// announcement) to the outbox.
func (s *Store) AppendEvent(ctx context.Context, kind string, m Message) error {
	op := fmt.Sprintf("append %s event %s", kind, m.ID)
	_, err := s.w.ExecContext(ctx, `INSERT INTO outbox (msg_id, subject, payload, kind, written) VALUES (?, ?, ?, ?, ?)`,
		m.ID, m.Subject, m.Payload, kind, time.Now().UnixMilli())
	if err != nil {
		return storageError(ctx, op, "", err)
	}
	if _, written := s.encoder(); written != nil {
		written()
	}
	return nil
}

// OutboxPending returns up to limit unpublished rows after seq after, in
// publish order.
func (s *Store) OutboxPending(ctx context.Context, after int64, limit int) ([]OutboxRow, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, msg_id, subject, payload, written FROM outbox
		WHERE published IS NULL AND seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, storageError(ctx, "read the outbox", "", err)
	}
	defer rows.Close()
	var out []OutboxRow
	for rows.Next() {
		var (
			r       OutboxRow
			written int64
		)
		if err := rows.Scan(&r.Seq, &r.ID, &r.Subject, &r.Payload, &written); err != nil {
			return nil, storageError(ctx, "read the outbox", "", err)
		}
		r.Written = time.UnixMilli(written)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, storageError(ctx, "read the outbox", "", err)
	}
	return out, nil
}

// MarkPublished records that JetStream acknowledged the rows.
func (s *Store) MarkPublished(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	list := make([]string, len(seqs))
	for i, q := range seqs {
		list[i] = fmt.Sprint(q)
	}
	_, err := s.w.ExecContext(ctx, `UPDATE outbox SET published = ? WHERE published IS NULL AND seq IN (SELECT value FROM json_each(?))`,
		time.Now().UnixMilli(), "["+strings.Join(list, ",")+"]")
	if err != nil {
		return storageError(ctx, fmt.Sprintf("mark %d outbox rows published", len(seqs)), "", err)
	}
	return nil
}

// OutboxCounts returns how many rows the outbox was ever written and how
// many are not acknowledged yet.
func (s *Store) OutboxCounts(ctx context.Context) (written, pending int64, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0), (SELECT count(*) FROM outbox WHERE published IS NULL) FROM outbox`).
		Scan(&written, &pending)
	if err != nil {
		return 0, 0, storageError(ctx, "count the outbox", "", err)
	}
	return written, pending, nil
}

// OldestPending returns when the oldest row not yet acknowledged was
// written; ok is false when every row is acknowledged.
func (s *Store) OldestPending(ctx context.Context) (written time.Time, ok bool, err error) {
	var ms int64
	err = s.r.QueryRowContext(ctx, `SELECT written FROM outbox WHERE published IS NULL ORDER BY seq LIMIT 1`).Scan(&ms)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, storageError(ctx, "read the oldest pending event", "", err)
	}
	return time.UnixMilli(ms), true, nil
}

// ergoBox is the stored box in the chain model's form.
func (b *StoredBox) ergoBox() *ergo.Box {
	out := &ergo.Box{BoxID: b.ID, HasBoxID: true}
	out.Value, out.ErgoTree, out.CreationHeight, out.Registers = b.Value, b.ErgoTree, b.CreationHeight, b.Registers
	out.TxID, out.Index = b.TxID, uint16(b.OutputIndex)
	for _, t := range b.Tokens {
		out.Tokens = append(out.Tokens, sigma.Token{ID: t.ID, Amount: t.Amount})
	}
	return out
}
