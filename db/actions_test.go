package db

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
)

// TestActionTreeStoredAndExplained: a result's action is stored with its
// verdict; Explain shows a result's dependents (the results and state
// boxes made by transactions that read it), and what it was built on among
// its data-inputs; ReportData counts the verdicts on results by action.
func TestActionTreeStoredAndExplained(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	result := func(tx ergo.Transaction, k int, action string, reasons ...rules.Reason) rules.Verdict {
		v := verdict(tx, k, rules.ClassEmitted, nil, reasons...)
		v.Action = action
		return v
	}
	// Height 1: an observation and a result of no action. Height 2: an
	// aggregate reads the observation twice over (two transactions), each
	// continuing an emission box. Height 3: a state update reads the
	// first aggregate.
	observe := txn("observe", nil, nil, out(1))
	plain := txn("plain", nil, nil, out(1))
	b1 := block("t1", 1, id("t0"), observe, plain)
	agg := txn("agg", nil, ids(boxRef("observe", 0)), out(1), out(1))
	agg2 := txn("agg2", nil, ids(boxRef("plain", 0), boxRef("observe", 0)), out(1), out(1))
	b2 := child("t2", b1, agg, agg2)
	sync := txn("sync", nil, ids(boxRef("agg", 1)), out(1))
	b3 := child("t3", b2, sync)
	second := func(v rules.Verdict) rules.Verdict { v.TxIndex = 1; return v }
	connect(t, s, scripted{
		b1.Header.ID: {Verdicts: []rules.Verdict{result(observe, 0, "observe"), second(result(plain, 0, ""))}},
		b2.Header.ID: {Verdicts: []rules.Verdict{
			verdict(agg, 0, rules.ClassEmission, nil), result(agg, 1, "aggregate"),
			second(verdict(agg2, 0, rules.ClassEmission, nil)), second(result(agg2, 1, "aggregate", rules.ReasonEmittedUnverifiedReference)),
		}},
		b3.Header.ID: {Verdicts: []rules.Verdict{verdict(sync, 0, rules.ClassState, nil)}},
	}, b1, b2, b3)

	vs, err := s.Verdicts(ctx, VerdictFilter{})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[ergo.Digest]string{}
	for _, v := range vs {
		actions[v.BoxID] = v.Action
	}
	want := map[ergo.Digest]string{boxRef("observe", 0): "observe", boxRef("plain", 0): "", boxRef("agg", 0): "",
		boxRef("agg", 1): "aggregate", boxRef("agg2", 0): "", boxRef("agg2", 1): "aggregate", boxRef("sync", 0): ""}
	if !reflect.DeepEqual(actions, want) {
		t.Errorf("stored actions %v, want %v", actions, want)
	}

	boxesOf := func(vs []StoredVerdict) []ergo.Digest {
		var out []ergo.Digest
		for _, v := range vs {
			out = append(out, v.BoxID)
		}
		return out
	}
	explain := func(box ergo.Digest) *Explanation {
		t.Helper()
		ex, ok, err := s.Explain(ctx, box)
		if err != nil || !ok {
			t.Fatalf("Explain(%s): %v %v", box, ok, err)
		}
		return ex
	}
	ex := explain(boxRef("observe", 0))
	if got := boxesOf(ex.Dependents); !slices.Equal(got, []ergo.Digest{boxRef("agg", 1), boxRef("agg2", 1)}) ||
		ex.Dependents[0].Action != "aggregate" || !ex.Dependents[0].Valid() || ex.Dependents[1].Valid() {
		t.Errorf("dependents of the observation: %+v", ex.Dependents)
	}
	ex = explain(boxRef("agg2", 1))
	if len(ex.Read) != 2 || ex.Read[1].BoxID != boxRef("observe", 0) || ex.Read[1].Verdicts[0].Action != "observe" ||
		ex.Read[0].Verdicts[0].Action != "" || ex.Dependents != nil {
		t.Errorf("what the second aggregate was built on: %+v; dependents %+v", ex.Read, ex.Dependents)
	}
	if ex = explain(boxRef("agg", 1)); !slices.Equal(boxesOf(ex.Dependents), []ergo.Digest{boxRef("sync", 0)}) {
		t.Errorf("dependents of the first aggregate: %+v", ex.Dependents)
	}
	if ex = explain(boxRef("sync", 0)); ex.Dependents != nil {
		t.Errorf("a state box has dependents %+v", ex.Dependents)
	}

	d, err := s.ReportData(ctx, ReportQuery{Since: 1})
	if err != nil {
		t.Fatal(err)
	}
	wantActions := []ReportActionCount{
		{"demo", "aggregate", "invalid", 1, 1},
		{"demo", "aggregate", "verified", 1, 1},
		{"demo", "observe", "verified", 1, 0},
	}
	if !reflect.DeepEqual(d.Actions, wantActions) {
		t.Errorf("counts by action %+v, want %+v", d.Actions, wantActions)
	}
}

// TestActionOnlyOnResults: the store refuses an action on the verdict of a
// box of another class than emitted.
func TestActionOnlyOnResults(t *testing.T) {
	s := newStore(t)
	x := txn("x", nil, nil, out(1))
	b := block("a1", 1, id("a0"), x)
	v := verdict(x, 0, rules.ClassState, nil)
	v.Action = "observe"
	if err := s.ConnectBlock(context.Background(), b, scripted{b.Header.ID: {Verdicts: []rules.Verdict{v}}}); err == nil {
		t.Fatal("a state box's verdict with an action was stored")
	}
}
