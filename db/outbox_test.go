package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
)

// judgeAll keeps every output and gives each a verified participant
// verdict: a judgement with something to publish.
type judgeAll struct{}

func (judgeAll) JudgeBlock(_ context.Context, _ rules.State, b *ergo.FullBlock) (*rules.Judgement, error) {
	j := keepOnly(b, KeepAll{}.KeepBox)
	for i := range b.Transactions {
		tx := &b.Transactions[i]
		for k := range tx.Outputs {
			j.Verdicts = append(j.Verdicts, rules.Verdict{Protocol: "p", Kind: rules.KindCreated, Class: rules.ClassParticipant,
				BoxID: tx.Outputs[k].TrustedID(), TxID: tx.TrustedID(), TxIndex: i})
		}
	}
	return j, nil
}

// textEncoder encodes events as readable lines; fail makes it fail.
type textEncoder struct{ fail bool }

var errEncode = errors.New("encoder failure")

func (e *textEncoder) Verdict(v *rules.Verdict, box *ergo.Box, b BlockRef) (Message, error) {
	if e.fail {
		return Message{}, errEncode
	}
	if box.TrustedID() != v.BoxID {
		return Message{}, fmt.Errorf("box %s for a verdict on %s", box.TrustedID(), v.BoxID)
	}
	id := fmt.Sprintf("%.8s-%.8s-%s-%d", b.ID, v.BoxID, v.Kind, b.Connects)
	if v.Protocol != "p" || b.Generation != 0 {
		id = fmt.Sprintf("%.8s-%.8s-%s-%s-%d-g%d", b.ID, v.BoxID, v.Protocol, v.Kind, b.Connects, b.Generation)
	}
	return Message{ID: id, Subject: "a." + v.Protocol + "." + v.Status() + "." + string(v.Class), Payload: []byte(id)}, nil
}

func (e *textEncoder) Retraction(orig Message, b BlockRef) (Message, error) {
	id := fmt.Sprintf("%s-retracted-%d", orig.ID, b.Connects)
	return Message{ID: id, Subject: "a.p.retracted", Payload: append([]byte("retracts "), orig.Payload...)}, nil
}

func (e *textEncoder) Rescinded(orig Message, b BlockRef, r Rescan) (Message, error) {
	id := fmt.Sprintf("%s-rescinded-%d", orig.ID, r.Generation)
	return Message{ID: id, Subject: "a." + r.Protocol + ".retracted", Payload: append([]byte("rescinds "), orig.Payload...)}, nil
}

func (e *textEncoder) Rollback(r Reorg, b BlockRef) (Message, error) {
	id := fmt.Sprintf("%.8s-rollback-%d", b.ID, b.Connects)
	return Message{ID: id, Subject: "a.chain.rollback", Payload: fmt.Appendf(nil, "fork %d depth %d", r.ForkHeight, r.Depth)}, nil
}

func pending(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.OutboxPending(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, r := range rows {
		if i > 0 && r.Seq <= rows[i-1].Seq {
			t.Fatalf("outbox rows out of order: %d after %d", r.Seq, rows[i-1].Seq)
		}
		out = append(out, r.Subject+" "+string(r.Payload))
	}
	return out
}

// TestOutbox: a connect writes one event per verdict with its block; a
// disconnect writes a retraction of each and a rollback; the same block
// connected again writes new message ids; an encoder failure rolls the
// block back; acknowledgements leave the outbox's count of rows written.
func TestOutbox(t *testing.T) {
	s := newStore(t)
	notified := 0
	s.SetEvents(&textEncoder{}, func() { notified++ })
	b1 := block("b1", 10, id("b0"), txn("t1", nil, nil, out(5), out(6)))
	connect(t, s, judgeAll{}, b1)
	first := pending(t, s)
	if len(first) != 2 || notified != 1 {
		t.Fatalf("after a connect: %q, %d notifications", first, notified)
	}
	disconnect(t, s, b1)
	all := pending(t, s)
	if len(all) != 5 || !slices.Equal(all[:2], first) || all[4] != "a.chain.rollback fork 9 depth 1" ||
		all[2] != "a.p.retracted retracts "+first[0][len("a.p.verified.participant "):] {
		t.Fatalf("after a disconnect: %q", all)
	}
	if n := count(t, s, `SELECT count(*) FROM verdicts`); n != 0 {
		t.Fatalf("%d verdicts left after the disconnect", n)
	}
	connect(t, s, judgeAll{}, b1)
	again := pending(t, s)[5:]
	if len(again) != 2 || again[0] == first[0] || again[0][len(again[0])-2:] != "-2" {
		t.Fatalf("reconnected: %q (first %q)", again, first)
	}

	// An encoder failure leaves the store as it was.
	s.SetEvents(&textEncoder{fail: true}, nil)
	b2 := child("b2", b1, txn("t2", nil, nil, out(7)))
	unchanged(t, s, ErrStorage, func() error { return s.ConnectBlock(context.Background(), b2, judgeAll{}) })
	if n := count(t, s, `SELECT count(*) FROM outbox`); n != 7 {
		t.Fatalf("%d outbox rows after a failed connect, want 7", n)
	}

	rows, err := s.OutboxPending(context.Background(), 2, 3)
	if err != nil || len(rows) != 3 || rows[0].Seq != 3 {
		t.Fatalf("pending after 2, 3 of them: %+v %v", rows, err)
	}
	if err := s.MarkPublished(context.Background(), []int64{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	written, left, err := s.OutboxCounts(context.Background())
	if err != nil || written != 7 || left != 4 {
		t.Fatalf("outbox counts: %d written, %d pending, %v; want 7 and 4", written, left, err)
	}
	if rows, _ := s.OutboxPending(context.Background(), 0, 10); rows[0].Seq != 4 {
		t.Fatalf("the first pending row is %d, want 4", rows[0].Seq)
	}
}

// TestOldestPending: the time the oldest unacknowledged row was written;
// none once every row is acknowledged.
func TestOldestPending(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if _, ok, err := s.OldestPending(ctx); err != nil || ok {
		t.Fatalf("empty outbox: %v %v", ok, err)
	}
	before := time.Now().Truncate(time.Millisecond)
	for i := range 3 {
		if err := s.AppendEvent(ctx, "report", Message{ID: fmt.Sprint("r", i), Subject: "a.report.ready", Payload: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	rows, err := s.OutboxPending(ctx, 0, 10)
	if err != nil || len(rows) != 3 {
		t.Fatalf("%d rows (%v)", len(rows), err)
	}
	first, ok, err := s.OldestPending(ctx)
	if err != nil || !ok || first.Before(before) || time.Since(first) > time.Minute {
		t.Fatalf("oldest pending %v %v %v (written after %v)", first, ok, err, before)
	}
	if err := s.MarkPublished(ctx, []int64{rows[0].Seq}); err != nil {
		t.Fatal(err)
	}
	second, ok, err := s.OldestPending(ctx)
	if err != nil || !ok || !second.After(first) {
		t.Fatalf("after the first is acknowledged: %v %v %v, want after %v", second, ok, err, first)
	}
	if err := s.MarkPublished(ctx, []int64{rows[1].Seq, rows[2].Seq}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.OldestPending(ctx); err != nil || ok {
		t.Fatalf("all acknowledged: %v %v", ok, err)
	}
}
