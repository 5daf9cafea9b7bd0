package db

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/rules"
	"github.com/rs/zerolog"
)

// TestConnectFixtures connects the five consecutive mainnet blocks
// 700000-700004 keeping every box, and checks the counts against what the
// blocks hold, the main chain and the tip, and one stored box column by
// column.
func TestConnectFixtures(t *testing.T) {
	bs := fixtureBlocks(t)
	s := newStore(t)
	ctx := context.Background()

	if _, ok, err := s.Tip(ctx); err != nil || ok {
		t.Fatalf("empty store: Tip ok=%t err=%v, want no tip", ok, err)
	}
	if st := status(t, s); !st.Empty || st.Headers != 0 {
		t.Fatalf("empty store status %+v", st)
	}
	connect(t, s, KeepAll{}, bs...)

	// What the blocks hold, by the chain's rules: an input spends a box
	// created earlier in the range (or by an earlier transaction of its
	// block); a data input reads a box created earlier in the range or
	// anywhere in its block.
	var want Status
	var tokens int64
	created := map[ergo.Digest]bool{}
	for _, b := range bs {
		touched := make([]bool, len(b.Transactions))
		for i := range b.Transactions {
			tx := &b.Transactions[i]
			for _, in := range tx.Inputs {
				if created[in.BoxID] {
					want.Spends++
					touched[i] = true
				}
			}
			for k := range tx.Outputs {
				created[tx.Outputs[k].BoxID] = true
				want.Boxes++
				tokens += int64(len(tx.Outputs[k].Tokens))
				touched[i] = true
			}
		}
		for i := range b.Transactions {
			for _, d := range b.Transactions[i].DataInputs {
				if created[d] {
					want.DataInputReads++
					touched[i] = true
				}
			}
		}
		for _, ok := range touched {
			if ok {
				want.Transactions++
			}
		}
	}
	want.UnspentBoxes = want.Boxes - want.Spends
	want.Headers = 5
	want.TipHeight, want.TipID = 700004, bs[4].Header.ID

	got := status(t, s)
	if got.StateDigest.IsZero() {
		t.Error("zero state digest")
	}
	want.StateDigest = got.StateDigest
	if !reflect.DeepEqual(got, want) {
		t.Errorf("status\n got %+v\nwant %+v", got, want)
	}
	if n := count(t, s, `SELECT count(*) FROM box_tokens`); n != tokens {
		t.Errorf("%d token rows, want %d", n, tokens)
	}
	if want.Spends == 0 || want.DataInputReads == 0 {
		t.Errorf("the fixtures should exercise spends and reads within the range: %+v", want)
	}
	t.Logf("5 blocks: %d boxes (%d tokens), %d spent in the range, %d data-input reads, %d transactions",
		want.Boxes, tokens, want.Spends, want.DataInputReads, want.Transactions)

	for _, b := range bs {
		id, ok, err := s.MainChainID(ctx, b.Header.Height)
		if err != nil || !ok || id != b.Header.ID {
			t.Errorf("MainChainID(%d) = %s, %t, %v; want %s", b.Header.Height, id, ok, err, b.Header.ID)
		}
	}
	for _, h := range []uint32{699999, 700005} {
		if _, ok, err := s.MainChainID(ctx, h); ok || err != nil {
			t.Errorf("MainChainID(%d): ok=%t err=%v, want absent", h, ok, err)
		}
	}
	if tip, ok, err := s.Tip(ctx); err != nil || !ok || tip != (Tip{700004, bs[4].Header.ID}) {
		t.Errorf("Tip = %+v, %t, %v", tip, ok, err)
	}
	if d, err := s.StateDigest(ctx); err != nil || d != got.StateDigest {
		t.Errorf("StateDigest = %s, %v; Status says %s", d, err, got.StateDigest)
	}

	checkStoredBoxes(t, s, bs)
}

// checkStoredBoxes compares every stored output of bs, column by column,
// with the block it came from.
func checkStoredBoxes(t *testing.T, s *Store, bs []*ergo.FullBlock) {
	var withRegs, withTokens int
	for _, b := range bs {
		for i := range b.Transactions {
			tx := &b.Transactions[i]
			for k := range tx.Outputs {
				o := &tx.Outputs[k]
				var (
					txID, blockID, tree, template []byte
					height, index, value, ch      int64
					regs                          [6][]byte
				)
				err := s.r.QueryRow(`SELECT tx_id, block_id, height, output_index, value, ergo_tree, template_hash,
					creation_height, r4, r5, r6, r7, r8, r9 FROM boxes WHERE id = ?`, o.BoxID[:]).Scan(
					&txID, &blockID, &height, &index, &value, &tree, &template, &ch,
					&regs[0], &regs[1], &regs[2], &regs[3], &regs[4], &regs[5])
				if err != nil {
					t.Fatalf("box %s: %v", o.BoxID, err)
				}
				if !bytes.Equal(txID, tx.ID[:]) || !bytes.Equal(blockID, b.Header.ID[:]) ||
					height != int64(b.Header.Height) || index != int64(k) || value != int64(o.Value) ||
					!bytes.Equal(tree, o.ErgoTree) || ch != int64(o.CreationHeight) {
					t.Errorf("box %s stored as tx %x block %x height %d index %d value %d ch %d", o.BoxID, txID, blockID, height, index, value, ch)
				}
				if th := templateHash(o.ErgoTree); th == nil && template != nil || th != nil && !bytes.Equal(th.([]byte), template) {
					t.Errorf("box %s: template hash %x, want %x", o.BoxID, template, th)
				}
				for r := range regs {
					var want []byte
					if r < len(o.Registers) {
						want = o.Registers[r]
						withRegs++
					}
					if !bytes.Equal(regs[r], want) || (regs[r] == nil) != (want == nil) {
						t.Errorf("box %s: R%d = %x, want %x", o.BoxID, r+4, regs[r], want)
					}
				}
				rows, err := s.r.Query(`SELECT token_id, amount FROM box_tokens WHERE box_id = ? ORDER BY position`, o.BoxID[:])
				if err != nil {
					t.Fatal(err)
				}
				var got []sigma.Token
				for rows.Next() {
					var tid []byte
					var tok sigma.Token
					var amount int64
					if err := rows.Scan(&tid, &amount); err != nil {
						t.Fatal(err)
					}
					copy(tok.ID[:], tid)
					tok.Amount = uint64(amount)
					got = append(got, tok)
				}
				rows.Close()
				if len(got) != len(o.Tokens) {
					t.Errorf("box %s: %d tokens, want %d", o.BoxID, len(got), len(o.Tokens))
					continue
				}
				for p := range got {
					if got[p] != o.Tokens[p] {
						t.Errorf("box %s token %d: %+v, want %+v", o.BoxID, p, got[p], o.Tokens[p])
					}
				}
				withTokens += len(got)
			}
		}
	}
	if withRegs == 0 || withTokens == 0 {
		t.Errorf("checked %d registers and %d tokens: the fixtures should have both", withRegs, withTokens)
	}
}

// TestConnectRejectsNonChild: a block that is not the tip's child is
// ErrNotChild (wrong parent, wrong height, the tip itself), and changes
// nothing.
func TestConnectRejectsNonChild(t *testing.T) {
	bs := fixtureBlocks(t)
	s := newStore(t)
	ctx := context.Background()
	connect(t, s, KeepAll{}, bs[0], bs[1])

	wrongParent := *bs[2]
	wrongParent.Header.ParentID = bs[0].Header.ID
	wrongHeight := *bs[2]
	wrongHeight.Header.Height = 700003
	for name, b := range map[string]*ergo.FullBlock{
		"skips a block":     bs[3],
		"wrong parent":      &wrongParent,
		"wrong height":      &wrongHeight,
		"the tip again":     bs[1],
		"the tip's parent":  bs[0],
		"synthetic orphan":  block("orphan", 700002, id("elsewhere")),
		"right height only": block("other", 700002, bs[0].Header.ID),
	} {
		t.Run(name, func(t *testing.T) {
			unchanged(t, s, ErrNotChild, func() error { return s.ConnectBlock(ctx, b, KeepAll{}) })
		})
	}
	// The message names both the block's parent and the tip.
	err := s.ConnectBlock(ctx, &wrongParent, KeepAll{})
	for _, want := range []string{bs[0].Header.ID.String(), bs[1].Header.ID.String(), "700001"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	// The store still takes the right child.
	connect(t, s, KeepAll{}, bs[2])
}

// TestConnectRejectsUnstorableBlocks: a nil block, one at height 0, and
// outputs the schema cannot hold are ErrInvalidBlock, and change nothing.
func TestConnectRejectsUnstorableBlocks(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	unchanged(t, s, ErrInvalidBlock, func() error { return s.ConnectBlock(ctx, nil, KeepAll{}) })
	unchanged(t, s, ErrInvalidBlock, func() error { return s.ConnectBlock(ctx, block("zero", 0, ergo.Digest{}), KeepAll{}) })
	sevenRegs, noTree := out(1), out(1)
	sevenRegs.Registers = make([][]byte, 7)
	noTree.ErgoTree = nil
	for name, o := range map[string]ergo.Box{
		"value above 2^63-1": out(1 << 63),
		"token above 2^63-1": out(1, sigma.Token{ID: id("t"), Amount: 1 << 63}),
		"seven registers":    sevenRegs,
		"empty ErgoTree":     noTree,
	} {
		t.Run(name, func(t *testing.T) {
			b := block("bad", 10, id("p"), txn("fine", nil, nil, out(5)), txn("t", nil, nil, out(2), o))
			unchanged(t, s, ErrInvalidBlock, func() error { return s.ConnectBlock(ctx, b, KeepAll{}) })
		})
	}
}

// TestDisconnectRejectsNonTip: disconnecting anything but the tip is
// ErrNotTip and changes nothing.
func TestDisconnectRejectsNonTip(t *testing.T) {
	bs := fixtureBlocks(t)
	s := newStore(t)
	ctx := context.Background()
	unchanged(t, s, ErrNotTip, func() error { return s.DisconnectBlock(ctx, bs[0].Header.ID, nil) }) // empty store
	connect(t, s, KeepAll{}, bs[0], bs[1], bs[2])
	for name, d := range map[string]ergo.Digest{
		"the tip's parent": bs[1].Header.ID,
		"the first block":  bs[0].Header.ID,
		"a block not seen": bs[3].Header.ID,
		"the zero id":      {},
	} {
		t.Run(name, func(t *testing.T) {
			unchanged(t, s, ErrNotTip, func() error { return s.DisconnectBlock(ctx, d, nil) })
		})
	}
	disconnect(t, s, bs[2])
}

// TestDisconnectReconnectFixtures: connecting 1..5 then disconnecting 5..3
// leaves the state of a store that connected 1..2; reconnecting 3..5 gives
// the state of a store that connected 1..5 straight.
func TestDisconnectReconnectFixtures(t *testing.T) {
	bs := fixtureBlocks(t)
	a, two, five := newStore(t), newStore(t), newStore(t)
	connect(t, a, KeepAll{}, bs...)
	connect(t, two, KeepAll{}, bs[:2]...)
	connect(t, five, KeepAll{}, bs...)
	full := status(t, a)

	disconnect(t, a, bs[4], bs[3], bs[2])
	sameState(t, "1..5 minus 5..3 vs 1..2", a, two)
	if st := status(t, a); st.OrphanedHeaders != 3 || st.Headers != 5 {
		t.Errorf("after 3 disconnects: %d headers, %d orphaned; want 5, 3", st.Headers, st.OrphanedHeaders)
	}
	for h := uint32(700002); h <= 700004; h++ {
		if _, ok, _ := a.MainChainID(context.Background(), h); ok {
			t.Errorf("MainChainID(%d) still set after its block was disconnected", h)
		}
	}

	connect(t, a, KeepAll{}, bs[2:]...)
	sameState(t, "reconnected 3..5 vs straight 1..5", a, five)
	if st := status(t, a); !reflect.DeepEqual(st, full) {
		t.Errorf("after reconnecting: %+v\nwant %+v", st, full)
	}
}

// TestForkRestoresSpendJournal: A1 A2, disconnect A2, then B2 B3 gives the
// state of A1 B2 B3 connected directly, where B spends the boxes A2 spent
// and creates a box A2 created too (the same transaction mined in both
// branches), and B3 spends a box A2 had spent.
func TestForkRestoresSpendJournal(t *testing.T) {
	a1 := block("A1", 100, id("A0"),
		txn("mint", nil, nil, out(1000), out(2000), out(3000), out(4000)))
	x, y, z, w := boxRef("mint", 0), boxRef("mint", 1), boxRef("mint", 2), boxRef("mint", 3)
	shared := txn("shared", ids(y), nil, out(1999)) // mined in A2 and in B2
	a2 := child("A2", a1,
		txn("a-spend-x", ids(x), ids(z), out(999)),
		shared,
		txn("a-spend-shared", ids(boxRef("shared", 0), w), nil, out(5998)), // created and spent in A2
	)
	b2 := child("B2", a1,
		shared,
		txn("b-spend-x", ids(x), ids(boxRef("shared", 0)), out(998)),
	)
	b3 := child("B3", b2, txn("b-spend-w", ids(w, boxRef("shared", 0)), ids(z), out(5997)))

	s := newStore(t)
	connect(t, s, KeepAll{}, a1)
	onlyA1 := status(t, s)
	connect(t, s, KeepAll{}, a2)
	if r, ok := storedBox(t, s, boxRef("shared", 0)); !ok || !bytes.Equal(r.spentBlock, a2.Header.ID[:]) {
		t.Fatalf("A2's shared output: stored %t, spent by block %x; want spent in A2", ok, r.spentBlock)
	}
	disconnect(t, s, a2)
	if st := status(t, s); st.StateDigest != onlyA1.StateDigest {
		t.Errorf("A1 A2 minus A2 differs from A1: %+v\n%+v", st, onlyA1)
	}
	for _, box := range []ergo.Digest{x, y, z, w} {
		if r, ok := storedBox(t, s, box); !ok || r.spentTx != nil || r.spentBlock != nil || r.spentHeight != nil {
			t.Errorf("box %s after disconnecting A2: stored %t, spent %+v; want unspent", box, ok, r)
		}
	}
	connect(t, s, KeepAll{}, b2, b3)

	direct := newStore(t)
	connect(t, direct, KeepAll{}, a1, b2, b3)
	sameState(t, "A1 A2 -A2 B2 B3 vs A1 B2 B3", s, direct)

	// And back: B3, B2 off, A2 on is A1 A2 straight.
	disconnect(t, s, b3, b2)
	connect(t, s, KeepAll{}, a2)
	straight := newStore(t)
	connect(t, straight, KeepAll{}, a1, a2)
	sameState(t, "back to A2 vs A1 A2", s, straight)
	if st := status(t, s); st.OrphanedHeaders != 2 {
		t.Errorf("%d orphaned headers, want 2 (B2, B3)", st.OrphanedHeaders)
	}
}

// TestDisconnectRestoresSpends: a box created in block 1 and spent in
// block 2 is unspent again once block 2 is disconnected; what block 2
// created (including a box it also spent) and read is gone.
func TestDisconnectRestoresSpends(t *testing.T) {
	b1 := block("b1", 10, id("b0"), txn("t1", nil, nil, out(100), out(200)))
	b2 := child("b2", b1,
		txn("t2", ids(boxRef("t1", 0)), ids(boxRef("t1", 1)), out(60), out(40)),
		txn("t3", ids(boxRef("t2", 1)), nil, out(39)),
	)
	s := newStore(t)
	connect(t, s, KeepAll{}, b1, b2)
	r, ok := storedBox(t, s, boxRef("t1", 0))
	if !ok || !bytes.Equal(r.spentTx, b2.Transactions[0].ID[:]) || !bytes.Equal(r.spentBlock, b2.Header.ID[:]) || r.spentHeight == nil || *r.spentHeight != 11 {
		t.Fatalf("box spent in b2: %+v", r)
	}
	if st := status(t, s); st.Boxes != 5 || st.Spends != 2 || st.DataInputReads != 1 || st.Transactions != 3 {
		t.Fatalf("after b2: %+v", st)
	}

	disconnect(t, s, b2)
	if r, ok := storedBox(t, s, boxRef("t1", 0)); !ok || r.spentTx != nil || r.spentBlock != nil || r.spentHeight != nil {
		t.Errorf("after disconnecting b2 the box it spent is %+v (stored %t), want unspent", r, ok)
	}
	for _, gone := range []ergo.Digest{boxRef("t2", 0), boxRef("t2", 1), boxRef("t3", 0)} {
		if _, ok := storedBox(t, s, gone); ok {
			t.Errorf("box %s created by b2 is still stored", gone)
		}
	}
	want := Status{TipHeight: 10, TipID: b1.Header.ID, Headers: 2, OrphanedHeaders: 1, Transactions: 1, Boxes: 2, UnspentBoxes: 2}
	st := status(t, s)
	want.StateDigest = st.StateDigest
	if !reflect.DeepEqual(st, want) {
		t.Errorf("after disconnecting b2: %+v\nwant %+v", st, want)
	}
}

// TestWithinBlock: a box created by transaction 1 and spent by transaction
// 3 of the same block is stored, spent; a data input reads a box created
// by a later transaction of its block, and one spent by an earlier one (the
// node resolves data inputs against the state before the block plus all of
// the block's outputs).
func TestWithinBlock(t *testing.T) {
	b1 := block("w1", 50, id("w0"), txn("seed", nil, nil, out(10)))
	b2 := child("w2", b1,
		txn("reader", nil, ids(boxRef("late", 0)), out(1)),             // reads an output of tx 4
		txn("create", nil, nil, out(7)),                                // tx 1 creates
		txn("irrelevant", ids(id("unknown box")), nil),                 // touches nothing stored
		txn("spend", ids(boxRef("create", 0), boxRef("seed", 0)), nil), // tx 3 spends tx 1's box and seed
		txn("late", nil, ids(boxRef("seed", 0)), out(3)),               // reads seed, spent by tx 3
	)
	s := newStore(t)
	connect(t, s, KeepAll{}, b1, b2)

	r, ok := storedBox(t, s, boxRef("create", 0))
	if !ok || !bytes.Equal(r.spentTx, idb("spend")) || !bytes.Equal(r.spentBlock, b2.Header.ID[:]) {
		t.Errorf("box created by tx 1 and spent by tx 3: stored %t, %+v", ok, r)
	}
	for _, tx := range []string{"reader", "create", "spend", "late"} {
		if n := count(t, s, `SELECT count(*) FROM transactions WHERE id = ?`, idb(tx)); n != 1 {
			t.Errorf("transaction %s stored %d times, want once", tx, n)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM transactions WHERE id = ?`, idb("irrelevant")); n != 0 {
		t.Errorf("a transaction touching no stored box is stored")
	}
	if n := count(t, s, `SELECT count(*) FROM transactions WHERE block_id = ? AND tx_index = 3 AND id = ?`, b2.Header.ID[:], idb("spend")); n != 1 {
		t.Errorf("transaction 'spend' not stored at index 3")
	}
	for _, read := range [][2]string{{"reader", "late"}, {"late", "seed"}} {
		box := boxRef(read[1], 0)
		if n := count(t, s, `SELECT count(*) FROM data_input_reads WHERE tx_id = ? AND box_id = ? AND position = 0 AND block_id = ? AND height = 51`,
			idb(read[0]), box[:], b2.Header.ID[:]); n != 1 {
			t.Errorf("read of %s by %s: %d rows", read[1], read[0], n)
		}
	}
	disconnect(t, s, b2)
	only := newStore(t)
	connect(t, only, KeepAll{}, b1)
	sameState(t, "w1 w2 -w2 vs w1", s, only)
}

// TestDisconnectToStart: a store that started at some height can disconnect
// its first block; the tip is then the block's parent (not stored), from
// which the scanner connects again; below that there is nothing to
// disconnect.
func TestDisconnectToStart(t *testing.T) {
	bs := fixtureBlocks(t)
	s := newStore(t)
	ctx := context.Background()
	connect(t, s, KeepAll{}, bs[2]) // the store starts at 700002
	disconnect(t, s, bs[2])
	tip, ok, err := s.Tip(ctx)
	if err != nil || !ok || tip != (Tip{700001, bs[1].Header.ID}) {
		t.Fatalf("tip after disconnecting the first block: %+v %t %v; want 700001 %s", tip, ok, err, bs[1].Header.ID)
	}
	st := status(t, s)
	if st.Empty || st.Boxes != 0 || st.Transactions != 0 || st.Headers != 1 || st.OrphanedHeaders != 1 {
		t.Errorf("status %+v", st)
	}
	unchanged(t, s, ErrBelowStart, func() error { return s.DisconnectBlock(ctx, bs[1].Header.ID, nil) })
	unchanged(t, s, ErrNotChild, func() error { return s.ConnectBlock(ctx, bs[3], KeepAll{}) })

	connect(t, s, KeepAll{}, bs[2], bs[3])
	fresh := newStore(t)
	connect(t, fresh, KeepAll{}, bs[2], bs[3])
	sameState(t, "restarted vs fresh", s, fresh)
}

// TestReopen: closing and opening the file again gives the same tip,
// status and digest, and the store goes on from there.
func TestReopen(t *testing.T) {
	bs := fixtureBlocks(t)
	path := filepath.Join(t.TempDir(), "reopen.db")
	ctx := context.Background()
	s, err := Open(ctx, path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	connect(t, s, KeepAll{}, bs[:4]...)
	disconnect(t, s, bs[3])
	before := status(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path)
	if after := status(t, s); !reflect.DeepEqual(after, before) {
		t.Errorf("after reopening: %+v\nwant %+v", after, before)
	}
	connect(t, s, KeepAll{}, bs[3:]...)
	straight := newStore(t)
	connect(t, straight, KeepAll{}, bs...)
	sameState(t, "reopened vs straight", s, straight)
}

// TestTokenFilter: a filter on one token keeps only the boxes holding it
// and the transactions that create, spend or read them.
func TestTokenFilter(t *testing.T) {
	tok := sigma.Token{ID: id("protocol token"), Amount: 5}
	other := sigma.Token{ID: id("other token"), Amount: 9}
	b1 := block("f1", 20, id("f0"),
		txn("mint", nil, nil, out(100, tok), out(100), out(100, other)),
		txn("noise", ids(id("x")), nil, out(5, other)),
	)
	b2 := child("f2", b1,
		txn("move", ids(boxRef("mint", 0), boxRef("mint", 1)), nil, out(150), out(50, tok)),
		txn("read", ids(boxRef("mint", 2)), ids(boxRef("move", 1)), out(100, other)),
		txn("spend-other", ids(boxRef("noise", 0)), nil, out(5)),
	)
	s := newStore(t)
	connect(t, s, NewFilter([]ergo.Digest{tok.ID}, nil), b1, b2)

	want := Status{TipHeight: 21, TipID: b2.Header.ID, Headers: 2, Transactions: 3, Boxes: 2, UnspentBoxes: 1, Spends: 1, DataInputReads: 1}
	st := status(t, s)
	want.StateDigest = st.StateDigest
	if !reflect.DeepEqual(st, want) {
		t.Errorf("status %+v\nwant %+v", st, want)
	}
	for _, box := range []ergo.Digest{boxRef("mint", 0), boxRef("move", 1)} {
		if _, ok := storedBox(t, s, box); !ok {
			t.Errorf("box %s holds the token but is not stored", box)
		}
	}
	for _, tx := range []string{"mint", "move", "read"} {
		if n := count(t, s, `SELECT count(*) FROM transactions WHERE id = ?`, idb(tx)); n != 1 {
			t.Errorf("transaction %s not stored", tx)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM box_tokens WHERE token_id = ?`, tok.ID[:]); n != 2 {
		t.Errorf("%d token rows for the protocol token, want 2", n)
	}

	// A template filter keeps by ErgoTree template: every p2pk box here.
	h, err := mustTree(t, p2pk).TemplateHash()
	if err != nil {
		t.Fatal(err)
	}
	byTemplate := newStore(t)
	connect(t, byTemplate, NewFilter(nil, []rules.Template{rules.SHA256Template(h)}), b1, b2)
	if st := status(t, byTemplate); st.Boxes != 8 {
		t.Errorf("template filter kept %d boxes, want all 8", st.Boxes)
	}
	// The same template by its blake2b256 hash keeps the same boxes.
	hs, err := rules.HashTemplate(p2pk)
	if err != nil || hs.SHA256 != h {
		t.Fatalf("template hashes %v %v, sha256 %x", hs, err, h)
	}
	byBlake := newStore(t)
	connect(t, byBlake, NewFilter(nil, []rules.Template{hs.In(rules.Blake2b256)}), b1, b2)
	sameState(t, "template filter by sha256 vs by blake2b256", byTemplate, byBlake)
	// The zero filter keeps nothing, like a nil Judge.
	none := newStore(t)
	connect(t, none, &Filter{}, b1, b2)
	nilKeep := newStore(t)
	connect(t, nilKeep, nil, b1, b2)
	sameState(t, "zero filter vs nil", none, nilKeep)
	nilFilter := newStore(t)
	connect(t, nilFilter, (*Filter)(nil), b1, b2)
	sameState(t, "zero filter vs nil *Filter", none, nilFilter)
	if st := status(t, none); st.Boxes != 0 || st.Transactions != 0 || st.Headers != 2 {
		t.Errorf("zero filter: %+v", st)
	}
}

func mustTree(t *testing.T, b []byte) *sigma.ErgoTree {
	tree, err := sigma.ParseErgoTree(b)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// TestOddErgoTree: a box whose tree does not parse is stored with a NULL
// template hash.
func TestOddErgoTree(t *testing.T) {
	odd := out(10)
	odd.ErgoTree = []byte{0xff, 0x01}
	s := newStore(t)
	connect(t, s, KeepAll{}, block("o1", 5, id("o0"), txn("odd", nil, nil, odd, out(11))))
	if n := count(t, s, `SELECT count(*) FROM boxes WHERE template_hash IS NULL`); n != 1 {
		t.Errorf("%d boxes without a template hash, want 1", n)
	}
	if n := count(t, s, `SELECT count(*) FROM boxes WHERE template_hash IS NOT NULL`); n != 1 {
		t.Errorf("%d boxes with a template hash, want 1", n)
	}
}

// TestPathWithURICharacters: the path is a file path, even with characters
// that mean something in a file: URI.
func TestPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a b?c=d#e%41.db")
	s := openAt(t, path)
	connect(t, s, KeepAll{}, block("p1", 1, ergo.Digest{}, txn("t", nil, nil, out(1))))
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the database is not at %s: %v", path, err)
	}
}

// TestSchemaNewerThanBuild: a database whose user_version is ahead of the
// build is refused with ErrSchema, and left as it is.
func TestSchemaNewerThanBuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "newer.db")
	s, err := Open(context.Background(), path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, path)
	newer := SchemaVersion() + 1
	if _, err := raw.Exec(`PRAGMA user_version = ` + strconv.Itoa(newer)); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), path, zerolog.Nop())
	if !errors.Is(err, ErrSchema) {
		t.Fatalf("Open of a version %d database: %v, want ErrSchema", newer, err)
	}
	var v int
	if err := raw.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != newer {
		t.Errorf("user_version is %d (%v) after the refused Open, want %d", v, err, newer)
	}
}

// TestForeignDatabase: a database of another program is refused, not
// migrated.
func TestForeignDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "foreign.db")
	raw := rawDB(t, path)
	if _, err := raw.Exec(`CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), path, zerolog.Nop()); !errors.Is(err, ErrSchema) {
		t.Errorf("Open of a foreign database: %v, want ErrSchema", err)
	}
	other := filepath.Join(t.TempDir(), "other-app.db")
	raw = rawDB(t, other)
	if _, err := raw.Exec(`PRAGMA application_id = 1; PRAGMA user_version = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), other, zerolog.Nop()); !errors.Is(err, ErrSchema) {
		t.Errorf("Open of another application's database: %v, want ErrSchema", err)
	}
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

// TestDerivedIDs: ids a block does not state are derived from its
// contents; the mainnet fixtures' ids verify, so a store given the blocks
// without their ids holds the same state.
func TestDerivedIDs(t *testing.T) {
	stated := newStore(t)
	connect(t, stated, KeepAll{}, fixtureBlocks(t)...)
	bs := fixtureBlocks(t)
	for _, b := range bs {
		b.Header.ID, b.Header.HasID = ergo.Digest{}, false
		for i := range b.Transactions {
			tx := &b.Transactions[i]
			tx.ID, tx.HasID = ergo.Digest{}, false
			for k := range tx.Outputs {
				tx.Outputs[k].BoxID, tx.Outputs[k].HasBoxID = ergo.Digest{}, false
			}
		}
	}
	derived := newStore(t)
	connect(t, derived, KeepAll{}, bs...)
	sameState(t, "derived ids vs stated ids", derived, stated)
}
