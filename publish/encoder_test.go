package publish

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/address"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/rules"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func digest(b byte) ergo.Digest {
	var d ergo.Digest
	for i := range d {
		d[i] = b
	}
	return d
}

// p2pkTree pays to the secp256k1 generator's public key.
const p2pkTree = "0008cd0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"

// testBox is an emitted box holding an async token at i64::MAX-1, with an
// Int, a Coll[Byte], a Long and an undecodable register.
func testBox(t testing.TB) *ergo.Box {
	return &ergo.Box{Box: sigma.Box{
		BoxCandidate: sigma.BoxCandidate{
			Value:          math.MaxInt64,
			ErgoTree:       unhex(t, p2pkTree),
			CreationHeight: 1_000_000,
			Tokens:         []sigma.Token{{ID: digest(0xaa), Amount: math.MaxInt64 - 1}, {ID: digest(0xbb), Amount: 1}},
			Registers:      [][]byte{unhex(t, "040a"), unhex(t, "0e03010203"), unhex(t, "05feffffffffffffffff01"), unhex(t, "ff")},
		},
		TxID:  digest(0x11),
		Index: 2,
	}}
}

func testBlock() BlockRef {
	return BlockRef{ID: digest(0xb1), Height: 1_000_001, Timestamp: 1_700_000_000_123, Connects: 1}
}

func testVerdict(box *ergo.Box) *rules.Verdict {
	lineage := digest(0xaa)
	return &rules.Verdict{
		Protocol: "demo",
		Kind:     rules.KindCreated,
		Class:    rules.ClassEmitted,
		BoxID:    box.ComputeID(),
		Reasons:  []rules.Reason{rules.ReasonMissingDataInput, rules.ReasonStaleState},
		TxID:     digest(0x11),
		TxIndex:  3,
		Lineage:  &lineage,
	}
}

func decodeVerdict(t testing.TB, m Message) (*Event, *VerdictData) {
	t.Helper()
	ev, err := DecodeEvent(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	vd, err := ev.Verdict()
	if err != nil {
		t.Fatal(err)
	}
	return ev, vd
}

func TestEncoderVerdict(t *testing.T) {
	box := testBox(t)
	v := testVerdict(box)
	enc := &Encoder{}
	m, err := enc.Verdict(v, box, testBlock())
	if err != nil {
		t.Fatal(err)
	}
	boxHex := v.BoxID.String()
	if m.Subject != "auditor.demo.invalid.emitted" {
		t.Errorf("subject %q", m.Subject)
	}
	if want := digest(0xb1).String() + "-" + boxHex + "-demo-created-1"; m.ID != want {
		t.Errorf("id %q, want %q", m.ID, want)
	}
	ev, vd := decodeVerdict(t, m)
	if ev.ID != m.ID || ev.Type != TypeVerdict || ev.Subject != boxHex || ev.Source != DefaultSource ||
		ev.Time != "2023-11-14T22:13:20.123Z" || ev.SpecVersion != "1.0" || ev.DataContentType != "application/json" {
		t.Errorf("envelope %+v", ev)
	}
	if vd.Protocol != "demo" || vd.Kind != "created" || vd.Class != "emitted" || vd.Verdict != "invalid" ||
		vd.TransactionID != digest(0x11) || vd.TransactionIndex != 3 || vd.BlockID != digest(0xb1) ||
		vd.Height != 1_000_001 || vd.LineageID == nil || *vd.LineageID != digest(0xaa) {
		t.Errorf("data %+v", vd)
	}
	if len(vd.Reasons) != 2 || vd.Reasons[0].Code != "emitted.missing_data_input" || vd.Reasons[0].Sentence != rules.ReasonMissingDataInput.Sentence() || vd.Reasons[1].Code != "emitted.stale_state" {
		t.Errorf("reasons %+v", vd.Reasons)
	}
	b := vd.Box
	if b.ID != v.BoxID || b.Value != math.MaxInt64 || b.CreationHeight != 1_000_000 || b.TransactionID != digest(0x11) || b.Index != 2 ||
		hex.EncodeToString(b.ErgoTree) != p2pkTree || b.Address != address.Encode(unhex(t, p2pkTree), address.Mainnet) {
		t.Errorf("box %+v", b)
	}
	if len(b.Tokens) != 2 || b.Tokens[0] != (TokenData{ID: digest(0xaa), Amount: math.MaxInt64 - 1}) {
		t.Errorf("tokens %+v", b.Tokens)
	}
	// Amounts are JSON integers, exact.
	if !bytes.Contains(m.Payload, []byte(`"amount":9223372036854775806`)) || !bytes.Contains(m.Payload, []byte(`"value":9223372036854775807`)) {
		t.Errorf("amounts are not exact integers: %s", m.Payload)
	}
	wantRegs := map[string]string{
		"R4": `{"serializedValue":"040a","type":"Int","value":5}`,
		"R5": `{"serializedValue":"0e03010203","type":"Coll[Byte]","value":"010203"}`,
		"R6": `{"serializedValue":"05feffffffffffffffff01","type":"Long","value":"9223372036854775807"}`,
	}
	for k, want := range wantRegs {
		if got := string(b.Registers[k]); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
	var r7 struct{ SerializedValue, Error string }
	if err := json.Unmarshal(b.Registers["R7"], &r7); err != nil || r7.SerializedValue != "ff" || r7.Error == "" {
		t.Errorf("R7 = %s", b.Registers["R7"])
	}
}

// TestEncoderAction: a result's action is in the verdict's data, and in
// its retraction's; the data of a verdict without one has no "action".
func TestEncoderAction(t *testing.T) {
	box := testBox(t)
	v := testVerdict(box)
	enc := &Encoder{}
	plain, err := enc.Verdict(v, box, testBlock())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(plain.Payload, []byte(`"action"`)) {
		t.Errorf("a verdict of no action has one: %s", plain.Payload)
	}
	v.Action = "aggregate"
	m, err := enc.Verdict(v, box, testBlock())
	if err != nil {
		t.Fatal(err)
	}
	if _, vd := decodeVerdict(t, m); vd.Action != "aggregate" || !bytes.Contains(m.Payload, []byte(`"action":"aggregate"`)) {
		t.Errorf("action %q in %s", vd.Action, m.Payload)
	}
	r, err := enc.Retraction(m, testBlock())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := DecodeEvent(r.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if rd, err := ev.Retraction(); err != nil || rd.Action != "aggregate" {
		t.Errorf("retraction %+v %v", rd, err)
	}
}

func TestEncoderVerdictVariants(t *testing.T) {
	box := testBox(t)
	enc := &Encoder{Prefix: "audit.main", Source: "urn:test"}

	v := testVerdict(box)
	v.Reasons, v.Lineage, v.Class = nil, nil, rules.ClassParticipant
	m, err := enc.Verdict(v, box, testBlock())
	if err != nil {
		t.Fatal(err)
	}
	ev, vd := decodeVerdict(t, m)
	if m.Subject != "audit.main.demo.verified.participant" || vd.Verdict != "verified" || vd.Reasons == nil || len(vd.Reasons) != 0 || vd.LineageID != nil || ev.Source != "urn:test" {
		t.Errorf("verified: %s %+v", m.Subject, vd)
	}
	if !bytes.Contains(m.Payload, []byte(`"reasons":[]`)) || !bytes.Contains(m.Payload, []byte(`"lineage_id":null`)) {
		t.Errorf("verified payload %s", m.Payload)
	}

	// The escaped verdict on a spent emission box is invalid.emission.
	v = testVerdict(box)
	v.Kind, v.Class, v.Reasons = rules.KindSpent, rules.ClassEmission, []rules.Reason{rules.ReasonEscaped}
	b := testBlock()
	b.Connects = 3
	m, err = enc.Verdict(v, box, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "audit.main.demo.invalid.emission" || !strings.HasSuffix(m.ID, "-demo-spent-3") {
		t.Errorf("escaped: %s %s", m.Subject, m.ID)
	}

	// A box without registers or tokens, whose tree no address can carry.
	bare := &ergo.Box{Box: sigma.Box{BoxCandidate: sigma.BoxCandidate{Value: 1, ErgoTree: make([]byte, address.MaxTreeSize+1), CreationHeight: 1}}}
	v = testVerdict(bare)
	m, err = enc.Verdict(v, bare, testBlock())
	if err != nil {
		t.Fatal(err)
	}
	if _, vd := decodeVerdict(t, m); vd.Box.Address != "" || vd.Box.Tokens == nil || vd.Box.Registers == nil {
		t.Errorf("bare box %+v", vd.Box)
	}
	if !bytes.Contains(m.Payload, []byte(`"tokens":[],"registers":{}`)) {
		t.Errorf("bare payload %s", m.Payload)
	}
}

// TestEncoderDeterministic: a payload is a function of its inputs only.
func TestEncoderDeterministic(t *testing.T) {
	enc := &Encoder{}
	var first Message
	for i := range 20 {
		box := testBox(t)
		m, err := enc.Verdict(testVerdict(box), box, testBlock())
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = m
		} else if m.ID != first.ID || m.Subject != first.Subject || !bytes.Equal(m.Payload, first.Payload) {
			t.Fatalf("run %d differs:\n%s\n%s", i, m.Payload, first.Payload)
		}
		time.Sleep(time.Millisecond / 10)
	}
}

// TestEncoderIDs: ids tell apart what must publish anew and repeat what
// must be deduplicated.
func TestEncoderIDs(t *testing.T) {
	enc := &Encoder{}
	box := testBox(t)
	v := testVerdict(box)
	ids := map[string]string{}
	add := func(name string, b BlockRef, v *rules.Verdict) {
		t.Helper()
		m, err := enc.Verdict(v, box, b)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := ids[m.ID]; ok {
			t.Errorf("%s and %s share id %s", name, prev, m.ID)
		}
		ids[m.ID] = name
	}
	b := testBlock()
	add("first connection", b, v)
	b.Connects = 2
	add("second connection", b, v)
	other := testBlock()
	other.ID = digest(0xb2)
	add("another block", other, v)
	spent := *v
	spent.Kind = rules.KindSpent
	add("spent verdict", testBlock(), &spent)
	proto := *v
	proto.Protocol = "other"
	add("another protocol", testBlock(), &proto)
	rescanned := testBlock()
	rescanned.Generation = 1
	add("judged again (generation 1)", rescanned, v)
	rescanned.Generation = 12
	add("judged again (generation 12)", rescanned, v)
}

func TestEncoderRetraction(t *testing.T) {
	enc := &Encoder{}
	box := testBox(t)
	b := testBlock()
	b.Connects = 2
	orig, err := enc.Verdict(testVerdict(box), box, b)
	if err != nil {
		t.Fatal(err)
	}
	m, err := enc.Retraction(orig, b)
	if err != nil {
		t.Fatal(err)
	}
	boxHex := box.ComputeID().String()
	if m.Subject != "auditor.demo.retracted.emitted" {
		t.Errorf("subject %q", m.Subject)
	}
	if want := b.ID.String() + "-" + boxHex + "-demo-created-retracted-2"; m.ID != want {
		t.Errorf("id %q, want %q", m.ID, want)
	}
	ev, err := DecodeEvent(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := ev.Retraction()
	if err != nil {
		t.Fatal(err)
	}
	_, vd := decodeVerdict(t, orig)
	if ev.Type != TypeRetracted || ev.Subject != boxHex || rd.Retracts != orig.ID || rd.Rescan != nil ||
		rd.DisconnectedBlock == nil || *rd.DisconnectedBlock != (BlockData{ID: b.ID, Height: b.Height, Connects: 2}) {
		t.Errorf("retraction %+v %+v", ev, rd)
	}
	origData, _ := json.Marshal(vd)
	gotData, _ := json.Marshal(rd.VerdictData)
	if !bytes.Equal(origData, gotData) {
		t.Errorf("the retraction does not carry the original data:\n%s\n%s", gotData, origData)
	}
	again, _ := enc.Retraction(orig, b)
	if !bytes.Equal(again.Payload, m.Payload) {
		t.Error("retraction not deterministic")
	}

	// Refusals: another block, not a verdict, a mangled payload.
	other := b
	other.ID = digest(0xb2)
	if _, err := enc.Retraction(orig, other); !errors.Is(err, ErrEncode) {
		t.Errorf("another block: %v", err)
	}
	if _, err := enc.Retraction(m, b); !errors.Is(err, ErrEncode) {
		t.Errorf("retracting a retraction: %v", err)
	}
	bad := orig
	bad.Payload = []byte(`{"specversion":"1.0"`)
	if _, err := enc.Retraction(bad, b); !errors.Is(err, ErrEncode) || !errors.Is(err, ErrDecode) {
		t.Errorf("mangled: %v", err)
	}
}

// TestEncoderRescinded: a rescan's retraction of a verdict carries the
// rescan instead of a disconnected block; an event judged again (of a
// generation above 0) keeps its generation in its retraction's id, so the
// retractions of a verdict and of its judgement again differ.
func TestEncoderRescinded(t *testing.T) {
	enc := &Encoder{}
	box := testBox(t)
	b := testBlock()
	orig, err := enc.Verdict(testVerdict(box), box, b)
	if err != nil {
		t.Fatal(err)
	}
	r := RescanData{Protocol: "demo", FromHeight: 900, Generation: 1}
	m, err := enc.Rescinded(orig, b, r)
	if err != nil {
		t.Fatal(err)
	}
	boxHex := box.ComputeID().String()
	if want := b.ID.String() + "-" + boxHex + "-demo-created-retracted-1"; m.ID != want || m.Subject != "auditor.demo.retracted.emitted" {
		t.Errorf("id %q subject %q, want %q", m.ID, m.Subject, want)
	}
	ev, err := DecodeEvent(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := ev.Retraction()
	if err != nil || rd.Retracts != orig.ID || rd.DisconnectedBlock != nil || rd.Rescan == nil || *rd.Rescan != r {
		t.Fatalf("rescan retraction %+v: %v", rd, err)
	}
	if strings.Contains(string(ev.Data), "disconnected_block") {
		t.Errorf("a rescan's retraction names a disconnected block: %s", ev.Data)
	}

	b.Generation = 1
	again, err := enc.Verdict(testVerdict(box), box, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := orig.ID + "-g1"; again.ID != want {
		t.Fatalf("verdict of generation 1: id %q, want %q", again.ID, want)
	}
	gone, err := enc.Retraction(again, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := m.ID + "-g1"; gone.ID != want {
		t.Errorf("retraction of a verdict of generation 1: id %q, want %q", gone.ID, want)
	}
	if _, err := enc.Rescinded(orig, b, RescanData{Protocol: "tree"}); !errors.Is(err, ErrEncode) {
		t.Errorf("a rescan of another protocol: %v", err)
	}
}

func TestEncoderRollback(t *testing.T) {
	enc := &Encoder{}
	b := testBlock()
	b.Connects = 4
	m, err := enc.Rollback(Rollback{
		ForkID: digest(0xf0), ForkHeight: 999_998, Depth: 3,
		OldTip: digest(0x01), OldHeight: 1_000_001, NewTip: digest(0x02), NewHeight: 1_000_002,
		Block: b,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "auditor.chain.rollback" || m.ID != b.ID.String()+"-rollback-4" {
		t.Errorf("%s %s", m.Subject, m.ID)
	}
	ev, err := DecodeEvent(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := ev.Rollback()
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != TypeRollback || ev.Subject != b.ID.String() || rd.ForkID != digest(0xf0) || rd.ForkHeight != 999_998 || rd.Depth != 3 ||
		rd.OldTip != digest(0x01) || rd.NewHeight != 1_000_002 || rd.Block != (BlockData{ID: b.ID, Height: b.Height, Connects: 4}) {
		t.Errorf("rollback %+v %+v", ev, rd)
	}
	if _, err := ev.Verdict(); !errors.Is(err, ErrDecode) {
		t.Errorf("a rollback decoded as a verdict: %v", err)
	}
}

func TestEncoderReportReady(t *testing.T) {
	enc := &Encoder{}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.FixedZone("x", 3600))
	m, err := enc.ReportReady(Report{Name: "conservation", Time: at, Summary: map[string]any{"lineages": 12, "failures": 0}, Files: []string{"reports/2026-01-02.json"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "auditor.report.ready" || m.ID != "report-conservation-1767319445006" {
		t.Errorf("%s %s", m.Subject, m.ID)
	}
	ev, err := DecodeEvent(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := ev.Report()
	if err != nil {
		t.Fatal(err)
	}
	if ev.Time != "2026-01-02T02:04:05.006Z" || rd.Time != ev.Time || ev.Subject != "conservation" || rd.Name != "conservation" ||
		string(rd.Summary) != `{"failures":0,"lineages":12}` || len(rd.Files) != 1 {
		t.Errorf("report %+v %+v %s", ev, rd, rd.Summary)
	}
	m, err = enc.ReportReady(Report{Time: at, Summary: json.RawMessage(`{"b": 1, "a": [1, 2]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "report-1767319445006" || !bytes.Contains(m.Payload, []byte(`"summary":{"b":1,"a":[1,2]},"files":[]`)) {
		t.Errorf("%s %s", m.ID, m.Payload)
	}
}

func TestEncoderRefuses(t *testing.T) {
	box := testBox(t)
	cases := map[string]func() (Message, error){
		"another box": func() (Message, error) {
			v := testVerdict(box)
			v.BoxID = digest(9)
			return (&Encoder{}).Verdict(v, box, testBlock())
		},
		"nil box": func() (Message, error) { return (&Encoder{}).Verdict(testVerdict(box), nil, testBlock()) },
		"protocol name": func() (Message, error) {
			v := testVerdict(box)
			v.Protocol = "a.b"
			return (&Encoder{}).Verdict(v, box, testBlock())
		},
		"class": func() (Message, error) {
			v := testVerdict(box)
			v.Class = "*"
			return (&Encoder{}).Verdict(v, box, testBlock())
		},
		"kind": func() (Message, error) {
			v := testVerdict(box)
			v.Kind = "burnt"
			return (&Encoder{}).Verdict(v, box, testBlock())
		},
		"connects 0": func() (Message, error) {
			b := testBlock()
			b.Connects = 0
			return (&Encoder{}).Verdict(testVerdict(box), box, b)
		},
		"wildcard prefix": func() (Message, error) {
			return (&Encoder{Prefix: "auditor.>"}).Verdict(testVerdict(box), box, testBlock())
		},
		"report without time": func() (Message, error) { return (&Encoder{}).ReportReady(Report{Name: "x"}) },
		"report name":         func() (Message, error) { return (&Encoder{}).ReportReady(Report{Name: "a.b", Time: time.Now()}) },
		"report summary":      func() (Message, error) { return (&Encoder{}).ReportReady(Report{Time: time.Now(), Summary: func() {}}) },
	}
	for name, f := range cases {
		if _, err := f(); !errors.Is(err, ErrEncode) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCheckPrefix(t *testing.T) {
	for p, ok := range map[string]bool{"auditor": true, "a.b-c_d": true, "": false, "a..b": false, ".a": false, "a.": false, "a.*": false, "a.>": false, "a b": false} {
		if err := CheckPrefix(p); (err == nil) != ok {
			t.Errorf("CheckPrefix(%q) = %v", p, err)
		}
	}
}

// BenchmarkEncoderVerdict encodes the verdict event of a box with four
// registers, as a publishing auditor does for every verdict:
//
//	go test -run '^$' -bench EncoderVerdict -benchmem ./publish/
func BenchmarkEncoderVerdict(b *testing.B) {
	box := testBox(b)
	v := testVerdict(box)
	enc := &Encoder{}
	for b.Loop() {
		if _, err := enc.Verdict(v, box, testBlock()); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOutgoingIsTheEvent: every kind of event's payload is byte for byte
// encoding/json's rendering of the Event it decodes to — the envelope
// marshalled with its data in one pass is the one marshalled around the
// data's own marshalling (what subscribers and stored outbox rows have).
func TestOutgoingIsTheEvent(t *testing.T) {
	enc := &Encoder{Prefix: "p", Source: "urn:test:<a&b>"}
	box := testBox(t)
	verdict, err := enc.Verdict(testVerdict(box), box, testBlock())
	if err != nil {
		t.Fatal(err)
	}
	b := testBlock()
	b.Connects = 2
	retraction, err := enc.Retraction(verdict, testBlock())
	if err != nil {
		t.Fatal(err)
	}
	rescinded, err := enc.Rescinded(verdict, testBlock(), RescanData{Protocol: "demo", FromHeight: 7, Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	rollback, err := enc.Rollback(Rollback{ForkID: digest(1), Depth: 2, Block: b})
	if err != nil {
		t.Fatal(err)
	}
	report, err := enc.ReportReady(Report{Name: "r", Time: time.UnixMilli(1), Summary: map[string]any{"z": "<&>", "a": []int{1}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []Message{verdict, retraction, rescinded, rollback, report} {
		ev, err := DecodeEvent(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Payload, want) {
			t.Errorf("%s:\n got %s\nwant %s", m.ID, m.Payload, want)
		}
	}
}
