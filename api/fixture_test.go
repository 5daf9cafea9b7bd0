package api_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/testchain"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

// chain is a store synced from a devnet running the async-emission
// scenario (with planted forgeries), as the daemon would have it.
type chain struct {
	store    *db.Store
	exp      []devnet.Expectation
	height   uint32
	follower scan.FollowerStats
	// written and pending are the outbox's counts: an event a verdict,
	// the first acked of them marked published.
	written, pending, acked int64
}

const (
	chainBlocks = 60
	chainAcked  = 5
)

func syncChain(t *testing.T) *chain {
	t.Helper()
	ctx := context.Background()
	tc := testchain.New(t, devnet.Config{Seed: 5, Blocks: chainBlocks, TxsPerBlock: 3,
		Scenario: &devnet.AsyncEmission{ForgeryRate: 0.3}})
	store, _ := testchain.OpenStore(t)
	store.SetEvents(idEncoder{}, func() {})
	stats := tc.Sync(t, store, chainBlocks)
	d := tc.Devnet
	c := &chain{store: store, height: chainBlocks, follower: stats, acked: chainAcked}
	var err error
	if c.exp, err = d.Expectations(chainBlocks); err != nil {
		t.Fatal(err)
	}
	rows, err := store.OutboxPending(ctx, 0, chainAcked)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, r := range rows {
		seqs = append(seqs, r.Seq)
	}
	if err := store.MarkPublished(ctx, seqs); err != nil {
		t.Fatal(err)
	}
	c.written, c.pending = int64(len(c.exp)), int64(len(c.exp))-chainAcked
	if w, p, err := store.OutboxCounts(ctx); err != nil || w != c.written || p != c.pending {
		t.Fatalf("outbox counts %d written, %d pending (%v); want %d and %d", w, p, err, c.written, c.pending)
	}
	return c
}

// idEncoder writes an event per verdict, with its message id alone.
type idEncoder struct{}

func (idEncoder) Verdict(v *rules.Verdict, _ *ergo.Box, b db.BlockRef) (db.Message, error) {
	return event(fmt.Sprintf("%s-%s-%s-%s", b.ID, v.BoxID, v.Protocol, v.Kind)), nil
}

func (idEncoder) Retraction(orig db.Message, _ db.BlockRef) (db.Message, error) {
	return event(orig.ID + "-retracted"), nil
}

func (idEncoder) Rescinded(orig db.Message, _ db.BlockRef, _ db.Rescan) (db.Message, error) {
	return event(orig.ID + "-rescinded"), nil
}

func (idEncoder) Rollback(_ db.Reorg, b db.BlockRef) (db.Message, error) {
	return event(b.ID.String() + "-rollback"), nil
}

func event(id string) db.Message {
	return db.Message{ID: id, Subject: "test.event", Payload: []byte(id)}
}
