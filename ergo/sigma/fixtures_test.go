package sigma

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"sort"
	"sync"
	"testing"

	"github.com/async-emission/auditor/ergo/wire"
	"github.com/async-emission/auditor/internal/fixtures"
	"golang.org/x/crypto/blake2b"
)

// These tests decode everything the mainnet fixtures hold and check it
// against the ids and encodings the fixtures give: every ErgoTree parses
// with no RootErr and spans exactly its bytes, every register and
// context-extension value re-serializes to its bytes, and box, transaction
// and header ids recomputed from the decoded form match.

// items is the set of serialized items found in the fixtures, directly or
// inside transaction bytes, box bytes and Box-typed registers.
type items struct {
	trees      map[string]string
	registers  map[string]string
	extensions map[string]string
}

var (
	itemsOnce   sync.Once
	itemsCached *items
)

// fixtureItems merges what the JSON holds with what the transaction and box
// bytes hold. Bytes that do not decode are skipped here; the tests below
// report them.
func fixtureItems(t testing.TB) *items {
	c := loadCorpus(t)
	itemsOnce.Do(func() {
		it := &items{trees: map[string]string{}, registers: map[string]string{}, extensions: map[string]string{}}
		for k, v := range c.trees {
			addOnce(it.trees, k, v)
		}
		for k, v := range c.registers {
			addOnce(it.registers, k, v)
		}
		for k, v := range c.extensions {
			addOnce(it.extensions, k, v)
		}
		addCandidate := func(b *BoxCandidate, src string) {
			addOnce(it.trees, hex.EncodeToString(b.ErgoTree), src)
			for _, r := range b.Registers {
				addOnce(it.registers, hex.EncodeToString(r), src)
			}
		}
		for _, tx := range c.txs {
			for _, b := range [][]byte{tx.bytes, tx.bytesToSign} {
				if b == nil {
					continue
				}
				parsed, err := readTestTx(wire.NewReader(b))
				if err != nil {
					continue
				}
				for i := range parsed.outputs {
					addCandidate(&parsed.outputs[i], tx.src+" (tx bytes)")
				}
				for _, in := range parsed.inputs {
					for _, e := range in.extension {
						addOnce(it.extensions, hex.EncodeToString(e.value), tx.src+" (tx bytes)")
					}
				}
			}
		}
		for _, bb := range c.boxBytes {
			if box, err := ParseBox(bb.bytes); err == nil {
				addCandidate(&box.BoxCandidate, bb.src+" (box bytes)")
			}
		}
		// Boxes held in registers carry trees and registers of their own.
		for pending := sortedKeys(it.registers); len(pending) > 0; {
			var next []string
			for _, h := range pending {
				b, _ := hex.DecodeString(h)
				c, err := ParseConstant(b)
				if err != nil {
					continue
				}
				for _, box := range boxesIn(c.Type, c.Value) {
					src := it.registers[h] + " (Box in a register)"
					addOnce(it.trees, hex.EncodeToString(box.ErgoTree), src)
					for _, r := range box.Registers {
						k := hex.EncodeToString(r)
						if _, seen := it.registers[k]; !seen {
							it.registers[k] = src
							next = append(next, k)
						}
					}
				}
			}
			pending = next
		}
		itemsCached = it
	})
	return itemsCached
}

// boxesIn returns the boxes a value of type t holds.
func boxesIn(t Type, v Value) []*Box {
	switch t := t.(type) {
	case PrimType:
		if b, ok := v.(*Box); ok && t == TBox {
			return []*Box{b}
		}
	case *CollType:
		items, _ := v.([]Value)
		var out []*Box
		for _, it := range items {
			out = append(out, boxesIn(t.Elem, it)...)
		}
		return out
	case *OptionType:
		if o, ok := v.(Option); ok && o.Defined {
			return boxesIn(t.Elem, o.Value)
		}
	case *TupleType:
		items, _ := v.(Tuple)
		var out []*Box
		for i, it := range items {
			if i < len(t.Items) {
				out = append(out, boxesIn(t.Items[i], it)...)
			}
		}
		return out
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestFixtureErgoTrees(t *testing.T) {
	it := fixtureItems(t)
	stats := map[string]int{}
	templates := map[[32]byte]bool{}
	for _, h := range sortedKeys(it.trees) {
		src := it.trees[h]
		b := mustHex(t, h)
		tree, err := ParseErgoTree(b)
		if err != nil {
			t.Errorf("%s: tree %s: %v", src, abbrev(h), err)
			continue
		}
		if tree.RootErr != nil {
			t.Errorf("%s: tree %s: unparsed root: %v", src, abbrev(h), tree.RootErr)
			continue
		}
		if !bytes.Equal(tree.Bytes, b) {
			t.Errorf("%s: tree %s: Bytes differ", src, abbrev(h))
		}
		th, err := tree.TemplateHash()
		if err != nil {
			t.Errorf("%s: tree %s: %v", src, abbrev(h), err)
		}
		if fast, err := TemplateHashOf(b); err != nil || fast != th {
			t.Errorf("%s: tree %s: TemplateHashOf %x, %v; the full parse gives %x", src, abbrev(h), fast, err, th)
		}
		templates[th] = true
		// Rebuild the tree from its parts with the constant writer.
		w := wire.NewWriter(nil)
		body := wire.NewWriter(nil)
		if tree.ConstantSegregation {
			body.U32(uint32(len(tree.Constants)))
			for _, c := range tree.Constants {
				if err := WriteConstant(body, c); err != nil {
					t.Errorf("%s: tree %s: constant %s: %v", src, abbrev(h), c.Type, err)
				}
			}
		}
		body.Write(tree.Template)
		w.Byte(tree.Header)
		if tree.HasSize {
			w.U32(uint32(body.Len()))
		}
		w.Write(body.Bytes())
		if !bytes.Equal(w.Bytes(), b) {
			t.Errorf("%s: tree %s: rebuilt from its constants and template as %x", src, abbrev(h), w.Bytes())
		}
		stats["version "+string('0'+tree.Version)]++
		if tree.ConstantSegregation {
			stats["segregated"]++
		}
		if tree.HasSize {
			stats["sized"]++
		}
	}
	t.Logf("%d distinct ErgoTrees parsed (%d templates): %v", len(it.trees), len(templates), stats)
	if len(it.trees) < 1000 {
		t.Errorf("only %d distinct trees found in the fixtures", len(it.trees))
	}
}

// checkConstantRoundTrip decodes a serialized constant and checks that it
// re-serializes to the same bytes and renders as JSON.
func checkConstantRoundTrip(t *testing.T, kind, src, h string) (Constant, bool) {
	t.Helper()
	b := mustHex(t, h)
	c, err := ParseConstant(b)
	if err != nil {
		t.Errorf("%s: %s %s: %v", src, kind, abbrev(h), err)
		return c, false
	}
	got, err := c.Bytes()
	if err != nil {
		t.Errorf("%s: %s %s (%s): write: %v", src, kind, abbrev(h), c.Type, err)
		return c, false
	}
	if !bytes.Equal(got, b) {
		t.Errorf("%s: %s %s (%s): re-serialized as %x", src, kind, abbrev(h), c.Type, got)
	}
	js, err := json.Marshal(c)
	if err != nil || !json.Valid(js) {
		t.Errorf("%s: %s %s: JSON: %v", src, kind, abbrev(h), err)
	}
	if rc, err := DecodeRegisterValue(b); err != nil || !TypeEqual(rc.Type, c.Type) {
		t.Errorf("%s: %s %s: DecodeRegisterValue: %v", src, kind, abbrev(h), err)
	}
	return c, true
}

func TestFixtureRegisters(t *testing.T) {
	it := fixtureItems(t)
	types := map[string]int{}
	for _, h := range sortedKeys(it.registers) {
		if c, ok := checkConstantRoundTrip(t, "register", it.registers[h], h); ok {
			types[c.Type.String()]++
		}
	}
	t.Logf("%d distinct register values, %d types: %v", len(it.registers), len(types), types)
}

func TestFixtureContextExtensions(t *testing.T) {
	it := fixtureItems(t)
	types := map[string]int{}
	for _, h := range sortedKeys(it.extensions) {
		if c, ok := checkConstantRoundTrip(t, "context extension value", it.extensions[h], h); ok {
			types[c.Type.String()]++
		}
	}
	t.Logf("%d distinct context-extension values: %v", len(it.extensions), types)
	if len(it.extensions) == 0 {
		t.Error("no context-extension values found")
	}
}

func TestFixtureBoxBytes(t *testing.T) {
	c := loadCorpus(t)
	for _, bb := range c.boxBytes {
		box, err := ParseBox(bb.bytes)
		if err != nil {
			t.Errorf("%s: box %s: %v", bb.src, bb.id, err)
			continue
		}
		if id := box.ID(); hex.EncodeToString(id[:]) != bb.id {
			t.Errorf("%s: box %s: ID() = %x", bb.src, bb.id, id)
		}
		if bb.ergoTree != "" && hex.EncodeToString(box.ErgoTree) != bb.ergoTree {
			t.Errorf("%s: box %s: ErgoTree %x, want %s", bb.src, bb.id, box.ErgoTree, bb.ergoTree)
		}
		w := wire.NewWriter(nil)
		if err := box.Write(w); err != nil || !bytes.Equal(w.Bytes(), bb.bytes) {
			t.Errorf("%s: box %s: Write = %x, %v", bb.src, bb.id, w.Bytes(), err)
		}
	}
	t.Logf("%d serialized boxes verified", len(c.boxBytes))
	if len(c.boxBytes) == 0 {
		t.Error("no serialized boxes found")
	}
}

func TestFixtureJSONBoxes(t *testing.T) {
	c := loadCorpus(t)
	ids := map[string]bool{}
	for _, jb := range c.jsonBoxes {
		ids[jb.id] = true
		if id := jb.box.ID(); hex.EncodeToString(id[:]) != jb.id {
			t.Errorf("%s: box %s: ID() from the JSON fields = %x", jb.src, jb.id, id)
		}
		for i := range jb.box.Registers {
			if _, err := jb.box.Register(firstRegister + i); err != nil {
				t.Errorf("%s: box %s: R%d: %v", jb.src, jb.id, firstRegister+i, err)
			}
		}
		js, err := json.Marshal(jb.box)
		if err != nil {
			t.Errorf("%s: box %s: JSON: %v", jb.src, jb.id, err)
			continue
		}
		var back struct {
			BoxID string `json:"boxId"`
		}
		if err := json.Unmarshal(js, &back); err != nil || back.BoxID != jb.id {
			t.Errorf("%s: box %s: JSON %s", jb.src, jb.id, js)
		}
	}
	t.Logf("%d JSON boxes (%d distinct) verified", len(c.jsonBoxes), len(ids))
}

func TestFixtureTransactions(t *testing.T) {
	c := loadCorpus(t)
	var encodings, txIDs, signBytes, outputs, checkedIDs int
	for _, fx := range c.txs {
		for _, b := range [][]byte{fx.bytes, fx.bytesToSign} {
			if b == nil {
				continue
			}
			encodings++
			r := wire.NewReader(b)
			tx, err := readTestTx(r)
			if err == nil {
				err = r.Done("transaction")
			}
			if err != nil {
				t.Errorf("%s: tx %s: %v", fx.src, fx.id, err)
				continue
			}
			toSign, err := tx.bytesToSign()
			if err != nil {
				t.Errorf("%s: tx %s: %v", fx.src, fx.id, err)
				continue
			}
			if fx.bytesToSign != nil {
				signBytes++
				if !bytes.Equal(toSign, fx.bytesToSign) {
					t.Errorf("%s: tx %s: bytes to sign differ", fx.src, fx.id)
				}
			}
			txID := blake2b.Sum256(toSign)
			if fx.id != "" {
				txIDs++
				if hex.EncodeToString(txID[:]) != fx.id {
					t.Errorf("%s: tx %s: id recomputed as %x", fx.src, fx.id, txID)
				}
			}
			for i := range tx.outputs {
				box := Box{BoxCandidate: tx.outputs[i], TxID: txID, Index: uint16(i)}
				id := box.ID()
				if i < len(fx.outputIDs) && fx.outputIDs[i] != "" {
					checkedIDs++
					if hex.EncodeToString(id[:]) != fx.outputIDs[i] {
						t.Errorf("%s: tx %s: output %d id %x, want %s", fx.src, fx.id, i, id, fx.outputIDs[i])
					}
				}
			}
			outputs += len(tx.outputs)
		}
	}
	t.Logf("%d transactions: %d encodings parsed and re-serialized without proofs (%d compared with the given bytes to sign), "+
		"%d ids recomputed and compared; %d outputs, %d box ids compared with the JSON",
		len(c.txs), encodings, signBytes, txIDs, outputs, checkedIDs)
}

func TestFixtureHeaders(t *testing.T) {
	c := loadCorpus(t)
	for _, h := range c.headers {
		r := wire.NewReader(h.bytes)
		v, err := ReadValue(r, THeader)
		if err == nil {
			err = r.Done("header")
		}
		if err != nil {
			t.Errorf("%s: header %s: %v", h.src, h.id, err)
			continue
		}
		hdr := v.(*Header)
		if id := hdr.ID(); hex.EncodeToString(id[:]) != h.id {
			t.Errorf("%s: header %s: ID() = %x", h.src, h.id, id)
		}
		w := wire.NewWriter(nil)
		if err := WriteValue(w, THeader, hdr); err != nil || !bytes.Equal(w.Bytes(), h.bytes) {
			t.Errorf("%s: header %s: written as %x, %v", h.src, h.id, w.Bytes(), err)
		}
		if _, err := json.Marshal(Constant{Type: THeader, Value: hdr}); err != nil {
			t.Errorf("%s: header %s: JSON: %v", h.src, h.id, err)
		}
	}
	t.Logf("%d serialized headers decoded as Header values", len(c.headers))
}

func TestFixtureKnownRegisterTypes(t *testing.T) {
	it := fixtureItems(t)
	want := map[string]string{
		"1a": "Coll[Coll[Byte]]",
		"59": "(Long, Long)",
		"3c": "(Coll[Byte], Coll[Byte])",
		"63": "Box",
		"64": "AvlTree",
		"0e": "Coll[Byte]",
		"11": "Coll[Long]",
		"08": "SigmaProp",
		"07": "GroupElement",
		"05": "Long",
		"04": "Int",
	}
	seen := map[string]int{}
	for _, h := range sortedKeys(it.registers) {
		prefix := h[:2]
		w, ok := want[prefix]
		if !ok {
			continue
		}
		c, err := ParseConstant(mustHex(t, h))
		if err != nil {
			continue // reported by TestFixtureRegisters
		}
		if got := c.Type.String(); got != w {
			t.Errorf("register %s: type %s, want %s", abbrev(h), got, w)
		}
		seen[prefix]++
	}
	for p := range want {
		if seen[p] == 0 {
			t.Errorf("no register of type code %s in the fixtures", p)
		}
	}
}

func abbrev(h string) string {
	if len(h) > 40 {
		return h[:40] + "…"
	}
	return h
}

// TestFixtureNegativeBoxes checks that the deliberately corrupted boxes do
// not reproduce their stated ids.
func TestFixtureNegativeBoxes(t *testing.T) {
	dec := json.NewDecoder(bytes.NewReader(fixtures.Read(t, "boxes", "NEGATIVE_fleet_invalid_boxes.json")))
	dec.UseNumber()
	var boxes []map[string]any
	if err := dec.Decode(&boxes); err != nil {
		t.Fatal(err)
	}
	for _, o := range boxes {
		jb, err := parseJSONBox("NEGATIVE", o)
		if err != nil {
			continue // corrupted beyond decoding: fine
		}
		if id := jb.box.ID(); hex.EncodeToString(id[:]) == jb.id {
			t.Errorf("corrupted box %s reproduces its id", jb.id)
		}
	}
}
