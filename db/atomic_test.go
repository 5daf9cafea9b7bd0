package db

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
	"github.com/rs/zerolog"
)

// cancelAfter is a Judge that keeps every box and cancels the block's
// context when it judges the n-th output: the block's header row is
// written by then.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) KeepBox(*ergo.Box) bool {
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return true
}

func (c *cancelAfter) JudgeBlock(_ context.Context, _ rules.State, b *ergo.FullBlock) (*rules.Judgement, error) {
	return keepOnly(b, c.KeepBox), nil
}

// TestConnectAtomicOnCancel: a context cancelled in the middle of a block
// rolls the whole block back; the store then connects it normally.
func TestConnectAtomicOnCancel(t *testing.T) {
	bs := fixtureBlocks(t)
	s := newStore(t)
	connect(t, s, KeepAll{}, bs[:3]...)
	// 700003 has 11 transactions and 98 outputs: cancel at the 40th.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	unchanged(t, s, context.Canceled, func() error {
		return s.ConnectBlock(ctx, bs[3], &cancelAfter{n: 40, cancel: cancel})
	})
	connect(t, s, KeepAll{}, bs[3:]...)
	straight := newStore(t)
	connect(t, straight, KeepAll{}, bs...)
	sameState(t, "after a cancelled connect", s, straight)

	// A context cancelled before the call writes nothing either.
	unchanged(t, s, context.Canceled, func() error { return s.DisconnectBlock(ctx, bs[4].Header.ID, nil) })
}

// TestConnectAtomicOnConflict: a block that hits a constraint half way
// (its second output is a box already stored; a stored box spent again)
// is ErrConflict and leaves the store as it was.
func TestConnectAtomicOnConflict(t *testing.T) {
	b1 := block("c1", 30, id("c0"), txn("t1", nil, nil, out(100), out(200)))
	s := newStore(t)
	connect(t, s, KeepAll{}, b1)

	dup := txn("dup", ids(boxRef("t1", 1)), nil, out(1), out(2))
	dup.Outputs[1].BoxID = boxRef("t1", 0) // already stored
	bad := child("c2", b1, txn("fine", ids(boxRef("t1", 0)), nil, out(5)), dup)
	unchanged(t, s, ErrConflict, func() error { return s.ConnectBlock(context.Background(), bad, KeepAll{}) })

	c2 := child("c2", b1, txn("spend", ids(boxRef("t1", 0)), nil, out(99)))
	connect(t, s, KeepAll{}, c2)
	again := child("c3", c2, txn("spend-again", ids(boxRef("t1", 0)), nil, out(98)))
	unchanged(t, s, ErrConflict, func() error { return s.ConnectBlock(context.Background(), again, KeepAll{}) })

	// A transaction already stored (the same id twice on one chain).
	replay := child("c3", c2, txn("spend", nil, ids(boxRef("t1", 1))))
	unchanged(t, s, ErrConflict, func() error { return s.ConnectBlock(context.Background(), replay, KeepAll{}) })
}

// TestMigrations: migration files must be numbered 1, 2, … ; a migration
// that fails leaves the schema at the version before it.
func TestMigrations(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"gap":      {"migrations/0001_a.sql": {}, "migrations/0003_c.sql": {}},
		"bad name": {"migrations/0001_a.sql": {}, "migrations/2_b.sql": {}},
		"empty":    {"migrations/README": {}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	ms, err := loadMigrations(migrationFS)
	if err != nil || len(ms) != SchemaVersion() || ms[0].name != "0001_init.sql" {
		t.Fatalf("embedded migrations: %v (%d)", err, len(ms))
	}

	s := newStore(t)
	failing := append(ms[:len(ms):len(ms)], migration{
		version: len(ms) + 1, name: "bad",
		sql: `CREATE TABLE failed_step (x INTEGER) STRICT; INSERT INTO no_such_table VALUES (1);`,
	})
	if _, err := migrate(context.Background(), s.w, failing, zerolog.Nop()); !errors.Is(err, ErrStorage) {
		t.Fatalf("failing migration: %v", err)
	}
	var v int
	if err := s.w.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != len(ms) {
		t.Errorf("user_version %d after a failed migration, want %d", v, len(ms))
	}
	if n := count(t, s, `SELECT count(*) FROM sqlite_schema WHERE name = 'failed_step'`); n != 0 {
		t.Errorf("the failed migration's table exists")
	}
}

// TestConcurrentReads: Status, Tip and MainChainID from other goroutines
// while blocks are connected and disconnected (run with -race).
func TestConcurrentReads(t *testing.T) {
	bs := fixtureBlocks(t)
	s := newStore(t)
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				st, err := s.Status(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if !st.Empty {
					if id, ok, err := s.MainChainID(ctx, st.TipHeight); err != nil || ok && id.IsZero() {
						t.Error(id, ok, err)
						return
					}
				}
			}
		}()
	}
	for range 3 {
		connect(t, s, KeepAll{}, bs...)
		disconnect(t, s, bs[4], bs[3], bs[2], bs[1], bs[0])
		if err := s.ConnectBlock(ctx, bs[0], KeepAll{}); err != nil {
			t.Fatal(err)
		}
		disconnect(t, s, bs[0])
		// The tip is now 699999: reconnect from there.
		connect(t, s, KeepAll{}, bs...)
		disconnect(t, s, bs[4], bs[3], bs[2], bs[1], bs[0])
	}
	close(stop)
	wg.Wait()
}

// TestConnectBlocksIsOneTransaction: blocks connected together end in the
// state of connecting them one by one; a batch with a block that fails
// (not the previous one's child, or conflicting with the store) leaves the
// store as it was, the blocks before it included.
func TestConnectBlocksIsOneTransaction(t *testing.T) {
	bs := fixtureBlocks(t)
	ctx := context.Background()
	s := newStore(t)
	connect(t, s, KeepAll{}, bs[:1]...)
	unchanged(t, s, ErrNotChild, func() error {
		return s.ConnectBlocks(ctx, []*ergo.FullBlock{bs[1], bs[2], bs[4]}, KeepAll{})
	})
	unchanged(t, s, ErrNotChild, func() error {
		return s.ConnectBlocks(ctx, []*ergo.FullBlock{bs[2], bs[3]}, KeepAll{})
	})
	cancelCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	unchanged(t, s, context.Canceled, func() error {
		return s.ConnectBlocks(cancelCtx, []*ergo.FullBlock{bs[1], bs[2], bs[3]}, &cancelAfter{n: 60, cancel: cancel})
	})
	if err := s.ConnectBlocks(ctx, bs[1:], KeepAll{}); err != nil {
		t.Fatal(err)
	}
	straight := newStore(t)
	connect(t, straight, KeepAll{}, bs...)
	sameState(t, "blocks connected in one transaction", s, straight)
	if tip, _, _ := s.Tip(ctx); tip.ID != bs[4].Header.ID {
		t.Fatalf("tip %v", tip)
	}
	// And disconnected one by one, as a reorg does.
	disconnect(t, s, bs[4], bs[3])
	disconnect(t, straight, bs[4], bs[3])
	sameState(t, "after disconnecting two of them", s, straight)
}
