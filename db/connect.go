package db

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/rules"
)

// writeStmts are the writer's statements, prepared once on its connection;
// each transaction binds the ones it uses with Tx.StmtContext, which reuses
// the prepared statement rather than preparing it again.
type writeStmts struct {
	setTip, putHeader, header, orphanHeader         *sql.Stmt
	parentWork, contextAt                           *sql.Stmt
	lookup, spend, putBox, putToken, putRead, putTx *sql.Stmt
	lookupTrees                                     *sql.Stmt
	lookupTokens, lookupRoles, lineages             *sql.Stmt
	putVerdict, putStep                             *sql.Stmt
	unspendBlock, deleteReads, deleteTokens         *sql.Stmt
	deleteBoxes, deleteTxs                          *sql.Stmt
	deleteVerdicts, deleteSteps, rewindCursors      *sql.Stmt

	// A backfill's, for a block connected already: rows another
	// protocol's judgement stored are left as they are.
	spendAgain, spentBy, putBoxAgain, putReadAgain, putTxAgain *sql.Stmt
}

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&w.setTip, `INSERT INTO tip (singleton, height, id) VALUES (0, ?, ?)
			ON CONFLICT (singleton) DO UPDATE SET height = excluded.height, id = excluded.id`},
		// A header seen before (disconnected since) goes back on the main
		// chain; one that differs in height or parent, or is already on the
		// main chain, changes nothing and ConnectBlock reports a conflict.
		{&w.putHeader, `INSERT INTO headers (id, height, parent_id, timestamp, main_chain, version, n_bits, work)
			VALUES (?, ?, ?, ?, 1, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET main_chain = 1, connects = connects + 1,
				version = excluded.version, n_bits = excluded.n_bits, work = excluded.work
			WHERE main_chain = 0 AND height = excluded.height AND parent_id = excluded.parent_id`},
		// The parent's cumulative work, and the context header at a height.
		{&w.parentWork, `SELECT work FROM headers WHERE id = ? AND main_chain = 1`},
		{&w.contextAt, `SELECT id FROM context_headers WHERE height = ?`},
		{&w.header, `SELECT height, parent_id, main_chain FROM headers WHERE id = ?`},
		{&w.orphanHeader, `UPDATE headers SET main_chain = 0 WHERE id = ?`},

		// The stored boxes among a JSON array of hex ids created below a
		// height (a backfilled block's own outputs may be stored already:
		// they are not the state before it), then their tokens and the
		// classes the protocols gave them. lookupTrees has the trees too,
		// for the blake2b256 template hashes.
		{&w.lookup, `SELECT id, template_hash, r4, r5, r6, r7, r8, r9 FROM boxes
			WHERE id IN (SELECT unhex(value) FROM json_each(?)) AND height < ?`},
		{&w.lookupTrees, `SELECT id, template_hash, r4, r5, r6, r7, r8, r9, ergo_tree FROM boxes
			WHERE id IN (SELECT unhex(value) FROM json_each(?)) AND height < ?`},
		{&w.lookupTokens, `SELECT box_id, token_id, amount FROM box_tokens
			WHERE box_id IN (SELECT unhex(value) FROM json_each(?)) ORDER BY box_id, position`},
		{&w.lookupRoles, `SELECT box_id, protocol, class, verdict FROM verdicts
			WHERE kind = 'created' AND box_id IN (SELECT unhex(value) FROM json_each(?)) ORDER BY box_id, protocol`},
		// Each lineage's last step: for each token, its protocols one index
		// seek at a time (p), then each (token, protocol)'s last row, the
		// end of its primary-key range. A few seeks per lineage, however
		// long its history: a lineage steps at every action of its user.
		{&w.lineages, `WITH RECURSIVE t(token) AS (SELECT DISTINCT unhex(value) FROM json_each(?)),
			p(token, protocol) AS (
				SELECT token, (SELECT min(protocol) FROM lineage_steps WHERE token_id = t.token) FROM t
				UNION ALL
				SELECT token, (SELECT min(protocol) FROM lineage_steps WHERE token_id = p.token AND protocol > p.protocol)
				FROM p WHERE protocol IS NOT NULL)
			SELECT s.protocol, s.token_id, s.current_box, s.broken, s.closed FROM p JOIN lineage_steps s
			ON s.token_id = p.token AND s.protocol = p.protocol AND (s.height, s.step) = (
				SELECT height, step FROM lineage_steps l WHERE l.token_id = p.token AND l.protocol = p.protocol
				ORDER BY height DESC, step DESC LIMIT 1)`},
		{&w.putVerdict, `INSERT INTO verdicts (box_id, protocol, kind, class, verdict, reasons, lineage, tx_id, tx_index,
			block_id, height, action) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&w.putStep, `INSERT INTO lineage_steps (token_id, protocol, height, step, block_id, tx_id, current_box,
			broken, closed, minted, burnt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&w.spend, `UPDATE boxes SET spent_tx_id = ?, spent_block_id = ?, spent_height = ? WHERE id = ?`},
		{&w.putBox, `INSERT INTO boxes (id, tx_id, block_id, height, output_index, value, ergo_tree, template_hash,
			creation_height, r4, r5, r6, r7, r8, r9) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&w.putToken, `INSERT INTO box_tokens (box_id, position, token_id, amount) VALUES (?, ?, ?, ?)`},
		{&w.putRead, `INSERT INTO data_input_reads (tx_id, position, box_id, block_id, height) VALUES (?, ?, ?, ?, ?)`},
		{&w.putTx, `INSERT INTO transactions (id, block_id, height, tx_index) VALUES (?, ?, ?, ?)`},

		{&w.spendAgain, `UPDATE boxes SET spent_tx_id = ?, spent_block_id = ?, spent_height = ? WHERE id = ? AND spent_tx_id IS NULL`},
		{&w.spentBy, `SELECT spent_tx_id FROM boxes WHERE id = ?`},
		{&w.putBoxAgain, `INSERT INTO boxes (id, tx_id, block_id, height, output_index, value, ergo_tree, template_hash,
			creation_height, r4, r5, r6, r7, r8, r9) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`},
		{&w.putReadAgain, `INSERT INTO data_input_reads (tx_id, position, box_id, block_id, height) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`},
		{&w.putTxAgain, `INSERT INTO transactions (id, block_id, height, tx_index) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`},

		// DisconnectBlock, in this order: a box the block created may have
		// been spent or read by the block itself, never by a later one
		// (later blocks are disconnected first).
		{&w.unspendBlock, `UPDATE boxes SET spent_tx_id = NULL, spent_block_id = NULL, spent_height = NULL
			WHERE spent_block_id = ?`},
		{&w.deleteReads, `DELETE FROM data_input_reads WHERE block_id = ?`},
		{&w.deleteTokens, `DELETE FROM box_tokens WHERE box_id IN (SELECT id FROM boxes WHERE block_id = ?)`},
		{&w.deleteBoxes, `DELETE FROM boxes WHERE block_id = ?`},
		{&w.deleteTxs, `DELETE FROM transactions WHERE block_id = ?`},
		{&w.deleteVerdicts, `DELETE FROM verdicts WHERE block_id = ?`},
		{&w.deleteSteps, `DELETE FROM lineage_steps WHERE block_id = ?`},
		// The histories that reach the disconnected block end below it.
		{&w.rewindCursors, `UPDATE protocols SET cursor = ?1 WHERE cursor > ?1`},
	} {
		st, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("%w in %s", err, p.query)
		}
		*p.stmt = st
	}
	return nil
}

// ConnectBlock applies block b on top of the tip, in one SQLite transaction:
//
//  1. b must be the tip's child: its parent id is the tip's id and its
//     height the tip's plus one; otherwise ErrNotChild. An empty store
//     accepts any block of height 1 or more: the scanner starts where it is
//     configured to.
//  2. The header is recorded on the main chain (a header disconnected
//     before is put back on it).
//  3. judge judges the block against the stored state: which outputs to
//     keep, the verdicts, the lineage steps. A *rules.Engine judges it for
//     those of its protocols whose history reaches the tip (see
//     migrations/0007_protocols.sql): a protocol being backfilled is
//     judged by BackfillBlocks when its history reaches the block.
//  4. Each transaction, in block order, marks as spent (by itself, b and
//     b's height) every stored box an input spends, and stores the outputs
//     the judgement keeps, with their tokens; so a box created by one
//     transaction of b and spent by a later one is stored, spent. Then
//     every stored box a data input reads is recorded; see recordReads for
//     why this comes after all outputs. A transaction is stored when it
//     created, spent or read a stored box.
//  5. The verdicts and lineage steps are stored, and the cursors of the
//     protocols judged move to b.
//  6. The tip moves to b.
//
// A nil judge keeps no box. Any failure rolls the whole block back: the
// store is as it was. A block that contradicts the stored state (a box or
// transaction already stored, a stored box spent twice) is ErrConflict.
// An engine protocol the store does not know (RegisterProtocols) is
// registered, judged from the first block, when the store is empty, and
// is ErrConflict otherwise: its history below the tip would be missing.
//
// The store trusts the ids b states, which the scanner has verified; an id
// b does not state (HasID or HasBoxID false) is derived from the contents.
func (s *Store) ConnectBlock(ctx context.Context, b *ergo.FullBlock, judge Judge) error {
	return s.ConnectBlocks(ctx, []*ergo.FullBlock{b}, judge)
}

// ConnectBlocks connects blocks, each the child of the one before (the
// first the tip's), in one SQLite transaction: each as ConnectBlock would,
// and the tip moved once, to the last. Any failure rolls them all back.
// One commit for many blocks is what makes a catch-up fast; at the tip,
// connect one block at a time, so that each is published at once.
func (s *Store) ConnectBlocks(ctx context.Context, blocks []*ergo.FullBlock, judge Judge) error {
	if len(blocks) == 0 {
		return nil
	}
	start := time.Now()
	op := "connect blocks"
	if len(blocks) == 1 && blocks[0] != nil {
		op = fmt.Sprintf("connect block %d %s", blocks[0].Header.Height, blocks[0].Header.TrustedID())
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return storageError(ctx, op, "begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	tip, ok, err := readTip(ctx, tx)
	if err != nil {
		return storageError(ctx, op, "read tip", err)
	}
	var hist *histories
	if eng, isEngine := judge.(*rules.Engine); isEngine && blocks[0] != nil {
		if hist, err = s.readHistories(ctx, tx, op, eng, tip, ok, blocks[0].Header.Height); err != nil {
			return err
		}
	}
	events := 0
	var last *connectTx
	for _, b := range blocks {
		c := &connectTx{s: s, tx: tx}
		j := judge
		if hist != nil && b != nil {
			j, c.generations = hist.judge(b.Header.Height, true)
		}
		if err := c.connect(ctx, b, j, tip, ok); err != nil {
			return err
		}
		if hist != nil {
			hist.advance(uint32(c.height))
		}
		tip, ok, last = Tip{Height: uint32(c.height), ID: c.block}, true, c
		events += c.events
	}
	if hist != nil {
		if err := hist.write(ctx, tx); err != nil {
			return storageError(ctx, last.op, "move the protocols' cursors", err)
		}
	}
	if _, err := tx.StmtContext(ctx, s.stmt.setTip).ExecContext(ctx, tip.Height, tip.ID[:]); err != nil {
		return storageError(ctx, last.op, "move tip", err)
	}
	if err := tx.Commit(); err != nil {
		return storageError(ctx, last.op, "commit", err)
	}
	if _, written := s.encoder(); events > 0 && written != nil {
		written()
	}
	s.log.Debug().Uint32("height", tip.Height).Stringer("id", tip.ID).Int("blocks", len(blocks)).
		Int("events", events).Dur("took", time.Since(start)).Msg("connected blocks")
	return nil
}

// connect writes block b in c's transaction, on tip (the store is empty
// when !hasTip): ConnectBlock's steps 1 to 5.
func (c *connectTx) connect(ctx context.Context, b *ergo.FullBlock, judge Judge, tip Tip, hasTip bool) error {
	if b == nil {
		return newError("connect block", ErrInvalidBlock, "nil block")
	}
	h := &b.Header
	c.block, c.height = h.TrustedID(), int64(h.Height)
	c.op = fmt.Sprintf("connect block %d %s", h.Height, c.block)
	switch {
	case h.Height == 0:
		return newError(c.op, ErrInvalidBlock, "height 0: Ergo's first block has height 1")
	case h.Timestamp > math.MaxInt64:
		return newError(c.op, ErrInvalidBlock, "timestamp %d overflows 63 bits", h.Timestamp)
	case hasTip && (h.ParentID != tip.ID || h.Height != tip.Height+1):
		return newError(c.op, ErrNotChild, "its parent is %s at height %d; the tip is %s at height %d",
			h.ParentID, h.Height-1, tip.ID, tip.Height)
	}

	work, err := c.s.blockWork(ctx, c.tx, h, c.block)
	if err != nil {
		return storageError(ctx, c.op, "cumulative work", err)
	}
	n, err := execN(ctx, c.tx.StmtContext(ctx, c.s.stmt.putHeader), c.block[:], c.height, h.ParentID[:], int64(h.Timestamp),
		h.Version, h.NBits, work)
	if err != nil {
		return storageError(ctx, c.op, "record header", err)
	}
	if n == 0 {
		return newError(c.op, ErrConflict, "the header is stored with another height or parent, or is on the main chain already")
	}
	return c.judgeAndApply(ctx, b, judge)
}

// judgeAndApply judges block b, whose header is recorded, on the stored
// state and writes what the judgement keeps and concludes, with its
// events. The lineage tokens its judgement steps on are added to the
// store's superset at once: a later block of the same transaction must see
// them, and a token the superset holds needlessly only costs a lookup.
func (c *connectTx) judgeAndApply(ctx context.Context, b *ergo.FullBlock, judge Judge) error {
	h := &b.Header
	// Rows go through a context without cancellation: go-sqlite3 watches a
	// cancellable context with a goroutine per statement, which would cost
	// more than the statements. Cancellation is still prompt: apply checks
	// ctx before each transaction, and database/sql rolls the transaction
	// back when ctx is done.
	c.ctx = context.WithoutCancel(ctx)
	eng, _ := judge.(*rules.Engine)
	st, err := c.readState(b.Transactions, eng != nil && eng.UsesBlake2b())
	if err != nil {
		return storageError(ctx, c.op, "read the boxes the block spends and reads", err)
	}
	var j *rules.Judgement
	if judge != nil {
		if j, err = judge.JudgeBlock(ctx, st, b); err != nil {
			return storageError(ctx, c.op, "judge", err)
		}
		if len(j.Keep) != len(b.Transactions) {
			return newError(c.op, ErrInvalidBlock, "the judgement covers %d transactions of %d", len(j.Keep), len(b.Transactions))
		}
	}
	if err := c.apply(ctx, b.Transactions, st.boxes, j); err != nil {
		return err
	}
	if j != nil {
		if err := c.conclude(ctx, j); err != nil {
			return err
		}
		c.s.lineageTokens.add(j.Steps)
		if enc, _ := c.s.encoder(); enc != nil {
			if c.events, err = c.writeVerdictEvents(b, j, enc); err != nil {
				return storageError(ctx, c.op, "write events", err)
			}
		}
	}
	c.s.log.Debug().Uint32("height", h.Height).Stringer("id", c.block).Bool("backfill", c.backfill).
		Int("txs", len(b.Transactions)).Int("stored_txs", c.stats.txs).Int("boxes", c.stats.boxes).
		Int("spends", c.stats.spends).Int("reads", c.stats.reads).Int("verdicts", c.stats.verdicts).Int("events", c.events).
		Msg("connected block")
	return nil
}

// blockWork checks block id, whose header is h, against the context header
// at its height (ErrConflict if they differ) and returns its cumulative
// work, encoded: the parent's plus h's difficulty, or h's alone when the
// parent is not connected (the first block) or was stored before works
// were.
func (s *Store) blockWork(ctx context.Context, tx *sql.Tx, h *ergo.Header, id ergo.Digest) ([]byte, error) {
	var have []byte
	err := tx.StmtContext(ctx, s.stmt.contextAt).QueryRowContext(ctx, h.Height).Scan(&have)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, err
	case !bytes.Equal(have, id[:]):
		return nil, &kindError{kind: ErrConflict, msg: fmt.Sprintf("the chain the store holds has header %x at height %d", have, h.Height)}
	}
	d, err := consensus.Work(h.NBits)
	if err != nil {
		return nil, invalid("nBits %#08x: %v", h.NBits, err)
	}
	var parent []byte
	err = tx.StmtContext(ctx, s.stmt.parentWork).QueryRowContext(ctx, h.ParentID[:]).Scan(&parent)
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && parent == nil:
	case err != nil:
		return nil, err
	default:
		w, err := consensus.DecodeWork(parent)
		if err != nil {
			return nil, corrupt("header %s: %v", h.ParentID, err)
		}
		d.Add(d, w)
	}
	return consensus.EncodeWork(d)
}

// connectTx is one block written in a ConnectBlocks or BackfillBlocks
// transaction: the block, the transaction, and counts for the log.
type connectTx struct {
	op     string
	block  ergo.Digest
	height int64
	ctx    context.Context // for rows: without cancellation, see judgeAndApply
	s      *Store
	tx     *sql.Tx

	// backfill: the block is connected already and judged now for
	// protocols added since; the rows another protocol's judgement stored
	// are left as they are (see BackfillBlocks).
	backfill bool
	// generations of the protocols judged, for their events' ids; nil
	// when every one is 0.
	generations map[string]int

	stats  struct{ txs, boxes, spends, reads, verdicts int }
	events int // written to the outbox
}

// stmt binds one of the writer's prepared statements to the transaction.
func (c *connectTx) stmt(st *sql.Stmt) *sql.Stmt { return c.tx.StmtContext(c.ctx, st) }

// apply writes the rows of the block's transactions. ctx is the caller's,
// checked between transactions. stored holds the boxes the block spends or
// reads that the store holds; apply adds the outputs it stores.
//
// The transactions to store are found first and written before the rows
// that refer to them: a box, spend or read whose transaction is stored
// already satisfies its foreign key at once, where one written before it
// would be a deferred violation SQLite must resolve when the transaction
// comes (a search of each referring index).
func (c *connectTx) apply(ctx context.Context, txs []ergo.Transaction, stored map[ergo.Digest]*rules.Known, j *rules.Judgement) error {
	spend, putTx := c.stmt(c.s.stmt.spend), c.stmt(c.s.stmt.putTx)
	putBox, putToken := c.stmt(c.s.stmt.putBox), c.stmt(c.s.stmt.putToken)
	if c.backfill {
		spend, putTx, putBox = c.stmt(c.s.stmt.spendAgain), c.stmt(c.s.stmt.putTxAgain), c.stmt(c.s.stmt.putBoxAgain)
	}
	ids, touched, err := c.touched(txs, stored, j)
	if err != nil {
		return err
	}
	for i := range txs {
		if !touched[i] {
			continue
		}
		if _, err := putTx.ExecContext(c.ctx, ids[i][:], c.block[:], c.height, i); err != nil {
			return storageError(ctx, c.op, fmt.Sprintf("transaction %d %s", i, ids[i]), err)
		}
		c.stats.txs++
	}
	for i := range txs {
		if err := ctx.Err(); err != nil {
			return &Error{Op: c.op, Err: err}
		}
		tx := &txs[i]
		for j := range tx.Inputs {
			box := tx.Inputs[j].BoxID
			if _, ok := stored[box]; !ok {
				continue
			}
			n, err := execN(c.ctx, spend, ids[i][:], c.block[:], c.height, box[:])
			if err == nil && n == 0 && c.backfill {
				err = c.spentAlready(box, ids[i])
			}
			if err != nil {
				return storageError(ctx, c.op, fmt.Sprintf("transaction %d %s: input %d spends box %s", i, ids[i], j, box), err)
			}
			c.stats.spends++
		}
		if j == nil || j.Keep[i] == nil {
			continue
		}
		for k := range tx.Outputs {
			if !j.Keep[i][k] {
				continue
			}
			id, err := c.storeBox(putBox, putToken, ids[i], k, &tx.Outputs[k])
			if err != nil {
				return storageError(ctx, c.op, fmt.Sprintf("transaction %d %s: output %d", i, ids[i], k), err)
			}
			stored[id] = nil
			c.stats.boxes++
		}
	}
	return c.recordReads(ctx, txs, ids, stored)
}

// touched returns the block's transaction ids and which transactions are
// stored: those that spend a stored box (one stored before the block, or
// an output an earlier transaction of the block keeps), keep an output, or
// read a stored box (see recordReads: any output the block keeps counts).
func (c *connectTx) touched(txs []ergo.Transaction, stored map[ergo.Digest]*rules.Known, j *rules.Judgement) ([]ergo.Digest, []bool, error) {
	ids := make([]ergo.Digest, len(txs))
	touched := make([]bool, len(txs))
	kept := map[ergo.Digest]int{} // output id -> the transaction keeping it
	for i := range txs {
		tx := &txs[i]
		ids[i] = tx.TrustedID()
		if j == nil || j.Keep[i] == nil {
			continue
		}
		if len(j.Keep[i]) != len(tx.Outputs) {
			return nil, nil, newError(c.op, ErrInvalidBlock, "the judgement covers %d outputs of transaction %d's %d", len(j.Keep[i]), i, len(tx.Outputs))
		}
		for k := range tx.Outputs {
			if j.Keep[i][k] {
				kept[tx.Outputs[k].TrustedID()] = i
				touched[i] = true
			}
		}
	}
	for i := range txs {
		for _, in := range txs[i].Inputs {
			_, before := stored[in.BoxID]
			by, inBlock := kept[in.BoxID]
			touched[i] = touched[i] || before || inBlock && by < i
		}
		for _, box := range txs[i].DataInputs {
			_, before := stored[box]
			_, inBlock := kept[box]
			touched[i] = touched[i] || before || inBlock
		}
	}
	return ids, touched, nil
}

// spentAlready checks, for a backfill, that box, which an input of
// transaction tx spends and which is spent already, was spent by tx: the
// follower connecting the block marked it when it held the box then.
func (c *connectTx) spentAlready(box, tx ergo.Digest) error {
	var by []byte
	if err := c.stmt(c.s.stmt.spentBy).QueryRowContext(c.ctx, box[:]).Scan(&by); err != nil {
		return err
	}
	if !bytes.Equal(by, tx[:]) {
		return &kindError{kind: ErrConflict, msg: fmt.Sprintf("box %s is stored spent by transaction %x", box, by)}
	}
	return nil
}

// recordReads records every stored box a data input of the block reads.
//
// It runs once every output of the block is stored because that is how the
// node resolves data inputs: against the state before the block plus every
// output of the block, in any order, ignoring spends within the block
// (UtxoState.applyTransactions looks a data input up among the block's
// outputs, then in the state before the block; the block's AVL lookups run
// before its removals). On mainnet a data input does read a box that an
// earlier transaction of the same block spent (block 290684), so reads of
// spent boxes are recorded too.
func (c *connectTx) recordReads(ctx context.Context, txs []ergo.Transaction, ids []ergo.Digest, stored map[ergo.Digest]*rules.Known) error {
	putRead := c.stmt(c.s.stmt.putRead)
	if c.backfill {
		putRead = c.stmt(c.s.stmt.putReadAgain)
	}
	for i := range txs {
		for p, box := range txs[i].DataInputs {
			if _, ok := stored[box]; !ok {
				continue
			}
			if _, err := putRead.ExecContext(c.ctx, ids[i][:], p, box[:], c.block[:], c.height); err != nil {
				return storageError(ctx, c.op, fmt.Sprintf("transaction %d %s: data input %d reads box %s", i, ids[i], p, box), err)
			}
			c.stats.reads++
		}
	}
	return nil
}

// storeBox stores output index of transaction txID and its tokens, and
// returns the box id.
func (c *connectTx) storeBox(putBox, putToken *sql.Stmt, txID ergo.Digest, index int, out *ergo.Box) (ergo.Digest, error) {
	id := out.TrustedID()
	if out.Value > math.MaxInt64 {
		return id, invalid("value %d overflows 63 bits", out.Value)
	}
	if len(out.Registers) > sigma.MaxRegisters {
		return id, invalid("%d registers, at most %d", len(out.Registers), sigma.MaxRegisters)
	}
	if len(out.ErgoTree) == 0 {
		return id, invalid("empty ErgoTree")
	}
	var regs [sigma.MaxRegisters]any // untyped nil is NULL
	for i, r := range out.Registers {
		if r == nil {
			r = []byte{} // present but empty: a nil []byte would bind as NULL
		}
		regs[i] = r
	}
	n, err := execN(c.ctx, putBox, id[:], txID[:], c.block[:], c.height, index, int64(out.Value),
		out.ErgoTree, templateHash(out.ErgoTree), out.CreationHeight,
		regs[0], regs[1], regs[2], regs[3], regs[4], regs[5])
	if err != nil {
		return id, fmt.Errorf("box %s: %w", id, err)
	}
	if n == 0 { // a backfill's, stored already with its tokens
		return id, nil
	}
	for p := range out.Tokens {
		t := &out.Tokens[p]
		if t.Amount > math.MaxInt64 {
			return id, invalid("box %s: token %d amount %d overflows 63 bits", id, p, t.Amount)
		}
		if _, err := putToken.ExecContext(c.ctx, id[:], p, t.ID[:], int64(t.Amount)); err != nil {
			return id, fmt.Errorf("box %s: token %d: %w", id, p, err)
		}
	}
	return id, nil
}

// templateHash is the tree's template hash, or nil (stored as NULL) for a
// tree whose header or constants cannot be parsed.
func templateHash(tree []byte) any {
	h, err := sigma.TemplateHashOf(tree)
	if err != nil {
		return nil
	}
	return h[:]
}

// DisconnectBlock undoes the tip block id, in one SQLite transaction: id
// must be the tip (otherwise ErrNotTip). The boxes it spent are unspent
// again (the spent_* columns name the spending block, so exactly those);
// the data-input reads, boxes, tokens and transactions it created are
// deleted, and so are the verdicts and lineage steps it made, of every
// protocol (a backfill's included); its header stays, off the main chain;
// the tip moves to its parent at the height below, whether or not the
// parent is stored, and every protocol's cursor above it comes back to it. When the
// tip is the parent of the store's first block, there is nothing to
// disconnect: ErrBelowStart.
//
// With an EventEncoder set (SetEvents), it also writes a retraction of each
// verdict event the block's connection wrote and a chain.rollback event,
// described by reorg (nil: a rollback of this block alone).
func (s *Store) DisconnectBlock(ctx context.Context, id ergo.Digest, reorg *Reorg) error {
	start := time.Now()
	op := fmt.Sprintf("disconnect block %s", id)
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
		return newError(op, ErrNotTip, "the store is empty")
	case tip.ID != id:
		return newError(op, ErrNotTip, "the tip is %s at height %d", tip.ID, tip.Height)
	}

	var (
		height     uint32
		parent     []byte
		mainChain  bool
		parentID   ergo.Digest
		restored   int64
		deletedTxs int64

		deletedVerdicts int64
	)
	err = tx.StmtContext(ctx, s.stmt.header).QueryRowContext(ctx, id[:]).Scan(&height, &parent, &mainChain)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return newError(op, ErrBelowStart, "the tip, at height %d, is the parent of the store's first block", tip.Height)
	case err != nil:
		return storageError(ctx, op, "read header", err)
	case height != tip.Height || !mainChain:
		return storageError(ctx, op, "", corrupt("the tip is at height %d, its header at height %d (main chain: %t)", tip.Height, height, mainChain))
	}
	if err := scanDigest(parent, &parentID); err != nil {
		return storageError(ctx, op, "read header", err)
	}
	events := 0
	if enc, _ := s.encoder(); enc != nil {
		ref := BlockRef{ID: id, Height: height}
		if err := tx.QueryRowContext(ctx, `SELECT connects, timestamp FROM headers WHERE id = ?`, id[:]).Scan(&ref.Connects, &ref.Timestamp); err != nil {
			return storageError(ctx, op, "read header", err)
		}
		r := Reorg{ForkID: parentID, ForkHeight: height - 1, Depth: 1, OldTip: tip, NewTip: Tip{Height: height - 1, ID: parentID}}
		if reorg != nil {
			r = *reorg
		}
		if events, err = writeRetractions(ctx, tx, enc, ref, r); err != nil {
			return storageError(ctx, op, "write events", err)
		}
	}

	for _, step := range []struct {
		what  string
		stmt  *sql.Stmt
		count *int64
	}{
		{"restore spent boxes", s.stmt.unspendBlock, &restored},
		{"delete data-input reads", s.stmt.deleteReads, nil},
		{"delete tokens", s.stmt.deleteTokens, nil},
		{"delete boxes", s.stmt.deleteBoxes, nil},
		{"delete transactions", s.stmt.deleteTxs, &deletedTxs},
		{"delete verdicts", s.stmt.deleteVerdicts, &deletedVerdicts},
		{"delete lineage steps", s.stmt.deleteSteps, nil},
		{"orphan header", s.stmt.orphanHeader, nil},
	} {
		n, err := execN(ctx, tx.StmtContext(ctx, step.stmt), id[:])
		if err != nil {
			return storageError(ctx, op, step.what, err)
		}
		if step.count != nil {
			*step.count = n
		}
	}
	if _, err := tx.StmtContext(ctx, s.stmt.rewindCursors).ExecContext(ctx, height-1); err != nil {
		return storageError(ctx, op, "move the protocols' cursors back", err)
	}
	if _, err := tx.StmtContext(ctx, s.stmt.setTip).ExecContext(ctx, height-1, parentID[:]); err != nil {
		return storageError(ctx, op, "move tip", err)
	}
	if err := tx.Commit(); err != nil {
		return storageError(ctx, op, "commit", err)
	}
	if _, written := s.encoder(); events > 0 && written != nil {
		written()
	}
	s.log.Info().Uint32("height", height).Stringer("id", id).Stringer("new_tip", parentID).
		Int64("restored_spends", restored).Int64("deleted_txs", deletedTxs).Int64("deleted_verdicts", deletedVerdicts).Dur("took", time.Since(start)).
		Msg("disconnected block")
	return nil
}

// execN executes st and returns the number of rows it changed.
func execN(ctx context.Context, st *sql.Stmt, args ...any) (int64, error) {
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
