package db

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/rules"
)

// engineOf judges for protocols of the given names, whose tokens and
// templates the fixture blocks do not hold: they judge nothing, and their
// histories move as any protocol's do.
func engineOf(names ...string) *rules.Engine {
	var ps []rules.Protocol
	for _, n := range names {
		ps = append(ps, rules.Protocol{Name: n, ParticipantTokenID: id(n + " participant"), StateNFTID: id(n + " nft"),
			EmissionTemplate: rules.SHA256Template(id(n + " emission")), AsyncSupply: rules.DefaultAsyncSupply, StartHeight: 1})
	}
	return rules.NewEngine(ps, nil, zerolog.Nop())
}

func cursors(t *testing.T, s *Store) map[string]uint32 {
	t.Helper()
	hs, err := s.ProtocolHistories(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint32{}
	for _, h := range hs {
		out[h.Name] = h.Cursor
	}
	return out
}

func wantCursors(t *testing.T, s *Store, what string, want map[string]uint32) {
	t.Helper()
	got := cursors(t, s)
	if len(got) != len(want) {
		t.Fatalf("%s: cursors %v, want %v", what, got, want)
	}
	for n, c := range want {
		if got[n] != c {
			t.Fatalf("%s: cursors %v, want %v", what, got, want)
		}
	}
}

// TestHistories: the cursors of the protocols' histories move with the
// blocks judged for them, in the blocks' transactions: the follower's for
// the histories at the tip, a backfill's for one added later, a disconnect
// bringing back those above it; a store that ends with every history at
// the tip equals one that judged every protocol from the start.
func TestHistories(t *testing.T) {
	ctx := context.Background()
	bs := fixtureBlocks(t) // 700000 … 700004
	p, pq := engineOf("p"), engineOf("p", "q")
	s := newStore(t)
	connect(t, s, p, bs[:3]...)
	wantCursors(t, s, "p judged from the first block", map[string]uint32{"p": 700002})

	if err := s.ConnectBlocks(ctx, bs[3:4], pq); !errors.Is(err, ErrConflict) {
		t.Fatalf("a protocol the store does not know: %v, want ErrConflict", err)
	}
	changes, err := s.RegisterProtocols(ctx, []ProtocolStart{{"p", 1}, {"q", 1}}, nil)
	if err != nil || len(changes) != 1 || changes[0] != (ProtocolChange{Name: "q", What: "added", BackfillFrom: 700000}) {
		t.Fatalf("register q: %+v %v", changes, err)
	}
	wantCursors(t, s, "q added", map[string]uint32{"p": 700002, "q": 699999})
	connect(t, s, pq, bs[3])
	wantCursors(t, s, "the follower judges p alone", map[string]uint32{"p": 700003, "q": 699999})

	unchanged(t, s, ErrStale, func() error { return s.BackfillBlocks(ctx, bs[1:2], pq) })
	if err := s.BackfillBlocks(ctx, bs[:2], pq); err != nil {
		t.Fatal(err)
	}
	wantCursors(t, s, "q backfilled to 700001", map[string]uint32{"p": 700003, "q": 700001})
	unchanged(t, s, ErrStale, func() error { return s.BackfillBlocks(ctx, bs[3:4], pq) }) // q's history ends at 700001
	unchanged(t, s, ErrInvalidBlock, func() error { return s.BackfillBlocks(ctx, bs[2:3], KeepAll{}) })

	// A reorg down to 700001 brings p back to it; q, at 700001, is then
	// at the tip: both are judged on the branch that follows.
	disconnect(t, s, bs[3], bs[2])
	wantCursors(t, s, "disconnected to 700001", map[string]uint32{"p": 700001, "q": 700001})
	unchanged(t, s, ErrStale, func() error { return s.BackfillBlocks(ctx, bs[2:3], pq) }) // no longer on the main chain
	connect(t, s, pq, bs[2:]...)
	wantCursors(t, s, "reconnected", map[string]uint32{"p": 700004, "q": 700004})

	fromStart := newStore(t)
	connect(t, fromStart, pq, bs...)
	sameState(t, "p, then q added and backfilled, vs both from the start", s, fromStart)

	// A rescan brings q's history back and begins a new generation; a
	// protocol the store has no history of is refused.
	res, err := s.RescanProtocol(ctx, "q", 700002, nil)
	if err != nil || res.FromHeight != 700002 || res.BackfillFrom != 700002 || res.Generation != 1 {
		t.Fatalf("rescan: %+v %v", res, err)
	}
	wantCursors(t, s, "q rescanned from 700002", map[string]uint32{"p": 700004, "q": 700001})
	if _, err := s.RescanProtocol(ctx, "nosuch", 1, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("rescan of an unknown protocol: %v", err)
	}
	if err := s.BackfillBlocks(ctx, bs[2:], pq); err != nil {
		t.Fatal(err)
	}
	sameState(t, "q judged again", s, fromStart)

	// q removed, then pruned: the store of p alone.
	if changes, err := s.RegisterProtocols(ctx, []ProtocolStart{{"p", 1}}, nil); err != nil || len(changes) != 1 || changes[0].What != "deactivated" {
		t.Fatalf("q removed: %+v %v", changes, err)
	}
	if _, err := s.PruneProtocol(ctx, "q", nil); err != nil {
		t.Fatal(err)
	}
	pOnly := newStore(t)
	connect(t, pOnly, p, bs...)
	sameState(t, "q pruned vs p alone", s, pOnly)
	// Back after the prune: backfilled from its start, in generation 2.
	changes, err = s.RegisterProtocols(ctx, []ProtocolStart{{"p", 1}, {"q", 1}}, nil)
	if err != nil || len(changes) != 1 || changes[0].What != "added" || changes[0].BackfillFrom != 700000 {
		t.Fatalf("q back: %+v %v", changes, err)
	}
	if hs, _ := s.ProtocolHistories(ctx); hs[1].Name != "q" || hs[1].Generation != 2 {
		t.Fatalf("q back after a prune: %+v", hs)
	}
}

// TestBackfillLeavesSharedRowsAlone: a backfilled block's boxes, spends,
// reads and transactions stored already by the follower stay as they are;
// what only the backfilled protocol keeps is added, spends of boxes the
// follower marked first included.
func TestBackfillLeavesSharedRowsAlone(t *testing.T) {
	ctx := context.Background()
	bs := fixtureBlocks(t)
	keepAll := newStore(t)
	connect(t, keepAll, KeepAll{}, bs...)
	// Every box kept by the follower, then a protocol judging nothing
	// backfilled over the same blocks: no row changes but its history.
	s := newStore(t)
	connect(t, s, KeepAll{}, bs...)
	if _, err := s.RegisterProtocols(ctx, []ProtocolStart{{"q", 1}}, nil); err != nil {
		t.Fatal(err)
	}
	before := status(t, s)
	if err := s.BackfillBlocks(ctx, bs, engineOf("q")); err != nil {
		t.Fatal(err)
	}
	after := status(t, s)
	if after.Boxes != before.Boxes || after.Spends != before.Spends || after.DataInputReads != before.DataInputReads ||
		after.Transactions != before.Transactions {
		t.Fatalf("the backfill changed shared rows: %+v, was %+v", after, before)
	}
	wantCursors(t, s, "q backfilled to the tip", map[string]uint32{"q": 700004})
}

// TestMigrationToHistories: a store of schema 6, with verdicts of two
// protocols, lineage steps numbered among both protocols' steps in a block
// and the verdict events of two connections of a block, migrates to the
// histories of 0007: each protocol with verdicts is complete to the tip,
// the steps are numbered within their protocol, each verdict event has its
// protocol, and the events of the earlier connection are retracted.
func TestMigrationToHistories(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "auditor.db")
	w, err := sql.Open("sqlite3", dsn(path, "_txlock=immediate", "_journal_mode=WAL", "_foreign_keys=on"))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate(ctx, w, ms[:6], zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	block, other := idb("block"), idb("other block")
	for _, q := range []string{
		`INSERT INTO tip (singleton, height, id) VALUES (0, 7, ?1)`,
		`INSERT INTO headers (id, height, parent_id, timestamp, main_chain, connects) VALUES (?1, 7, ?2, 0, 1, 2)`,
		`INSERT INTO verdicts (box_id, protocol, kind, class, verdict, reasons, tx_id, tx_index, block_id, height)
			VALUES (?2, 'a', 'created', 'state', 'verified', '[]', ?2, 0, ?1, 7), (?2, 'b', 'created', 'state', 'verified', '[]', ?2, 0, ?1, 7)`,
		// In block order: a's, b's, a's.
		`INSERT INTO lineage_steps (token_id, protocol, height, step, block_id, tx_id, current_box, broken, closed, minted, burnt)
			VALUES (?2, 'a', 7, 0, ?1, ?2, ?2, 0, 0, 1, 0), (?2, 'b', 7, 1, ?1, ?2, ?2, 0, 0, 1, 0), (?2, 'a', 7, 2, ?1, ?2, ?2, 0, 1, 0, 0)`,
		`INSERT INTO outbox (msg_id, subject, payload, kind, block_id, connects, written) VALUES
			('old', 's', CAST('{"data":{"protocol":"a"}}' AS BLOB), 'verdict', ?1, 1, 0),
			('new', 's', CAST('{"data":{"protocol":"b"}}' AS BLOB), 'verdict', ?1, 2, 0),
			('gone', 's', CAST('{"data":{"protocol":"a"}}' AS BLOB), 'retraction', ?1, 2, 0)`,
	} {
		if _, err := w.ExecContext(ctx, q, block, other); err != nil {
			t.Fatalf("%v in %s", err, q)
		}
	}
	w.Close()

	s := openAt(t, path)
	wantCursors(t, s, "migrated", map[string]uint32{"a": 7, "b": 7})
	if n := count(t, s, `SELECT count(*) FROM lineage_steps WHERE protocol = 'a' AND step IN (0, 1) AND (step = 1) = closed`); n != 2 {
		t.Errorf("a's steps are not numbered 0 and 1 in block order (%d)", n)
	}
	if n := count(t, s, `SELECT count(*) FROM lineage_steps WHERE protocol = 'b' AND step = 0`); n != 1 {
		t.Error("b's step is not numbered 0")
	}
	for _, c := range []struct {
		id, protocol string
		retracted    int
	}{{"old", "a", 1}, {"new", "b", 0}} {
		if n := count(t, s, `SELECT count(*) FROM outbox WHERE msg_id = ? AND protocol = ? AND retracted = ?`, c.id, c.protocol, c.retracted); n != 1 {
			t.Errorf("event %s: not of protocol %s with retracted = %d", c.id, c.protocol, c.retracted)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM outbox WHERE msg_id = 'gone' AND protocol IS NULL`); n != 1 {
		t.Error("a retraction has a protocol")
	}
}
