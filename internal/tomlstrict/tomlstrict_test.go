package tomlstrict

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

type dur time.Duration

func (*dur) Expected() string { return `a duration such as "2s"` }

func (d *dur) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return errors.New("no")
	}
	*d = dur(v)
	return nil
}

type item struct {
	Name  string   `toml:"name"`
	Tags  []string `toml:"tags"`
	Inner []struct {
		Size uint8 `toml:"size"`
	} `toml:"inner"`
}

type doc struct {
	Title   string   `toml:"title"`
	Count   int32    `toml:"count"`
	Big     uint64   `toml:"big"`
	Ratio   float64  `toml:"ratio"`
	On      bool     `toml:"on"`
	Wait    dur      `toml:"wait"`
	Maybe   *uint32  `toml:"maybe"`
	URLs    []string `toml:"urls"`
	Section struct {
		Port uint16 `toml:"port"`
	} `toml:"section"`
	Items   []item `toml:"item"`
	ignored string
}

func TestDecodeFillsEveryKind(t *testing.T) {
	const text = `title = "t"
count = -7
big = 9223372036854775807
ratio = 2
on = true
wait = "1m30s"
maybe = 4
urls = "nats://one:4222"

[section]
port = 8080

[[item]]
name = "a"
tags = ["x", "y"]
[[item.inner]]
size = 1
[[item.inner]]
size = 2

[[item]]
name = "b"
`
	v := doc{Title: "default", Count: 3}
	d, err := Decode([]byte(text), &v)
	if err != nil {
		t.Fatal(err)
	}
	if v.Title != "t" || v.Count != -7 || v.Big != 1<<63-1 || v.Ratio != 2 || !v.On || time.Duration(v.Wait) != 90*time.Second ||
		v.Maybe == nil || *v.Maybe != 4 || !slices.Equal(v.URLs, []string{"nats://one:4222"}) || v.Section.Port != 8080 {
		t.Fatalf("decoded %+v", v)
	}
	if len(v.Items) != 2 || v.Items[0].Name != "a" || len(v.Items[0].Inner) != 2 || v.Items[0].Inner[1].Size != 2 || v.Items[1].Name != "b" {
		t.Fatalf("items %+v", v.Items)
	}
	for key, line := range map[string]int{"title": 1, "urls": 8, "section": 10, "section.port": 11, "item[0]": 13,
		"item[0].inner[1].size": 19, "item[0].inner[1]": 18, "item[1].name": 22, "item[1].nothing": 21, "absent": 0} {
		if got := d.Line(key); got != line {
			t.Errorf("Line(%q) = %d, want %d", key, got, line)
		}
	}
	if !d.Has("item.inner.size") || !d.Has("section.port") || d.Has("maybe.x") || d.Has("ignored") {
		t.Error("Has")
	}
}

// TestDecodeSaysEveryProblem: each problem names the key as written, its
// line and the form expected, in words; a key that does not decode keeps
// the value it had.
func TestDecodeSaysEveryProblem(t *testing.T) {
	const text = `title = 5
count = 3000000000
big = -1
ratio = "half"
on = "yes"
wait = 15
maybe = -2
urls = 7
titel = "typo"

[section]
port = 70000

[[item]]
name = "a"
tags = [1]
[[item.inner]]
size = 256
`
	v := doc{Title: "default", Count: 3}
	_, err := Decode([]byte(text), &v)
	want := []string{
		`line 1: title: expected a string in quotes, got the number 5`,
		`line 2: count: expected a whole number from -2147483648 to 2147483647, got the number 3000000000`,
		`line 3: big: expected a whole number from 0 to 9223372036854775807, got the number -1`,
		`line 4: ratio: expected a number, got the string "half"`,
		`line 5: on: expected true or false, got the string "yes"`,
		`line 6: wait: expected a duration such as "2s", got the number 15`,
		`line 7: maybe: expected a whole number from 0 to 4294967295, got the number -2`,
		`line 8: urls: expected a list in brackets, [ … ], got the number 7`,
		`line 9: unknown key "titel" (did you mean "title"?)`,
		`line 12: section.port: expected a whole number from 0 to 65535, got the number 70000`,
		`line 16: item[0].tags[0]: expected a string in quotes, got the number 1`,
		`line 18: item[0].inner[0].size: expected a whole number from 0 to 255, got the number 256`,
	}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var p *Problem
		if !errors.As(e, &p) || p.Syntax {
			t.Fatalf("%v is not a value problem", e)
		}
		got = append(got, e.Error())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if v.Title != "default" || v.Count != 3 || v.Maybe != nil || v.Items != nil {
		t.Fatalf("values that did not decode changed: %+v", v)
	}
}

func TestDecodeTypeProblems(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"section = 1\n", `line 1: section: expected a table ([section] or section = { … }), got the number 1`},
		{"item = 1\n", `line 1: item: expected [[item]] sections, got the number 1`},
		{"wait = \"soon\"\n", `line 1: wait: expected a duration such as "2s": no`},
		{"[section]\nport = 1\nportt = 2\n", `line 3: unknown key "section.portt" (did you mean "section.port"?)`},
		{"zzz = 1\n", `line 1: unknown key "zzz"`},
		{"[a.b]\nc = 1\n", `line 1: unknown key "a"`},
	} {
		var v doc
		_, err := Decode([]byte(tc.text), &v)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: %v, want %s", tc.text, err, tc.want)
		}
	}
}

func TestDecodeSyntaxError(t *testing.T) {
	for _, text := range []string{"a = \n", "[x\n", "title = \"a\"\ntitle = \"b\"\n", "a = 1 b = 2\n"} {
		var v doc
		_, err := Decode([]byte(text), &v)
		var p *Problem
		if !errors.As(err, &p) || !p.Syntax || p.Line < 1 || !strings.Contains(err.Error(), "not valid TOML") {
			t.Errorf("%q: %v, want a syntax problem with its line", text, err)
		}
	}
}

func TestDecodeNeedsAStructPointer(t *testing.T) {
	var v doc
	if _, err := Decode(nil, v); err == nil {
		t.Fatal("a struct, not a pointer: accepted")
	}
}

// FuzzDecode: no input panics; a decoded document gives problems with
// lines within it.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"title = \"t\"\n[[item]]\nname = \"a\"\n[[item.inner]]\nsize = 1\n",
		"urls = [\"a\", \"b\"]\n[section]\nport = 1\n",
		"wait = 15\ncount = 1e3\n",
		"[a]\nb.c = 1\n[[a.d]]\n",
		"x = {y = [1, {z = 2}]}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v doc
		_, err := Decode(data, &v)
		lines := strings.Count(string(data), "\n") + 1
		for _, e := range errorsOf(err) {
			var p *Problem
			if !errors.As(e, &p) {
				t.Fatalf("%v is not a *Problem", e)
			}
			if p.Line < 0 || p.Line > lines {
				t.Fatalf("%v: line %d of a %d-line document", e, p.Line, lines)
			}
		}
	})
}

func errorsOf(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func ExampleDecode() {
	var cfg struct {
		Scan struct {
			Confirmations uint32 `toml:"confirmations"`
		} `toml:"scan"`
	}
	_, err := Decode([]byte("[scan]\nconfirmations = \"ten\"\nconfirmation = 1\n"), &cfg)
	fmt.Println(err)
	// Output:
	// line 2: scan.confirmations: expected a whole number from 0 to 4294967295, got the string "ten"
	// line 3: unknown key "scan.confirmation" (did you mean "scan.confirmations"?)
}
