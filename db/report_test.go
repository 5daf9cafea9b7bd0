package db

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/rules"
)

// scripted is a Judge that keeps every output and concludes, for each
// block, what the test wrote down for it.
type scripted map[ergo.Digest]rules.Judgement

func (s scripted) JudgeBlock(_ context.Context, _ rules.State, b *ergo.FullBlock) (*rules.Judgement, error) {
	j := keepOnly(b, KeepAll{}.KeepBox)
	got := s[b.Header.ID]
	j.Verdicts, j.Steps = got.Verdicts, got.Steps
	return j, nil
}

func verdict(tx ergo.Transaction, k int, class rules.Class, lineage *ergo.Digest, reasons ...rules.Reason) rules.Verdict {
	return rules.Verdict{Protocol: "demo", Kind: rules.KindCreated, Class: class, BoxID: tx.Outputs[k].BoxID,
		Reasons: reasons, TxID: tx.ID, Lineage: lineage}
}

func TestReportData(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	participant, async, bad := id("participant"), id("async"), id("bad-async")
	tok := func(d ergo.Digest, n uint64) sigma.Token { return sigma.Token{ID: d, Amount: n} }
	const supply = math.MaxInt64

	// Height 1: the funnel, a good bootstrap, a bad mint.
	funnel := txn("funnel", nil, nil, out(1, tok(participant, 100)))
	boot := txn("boot", nil, nil, out(1, tok(participant, 1), tok(async, supply)))
	badMint := txn("badmint", nil, nil, out(1, tok(participant, 1), tok(bad, 5)))
	b1 := block("b1", 1, id("genesis-parent"), funnel, boot, badMint)
	// Height 2: the good lineage emits 10 into one box (spending the
	// emission box, recreating it), 3 into another that the same
	// transaction burns later; a stray box holds 2 participant tokens.
	emit := txn("emit", ids(boxRef("boot", 0)), nil,
		out(1, tok(participant, 1), tok(async, supply-13)), out(1, tok(async, 10)), out(1, tok(async, 3)))
	stray := txn("stray", nil, nil, out(1, tok(participant, 2)))
	b2 := child("b2", b1, emit, stray)
	// Height 3: the 3 are burnt.
	burn := txn("burn", ids(boxRef("emit", 2)), nil, out(1))
	b3 := child("b3", b2, burn)

	judge := scripted{
		b1.Header.ID: {
			Verdicts: []rules.Verdict{
				verdict(funnel, 0, rules.ClassFunnel, nil),
				verdict(boot, 0, rules.ClassEmission, &async),
				verdict(badMint, 0, rules.ClassEmission, &bad, rules.ReasonBadMint, rules.ReasonBadBootstrap),
			},
			Steps: []rules.Step{
				{LineageKey: rules.LineageKey{Protocol: "demo", Token: async}, TxID: boot.ID, Lineage: rules.Lineage{Current: boxRef("boot", 0)}, Minted: supply},
				{LineageKey: rules.LineageKey{Protocol: "demo", Token: bad}, TxID: badMint.ID, Lineage: rules.Lineage{Current: boxRef("badmint", 0), Broken: true}, Minted: 5},
			},
		},
		b2.Header.ID: {
			Verdicts: []rules.Verdict{
				verdict(emit, 0, rules.ClassEmission, &async),
				verdict(emit, 1, rules.ClassEmitted, &async),
				verdict(emit, 2, rules.ClassEmitted, &async, rules.ReasonMissingDataInput),
			},
			Steps: []rules.Step{
				{LineageKey: rules.LineageKey{Protocol: "demo", Token: async}, TxID: emit.ID, Lineage: rules.Lineage{Current: boxRef("emit", 0)}},
			},
		},
		b3.Header.ID: {
			Steps: []rules.Step{
				{LineageKey: rules.LineageKey{Protocol: "demo", Token: async}, TxID: burn.ID, Lineage: rules.Lineage{Current: boxRef("emit", 0)}, Burnt: 3},
			},
		},
	}
	connect(t, s, judge, b1, b2, b3)

	d, err := s.ReportData(ctx, ReportQuery{
		Since:      1,
		Protocols:  []ReportProtocol{{Name: "demo", ParticipantToken: participant}},
		MaxInvalid: 1,
		Buckets:    2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Empty || d.Tip.Height != 3 || d.Tip.ID != b3.Header.ID || !d.TipTime.Equal(time.UnixMilli(int64(b3.Header.Timestamp))) {
		t.Fatalf("tip %+v %v %v", d.Tip, d.TipTime, d.Empty)
	}
	wantCounts := []ReportCount{
		{"demo", "emission", "created", "invalid", 1, 0},
		{"demo", "emission", "created", "verified", 2, 1},
		{"demo", "emitted", "created", "invalid", 1, 1},
		{"demo", "emitted", "created", "verified", 1, 1},
		{"demo", "funnel", "created", "verified", 1, 0},
	}
	if !reflect.DeepEqual(d.Counts, wantCounts) {
		t.Errorf("counts\n%+v\nwant\n%+v", d.Counts, wantCounts)
	}
	wantReasons := []ReportReasonCount{
		{"demo", "emission.bad_mint", 1, 0},
		{"demo", "emitted.missing_data_input", 1, 1},
		{"demo", "participant.bad_bootstrap", 1, 0},
	}
	if !reflect.DeepEqual(d.Reasons, wantReasons) {
		t.Errorf("reasons\n%+v\nwant\n%+v", d.Reasons, wantReasons)
	}
	if d.InvalidTotal != 1 || len(d.Invalid) != 1 || d.Invalid[0].BoxID != boxRef("emit", 2) || d.Invalid[0].Height != 2 ||
		!reflect.DeepEqual(d.Invalid[0].Reasons, []rules.Reason{rules.ReasonMissingDataInput}) {
		t.Errorf("invalid %d %+v", d.InvalidTotal, d.Invalid)
	}
	// Heights 1 to 3 in two ranges: 1-2 and 3-4.
	wantHist := []HeightCount{{"demo", 1, 2, 4, 2}, {"demo", 3, 4, 0, 0}}
	if !reflect.DeepEqual(d.Histogram, wantHist) {
		t.Errorf("histogram %+v, want %+v", d.Histogram, wantHist)
	}

	if len(d.Lineages) != 2 {
		t.Fatalf("lineages %+v", d.Lineages)
	}
	byToken := map[ergo.Digest]LineageRow{}
	for _, l := range d.Lineages {
		byToken[l.Token] = l
	}
	g := byToken[async]
	if g.Current != boxRef("emit", 0) || g.FirstHeight != 1 || g.LastHeight != 3 || g.Steps != 3 || g.Broken || g.Closed ||
		g.Minted.Cmp(big.NewInt(supply)) != 0 || g.Burnt.Int64() != 3 || g.Holders != 2 ||
		g.Balance.Cmp(big.NewInt(supply-13)) != 0 || g.Held.Cmp(big.NewInt(supply-3)) != 0 {
		t.Errorf("good lineage %+v", g)
	}
	b := byToken[bad]
	if !b.Broken || b.Minted.Int64() != 5 || b.Held.Int64() != 5 || b.Balance.Int64() != 5 || b.Burnt.Sign() != 0 {
		t.Errorf("bad lineage %+v", b)
	}

	// Live participant tokens: the funnel's 100, one in each emission box
	// (the bootstrap's is spent), the stray's 2, unclassified.
	type holding struct {
		box    ergo.Digest
		amount int64
		class  string
	}
	var got []holding
	for _, h := range d.Holdings {
		got = append(got, holding{h.BoxID, h.Amount.Int64(), h.Class})
	}
	want := map[ergo.Digest]holding{
		boxRef("funnel", 0):  {boxRef("funnel", 0), 100, "funnel"},
		boxRef("badmint", 0): {boxRef("badmint", 0), 1, "emission"},
		boxRef("emit", 0):    {boxRef("emit", 0), 1, "emission"},
		boxRef("stray", 0):   {boxRef("stray", 0), 2, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("holdings %+v", got)
	}
	for _, h := range got {
		if want[h.box] != h {
			t.Errorf("holding %+v, want %+v", h, want[h.box])
		}
	}
}

// TestReportDataSumsBeyondInt64 checks that sums SQLite's sum() would
// refuse (integer overflow) come out exact.
func TestReportDataSumsBeyondInt64(t *testing.T) {
	s := newStore(t)
	token := id("twice")
	tok := sigma.Token{ID: token, Amount: math.MaxInt64}
	a := txn("a", nil, nil, out(1, tok))
	b := txn("b", nil, nil, out(1, tok))
	b1 := block("b1", 1, id("p"), a, b)
	step := func(tx ergo.Transaction) rules.Step {
		return rules.Step{LineageKey: rules.LineageKey{Protocol: "demo", Token: token}, TxID: tx.ID,
			Lineage: rules.Lineage{Current: tx.Outputs[0].BoxID}, Minted: math.MaxInt64, Burnt: math.MaxInt64}
	}
	connect(t, s, scripted{b1.Header.ID: {Steps: []rules.Step{step(a), step(b)}}}, b1)
	d, err := s.ReportData(context.Background(), ReportQuery{})
	if err != nil {
		t.Fatal(err)
	}
	want := new(big.Int).Mul(big.NewInt(math.MaxInt64), big.NewInt(2))
	if len(d.Lineages) != 1 {
		t.Fatalf("lineages %+v", d.Lineages)
	}
	l := d.Lineages[0]
	if l.Minted.Cmp(want) != 0 || l.Burnt.Cmp(want) != 0 || l.Held.Cmp(want) != 0 {
		t.Fatalf("minted %s burnt %s held %s, want %s each", l.Minted, l.Burnt, l.Held, want)
	}
}

func TestReportDataEmptyStore(t *testing.T) {
	d, err := newStore(t).ReportData(context.Background(), ReportQuery{Buckets: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Empty || len(d.Counts)+len(d.Lineages)+len(d.Histogram)+len(d.Invalid) != 0 {
		t.Fatalf("%+v", d)
	}
}

func TestRecordAndLastReport(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if _, ok, err := s.LastReport(ctx); ok || err != nil {
		t.Fatalf("empty: %v %v", ok, err)
	}
	at := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	first := ReportRecord{Time: at, FromHeight: 1, ToHeight: 100, ToTime: at,
		JSONPath: "/r/report-1.json", HTMLPath: "/r/report-1.html", Summary: json.RawMessage(`{"invalid":3}`), Status: ReportOK}
	id1, err := s.RecordReport(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	// A later interrupted report is not the last one a period starts from.
	if _, err := s.RecordReport(ctx, ReportRecord{Time: at.Add(time.Hour), FromHeight: 101, ToHeight: 150,
		FromTime: at, ToTime: at.Add(time.Hour), Status: ReportInterrupted, Error: "shutdown"}); err != nil {
		t.Fatal(err)
	}
	last, ok, err := s.LastReport(ctx)
	if err != nil || !ok {
		t.Fatalf("%v %v", ok, err)
	}
	first.ID = id1
	if !reflect.DeepEqual(last, first) {
		t.Fatalf("last report\n%+v\nwant\n%+v", last, first)
	}
	second := first
	second.Time, second.FromHeight, second.ToHeight, second.FromTime, second.ToTime = at.Add(2*time.Hour), 101, 180, at, at.Add(2*time.Hour)
	if second.ID, err = s.RecordReport(ctx, second); err != nil {
		t.Fatal(err)
	}
	if last, _, _ = s.LastReport(ctx); !reflect.DeepEqual(last, second) {
		t.Fatalf("last report\n%+v\nwant\n%+v", last, second)
	}
	if _, err := s.RecordReport(ctx, ReportRecord{Status: "maybe"}); !errors.Is(err, ErrInvalidReport) {
		t.Fatalf("bad status: %v", err)
	}
	// Reports are not chain state.
	before := status(t, s).StateDigest
	empty := newStore(t)
	if before != status(t, empty).StateDigest {
		t.Fatal("recording reports changed the state digest")
	}
}
