package db

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/internal/fixtures"
	"github.com/rs/zerolog"
)

// openAt opens the store at path and closes it when the test ends.
func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, zerolog.Nop())
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newStore opens a store in a new file under t.TempDir().
func newStore(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "auditor.db"))
}

func connect(t testing.TB, s *Store, keep Judge, blocks ...*ergo.FullBlock) {
	t.Helper()
	for _, b := range blocks {
		if err := s.ConnectBlock(context.Background(), b, keep); err != nil {
			t.Fatalf("ConnectBlock(%d): %v", b.Header.Height, err)
		}
	}
}

func disconnect(t testing.TB, s *Store, blocks ...*ergo.FullBlock) {
	t.Helper()
	for _, b := range blocks {
		if err := s.DisconnectBlock(context.Background(), b.Header.ID, nil); err != nil {
			t.Fatalf("DisconnectBlock(%d): %v", b.Header.Height, err)
		}
	}
}

func status(t testing.TB, s *Store) Status {
	t.Helper()
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return st
}

// sameState fails the test unless a and b hold the same main-chain state:
// equal digests, tips and counts (orphaned headers aside, which are not
// main-chain state).
func sameState(t testing.TB, what string, a, b *Store) {
	t.Helper()
	sa, sb := status(t, a), status(t, b)
	if sa.StateDigest != sb.StateDigest {
		t.Errorf("%s: state digests differ:\n%+v\n%+v", what, sa, sb)
	}
	sa.Headers -= sa.OrphanedHeaders
	sb.Headers -= sb.OrphanedHeaders
	sa.OrphanedHeaders, sb.OrphanedHeaders = 0, 0
	sa.Protocols, sb.Protocols = historyState(sa.Protocols), historyState(sb.Protocols)
	if !reflect.DeepEqual(sa, sb) {
		t.Errorf("%s: statuses differ:\n%+v\n%+v", what, sa, sb)
	}
}

// historyState is what the state digest covers of the protocols'
// histories: each one's name and cursor, pruned ones left out (how and when
// a history came to be is not chain state).
func historyState(hs []ProtocolHistory) []ProtocolHistory {
	var out []ProtocolHistory
	for _, h := range hs {
		if h.State != ProtocolPruned {
			out = append(out, ProtocolHistory{Name: h.Name, Cursor: h.Cursor})
		}
	}
	return out
}

// unchanged runs f, which must fail with kind, and checks that the store's
// status (digest, tip and counts) is what it was before.
func unchanged(t testing.TB, s *Store, kind error, f func() error) {
	t.Helper()
	before := status(t, s)
	err := f()
	if !errors.Is(err, kind) {
		t.Fatalf("got error %v, want %v", err, kind)
	}
	if after := status(t, s); !reflect.DeepEqual(after, before) {
		t.Errorf("after %v the store changed:\nbefore %+v\nafter  %+v", err, before, after)
	}
}

// fixtureBlocks returns the five consecutive mainnet blocks 700000-700004.
func fixtureBlocks(t testing.TB) []*ergo.FullBlock {
	t.Helper()
	var bs []*ergo.FullBlock
	for h := 700000; h <= 700004; h++ {
		b, err := ergo.DecodeBlock(fixtures.Read(t, "blocks", fmt.Sprintf("mainnet_%d.json", h)))
		if err != nil {
			t.Fatalf("decode block %d: %v", h, err)
		}
		if !b.Header.HasID || b.Header.Height != uint32(h) {
			t.Fatalf("fixture %d: height %d, has id %t", h, b.Header.Height, b.Header.HasID)
		}
		bs = append(bs, b)
	}
	return bs
}

// Synthetic chains. Ids are hashes of labels: they need not verify, the
// store trusts the scanner for that.

// p2pk is a well-formed ErgoTree, so its template parses: proveDlog of the
// secp256k1 generator.
var p2pk = mustHex("0008cd0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err) // a constant of the test
	}
	return b
}

func id(label string) ergo.Digest { return ergo.Hash([]byte(label)) }

// boxRef is the id of output k of the transaction labelled tx.
func boxRef(tx string, k int) ergo.Digest { return id(fmt.Sprintf("%s#%d", tx, k)) }

// block builds a block labelled label at height on parent.
func block(label string, height uint32, parent ergo.Digest, txs ...ergo.Transaction) *ergo.FullBlock {
	return &ergo.FullBlock{
		Header: ergo.Header{
			ID: id(label), HasID: true, Version: 3,
			ParentID: parent, Height: height, NBits: 0x01020000, // difficulty 2
			Timestamp: 1_700_000_000_000 + uint64(height)*120_000,
		},
		Transactions: txs,
	}
}

// child builds a block on top of parent.
func child(label string, parent *ergo.FullBlock, txs ...ergo.Transaction) *ergo.FullBlock {
	return block(label, parent.Header.Height+1, parent.Header.ID, txs...)
}

// txn is a transaction labelled label spending ins, reading data and
// creating outs (whose ids are boxRef(label, k)).
func txn(label string, ins, data []ergo.Digest, outs ...ergo.Box) ergo.Transaction {
	tx := ergo.Transaction{ID: id(label), HasID: true, DataInputs: data}
	for _, in := range ins {
		tx.Inputs = append(tx.Inputs, ergo.Input{BoxID: in})
	}
	for k, o := range outs {
		o.TxID, o.Index = tx.ID, uint16(k)
		o.BoxID, o.HasBoxID = boxRef(label, k), true
		tx.Outputs = append(tx.Outputs, o)
	}
	return tx
}

// out is an output of value nanoERG holding tokens.
func out(value uint64, tokens ...sigma.Token) ergo.Box {
	var b ergo.Box
	b.Value, b.ErgoTree, b.CreationHeight, b.Tokens = value, p2pk, 1, tokens
	return b
}

func ids(ds ...ergo.Digest) []ergo.Digest { return ds }

// boxRow is what a test reads back of a stored box.
type boxRow struct {
	spentTx, spentBlock []byte
	spentHeight         *int64
}

// storedBox reads box id; ok is false when it is not stored.
func storedBox(t testing.TB, s *Store, box ergo.Digest) (row boxRow, ok bool) {
	t.Helper()
	rows, err := s.r.Query(`SELECT spent_tx_id, spent_block_id, spent_height FROM boxes WHERE id = ?`, box[:])
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return row, false
	}
	if err := rows.Scan(&row.spentTx, &row.spentBlock, &row.spentHeight); err != nil {
		t.Fatal(err)
	}
	return row, true
}

func count(t testing.TB, s *Store, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := s.r.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// idb is id(label) as a slice, for query arguments.
func idb(label string) []byte { d := id(label); return d[:] }
