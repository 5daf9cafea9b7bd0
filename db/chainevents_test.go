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

// TestChainEventsLeaveRetractedEvents: the verdict events a rescan
// retracted, or a prune marked retracted, are no longer the main chain's
// (an HA leader compares only the live ones with the stream);
// ProtocolChainEvents reads one protocol's between two heights; the
// protocols' histories come with the chain; MainChainConnects and
// OutboxMessages find what a leader asks about.
func TestChainEventsLeaveRetractedEvents(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	s.SetEvents(&textEncoder{}, nil)
	b1 := block("b1", 10, id("b0"), txn("t1", nil, nil, out(5), out(6)))
	b2 := child("b2", b1, txn("t2", nil, nil, out(7)))
	b3 := child("b3", b2, txn("t3", nil, nil, out(8)))
	connect(t, s, judgeAll{}, b1, b2, b3)
	if _, err := s.w.ExecContext(ctx, `INSERT INTO protocols (name, state, cursor, generation, changed_at) VALUES ('p', 'active', 12, 0, 0)`); err != nil {
		t.Fatal(err)
	}
	before, err := s.ChainEvents(ctx, 0, 0, 0, nil)
	if err != nil || len(before.Blocks) != 3 {
		t.Fatalf("before: %+v %v", before, err)
	}
	if _, err := s.RescanProtocol(ctx, "p", 11, nil); err != nil {
		t.Fatal(err)
	}
	ce, err := s.ChainEvents(ctx, 0, 0, 0, nil)
	if err != nil || len(ce.Blocks) != 1 || ce.Blocks[0].ID != b1.Header.ID || len(ce.Blocks[0].Verdicts) != 2 {
		t.Fatalf("after the rescan from 11: %+v %v", ce.Blocks, err)
	}
	if len(ce.Protocols) != 1 || ce.Protocols[0].Name != "p" || ce.Protocols[0].Generation != 1 || ce.Protocols[0].Cursor != 10 {
		t.Fatalf("protocols %+v", ce.Protocols)
	}
	rescinded := before.Blocks[2].Verdicts[0].ID + "-rescinded-1" // the test encoder's id of its rescan retraction
	ms, err := s.OutboxMessages(ctx, []string{rescinded, "nosuch"})
	if err != nil || len(ms) != 1 || ms[rescinded].Subject != "a.p.retracted" {
		t.Fatalf("outbox messages: %+v %v", ms, err)
	}
	cs, err := s.MainChainConnects(ctx, ids(b1.Header.ID, b3.Header.ID, id("elsewhere")))
	if err != nil || len(cs) != 2 || cs[b1.Header.ID] != 1 || cs[b3.Header.ID] != 1 {
		t.Fatalf("connects: %v %v", cs, err)
	}

	// Judged again, one protocol's events between two heights.
	if _, err := s.w.ExecContext(ctx, `UPDATE outbox SET retracted = 0 WHERE kind = 'verdict'`); err != nil {
		t.Fatal(err)
	}
	pe, err := s.ProtocolChainEvents(ctx, "p", 11, 12, 0)
	if err != nil || !pe.Complete || len(pe.Blocks) != 2 || pe.Blocks[0].ID != b2.Header.ID {
		t.Fatalf("p from 11 to 12: %+v %v", pe, err)
	}
	pe, err = s.ProtocolChainEvents(ctx, "p", 10, 12, 1)
	if err != nil || pe.Complete || pe.To != 10 || len(pe.Blocks) != 1 {
		t.Fatalf("p limited: %+v %v", pe, err)
	}
	if pe, err = s.ProtocolChainEvents(ctx, "q", 10, 12, 0); err != nil || len(pe.Blocks) != 0 {
		t.Fatalf("q: %+v %v", pe, err)
	}
	// A prune marks every event of the protocol retracted.
	if _, err := s.w.ExecContext(ctx, `UPDATE protocols SET state = 'inactive'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PruneProtocol(ctx, "p", nil); err != nil {
		t.Fatal(err)
	}
	if ce, err := s.ChainEvents(ctx, 0, 0, 0, nil); err != nil || len(ce.Blocks) != 0 {
		t.Fatalf("after the prune: %+v %v", ce.Blocks, err)
	}
}
