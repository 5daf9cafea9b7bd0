package publish

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzDecodeEvent: DecodeEvent (which auditor tail runs on whatever
// arrives on the subjects) never panics, and what it accepts survives a
// round trip.
func FuzzDecodeEvent(f *testing.F) {
	enc := &Encoder{}
	box := testBox(f)
	v, err := enc.Verdict(testVerdict(box), box, testBlock())
	if err != nil {
		f.Fatal(err)
	}
	r, _ := enc.Retraction(v, testBlock())
	rb, _ := enc.Rollback(Rollback{Block: testBlock(), Depth: 1})
	rep, _ := enc.ReportReady(Report{Name: "x", Time: time.UnixMilli(1), Summary: map[string]int{"a": 1}})
	for _, m := range []Message{v, r, rb, rep} {
		f.Add(m.Payload)
	}
	f.Add([]byte(`{"specversion":"1.0","id":"i","source":"s","type":"t","time":"2020-01-01T00:00:00Z","datacontenttype":"application/json","data":{}}`))
	f.Add([]byte(`{"data":{"box":{"value":1e3}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeEvent(b)
		if err != nil {
			return
		}
		if _, err := ev.At(); err != nil {
			t.Fatalf("accepted time %q: %v", ev.Time, err)
		}
		_, _ = ev.Verdict()
		_, _ = ev.Retraction()
		_, _ = ev.Rollback()
		_, _ = ev.Report()
		again, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		ev2, err := DecodeEvent(again)
		if err != nil {
			t.Fatalf("re-encoded event refused: %v\n%s", err, again)
		}
		ev.Data, ev2.Data = compact(t, ev.Data), compact(t, ev2.Data)
		if !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, ev2)
		}
	})
}

func compact(t *testing.T, raw json.RawMessage) json.RawMessage {
	out, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
