package db

import (
	"context"
	"testing"
)

// TestChainEvents: the main chain's verdict events of each block's current
// connection, from a height, whole blocks at a time up to the limit of
// new events, with the outbox row they match and whether blocks asked
// about are on the main chain; superseding marks rows done without
// counting them published by the relay's marking.
func TestChainEvents(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	s.SetEvents(&textEncoder{}, nil)
	b1 := block("b1", 10, id("b0"), txn("t1", nil, nil, out(5), out(6)))
	b2 := child("b2", b1, txn("t2", nil, nil, out(7)))
	b3 := child("b3", b2)
	b4 := child("b4", b3, txn("t4", nil, nil, out(8), out(9)))
	connect(t, s, judgeAll{}, b1, b2, b3)
	disconnect(t, s, b3, b2) // b2's verdict retracted: its connection 1 is gone
	connect(t, s, judgeAll{}, b2, b3, b4)

	ce, err := s.ChainEvents(ctx, 0, 0, 0, ids(b2.Header.ID, id("elsewhere")))
	if err != nil {
		t.Fatal(err)
	}
	written, _, _ := s.OutboxCounts(ctx)
	if ce.OutboxSeq != written || !ce.HasTip || ce.Tip.ID != b4.Header.ID || !ce.Complete || ce.To != 13 {
		t.Fatalf("snapshot %+v, %d rows written", ce, written)
	}
	if len(ce.Blocks) != 3 || ce.Blocks[0].ID != b1.Header.ID || ce.Blocks[1].ID != b2.Header.ID || ce.Blocks[2].ID != b4.Header.ID {
		t.Fatalf("blocks %+v", ce.Blocks)
	}
	if b := ce.Blocks[1]; b.Connects != 2 || len(b.Verdicts) != 1 || b.Verdicts[0].ID[len(b.Verdicts[0].ID)-2:] != "-2" || b.ParentID != b1.Header.ID {
		t.Fatalf("block 2, connected again: %+v", b)
	}
	if !ce.Main[b2.Header.ID] || ce.Main[id("elsewhere")] {
		t.Fatalf("main %v", ce.Main)
	}

	// The limit counts events above a height, and stops after a whole block.
	ce, err = s.ChainEvents(ctx, 11, 10, 1, nil)
	if err != nil || ce.Complete || ce.To != 11 || len(ce.Blocks) != 1 {
		t.Fatalf("limited: %+v %v", ce, err)
	}
	ce, err = s.ChainEvents(ctx, 14, 0, 0, nil)
	if err != nil || !ce.Complete || len(ce.Blocks) != 0 {
		t.Fatalf("above the tip: %+v %v", ce, err)
	}

	if h, main, ok, err := s.Header(ctx, b3.Header.ID); err != nil || !ok || !main || h.ParentID != b2.Header.ID || h.Height != 12 {
		t.Fatalf("header: %+v %v %v %v", h, main, ok, err)
	}
	if _, _, ok, err := s.Header(ctx, id("elsewhere")); err != nil || ok {
		t.Fatalf("unknown header: %v %v", ok, err)
	}

	n, err := s.SupersedeOutbox(ctx, []int64{written}, 2)
	if err != nil || n != 3 {
		t.Fatalf("superseded %d (%v), want 3", n, err)
	}
	_, pending, _ := s.OutboxCounts(ctx)
	if sup, err := s.OutboxSuperseded(ctx); err != nil || sup != 3 || pending != written-3 {
		t.Fatalf("%d superseded (%v), %d pending of %d", sup, err, pending, written)
	}
	if n, _ := s.SupersedeOutbox(ctx, nil, 2); n != 0 {
		t.Fatalf("superseded %d rows twice", n)
	}
}
