package sigma

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/async-emission/auditor/ergo/wire"
	"github.com/async-emission/auditor/internal/fixtures"
	"golang.org/x/crypto/blake2b"
)

// This file gathers, once per test binary, every serialized item of the
// mainnet fixtures that this package decodes: ErgoTrees, register and
// context-extension values, box and header bytes, JSON boxes and
// transaction bytes.

// corpus is what the fixtures hold, each item keyed by its hex encoding
// and mapped to the first place it was seen.
type corpus struct {
	trees      map[string]string
	registers  map[string]string
	extensions map[string]string
	boxBytes   []boxBytesFixture
	jsonBoxes  []jsonBox
	headers    []headerFixture
	txs        []txFixture
}

type boxBytesFixture struct {
	src      string
	id       string
	bytes    []byte
	ergoTree string // "" when the fixture does not give it
}

type headerFixture struct {
	src   string
	id    string
	bytes []byte
}

type txFixture struct {
	src         string
	id          string // "" when unknown
	bytes       []byte
	bytesToSign []byte   // nil when not given
	outputIDs   []string // box ids from the JSON form, when given
}

// jsonBox is a box in the node's JSON format.
type jsonBox struct {
	src       string
	id        string
	box       Box
	registers []string // hex, R4 first
}

var (
	corpusOnce   sync.Once
	corpusCached *corpus
	corpusErr    error
)

// loadCorpus returns the fixture corpus, failing the test when the fixtures
// are absent.
func loadCorpus(t testing.TB) *corpus {
	t.Helper()
	dir, names := fixtures.Dir(t), fixtures.Files(t)
	corpusOnce.Do(func() { corpusCached, corpusErr = buildCorpus(dir, names) })
	if corpusErr != nil {
		t.Fatalf("load fixtures: %v", corpusErr)
	}
	return corpusCached
}

// buildCorpus reads the .json fixtures among names (sorted, relative to
// dir).
func buildCorpus(dir string, names []string) (*corpus, error) {
	c := &corpus{
		trees:      map[string]string{},
		registers:  map[string]string{},
		extensions: map[string]string{},
	}
	for _, rel := range names {
		if !strings.HasSuffix(rel, ".json") || strings.Contains(rel, "NEGATIVE") {
			continue // NEGATIVE: deliberately corrupted boxes
		}
		raw, err := fixtures.Load(dir, rel)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var doc any
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		if err := c.walk(rel, doc); err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
	}
	return c, nil
}

func (c *corpus) walk(src string, v any) error {
	switch v := v.(type) {
	case []any:
		for _, it := range v {
			if err := c.walk(src, it); err != nil {
				return err
			}
		}
	case map[string]any:
		if err := c.visit(src, v); err != nil {
			return err
		}
		for _, it := range v {
			if err := c.walk(src, it); err != nil {
				return err
			}
		}
	}
	return nil
}

// visit records what one JSON object holds.
func (c *corpus) visit(src string, o map[string]any) error {
	if s, ok := o["ergoTree"].(string); ok {
		addOnce(c.trees, s, src)
	}
	if regs, ok := o["additionalRegisters"].(map[string]any); ok {
		for _, r := range regs {
			if s, ok := r.(string); ok {
				addOnce(c.registers, s, src)
			}
		}
	}
	if sp, ok := o["spendingProof"].(map[string]any); ok {
		if ext, ok := sp["extension"].(map[string]any); ok {
			for _, e := range ext {
				if s, ok := e.(string); ok {
					addOnce(c.extensions, s, src)
				}
			}
		}
	}
	if _, ok := o["boxId"].(string); ok {
		if _, hasTree := o["ergoTree"]; hasTree {
			if _, hasTx := o["transactionId"]; hasTx {
				b, err := parseJSONBox(src, o)
				if err != nil {
					return err
				}
				c.jsonBoxes = append(c.jsonBoxes, b)
			}
		}
	}
	top, _, _ := strings.Cut(src, "/")
	bytesHex, hasBytes := o["bytes"].(string)
	switch {
	case hasBytes && o["boxId"] != nil:
		b, err := hex.DecodeString(bytesHex)
		if err != nil {
			return err
		}
		tree, _ := o["ergoTree"].(string)
		c.boxBytes = append(c.boxBytes, boxBytesFixture{src: src, id: o["boxId"].(string), bytes: b, ergoTree: tree})
	case hasBytes && top == "headers":
		b, err := hex.DecodeString(bytesHex)
		if err != nil {
			return err
		}
		id, _ := o["id"].(string)
		c.headers = append(c.headers, headerFixture{src: src, id: id, bytes: b})
	case hasBytes && (top == "transactions" || top == "blocks"):
		tx := txFixture{src: src}
		var err error
		if tx.bytes, err = hex.DecodeString(bytesHex); err != nil {
			return err
		}
		if s, ok := o["bytesToSign"].(string); ok {
			if tx.bytesToSign, err = hex.DecodeString(s); err != nil {
				return err
			}
		}
		tx.id, _ = o["id"].(string)
		if id, ok := o["txId"].(string); ok {
			tx.id = id
		}
		if js, ok := o["scalaJson"].(map[string]any); ok {
			tx.outputIDs = outputIDs(js)
		}
		c.txs = append(c.txs, tx)
	case o["hex"] != nil && o["json"] != nil:
		b, err := hex.DecodeString(o["hex"].(string))
		if err != nil {
			return err
		}
		js, _ := o["json"].(map[string]any)
		if id, ok := js["boxId"].(string); ok {
			tree, _ := js["ergoTree"].(string)
			c.boxBytes = append(c.boxBytes, boxBytesFixture{src: src, id: id, bytes: b, ergoTree: tree})
		} else {
			id, _ := js["id"].(string)
			c.txs = append(c.txs, txFixture{src: src, id: id, bytes: b, outputIDs: outputIDs(js)})
		}
	}
	return nil
}

func addOnce(m map[string]string, k, src string) {
	if _, ok := m[k]; !ok {
		m[k] = src
	}
}

func outputIDs(tx map[string]any) []string {
	outs, _ := tx["outputs"].([]any)
	ids := make([]string, len(outs))
	for i, o := range outs {
		m, _ := o.(map[string]any)
		ids[i], _ = m["boxId"].(string)
	}
	return ids
}

// parseJSONBox builds a Box from its node JSON form.
func parseJSONBox(src string, o map[string]any) (jsonBox, error) {
	jb := jsonBox{src: src, id: o["boxId"].(string)}
	b := &jb.box
	var err error
	fail := func(field string, e error) (jsonBox, error) {
		return jb, fmt.Errorf("box %s: %s: %w", jb.id, field, e)
	}
	if b.Value, err = jsonUint(o["value"], 64); err != nil {
		return fail("value", err)
	}
	if b.ErgoTree, err = hex.DecodeString(o["ergoTree"].(string)); err != nil {
		return fail("ergoTree", err)
	}
	h, err := jsonUint(o["creationHeight"], 32)
	if err != nil {
		return fail("creationHeight", err)
	}
	b.CreationHeight = uint32(h)
	txID, err := hex.DecodeString(o["transactionId"].(string))
	if err != nil || len(txID) != 32 {
		return fail("transactionId", fmt.Errorf("bad id %v", err))
	}
	copy(b.TxID[:], txID)
	idx, err := jsonUint(o["index"], 16)
	if err != nil {
		return fail("index", err)
	}
	b.Index = uint16(idx)
	assets, _ := o["assets"].([]any)
	for _, a := range assets {
		am, _ := a.(map[string]any)
		var tok Token
		id, err := hex.DecodeString(fmt.Sprint(am["tokenId"]))
		if err != nil || len(id) != 32 {
			return fail("tokenId", fmt.Errorf("bad id %v", err))
		}
		copy(tok.ID[:], id)
		if tok.Amount, err = jsonUint(am["amount"], 64); err != nil {
			return fail("amount", err)
		}
		b.Tokens = append(b.Tokens, tok)
	}
	regs, _ := o["additionalRegisters"].(map[string]any)
	for i := range MaxRegisters {
		s, ok := regs["R"+strconv.Itoa(firstRegister+i)].(string)
		if !ok {
			break
		}
		raw, err := hex.DecodeString(s)
		if err != nil {
			return fail("register", err)
		}
		b.Registers = append(b.Registers, raw)
		jb.registers = append(jb.registers, s)
	}
	return jb, nil
}

// jsonUint reads a number that fixtures write either as a JSON number or as
// a decimal string.
func jsonUint(v any, bits int) (uint64, error) {
	switch v := v.(type) {
	case json.Number:
		return strconv.ParseUint(v.String(), 10, bits)
	case string:
		return strconv.ParseUint(v, 10, bits)
	}
	return 0, fmt.Errorf("%v (%T) is not a number", v, v)
}

// testTx is a transaction as the reference ErgoLikeTransactionSerializer
// lays it out; tests use it to reach the boxes and context extensions inside
// transaction bytes.
type testTx struct {
	inputs     []testInput
	dataInputs [][32]byte
	tokens     [][32]byte
	outputs    []BoxCandidate
}

type testInput struct {
	boxID     [32]byte
	proof     []byte
	extension []extensionEntry
}

type extensionEntry struct {
	id    byte
	value []byte
}

func readTestTx(r *wire.Reader) (*testTx, error) {
	tx := new(testTx)
	n, err := r.U16("input count")
	if err != nil {
		return nil, err
	}
	for range n {
		var in testInput
		if in.boxID, err = r.Digest32("input box id"); err != nil {
			return nil, err
		}
		pl, err := r.U16("proof length")
		if err != nil {
			return nil, err
		}
		if in.proof, err = r.Fixed(int(pl), "proof"); err != nil {
			return nil, err
		}
		ne, err := r.Byte("extension size")
		if err != nil {
			return nil, err
		}
		for range ne {
			var e extensionEntry
			if e.id, err = r.Byte("extension key"); err != nil {
				return nil, err
			}
			if e.value, err = ReadRegisterValue(r); err != nil {
				return nil, fmt.Errorf("extension value %d: %w", e.id, err)
			}
			in.extension = append(in.extension, e)
		}
		tx.inputs = append(tx.inputs, in)
	}
	if n, err = r.U16("data input count"); err != nil {
		return nil, err
	}
	for range n {
		id, err := r.Digest32("data input")
		if err != nil {
			return nil, err
		}
		tx.dataInputs = append(tx.dataInputs, id)
	}
	nt, err := r.Count(maxInt32, 32, "token count")
	if err != nil {
		return nil, err
	}
	tx.tokens = make([][32]byte, nt)
	for i := range tx.tokens {
		if tx.tokens[i], err = r.Digest32("token id"); err != nil {
			return nil, err
		}
	}
	if n, err = r.U16("output count"); err != nil {
		return nil, err
	}
	for i := range int(n) {
		out, err := ReadBoxCandidate(r, tx.tokens)
		if err != nil {
			return nil, fmt.Errorf("output %d: %w", i, err)
		}
		tx.outputs = append(tx.outputs, out)
	}
	return tx, nil
}

// bytesToSign re-serializes the transaction without proofs; its blake2b256
// is the transaction id.
func (tx *testTx) bytesToSign() ([]byte, error) {
	w := wire.NewWriter(nil)
	w.U16(uint16(len(tx.inputs)))
	for _, in := range tx.inputs {
		w.Write(in.boxID[:])
		w.U16(0)
		w.Byte(byte(len(in.extension)))
		for _, e := range in.extension {
			w.Byte(e.id)
			w.Write(e.value)
		}
	}
	w.U16(uint16(len(tx.dataInputs)))
	for _, id := range tx.dataInputs {
		w.Write(id[:])
	}
	w.U32(uint32(len(tx.tokens)))
	index := make(map[[32]byte]uint32, len(tx.tokens))
	for i, id := range tx.tokens {
		w.Write(id[:])
		index[id] = uint32(i)
	}
	w.U16(uint16(len(tx.outputs)))
	for i := range tx.outputs {
		if err := tx.outputs[i].Write(w, index); err != nil {
			return nil, err
		}
	}
	return w.Bytes(), nil
}

func (tx *testTx) id() ([32]byte, error) {
	b, err := tx.bytesToSign()
	if err != nil {
		return [32]byte{}, err
	}
	return blake2b.Sum256(b), nil
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}
