package scan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/fixtures"
)

func TestSplitArray(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // nil: an error
	}{
		{`[]`, []string{}},
		{" \n[ \t]\r\n", []string{}},
		{`[1]`, []string{`1`}},
		{`[ 1 , "a" ,null,true ]`, []string{`1`, `"a"`, `null`, `true`}},
		{`[{"a":[1,{"b":"]}"}]},[[]],{}]`, []string{`{"a":[1,{"b":"]}"}]}`, `[[]]`, `{}`}},
		{`["\"","\\","\\\"]",""]`, []string{`"\""`, `"\\"`, `"\\\"]"`, `""`}},
		{`[{"s":"\\"}]`, []string{`{"s":"\\"}`}},
		{`[-1.5e3,0]`, []string{`-1.5e3`, `0`}},
		{`[{]]`, []string{`{]`}}, // balanced for the splitter; its decoder refuses it
		{``, nil},
		{`null`, nil},
		{`{}`, nil},
		{`"[]"`, nil},
		{`[`, nil},
		{`[1`, nil},
		{`[1,`, nil},
		{`[1,]`, nil},
		{`[,1]`, nil},
		{`[1 2]`, nil},
		{`[1]]`, nil},
		{`[1] x`, nil},
		{`[[]`, nil},
		{`["]`, nil},
		{`["\"]`, nil},
		{`[{"a":"]`, nil},
		{`[:]`, nil},
		{`[1"a"]`, nil},
		{strings.Repeat("[", 1e5), nil},
	} {
		got, err := splitArray([]byte(tc.in))
		if tc.want == nil {
			if err == nil {
				t.Errorf("%.40q: %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
			continue
		}
		for i := range got {
			if string(got[i]) != tc.want[i] {
				t.Errorf("%q: [%d] is %q, want %q", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

// FuzzSplitArray checks splitArray against encoding/json: it finds the same
// elements in every array encoding/json accepts, and accepts nothing
// encoding/json refuses unless an element is itself invalid (for its
// decoder to refuse).
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{
		`[]`, `[1,"a",null]`, `[{"a":[1,{"b":"]}"}]}]`, `["\\\"",{}]`, `[1 2]`, `[{]]`,
		`[ {"id" : "54dd", "powSolutions": {"d": 0, "n": "7d31"}, "votes": "000000"} ,{"height":700001}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := splitArray(data)
		var want []json.RawMessage
		werr := json.Unmarshal(data, &want)
		if werr == nil && want != nil && err != nil {
			t.Fatalf("%q: encoding/json accepts, splitArray says %v", data, err)
		}
		if err != nil {
			return
		}
		for _, e := range got {
			if !json.Valid(e) {
				return // its decoder refuses it
			}
		}
		if werr != nil || len(got) != len(want) {
			t.Fatalf("%q: splitArray gives %q, encoding/json %q, %v", data, got, want, werr)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%q: [%d] is %q, encoding/json says %q", data, i, got[i], want[i])
			}
		}
	})
}

// BenchmarkSplitArray compares splitArray with encoding/json on a POST
// /blocks/headerIds answer of three large blocks, and with decoding and
// verifying them, the work that follows.
func BenchmarkSplitArray(b *testing.B) {
	raw := fixtures.Read(b, "blocks", "mainnet_1000001.json") // 1.1 MB, 46 transactions
	answer := append(append([]byte("["), bytes.Join([][]byte{raw, raw, raw}, []byte(","))...), ']')
	b.Run("splitArray", func(b *testing.B) {
		b.SetBytes(int64(len(answer)))
		for b.Loop() {
			if elems, err := splitArray(answer); err != nil || len(elems) != 3 {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(answer)))
		for b.Loop() {
			var elems []json.RawMessage
			if err := json.Unmarshal(answer, &elems); err != nil || len(elems) != 3 {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-and-verify", func(b *testing.B) {
		b.SetBytes(int64(len(answer)))
		for b.Loop() {
			for range 3 {
				block, err := ergo.DecodeBlock(raw)
				if err != nil {
					b.Fatal(err)
				}
				if err := block.Verify(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
