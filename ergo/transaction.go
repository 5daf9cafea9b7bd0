package ergo

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"

	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/ergo/wire"
)

// Transaction is a signed Ergo transaction as the node describes it.
type Transaction struct {
	ID         Digest // the id as given; meaningful only when HasID
	HasID      bool
	Inputs     []Input
	DataInputs []Digest // ids of the boxes read, not spent
	Outputs    []Box    // each with TxID and Index set (as given, or derived)
}

// Input spends a box. Proof is the spending proof; Extension holds the
// context variables given to the box's script, in the order the node gave
// them (which is the serialized order, and so part of the id).
type Input struct {
	BoxID     Digest
	Proof     []byte
	Extension []ContextVar
}

// ContextVar is one context-extension variable: an id and the serialized
// sigma constant (type and value) assigned to it.
type ContextVar struct {
	Key   byte
	Value []byte
}

// Limits of Ergo's transaction format.
const (
	maxInputs  = 1<<15 - 1 // Short.MaxValue
	maxOutputs = 1<<15 - 1
)

// BytesToSign is the serialization every input's proof signs: the signed
// serialization with empty proofs. The transaction id is its hash.
//
// A transaction decoded by this package is always within the format's
// limits. One built by hand with an output beyond them (more than 255
// tokens or 6 registers) has no serialization: BytesToSign and Bytes are
// nil and ComputeID is the zero digest, which no stated id matches.
func (tx *Transaction) BytesToSign() []byte { return tx.appendBytes(nil, false) }

// Bytes is the full (signed) serialization, proofs included (nil for a
// transaction beyond the format's limits, see BytesToSign).
func (tx *Transaction) Bytes() []byte { return tx.appendBytes(nil, true) }

// ComputeID derives the transaction id: Blake2b-256 of BytesToSign (the
// zero digest for a transaction beyond the format's limits).
func (tx *Transaction) ComputeID() Digest {
	b := tx.BytesToSign()
	if b == nil {
		return Digest{}
	}
	return Hash(b)
}

// TrustedID is the id the transaction states when it states one (HasID),
// which a caller that has verified the transaction may trust, and
// otherwise the derived one.
func (tx *Transaction) TrustedID() Digest {
	if tx.HasID {
		return tx.ID
	}
	return tx.ComputeID()
}

// WitnessID commits to the transaction's witnesses (input proofs) in a v2+
// block's transactions root: Blake2b-256 of the concatenated proofs without
// its first byte. The 31-byte length keeps witness ids distinct from the
// 32-byte transaction ids that share the tree.
func (tx *Transaction) WitnessID() [31]byte {
	var n int
	for i := range tx.Inputs {
		n += len(tx.Inputs[i].Proof)
	}
	buf := make([]byte, 0, n)
	for i := range tx.Inputs {
		buf = append(buf, tx.Inputs[i].Proof...)
	}
	h := Hash(buf)
	return [31]byte(h[1:])
}

// TokenIDs returns the distinct token ids of the outputs in order of first
// appearance: the table that output tokens are serialized against.
func (tx *Transaction) TokenIDs() [][32]byte {
	ids, _ := tx.tokenTable()
	return ids
}

func (tx *Transaction) tokenTable() ([][32]byte, map[[32]byte]uint32) {
	var ids [][32]byte
	index := make(map[[32]byte]uint32)
	for i := range tx.Outputs {
		for _, t := range tx.Outputs[i].Tokens {
			if _, ok := index[t.ID]; !ok {
				index[t.ID] = uint32(len(ids))
				ids = append(ids, t.ID)
			}
		}
	}
	return ids, index
}

func (tx *Transaction) appendBytes(buf []byte, withProofs bool) []byte {
	w := wire.NewWriter(buf)
	w.U16(uint16(len(tx.Inputs)))
	for i := range tx.Inputs {
		in := &tx.Inputs[i]
		w.Write(in.BoxID[:])
		if withProofs {
			w.U16(uint16(len(in.Proof)))
			w.Write(in.Proof)
		} else {
			w.U16(0)
		}
		w.Byte(byte(len(in.Extension)))
		for _, v := range in.Extension {
			w.Byte(v.Key)
			w.Write(v.Value)
		}
	}
	w.U16(uint16(len(tx.DataInputs)))
	for i := range tx.DataInputs {
		w.Write(tx.DataInputs[i][:])
	}
	ids, index := tx.tokenTable()
	w.U32(uint32(len(ids)))
	for _, id := range ids {
		w.Write(id[:])
	}
	w.U16(uint16(len(tx.Outputs)))
	for i := range tx.Outputs {
		if err := tx.Outputs[i].BoxCandidate.Write(w, index); err != nil {
			return nil
		}
	}
	return w.Bytes()
}

// CheckIDs verifies the transaction id and, for every output, its link to
// the transaction (transactionId and index) and its box id.
func (tx *Transaction) CheckIDs() error { return tx.checkIDs(tx.ComputeID()) }

// checkIDs is CheckIDs with the transaction id already derived. It reports
// every problem: a wrong transaction id, and each output whose box id does
// not match its contents. An output's link to the transaction is checked
// only when the transaction id itself verified, since a wrong id would
// break every link at once.
func (tx *Transaction) checkIDs(id Digest) error {
	var errs []error
	idOK := !tx.HasID || id == tx.ID
	if !idOK {
		errs = append(errs, errorf(ErrIDMismatch, "id", "given %s, computed %s", tx.ID, id))
	}
	for i := range tx.Outputs {
		out := &tx.Outputs[i]
		if idOK && Digest(out.TxID) != id {
			errs = append(errs, errorf(ErrLink, index("outputs", i)+".transactionId", "box names transaction %s, it is in %s", Digest(out.TxID), id))
		}
		if int(out.Index) != i {
			errs = append(errs, errorf(ErrLink, index("outputs", i)+".index", "box says index %d, it is output %d", out.Index, i))
		}
		if err := out.CheckID(); err != nil {
			errs = append(errs, within(index("outputs", i), err))
		}
	}
	return errors.Join(errs...)
}

type txJSON struct {
	ID         jHex            `json:"id"`
	Inputs     []inputJSON     `json:"inputs"`
	DataInputs []dataInputJSON `json:"dataInputs"`
	Outputs    []boxJSON       `json:"outputs"`
}

type inputJSON struct {
	BoxID         jHex       `json:"boxId"`
	SpendingProof *proofJSON `json:"spendingProof"`
}

type proofJSON struct {
	ProofBytes jHex       `json:"proofBytes"`
	Extension  jExtension `json:"extension"`
}

type dataInputJSON struct {
	BoxID jHex `json:"boxId"`
}

// jExtension is a context extension: a JSON object from decimal variable ids
// to hex constants. Its key order is kept, because it is serialized in that
// order and so determines the transaction id.
type jExtension struct {
	vars []ContextVar
	open ErrorKind // ErrExtension when a value runs on past its bytes (see checkedAlone)
	err  *Error
}

func (e *jExtension) UnmarshalJSON(raw []byte) error {
	*e = jExtension{}
	raw = bytes.TrimSpace(raw)
	if bytes.Equal(raw, jsonNull) || bytes.Equal(raw, []byte("{}")) {
		return nil
	}
	vars, err := parseExtension(raw, &e.open)
	if err != nil {
		e.err = err
	}
	e.vars = vars
	return nil
}

// parseExtension reads {"<id>":"<hex>",...} in order. The decoder has already
// checked that raw is well-formed JSON; this only accepts the shape a context
// extension can have. A value that runs on past its bytes (a box in it
// whose tree does) is recorded in open (checkedAlone).
func parseExtension(raw []byte, open *ErrorKind) ([]ContextVar, *Error) {
	var out []ContextVar
	seen := [256]bool{}
	p := jsonScanner{b: raw}
	if !p.consume('{') {
		return nil, errorf(ErrExtension, "", "expected an object")
	}
	if p.consume('}') {
		return nil, nil
	}
	for {
		key, ok := p.str()
		if !ok || !p.consume(':') {
			return nil, errorf(ErrExtension, "", "expected \"<id>\": \"<hex>\" entries")
		}
		id, err := strconv.ParseUint(string(key), 10, 8)
		if err != nil {
			return nil, errorf(ErrExtension, string(key), "variable id must be 0..255")
		}
		if seen[id] {
			return nil, errorf(ErrExtension, string(key), "duplicate variable id")
		}
		seen[id] = true
		val, ok := p.str()
		if !ok {
			return nil, errorf(ErrExtension, string(key), "expected a hex string")
		}
		b := make([]byte, hex.DecodedLen(len(val)))
		if _, err := hex.Decode(b, val); err != nil {
			return nil, &Error{Kind: ErrHex, Field: string(key), Err: err}
		}
		if len(b) == 0 {
			return nil, errorf(ErrExtension, string(key), "empty value")
		}
		if err := checkedAlone(checkContextValue(b), ErrExtension, string(key), open); err != nil {
			return nil, err
		}
		out = append(out, ContextVar{Key: byte(id), Value: b})
		if len(out) > 255 {
			return nil, errorf(ErrExtension, "", "more than 255 variables")
		}
		if p.consume('}') {
			return out, nil
		}
		if !p.consume(',') {
			return nil, errorf(ErrExtension, "", "expected ',' or '}'")
		}
	}
}

// checkContextValue checks that b is one constant as the binary parser reads
// a context variable (sigma.ReadConstant), so that a transaction decoded
// from JSON parses from its serialization too.
func checkContextValue(b []byte) error {
	r := wire.NewReader(b)
	if _, err := sigma.ReadConstant(r); err != nil {
		return err
	}
	return r.Done("context variable")
}

// jsonScanner reads the few tokens a context extension is made of.
type jsonScanner struct {
	b []byte
	i int
}

func (p *jsonScanner) skipSpace() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\n' || p.b[p.i] == '\t' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *jsonScanner) consume(c byte) bool {
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes (ids and hex never need them).
func (p *jsonScanner) str() ([]byte, bool) {
	if !p.consume('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) && p.b[p.i] != '"' {
		if p.b[p.i] == '\\' {
			return nil, false
		}
		p.i++
	}
	if p.i >= len(p.b) {
		return nil, false
	}
	p.i++
	return p.b[start : p.i-1], true
}

func (j *txJSON) transaction(tx *Transaction) error {
	var err error
	if tx.ID, tx.HasID, err = j.ID.optDigest("id"); err != nil {
		return err
	}
	if j.Inputs == nil {
		return errorf(ErrMissingField, "inputs", "required")
	}
	if len(j.Inputs) == 0 || len(j.Inputs) > maxInputs {
		return errorf(ErrLength, "inputs", "a transaction has 1 to %d inputs, got %d", maxInputs, len(j.Inputs))
	}
	tx.Inputs = make([]Input, len(j.Inputs))
	var open ErrorKind
	for i := range j.Inputs {
		if err := j.Inputs[i].input(&tx.Inputs[i]); err != nil {
			return within(index("inputs", i), err) // the path is built only for an error
		}
		if open == "" {
			open = j.Inputs[i].SpendingProof.Extension.open
		}
	}
	if len(j.DataInputs) > maxInputs {
		return errorf(ErrLength, "dataInputs", "at most %d, got %d", maxInputs, len(j.DataInputs))
	}
	if len(j.DataInputs) > 0 {
		tx.DataInputs = make([]Digest, len(j.DataInputs))
	}
	for i := range j.DataInputs {
		if tx.DataInputs[i], err = j.DataInputs[i].BoxID.digest("boxId"); err != nil {
			return within(index("dataInputs", i), err)
		}
	}
	if j.Outputs == nil {
		return errorf(ErrMissingField, "outputs", "required")
	}
	if len(j.Outputs) == 0 || len(j.Outputs) > maxOutputs {
		return errorf(ErrLength, "outputs", "a transaction has 1 to %d outputs, got %d", maxOutputs, len(j.Outputs))
	}
	tx.Outputs = make([]Box, len(j.Outputs))
	for i := range j.Outputs {
		out, jout := &tx.Outputs[i], &j.Outputs[i]
		if err := jout.candidate(&out.BoxCandidate, &open); err != nil {
			return within(index("outputs", i), err)
		}
		if out.BoxID, out.HasBoxID, err = jout.BoxID.optDigest("boxId"); err != nil {
			return within(index("outputs", i), err)
		}
	}
	// Outputs are linked to the transaction by its id and their position.
	// Where the node stated them, CheckIDs compares; where it did not, they
	// are derived.
	var id Digest
	derived := false
	for i := range j.Outputs {
		out, jout := &tx.Outputs[i], &j.Outputs[i]
		txid, given, err := jout.TransactionID.optDigest("transactionId")
		if err != nil {
			return within(index("outputs", i), err)
		}
		if !given {
			if !derived {
				id, derived = tx.ComputeID(), true
			}
			txid = id
		}
		out.TxID = txid
		out.Index = uint16(i)
		if jout.Index.set || jout.Index.err != nil {
			idx, err := jout.Index.uint("index", 1<<16-1)
			if err != nil {
				return within(index("outputs", i), err)
			}
			out.Index = uint16(idx)
		}
	}
	if open != "" {
		return tx.inContext(open)
	}
	return nil
}

// inContext checks a transaction with a tree, a register or a context
// variable that runs on past its bytes (see boxJSON.candidate and
// parseExtension): a parser of the transaction's serialization, which is
// what consensus reads, must read every output's tree and registers and
// every input's variables as the node stated them.
func (tx *Transaction) inContext(open ErrorKind) error {
	parsed, err := ParseTransaction(tx.Bytes())
	if err != nil {
		return &Error{Kind: open, Detail: "a value runs on past its bytes, and the transaction's serialization does not parse", Err: err}
	}
	if len(parsed.Inputs) != len(tx.Inputs) || len(parsed.Outputs) != len(tx.Outputs) {
		return errorf(open, "", "a value runs on past its bytes, and the transaction's serialization holds %d inputs and %d outputs", len(parsed.Inputs), len(parsed.Outputs))
	}
	for i := range tx.Inputs {
		if !slices.EqualFunc(parsed.Inputs[i].Extension, tx.Inputs[i].Extension, func(a, b ContextVar) bool {
			return a.Key == b.Key && bytes.Equal(a.Value, b.Value)
		}) {
			return within(index("inputs", i), errorf(ErrExtension, "spendingProof.extension", "the transaction's serialization holds other variables"))
		}
	}
	for i := range tx.Outputs {
		if err := sameReading(&parsed.Outputs[i].BoxCandidate, &tx.Outputs[i].BoxCandidate); err != nil {
			return within(index("outputs", i), err)
		}
	}
	return nil
}

// input decodes one input; error paths are relative to it.
func (jin *inputJSON) input(in *Input) error {
	var err error
	if in.BoxID, err = jin.BoxID.digest("boxId"); err != nil {
		return err
	}
	if jin.SpendingProof == nil {
		return errorf(ErrMissingField, "spendingProof", "required")
	}
	if in.Proof, err = jin.SpendingProof.ProofBytes.bytes("spendingProof.proofBytes"); err != nil {
		return err
	}
	if len(in.Proof) > 1<<16-1 {
		return errorf(ErrLength, "spendingProof.proofBytes", "%d bytes, at most 65535", len(in.Proof))
	}
	if e := jin.SpendingProof.Extension.err; e != nil {
		return within("spendingProof.extension", e)
	}
	in.Extension = jin.SpendingProof.Extension.vars
	return nil
}

// UnmarshalJSON decodes a transaction in the node's format. Errors are
// *Error values that name the offending field.
func (tx *Transaction) UnmarshalJSON(raw []byte) error {
	var j txJSON
	if err := unmarshal(raw, &j); err != nil {
		return err
	}
	*tx = Transaction{}
	return j.transaction(tx)
}

// ParseTransaction decodes a signed transaction from its serialized bytes,
// deriving its id and its outputs' links.
func ParseTransaction(b []byte) (*Transaction, error) {
	r := wire.NewReader(b)
	tx, err := readTransaction(r)
	if err == nil {
		err = r.Done("transaction")
	}
	if err != nil {
		return nil, &Error{Kind: ErrBytes, Err: err}
	}
	return tx, nil
}

func readTransaction(r *wire.Reader) (*Transaction, error) {
	tx := &Transaction{}
	n, err := r.Count(maxInputs, 32+1+1, "input count")
	if err != nil {
		return nil, err
	}
	tx.Inputs = make([]Input, n)
	for i := range tx.Inputs {
		in := &tx.Inputs[i]
		if in.BoxID, err = r.Digest32("input box id"); err != nil {
			return nil, err
		}
		plen, err := r.U16("proof length")
		if err != nil {
			return nil, err
		}
		if in.Proof, err = r.Fixed(int(plen), "proof"); err != nil {
			return nil, err
		}
		nvars, err := r.Byte("context extension size")
		if err != nil {
			return nil, err
		}
		in.Extension = make([]ContextVar, nvars)
		for k := range in.Extension {
			if in.Extension[k].Key, err = r.Byte("context variable id"); err != nil {
				return nil, err
			}
			start := r.Pos()
			if _, err := sigma.ReadConstant(r); err != nil {
				return nil, err
			}
			in.Extension[k].Value = r.Since(start)
		}
	}
	if n, err = r.Count(maxInputs, 32, "data input count"); err != nil {
		return nil, err
	}
	if n > 0 {
		tx.DataInputs = make([]Digest, n)
	}
	for i := range tx.DataInputs {
		if tx.DataInputs[i], err = r.Digest32("data input box id"); err != nil {
			return nil, err
		}
	}
	if n, err = r.Count(1<<31-1, 32, "token count"); err != nil {
		return nil, err
	}
	ids := make([][32]byte, n)
	for i := range ids {
		if ids[i], err = r.Digest32("token id"); err != nil {
			return nil, err
		}
	}
	if n, err = r.Count(maxOutputs, 4, "output count"); err != nil {
		return nil, err
	}
	tx.Outputs = make([]Box, n)
	for i := range tx.Outputs {
		if tx.Outputs[i].BoxCandidate, err = sigma.ReadBoxCandidate(r, ids); err != nil {
			return nil, err
		}
	}
	id := tx.ComputeID()
	tx.ID, tx.HasID = id, true
	for i := range tx.Outputs {
		tx.Outputs[i].TxID = id
		tx.Outputs[i].Index = uint16(i)
	}
	return tx, nil
}
