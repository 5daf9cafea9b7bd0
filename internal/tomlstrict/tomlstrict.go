// Package tomlstrict decodes a TOML document into a Go struct strictly and
// says every problem at once, in words for the person who wrote the file:
// each names the key as written (scan.confirmations, protocol[1].name), its
// line, and the form expected ("a whole number from 0 to 4294967295", "a
// duration with a unit, such as \"15s\""). An unknown key is a problem too.
//
// Fields are matched by their `toml:"name"` tags. Supported field types:
// structs (tables), slices of structs (arrays of tables, [[x]]), strings,
// booleans, integers, floats, slices of strings (a single string is taken
// as a list of one), pointers to these (nil when the key is absent), and
// types implementing encoding.TextUnmarshaler (written as strings; a type
// may say what it expects with an Expected() string method).
package tomlstrict

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Problem is one thing wrong with a document.
type Problem struct {
	Line   int    // 1-based; 0 when not known
	Key    string // the key as written, with indices for arrays of tables: protocol[1].name; "" for an unknown key
	Msg    string
	Syntax bool // the document is not TOML: nothing of it was decoded
}

func (p *Problem) Error() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Expecter is a field type that says what form it expects, for messages.
type Expecter interface {
	Expected() string
}

// Document is what Decode learned of a document besides the values.
type Document struct {
	lines   map[string]int  // key → line, for every key written
	present map[string]bool // keys written, without indices: protocol.name
}

// Line returns the line a key was written on (0 when it was not, or is not
// known). key is as Problem.Key gives it.
func (d *Document) Line(key string) int {
	if d == nil {
		return 0
	}
	for k := key; k != ""; k = parent(k) {
		if l, ok := d.lines[k]; ok {
			return l
		}
	}
	return 0
}

// Has reports whether the document sets key (dotted, without indices).
func (d *Document) Has(key string) bool { return d != nil && d.present[key] }

func parent(key string) string {
	if i := strings.LastIndexAny(key, ".["); i >= 0 {
		return key[:i]
	}
	return ""
}

// Decode decodes data over *v (a pointer to a struct holding defaults) and
// returns the document's keys and lines, and every problem found (joined;
// each a *Problem).
func Decode(data []byte, v any) (*Document, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("tomlstrict: Decode needs a pointer to a struct, got %T", v)
	}
	doc := &Document{lines: map[string]int{}, present: map[string]bool{}}
	if err := doc.index(data); err != nil {
		return doc, err
	}
	var tree map[string]any
	if err := toml.Unmarshal(data, &tree); err != nil {
		return doc, syntaxProblem(err)
	}
	d := &decoder{doc: doc}
	d.table("", tree, rv.Elem())
	sort.SliceStable(d.problems, func(i, j int) bool {
		return d.problems[i].(*Problem).Line < d.problems[j].(*Problem).Line
	})
	return doc, errors.Join(d.problems...)
}

// syntaxProblem turns the TOML parser's error into a Problem.
func syntaxProblem(err error) error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		return &Problem{Line: row, Key: strings.Join(de.Key(), "."), Msg: "not valid TOML: " + de.Error(), Syntax: true}
	}
	var pe *unstable.ParserError
	if errors.As(err, &pe) {
		return &Problem{Msg: "not valid TOML: " + pe.Error(), Syntax: true}
	}
	return &Problem{Msg: "not valid TOML: " + err.Error(), Syntax: true}
}

// index records the line of every key of the document, with the indices of
// the arrays of tables it is in.
func (doc *Document) index(data []byte) error {
	var p unstable.Parser
	p.Reset(data)
	counts := map[string]int{} // array-of-tables path (with the parents' indices) → elements so far
	arrays := map[string]bool{}
	var table string // the current table's path, with indices
	resolve := func(parts []string) string {
		// A dotted key of a table header: each prefix that is an array of
		// tables is its last element.
		path := ""
		for _, part := range parts {
			if path != "" {
				path += "."
			}
			path += part
			if arrays[path] {
				path += fmt.Sprintf("[%d]", counts[path]-1)
			}
		}
		return path
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, first := keyParts(e.Key())
			line := p.Shape(first.Raw).Start.Line
			if e.Kind == unstable.ArrayTable {
				base := resolve(parts[:len(parts)-1])
				if base != "" {
					base += "."
				}
				arr := base + parts[len(parts)-1]
				arrays[arr] = true
				counts[arr]++
				table = fmt.Sprintf("%s[%d]", arr, counts[arr]-1)
			} else {
				table = resolve(parts)
			}
			doc.note(table, line)
		case unstable.KeyValue:
			parts, first := keyParts(e.Key())
			key := strings.Join(parts, ".")
			if table != "" {
				key = table + "." + key
			}
			doc.note(key, p.Shape(first.Raw).Start.Line)
		}
	}
	if err := p.Error(); err != nil {
		var pe *unstable.ParserError
		if errors.As(err, &pe) {
			return &Problem{Line: lineOf(data, pe.Highlight), Msg: "not valid TOML: " + pe.Message, Syntax: true}
		}
		return syntaxProblem(err)
	}
	return nil
}

// note records key's line, and its parents' where they have none (a
// dotted key or table name defines them).
func (doc *Document) note(key string, line int) {
	doc.lines[key] = line
	doc.present[stripIndices(key)] = true
	for k := parent(key); k != ""; k = parent(k) {
		if _, ok := doc.lines[k]; ok {
			break
		}
		doc.lines[k] = line
		doc.present[stripIndices(k)] = true
	}
}

// lineOf is the line of highlight, a subslice of data (1 when it is not).
func lineOf(data, highlight []byte) int {
	off := cap(data) - cap(highlight)
	if off < 0 || off > len(data) {
		return 1
	}
	return strings.Count(string(data[:off]), "\n") + 1
}

func keyParts(it unstable.Iterator) ([]string, *unstable.Node) {
	var parts []string
	var first *unstable.Node
	for it.Next() {
		n := it.Node()
		if first == nil {
			first = n
		}
		parts = append(parts, string(n.Data))
	}
	return parts, first
}

func stripIndices(key string) string {
	var b strings.Builder
	skip := false
	for _, r := range key {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

type decoder struct {
	doc      *Document
	problems []error
}

func (d *decoder) bad(key, format string, args ...any) {
	d.problems = append(d.problems, &Problem{Line: d.doc.Line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// table decodes the keys of t into the struct v; prefix is t's key.
func (d *decoder) table(prefix string, t map[string]any, v reflect.Value) {
	fields := map[string]reflect.Value{}
	var names []string
	typ := v.Type()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fields[name] = v.Field(i)
		names = append(names, name)
	}
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key := join(prefix, k)
		f, ok := fields[k]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", key)
			if near := closest(k, names); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", join(prefix, near))
			}
			d.problems = append(d.problems, &Problem{Line: d.doc.Line(key), Msg: msg})
			continue
		}
		d.value(key, t[k], f)
	}
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// value decodes x, the value of key, into v.
func (d *decoder) value(key string, x any, v reflect.Value) {
	if v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		before := len(d.problems)
		d.value(key, x, p.Elem())
		if len(d.problems) == before {
			v.Set(p)
		}
		return
	}
	if reflect.PointerTo(v.Type()).Implements(textUnmarshaler) {
		s, ok := x.(string)
		if !ok {
			d.bad(key, "expected %s, got %s", expected(v.Type()), describe(x))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.bad(key, "expected %s: %v", expected(v.Type()), err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		t, ok := x.(map[string]any)
		if !ok {
			d.bad(key, "expected a table ([%s] or %s = { … }), got %s", stripIndices(key), stripIndices(key), describe(x))
			return
		}
		d.table(key, t, v)
	case reflect.Slice:
		d.slice(key, x, v)
	case reflect.String:
		s, ok := x.(string)
		if !ok {
			d.bad(key, "expected a string in quotes, got %s", describe(x))
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := x.(bool)
		if !ok {
			d.bad(key, "expected true or false, got %s", describe(x))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		lo, hi := intRange(v.Type())
		n, ok := x.(int64)
		if !ok || n < lo || n > hi {
			if v.Type().Size() == 8 {
				d.bad(key, "expected a whole number, got %s", describe(x))
			} else {
				d.bad(key, "expected a whole number from %d to %d, got %s", lo, hi, describe(x))
			}
			return
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		hi := uint64(1)<<(8*v.Type().Size()) - 1
		if v.Type().Size() == 8 {
			hi = math.MaxInt64 // TOML integers are 64-bit signed
		}
		n, ok := x.(int64)
		if !ok || n < 0 || uint64(n) > hi {
			d.bad(key, "expected a whole number from 0 to %d, got %s", hi, describe(x))
			return
		}
		v.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		switch n := x.(type) {
		case float64:
			v.SetFloat(n)
		case int64:
			v.SetFloat(float64(n))
		default:
			d.bad(key, "expected a number, got %s", describe(x))
		}
	default:
		d.bad(key, "has a type this decoder cannot fill (%s): a bug", v.Type())
	}
}

// slice decodes x into the slice v: a list of tables for a slice of
// structs, a list of values otherwise (a single string is a list of one).
func (d *decoder) slice(key string, x any, v reflect.Value) {
	elem := v.Type().Elem()
	var items []any
	switch x := x.(type) {
	case []any:
		items = x
	case []map[string]any: // go-toml decodes arrays of tables so
		for _, m := range x {
			items = append(items, m)
		}
	case string:
		if elem.Kind() == reflect.String {
			items = []any{x}
		}
	}
	if items == nil && !isList(x) {
		what := "a list in brackets, [ … ]"
		if elem.Kind() == reflect.Struct {
			what = fmt.Sprintf("[[%s]] sections", stripIndices(key))
		}
		d.bad(key, "expected %s, got %s", what, describe(x))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(items), len(items))
	before := len(d.problems)
	for i, item := range items {
		d.value(fmt.Sprintf("%s[%d]", key, i), item, out.Index(i))
	}
	if len(d.problems) == before {
		v.Set(out)
	}
}

func isList(x any) bool {
	switch x.(type) {
	case []any, []map[string]any:
		return true
	}
	return false
}

func intRange(t reflect.Type) (int64, int64) {
	bits := 8 * t.Size()
	return -1 << (bits - 1), 1<<(bits-1) - 1
}

// expected says what form a TextUnmarshaler type expects.
func expected(t reflect.Type) string {
	if e, ok := reflect.New(t).Interface().(Expecter); ok {
		return e.Expected()
	}
	return "a string in quotes"
}

// describe names a decoded TOML value for a message.
func describe(x any) string {
	switch x := x.(type) {
	case string:
		return "the string " + strconv.Quote(x)
	case int64:
		return "the number " + strconv.FormatInt(x, 10)
	case float64:
		return "the number " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return fmt.Sprintf("%t", x)
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "a list"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("a %T", x)
}

// closest returns the name among names nearest to s (within two edits, and
// no more than half its length), or "".
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := distance(s, n); d < bestD && 2*d <= len(s) {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
