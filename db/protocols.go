package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
)

// Protocols over time (migrations/0007_protocols.sql): each protocol's
// history is complete to its cursor. The follower judges a new block for
// the protocols whose history reaches the tip; BackfillBlocks judges the
// blocks a protocol's history lacks, already connected, for it alone, until
// its history reaches the tip and the follower takes it along.

// ProtocolState is where a protocol stands in the configuration.
type ProtocolState string

const (
	ProtocolActive   ProtocolState = "active"   // configured: judged
	ProtocolInactive ProtocolState = "inactive" // removed from the configuration: its rows kept, not judged
	ProtocolPruned   ProtocolState = "pruned"   // removed and its rows deleted (PruneProtocol)
)

// ErrStale: BackfillBlocks was given a block the histories no longer need
// there: the block left the main chain (a reorg), or no protocol's history
// ends just below it (a disconnect or a rescan moved the cursors). The
// backfill reads the cursors again and goes on.
const ErrStale = ErrorKind("the backfill's blocks are stale")

// ProtocolHistory is a protocol's row: how far its history reaches.
type ProtocolHistory struct {
	Name  string
	State ProtocolState
	// StartHeight is the configured start_height its history was judged
	// from; 0 when unknown (judged before the store kept it).
	StartHeight uint32
	// Cursor is the height its history is complete to.
	Cursor uint32
	// BackfillFrom is the first height of its backfill, under way or
	// done; 0 when it was judged from the store's first block.
	BackfillFrom uint32
	// Generation counts the times its history was begun again.
	Generation int
	ChangedAt  time.Time
}

// Backfilling reports whether the history lacks blocks up to tip: it is
// active and its cursor is below the tip.
func (h *ProtocolHistory) Backfilling(tip uint32) bool {
	return h.State == ProtocolActive && h.Cursor < tip
}

// ProtocolHistories returns every protocol's row, by name.
func (s *Store) ProtocolHistories(ctx context.Context) ([]ProtocolHistory, error) {
	out, err := readProtocolHistories(ctx, s.r)
	if err != nil {
		return nil, storageError(ctx, "read the protocols' histories", "", err)
	}
	return out, nil
}

func readProtocolHistories(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]ProtocolHistory, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, state, coalesce(start_height, 0), cursor, coalesce(backfill_from, 0),
		generation, changed_at FROM protocols ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ProtocolHistory
	for rows.Next() {
		var h ProtocolHistory
		var at int64
		if err := rows.Scan(&h.Name, &h.State, &h.StartHeight, &h.Cursor, &h.BackfillFrom, &h.Generation, &at); err != nil {
			return nil, err
		}
		h.ChangedAt = time.UnixMilli(at).UTC()
		out = append(out, h)
	}
	return out, rows.Err()
}

// histories are the cursors of an engine's protocols as a ConnectBlocks or
// BackfillBlocks transaction reads and moves them.
type histories struct {
	eng        *rules.Engine
	cursor     map[string]uint32
	generation map[string]int
	moved      map[string]bool
}

// readHistories reads the cursors of eng's protocols in tx, op's. On an
// empty store (!hasTip), whose first block will be at height first,
// nothing below that block can be judged: every cursor below first-1 is
// raised to it, and a protocol the store does not know is registered,
// judged from that block. On a store with blocks, such a protocol is
// ErrConflict: its history below the tip would be missing
// (RegisterProtocols backfills it).
func (s *Store) readHistories(ctx context.Context, tx *sql.Tx, op string, eng *rules.Engine, tip Tip, hasTip bool, first uint32) (*histories, error) {
	if !hasTip && first > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE protocols SET cursor = ?1 WHERE cursor < ?1 AND state <> 'pruned'`, first-1); err != nil {
			return nil, storageError(ctx, op, "raise the protocols' cursors to the first block", err)
		}
	}
	h := &histories{eng: eng, cursor: map[string]uint32{}, generation: map[string]int{}, moved: map[string]bool{}}
	rows, err := tx.QueryContext(ctx, `SELECT name, cursor, generation FROM protocols WHERE state <> 'pruned'`)
	if err != nil {
		return nil, storageError(ctx, op, "read the protocols' cursors", err)
	}
	for rows.Next() {
		var name string
		var cursor uint32
		var gen int
		if err := rows.Scan(&name, &cursor, &gen); err != nil {
			rows.Close()
			return nil, storageError(ctx, op, "read the protocols' cursors", err)
		}
		if slices.Contains(eng.Names(), name) {
			h.cursor[name], h.generation[name] = cursor, gen
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, storageError(ctx, op, "read the protocols' cursors", err)
	}
	for _, p := range eng.Protocols() {
		if _, ok := h.cursor[p.Name]; ok {
			continue
		}
		if hasTip {
			return nil, newError(op, ErrConflict, "protocol %s has no history in the store: register it first (Store.RegisterProtocols), "+
				"which backfills it from its start_height", p.Name)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO protocols (name, state, start_height, cursor, generation, changed_at)
			VALUES (?, 'active', ?, ?, 0, ?) ON CONFLICT (name) DO UPDATE SET state = 'active', start_height = excluded.start_height,
			cursor = excluded.cursor, generation = generation + 1, changed_at = excluded.changed_at`,
			p.Name, p.StartHeight, first-1, time.Now().UnixMilli()); err != nil {
			return nil, storageError(ctx, op, "register protocol "+p.Name, err)
		}
		h.cursor[p.Name] = first - 1
	}
	return h, nil
}

// judge returns the engine that judges the block at height for the
// protocols whose history ends just below it, keeping the [watch]
// section's boxes when watch is true, and their generations (nil when all
// are 0). It is the whole engine when that is every protocol.
func (h *histories) judge(height uint32, watch bool) (*rules.Engine, map[string]int) {
	all := h.eng.Names()
	n := 0
	var gens map[string]int
	for _, name := range all {
		if h.cursor[name] != height-1 {
			continue
		}
		n++
		if g := h.generation[name]; g != 0 {
			if gens == nil {
				gens = map[string]int{}
			}
			gens[name] = g
		}
	}
	if n == len(all) { // the usual case: every history reaches the tip
		return h.eng.Subset(all, watch), gens
	}
	names := make([]string, 0, n)
	for _, name := range all {
		if h.cursor[name] == height-1 {
			names = append(names, name)
		}
	}
	return h.eng.Subset(names, watch), gens
}

// advance moves to height the histories that ended just below it.
func (h *histories) advance(height uint32) {
	for name, c := range h.cursor {
		if c == height-1 {
			h.cursor[name] = height
			h.moved[name] = true
		}
	}
}

// write stores the cursors that moved.
func (h *histories) write(ctx context.Context, tx *sql.Tx) error {
	for name := range h.moved {
		if _, err := tx.ExecContext(ctx, `UPDATE protocols SET cursor = ? WHERE name = ?`, h.cursor[name], name); err != nil {
			return err
		}
	}
	return nil
}

// BackfillBlocks judges blocks the store has connected, each the main
// chain's block at its height and each the child of the one before, for
// the protocols of judge (a *rules.Engine) whose history ends just below it, in one SQLite
// transaction that moves their cursors (a block no protocol's history
// needs, or one no longer on the main chain, is ErrStale and rolls the
// whole call back). Each block is judged as ConnectBlock judges a new one,
// on the state before it, for those protocols alone (the [watch] boxes
// were kept when it was connected), and written the same way, except that
// the rows the block's earlier judgement stored are left as they are: a
// box, transaction or data-input read stored already is not stored again,
// a stored box spent already must have been spent by the same transaction.
// So the boxes, spends and reads of a backfilled protocol join the shared
// tables as if the protocol had been judged with the others from the
// start, and its verdicts, lineage steps and events are written, in block
// order, as the follower would have written them (its events in the
// block's current connection).
func (s *Store) BackfillBlocks(ctx context.Context, blocks []*ergo.FullBlock, judge Judge) error {
	if len(blocks) == 0 {
		return nil
	}
	start := time.Now()
	op := "backfill blocks"
	eng, ok := judge.(*rules.Engine)
	if !ok {
		return newError(op, ErrInvalidBlock, "a backfill judges with the rules engine, not a %T", judge)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return storageError(ctx, op, "begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	tip, ok, err := readTip(ctx, tx)
	switch {
	case err != nil:
		return storageError(ctx, op, "read tip", err)
	case !ok:
		return newError(op, ErrStale, "the store is empty")
	}
	hist, err := s.readHistories(ctx, tx, op, eng, tip, true, 0)
	if err != nil {
		return err
	}
	events := 0
	var prev *ergo.Header
	for _, b := range blocks {
		if b == nil {
			return newError(op, ErrInvalidBlock, "nil block")
		}
		h := &b.Header
		c := &connectTx{s: s, tx: tx, backfill: true, block: h.TrustedID(), height: int64(h.Height)}
		c.op = fmt.Sprintf("backfill block %d %s", h.Height, c.block)
		if prev != nil && (h.ParentID != prev.TrustedID() || h.Height != prev.Height+1) {
			return newError(c.op, ErrInvalidBlock, "it is not the child of block %d %s", prev.Height, prev.TrustedID())
		}
		prev = h
		var main []byte
		err := tx.QueryRowContext(ctx, `SELECT id FROM headers WHERE height = ? AND main_chain = 1`, h.Height).Scan(&main)
		switch {
		case errors.Is(err, sql.ErrNoRows) || err == nil && string(main) != string(c.block[:]):
			return newError(c.op, ErrStale, "it is not the store's main-chain block at height %d", h.Height)
		case err != nil:
			return storageError(ctx, c.op, "read the main chain", err)
		}
		judge, gens := hist.judge(h.Height, false)
		if len(judge.Names()) == 0 {
			return newError(c.op, ErrStale, "no protocol's history ends at height %d", h.Height-1)
		}
		c.generations = gens
		if err := c.judgeAndApply(ctx, b, judge); err != nil {
			return err
		}
		hist.advance(h.Height)
		events += c.events
	}
	if err := hist.write(ctx, tx); err != nil {
		return storageError(ctx, op, "move the protocols' cursors", err)
	}
	if err := tx.Commit(); err != nil {
		return storageError(ctx, op, "commit", err)
	}
	if _, written := s.encoder(); events > 0 && written != nil {
		written()
	}
	s.log.Debug().Uint32("from", blocks[0].Header.Height).Uint32("to", prev.Height).Int("events", events).
		Dur("took", time.Since(start)).Msg("backfilled blocks")
	return nil
}

// ProtocolsOf returns the names of the protocols judge judges for: a
// *rules.Engine's; none for another Judge.
func ProtocolsOf(judge Judge) []string {
	if eng, ok := judge.(*rules.Engine); ok {
		return eng.Names()
	}
	return nil
}

// ProtocolStart is a configured protocol, as RegisterProtocols needs it.
type ProtocolStart struct {
	Name        string
	StartHeight uint32
}

// ProtocolChange is what RegisterProtocols did to a protocol's history.
type ProtocolChange struct {
	Name string
	// What: "added" (new, or back after a prune: backfilled from
	// BackfillFrom), "restarted" (its start_height changed: its history
	// begun again, as by a rescan), "reactivated" (back in the
	// configuration: backfilled from its cursor on), "deactivated" (no
	// longer configured: its rows kept).
	What         string
	BackfillFrom uint32 // 0: nothing to backfill (the store is empty, or the history reaches the tip)
	Rescan       *RescanResult
}

// RegisterProtocols makes the protocols' rows agree with the configured
// protocols, in one transaction, before the follower starts:
//
//   - a protocol the store does not know (or pruned) is added: on an empty
//     store it is judged from the first block; on a store with blocks its
//     history is empty up to its start_height (or the store's first block)
//     and BackfillBlocks fills it from there;
//   - a known one whose start_height changed begins its history again
//     from the new one (RescanProtocol's reset, its verdicts above
//     retracted);
//   - an inactive one configured again is active again: it is backfilled
//     from its cursor on;
//   - an active one no longer configured becomes inactive: its rows stay,
//     and it is judged no more.
//
// keep is the [watch] section's filter (nil for none), which the reset
// of a changed start_height needs (see RescanProtocol).
func (s *Store) RegisterProtocols(ctx context.Context, configured []ProtocolStart, keep func(*ergo.Box) bool) ([]ProtocolChange, error) {
	const op = "register the protocols"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, storageError(ctx, op, "begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	tip, hasTip, err := readTip(ctx, tx)
	if err != nil {
		return nil, storageError(ctx, op, "read tip", err)
	}
	first, err := firstBlockHeight(ctx, tx)
	if err != nil {
		return nil, storageError(ctx, op, "read the first block", err)
	}
	rows, err := readProtocolHistories(ctx, tx)
	if err != nil {
		return nil, storageError(ctx, op, "read the protocols", err)
	}
	known := map[string]ProtocolHistory{}
	for _, r := range rows {
		known[r.Name] = r
	}
	now := time.Now().UnixMilli()
	var changes []ProtocolChange
	names := map[string]bool{}
	for _, p := range configured {
		names[p.Name] = true
		r, ok := known[p.Name]
		switch {
		case !ok || r.State == ProtocolPruned:
			gen := 0
			if ok {
				gen = r.Generation + 1
			}
			cursor, from := uint32(0), uint32(0)
			if hasTip {
				cursor = min(tip.Height, max(p.StartHeight, first)-1)
				if cursor < tip.Height {
					from = cursor + 1
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO protocols (name, state, start_height, cursor, backfill_from, generation, changed_at)
				VALUES (?1, 'active', ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO UPDATE SET state = 'active', start_height = ?2, cursor = ?3,
				backfill_from = ?4, generation = ?5, changed_at = ?6`, p.Name, p.StartHeight, cursor, nullHeight(from), gen, now); err != nil {
				return nil, storageError(ctx, op, "add protocol "+p.Name, err)
			}
			changes = append(changes, ProtocolChange{Name: p.Name, What: "added", BackfillFrom: from})
		case r.StartHeight == 0:
			// Judged before the store kept start heights: its history is
			// the configured one's.
			if _, err := tx.ExecContext(ctx, `UPDATE protocols SET start_height = ? WHERE name = ?`, p.StartHeight, p.Name); err != nil {
				return nil, storageError(ctx, op, "record protocol "+p.Name, err)
			}
			r.StartHeight = p.StartHeight
			fallthrough
		case r.StartHeight == p.StartHeight:
			if r.State == ProtocolActive {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE protocols SET state = 'active', changed_at = ?1,
				backfill_from = CASE WHEN cursor < ?3 THEN cursor + 1 ELSE backfill_from END WHERE name = ?2`, now, p.Name, tip.Height); err != nil {
				return nil, storageError(ctx, op, "reactivate protocol "+p.Name, err)
			}
			ch := ProtocolChange{Name: p.Name, What: "reactivated"}
			if r.Cursor < tip.Height {
				ch.BackfillFrom = r.Cursor + 1
			}
			changes = append(changes, ch)
		case !hasTip:
			if _, err := tx.ExecContext(ctx, `UPDATE protocols SET state = 'active', start_height = ?, changed_at = ? WHERE name = ?`,
				p.StartHeight, now, p.Name); err != nil {
				return nil, storageError(ctx, op, "record protocol "+p.Name, err)
			}
		default:
			// Its history begins again at the new start_height: every row
			// of it goes (those between the two start heights too).
			res, err := s.rescan(ctx, tx, op, r, 1, max(p.StartHeight, first)-1, keep)
			if err != nil {
				return nil, err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE protocols SET state = 'active', start_height = ?, changed_at = ? WHERE name = ?`,
				p.StartHeight, now, p.Name); err != nil {
				return nil, storageError(ctx, op, "restart protocol "+p.Name, err)
			}
			changes = append(changes, ProtocolChange{Name: p.Name, What: "restarted", BackfillFrom: res.BackfillFrom, Rescan: res})
		}
	}
	for _, r := range rows {
		if r.State == ProtocolActive && !names[r.Name] {
			if _, err := tx.ExecContext(ctx, `UPDATE protocols SET state = 'inactive', changed_at = ? WHERE name = ?`, now, r.Name); err != nil {
				return nil, storageError(ctx, op, "deactivate protocol "+r.Name, err)
			}
			changes = append(changes, ProtocolChange{Name: r.Name, What: "deactivated"})
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, storageError(ctx, op, "commit", err)
	}
	if _, written := s.encoder(); written != nil {
		written()
	}
	return changes, nil
}

// nullHeight is a height column's value, NULL for 0.
func nullHeight(h uint32) any {
	if h == 0 {
		return nil
	}
	return h
}

// firstBlockHeight is the height of the store's first connected block, 0
// when it holds none.
func firstBlockHeight(ctx context.Context, tx *sql.Tx) (uint32, error) {
	var h sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT min(height) FROM headers WHERE main_chain = 1`).Scan(&h)
	return uint32(h.Int64), err
}

// RescanResult is what a rescan did.
type RescanResult struct {
	Protocol string
	// FromHeight is the height the protocol's history is judged again
	// from; BackfillFrom is where its backfill starts (0 when its history
	// lacked nothing from there: it is at the tip, or below the height).
	FromHeight, BackfillFrom uint32
	Generation               int
	Retracted                int64 // verdict events retracted
	Verdicts, Steps          int64 // rows deleted
	Boxes, Transactions      int64 // rows no protocol's history needs any more, deleted
}

// RescanProtocol begins protocol name's history again from height from, in
// one transaction, so that the daemon judges it again from there (a
// backfill, while the other protocols follow the tip), as a store that
// watched it from the start would, with this build's rules:
//
//   - every verdict event of it from that height on that no retraction has
//     retracted is retracted (the encoder's Rescinded events, in the
//     outbox), and its verdicts and lineage steps from there are deleted;
//   - the boxes from there that no other history needs any more are
//     deleted with their tokens and reads, and the transactions left with
//     no stored box, spend or read (the backfill stores again what its
//     judgement keeps), so that a rule that changed what is relevant leaves
//     nothing behind; a box the [watch] section keeps (keep; nil for none)
//     stays;
//   - its cursor moves back to just below the height (never below the
//     store's first block or its start_height), and its generation goes
//     up: its verdicts judged again get new message ids.
//
// A protocol the store does not know, or pruned, is ErrConflict.
func (s *Store) RescanProtocol(ctx context.Context, name string, from uint32, keep func(*ergo.Box) bool) (*RescanResult, error) {
	op := "rescan protocol " + name
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, storageError(ctx, op, "begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	h, err := protocolRow(ctx, tx, op, name)
	if err != nil {
		return nil, err
	}
	first, err := firstBlockHeight(ctx, tx)
	if err != nil {
		return nil, storageError(ctx, op, "read the first block", err)
	}
	from = max(from, first, h.StartHeight, 1)
	if first == 0 || from > h.Cursor {
		// Its history does not reach the height yet: nothing to do.
		return &RescanResult{Protocol: name, FromHeight: from, Generation: h.Generation}, nil
	}
	res, err := s.rescan(ctx, tx, op, h, from, from-1, keep)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, storageError(ctx, op, "commit", err)
	}
	if _, written := s.encoder(); res.Retracted > 0 && written != nil {
		written()
	}
	return res, nil
}

// protocolRow reads the row of a protocol the store has a history of.
func protocolRow(ctx context.Context, tx *sql.Tx, op, name string) (ProtocolHistory, error) {
	rows, err := readProtocolHistories(ctx, tx)
	if err != nil {
		return ProtocolHistory{}, storageError(ctx, op, "read the protocols", err)
	}
	for _, r := range rows {
		if r.Name == name && r.State != ProtocolPruned {
			return r, nil
		}
	}
	var have []string
	for _, r := range rows {
		if r.State != ProtocolPruned {
			have = append(have, r.Name)
		}
	}
	return ProtocolHistory{}, newError(op, ErrConflict, "the store has no history of protocol %q (it has %q)", name, have)
}

// rescan begins protocol h's history again in tx: its rows from height del
// on are retracted and deleted, and its cursor set to cursor, below del
// (RescanProtocol's reset).
func (s *Store) rescan(ctx context.Context, tx *sql.Tx, op string, h ProtocolHistory, del, cursor uint32, keep func(*ergo.Box) bool) (*RescanResult, error) {
	tip, _, err := readTip(ctx, tx)
	if err != nil {
		return nil, storageError(ctx, op, "read tip", err)
	}
	cursor = min(cursor, tip.Height)
	res := &RescanResult{Protocol: h.Name, FromHeight: cursor + 1, Generation: h.Generation + 1}
	r := Rescan{Protocol: h.Name, FromHeight: res.FromHeight, Generation: res.Generation}
	if res.Retracted, err = s.rescind(ctx, tx, r, del); err != nil {
		return nil, storageError(ctx, op, "retract its verdict events", err)
	}
	for _, d := range []struct {
		what  string
		query string
		n     *int64
	}{
		{"delete its verdicts", `DELETE FROM verdicts WHERE protocol = ? AND height >= ?`, &res.Verdicts},
		{"delete its lineage steps", `DELETE FROM lineage_steps WHERE protocol = ? AND height >= ?`, &res.Steps},
	} {
		r, err := tx.ExecContext(ctx, d.query, h.Name, del)
		if err == nil {
			*d.n, err = r.RowsAffected()
		}
		if err != nil {
			return nil, storageError(ctx, op, d.what, err)
		}
	}
	if cursor < tip.Height {
		res.BackfillFrom = cursor + 1
	}
	if _, err := tx.ExecContext(ctx, `UPDATE protocols SET cursor = ?, backfill_from = ?, generation = ?, changed_at = ? WHERE name = ?`,
		cursor, nullHeight(res.BackfillFrom), res.Generation, time.Now().UnixMilli(), h.Name); err != nil {
		return nil, storageError(ctx, op, "move its cursor", err)
	}
	if res.Boxes, res.Transactions, err = dropUnneeded(ctx, tx, del, keep); err != nil {
		return nil, storageError(ctx, op, "delete the boxes no history needs", err)
	}
	s.log.Info().Str("protocol", h.Name).Uint32("from_height", res.FromHeight).Int("generation", res.Generation).
		Int64("retracted", res.Retracted).Int64("verdicts", res.Verdicts).Int64("boxes", res.Boxes).Msg("protocol history begun again")
	return res, nil
}

// rescind writes, for every verdict event of r.Protocol from block height
// from on that no retraction has retracted, its retraction by the rescan
// (nothing without an encoder), and returns how many.
func (s *Store) rescind(ctx context.Context, tx *sql.Tx, r Rescan, from uint32) (int64, error) {
	enc, _ := s.encoder()
	if enc == nil {
		return 0, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT o.seq, o.msg_id, o.subject, o.payload, h.id, h.height, h.timestamp, h.connects
		FROM outbox o JOIN headers h ON h.id = o.block_id
		WHERE o.kind = 'verdict' AND o.retracted = 0 AND o.protocol = ? AND h.main_chain = 1 AND h.height >= ?
		ORDER BY o.seq`, r.Protocol, from)
	if err != nil {
		return 0, err
	}
	type original struct {
		OutboxRow
		ref BlockRef
	}
	var originals []original
	for rows.Next() {
		var o original
		var id []byte
		var ts int64
		if err := rows.Scan(&o.Seq, &o.ID, &o.Subject, &o.Payload, &id, &o.ref.Height, &ts, &o.ref.Connects); err != nil {
			rows.Close()
			return 0, err
		}
		if err := scanDigest(id, &o.ref.ID); err != nil {
			rows.Close()
			return 0, err
		}
		o.ref.Timestamp = uint64(ts)
		originals = append(originals, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, o := range originals {
		m, err := enc.Rescinded(o.Message, o.ref, r)
		if err != nil {
			return 0, err
		}
		w := &outboxWriter{ctx: ctx, tx: tx, enc: enc, ref: o.ref}
		if err := w.retract(o.OutboxRow, m); err != nil {
			return 0, err
		}
	}
	return int64(len(originals)), nil
}

// dropUnneeded deletes the boxes created from height from on that no
// protocol's history needs (nor keep, the [watch] section's filter), with
// their tokens and the reads of them, and then the transactions from there
// left with no stored box, spend or read. A history needs the outputs of
// a transaction it judged relevant (ConnectBlock keeps every output of
// one): one that created a box it gave a verdict, or that spent a box it
// gave a verdict when its history held the transaction's block.
func dropUnneeded(ctx context.Context, tx *sql.Tx, from uint32, keep func(*ergo.Box) bool) (boxes, txs int64, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT b.id FROM boxes b WHERE b.height >= ?
		AND NOT EXISTS (SELECT 1 FROM boxes o JOIN verdicts v ON v.box_id = o.id AND v.kind = 'created' WHERE o.tx_id = b.tx_id)
		AND NOT EXISTS (SELECT 1 FROM boxes i JOIN verdicts v ON v.box_id = i.id AND v.kind = 'created'
			JOIN protocols p ON p.name = v.protocol AND p.cursor >= b.height WHERE i.spent_tx_id = b.tx_id)`, from)
	if err != nil {
		return 0, 0, err
	}
	var drop []ergo.Digest
	for rows.Next() {
		var b []byte
		var id ergo.Digest
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return 0, 0, err
		}
		if err := scanDigest(b, &id); err != nil {
			rows.Close()
			return 0, 0, err
		}
		drop = append(drop, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	for _, id := range drop {
		if keep != nil {
			b, ok, err := readBox(ctx, tx, id)
			if err != nil {
				return 0, 0, err
			}
			if ok && keep(b.ergoBox()) {
				continue
			}
		}
		for _, q := range []string{`DELETE FROM data_input_reads WHERE box_id = ?`, `DELETE FROM box_tokens WHERE box_id = ?`,
			`DELETE FROM boxes WHERE id = ?`} {
			if _, err := tx.ExecContext(ctx, q, id[:]); err != nil {
				return 0, 0, err
			}
		}
		boxes++
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM transactions WHERE height >= ?
		AND NOT EXISTS (SELECT 1 FROM boxes WHERE tx_id = transactions.id)
		AND NOT EXISTS (SELECT 1 FROM boxes WHERE spent_tx_id = transactions.id)
		AND NOT EXISTS (SELECT 1 FROM data_input_reads WHERE tx_id = transactions.id)`, from)
	if err == nil {
		txs, err = res.RowsAffected()
	}
	return boxes, txs, err
}

// PruneResult is what a prune deleted.
type PruneResult struct {
	Protocol            string
	Verdicts, Steps     int64
	Boxes, Transactions int64 // rows no other history needs
	Events              int64 // its verdict events, marked retracted (none is published)
}

// PruneProtocol deletes the history of protocol name, which the caller
// has made sure is no longer configured, in one transaction: its verdicts and
// lineage steps, then the boxes no other history needs (see
// RescanProtocol; keep is the [watch] section's filter) and the
// transactions left with nothing stored. No event is published: its
// verdict events are marked retracted only, so that a disconnect does not
// retract them. The row stays, pruned, keeping its generation: a protocol
// of that name configured again is backfilled under new message ids.
func (s *Store) PruneProtocol(ctx context.Context, name string, keep func(*ergo.Box) bool) (*PruneResult, error) {
	op := "prune protocol " + name
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, storageError(ctx, op, "begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := protocolRow(ctx, tx, op, name); err != nil {
		return nil, err
	}
	res := &PruneResult{Protocol: name}
	for _, del := range []struct {
		what  string
		query string
		n     *int64
	}{
		{"mark its events retracted", `UPDATE outbox SET retracted = 1 WHERE kind = 'verdict' AND protocol = ? AND retracted = 0`, &res.Events},
		{"delete its verdicts", `DELETE FROM verdicts WHERE protocol = ?`, &res.Verdicts},
		{"delete its lineage steps", `DELETE FROM lineage_steps WHERE protocol = ?`, &res.Steps},
		{"mark it pruned", `UPDATE protocols SET state = 'pruned', cursor = 0, start_height = NULL, backfill_from = NULL WHERE name = ?`, nil},
	} {
		r, err := tx.ExecContext(ctx, del.query, name)
		if err == nil && del.n != nil {
			*del.n, err = r.RowsAffected()
		}
		if err != nil {
			return nil, storageError(ctx, op, del.what, err)
		}
	}
	if res.Boxes, res.Transactions, err = dropUnneeded(ctx, tx, 1, keep); err != nil {
		return nil, storageError(ctx, op, "delete the boxes no history needs", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, storageError(ctx, op, "commit", err)
	}
	return res, nil
}

// MainChainIDs returns the ids of the connected blocks at heights from to
// to, in order; fewer when the main chain ends (or has a gap) within.
func (s *Store) MainChainIDs(ctx context.Context, from, to uint32) ([]ergo.Digest, error) {
	op := fmt.Sprintf("main chain ids from %d to %d", from, to)
	rows, err := s.r.QueryContext(ctx, `SELECT height, id FROM headers WHERE main_chain = 1 AND height BETWEEN ? AND ? ORDER BY height`, from, to)
	if err != nil {
		return nil, storageError(ctx, op, "", err)
	}
	defer rows.Close()
	var out []ergo.Digest
	for rows.Next() {
		var h uint32
		var b []byte
		var id ergo.Digest
		if err := rows.Scan(&h, &b); err != nil {
			return nil, storageError(ctx, op, "", err)
		}
		if h != from+uint32(len(out)) {
			break
		}
		if err := scanDigest(b, &id); err != nil {
			return nil, storageError(ctx, op, "", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, storageError(ctx, op, "", err)
	}
	return out, nil
}
