package publish

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestIDConnects: the end of an id is its connection count, then the
// generation when there is one; anything else is not an id of the schema.
func TestIDConnects(t *testing.T) {
	b, box := digest(0xb1), digest(0xbb)
	for _, c := range []struct {
		id             string
		connects, gen  int
		ok             bool
		generationOnly int
	}{
		{VerdictID(b, box, "demo", "created", 1, 0), 1, 0, true, 0},
		{VerdictID(b, box, "demo", "created", 3, 1), 3, 1, true, 1},
		{VerdictID(b, box, "g-1", "spent", 12, 40), 12, 40, true, 40}, // a protocol name ending like a generation
		{RetractionID(b, box, "demo", "created", 2, 7), 2, 7, true, 7},
		{RollbackID(b, 5), 5, 0, true, 0},
		{"report-audit-1795551149828", 0, 0, false, 0}, // more than 9 digits
		{"x-0", 0, 0, false, 0},
		{"x-01", 0, 0, false, 0},
		{"x-+1", 0, 0, false, 0},
		{"x-1-g0", 0, 0, false, 0},
		{"x-1-g", 0, 0, false, 0},
		{"x-1-gx", 0, 0, false, 0},
		{"x-g1", 0, 0, false, 0},
		{"1", 0, 0, false, 0},
		{"", 0, 0, false, 0},
	} {
		conn, gen, ok := IDConnects(c.id)
		if conn != c.connects || gen != c.gen || ok != c.ok {
			t.Errorf("IDConnects(%q) = %d, %d, %v; want %d, %d, %v", c.id, conn, gen, ok, c.connects, c.gen, c.ok)
		}
		if g := IDGeneration(c.id); g != c.generationOnly {
			t.Errorf("IDGeneration(%q) = %d, want %d", c.id, g, c.generationOnly)
		}
	}
}

// TestWithConnects: an event made again by another connection of its
// block — a verdict keeps its generation (a rescanned protocol's -g<n>),
// a retraction moves its retracts and disconnected block along, a rollback
// its block; the same connection gives the same bytes; an id its data
// does not make is refused.
func TestWithConnects(t *testing.T) {
	enc := &Encoder{}
	box := testBox(t)
	ref := testBlock()
	ref.Generation = 2
	v, err := enc.Verdict(testVerdict(box), box, ref)
	if err != nil {
		t.Fatal(err)
	}
	dis, err := enc.Retraction(v, ref)
	if err != nil {
		t.Fatal(err)
	}
	res, err := enc.Rescinded(v, ref, RescanData{Protocol: "demo", FromHeight: 5, Generation: 3})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := enc.Rollback(Rollback{Block: ref, Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []Message{v, dis, res, rb} {
		same, err := WithConnects(m, 1)
		if err != nil || same.ID != m.ID || !bytes.Equal(same.Payload, m.Payload) || same.Subject != m.Subject {
			t.Fatalf("%s in its own connection: %s (%v)\n%s\n%s", m.ID, same.ID, err, same.Payload, m.Payload)
		}
	}
	ref2 := ref
	ref2.Connects = 4
	v4, _ := enc.Verdict(testVerdict(box), box, ref2)
	dis4, _ := enc.Retraction(v4, ref2)
	res4, _ := enc.Rescinded(v4, ref2, RescanData{Protocol: "demo", FromHeight: 5, Generation: 3})
	rb4, _ := enc.Rollback(Rollback{Block: ref2, Depth: 1})
	for i, m := range []Message{v, dis, res, rb} {
		got, err := WithConnects(m, 4)
		w := []Message{v4, dis4, res4, rb4}[i]
		if err != nil || got.ID != w.ID || !bytes.Equal(got.Payload, w.Payload) {
			t.Fatalf("%s in connection 4: %s (%v), want %s\n%s\n%s", m.ID, got.ID, err, w.ID, got.Payload, w.Payload)
		}
	}
	if !strings.HasSuffix(v4.ID, "-4-g2") || !strings.HasSuffix(res4.ID, "-retracted-4-g2") {
		t.Fatalf("ids %s, %s", v4.ID, res4.ID)
	}

	forged := v
	other := strings.Replace(v.ID, digest(0xb1).String(), digest(0xb2).String(), 1)
	forged.Payload = bytes.Replace(v.Payload, []byte(strconv.Quote(v.ID)), []byte(strconv.Quote(other)), 1)
	rep, _ := enc.ReportReady(Report{Name: "audit", Time: time.UnixMilli(1)})
	for name, m := range map[string]Message{"an id of another block": forged, "a report": rep, "not an event": {ID: "x", Payload: []byte("{")}} {
		if _, err := WithConnects(m, 2); !errors.Is(err, ErrEncode) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := WithConnects(v, 0); !errors.Is(err, ErrEncode) {
		t.Errorf("connection 0: %v", err)
	}
}

// FuzzIDConnects: IDConnects never panics, and what it reads makes the
// id's end again.
func FuzzIDConnects(f *testing.F) {
	for _, id := range []string{VerdictID(digest(1), digest(2), "demo", "created", 1, 0), RetractionID(digest(1), digest(2), "a-g1", "spent", 2, 3),
		RollbackID(digest(1), 9), "x-1-g01", "report-1", "-", "-g"} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		conn, gen, ok := IDConnects(id)
		if !ok {
			if conn != 0 || gen != 0 {
				t.Fatalf("%q: %d, %d without ok", id, conn, gen)
			}
			return
		}
		if conn < 1 || gen < 0 {
			t.Fatalf("%q: connection %d, generation %d", id, conn, gen)
		}
		end := "-" + strconv.Itoa(conn) + generationSuffix(gen)
		if !strings.HasSuffix(id, end) {
			t.Fatalf("%q does not end in %q", id, end)
		}
	})
}
