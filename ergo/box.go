package ergo

import (
	"bytes"
	"errors"
	"sort"

	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/ergo/wire"
)

// Box is an Ergo box as the node describes it: its contents (value,
// ErgoTree, creation height, tokens, registers, creating transaction and
// output index) and the id the node stated for it.
//
// The contents are a sigma.Box, whose ID method derives the id from them;
// BoxID is only what the node claimed, to be checked against that.
//
// Decoding keeps the ErgoTree and the registers as the bytes the node gave
// (the id commits to those bytes). The ErgoTree is checked to be exactly one
// tree as the binary parser delimits it (sigma.CheckErgoTree; a sized tree
// whose body runs on past its bytes, in the box's or the transaction's
// serialization, where the reference may keep it unparsed), and each
// register one value the parser accepts there (a constant or constant-like
// expression whose group elements are curve points), so that what decodes
// from JSON is what a parser of the serialization reads: the id commits to
// bytes, and without these checks a node could state another reading of the
// same bytes (a tree that takes in the fields after it, say).
// (TestBoxTreeIsDelimited)
type Box struct {
	sigma.Box
	BoxID    Digest // the id as given; meaningful only when HasBoxID
	HasBoxID bool
}

// ComputeID derives the box id: Blake2b-256 of the box's serialization.
func (b *Box) ComputeID() Digest { return b.Box.ID() }

// TrustedID is the id the box states when it states one (HasBoxID), which
// a caller that has verified the box may trust, and otherwise the derived
// one.
func (b *Box) TrustedID() Digest {
	if b.HasBoxID {
		return b.BoxID
	}
	return b.ComputeID()
}

// CheckID returns an ErrIDMismatch error when the given id differs from the
// computed one (a box without a given id passes).
func (b *Box) CheckID() error {
	if !b.HasBoxID {
		return nil
	}
	if got := b.ComputeID(); got != b.BoxID {
		return errorf(ErrIDMismatch, "boxId", "given %s, computed %s", b.BoxID, got)
	}
	return nil
}

type boxJSON struct {
	BoxID          jHex                 `json:"boxId"`
	Value          jNum                 `json:"value"`
	ErgoTree       jHex                 `json:"ergoTree"`
	CreationHeight jNum                 `json:"creationHeight"`
	Assets         []assetJSON          `json:"assets"`
	Registers      map[string]jRegister `json:"additionalRegisters"`
	TransactionID  jHex                 `json:"transactionId"`
	Index          jNum                 `json:"index"`
}

type assetJSON struct {
	TokenID jHex `json:"tokenId"`
	Amount  jNum `json:"amount"`
}

// jRegister is a register value: the hex of a serialized constant, or (in
// the node's blockchain API and the explorer) an object holding it as
// "serializedValue".
type jRegister struct {
	jHex
}

func (r *jRegister) UnmarshalJSON(raw []byte) error {
	raw = trimLeftSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var obj struct {
			SerializedValue jHex `json:"serializedValue"`
		}
		if err := unmarshal(raw, &obj); err != nil {
			r.jHex = jHex{set: true, err: &Error{Kind: ErrRegister, Err: err}}
			return nil
		}
		r.jHex = obj.SerializedValue
		if !r.set {
			r.err = errorf(ErrMissingField, "serializedValue", "required")
			r.set = true
		}
		return nil
	}
	return r.jHex.UnmarshalJSON(raw)
}

func trimLeftSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// MaxTokens is the most tokens a box may hold under Ergo's rules.
const MaxTokens = 122

// registerNames are the non-mandatory registers, in order.
var registerNames = [...]string{"R4", "R5", "R6", "R7", "R8", "R9"}

// RegisterName returns "R4" … "R9" for register index 4 … 9.
func RegisterName(i int) string { return registerNames[i-4] }

// candidate converts the box contents shared by boxes and transaction
// outputs. The transaction id and index are left to the caller.
//
// open is set, to the kind of error the value's would be, when the tree or
// a register is one whose end the bytes after it decide, for the caller to
// check in the serialization it belongs to (inContext).
func (j *boxJSON) candidate(c *sigma.BoxCandidate, open *ErrorKind) error {
	var err error
	if c.Value, err = j.Value.uint("value", maxAmount); err != nil {
		if j.Value.err == nil && j.Value.set {
			return errorf(ErrAmount, "value", "%d overflows a signed 64-bit amount", j.Value.v)
		}
		return err
	}
	if c.ErgoTree, err = j.ErgoTree.bytes("ergoTree"); err != nil {
		return err
	}
	if len(c.ErgoTree) == 0 {
		return errorf(ErrBytes, "ergoTree", "empty")
	}
	if err := checkedAlone(sigma.CheckErgoTree(c.ErgoTree), ErrErgoTree, "ergoTree", open); err != nil {
		return err
	}
	h, err := j.CreationHeight.uint("creationHeight", 1<<31-1)
	if err != nil {
		return err
	}
	c.CreationHeight = uint32(h)
	if len(j.Assets) > MaxTokens {
		return errorf(ErrLength, "assets", "%d tokens, at most %d allowed", len(j.Assets), MaxTokens)
	}
	if len(j.Assets) > 0 {
		c.Tokens = make([]sigma.Token, len(j.Assets))
	}
	for i := range j.Assets {
		a, t := &j.Assets[i], &c.Tokens[i]
		if err := a.TokenID.fixed("tokenId", t.ID[:]); err != nil {
			return within(index("assets", i), err)
		}
		if t.Amount, err = a.Amount.amount("amount"); err != nil {
			return within(index("assets", i), err)
		}
	}
	c.Registers, err = registers(j.Registers, open)
	return err
}

// registerFields are the field paths of R4…R9, built once.
var registerFields = func() map[string]string {
	m := make(map[string]string, len(registerNames))
	for _, n := range registerNames {
		m[n] = "additionalRegisters." + n
	}
	return m
}()

// registerField is the field path of a register named name.
func registerField(name string) string {
	if f, ok := registerFields[name]; ok {
		return f
	}
	return "additionalRegisters." + name
}

// registers orders R4…R9 and checks that they are contiguous from R4.
// A value that runs on past its bytes (a box in it whose tree does) sets
// open, as a tree does in candidate.
func registers(m map[string]jRegister, open *ErrorKind) ([][]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([][]byte, 0, len(m))
	for i, name := range names {
		field := registerField(name)
		if len(name) != 2 || name[0] != 'R' || name[1] < '4' || name[1] > '9' {
			if len(name) >= 2 && name[0] == 'R' && isDigits([]byte(name[1:])) {
				return nil, errorf(ErrRegister, field, "registers are R4 to R9")
			}
			return nil, errorf(ErrRegister, field, "unknown register name")
		}
		if want := registerNames[i]; name != want {
			return nil, errorf(ErrRegister, field, "%s is set but %s is not: registers must be contiguous from R4", name, want)
		}
		r := m[name]
		b, err := r.bytes(field)
		if err != nil {
			return nil, err
		}
		if len(b) == 0 {
			return nil, errorf(ErrRegister, field, "empty value")
		}
		if err := checkedAlone(checkRegisterValue(b), ErrRegister, field, open); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// checkRegisterValue checks that b is one register value as the binary
// parser reads it (sigma.ReadRegisterValue): a value with a group element
// that is not a secp256k1 point, say, is refused with sigma.ErrInvalidPoint.
func checkRegisterValue(b []byte) error { return sigma.CheckRegisterValue(b) }

func (j *boxJSON) box(b *Box) error {
	var open ErrorKind
	if err := j.candidate(&b.BoxCandidate, &open); err != nil {
		return err
	}
	var err error
	if b.BoxID, b.HasBoxID, err = j.BoxID.optDigest("boxId"); err != nil {
		return err
	}
	if b.TxID, err = j.TransactionID.digest("transactionId"); err != nil {
		return err
	}
	idx, err := j.Index.uint("index", 1<<16-1)
	if err != nil {
		return err
	}
	b.Index = uint16(idx)
	if open != "" {
		return b.inContext(open)
	}
	return nil
}

// UnmarshalJSON decodes a box in the node's format. Errors are *Error values
// that name the offending field.
func (b *Box) UnmarshalJSON(raw []byte) error {
	var j boxJSON
	if err := unmarshal(raw, &j); err != nil {
		return err
	}
	*b = Box{}
	return j.box(b)
}

// inContext checks a box with a tree or a register that runs on past its
// bytes (see candidate): a parser of the box's serialization must read the
// tree and the registers the node stated.
func (b *Box) inContext(open ErrorKind) error {
	w := wire.NewWriter(nil)
	if err := b.Box.Write(w); err != nil {
		return &Error{Kind: ErrErgoTree, Field: "ergoTree", Err: err}
	}
	parsed, err := sigma.ParseBox(w.Bytes())
	if err != nil {
		return &Error{Kind: open, Detail: "it runs on past its bytes, and the box's serialization does not parse", Err: err}
	}
	return sameReading(&parsed.BoxCandidate, &b.BoxCandidate)
}

// sameReading compares the tree and the registers a parser read (parsed)
// with those the node stated.
func sameReading(parsed, stated *sigma.BoxCandidate) error {
	if !bytes.Equal(parsed.ErgoTree, stated.ErgoTree) {
		return errorf(ErrErgoTree, "ergoTree", "the serialization holds the tree %x", parsed.ErgoTree)
	}
	if len(parsed.Registers) != len(stated.Registers) {
		return errorf(ErrRegister, "additionalRegisters", "the serialization holds %d registers", len(parsed.Registers))
	}
	for i := range stated.Registers {
		if !bytes.Equal(parsed.Registers[i], stated.Registers[i]) {
			return errorf(ErrRegister, registerField(RegisterName(4+i)), "the serialization holds %x", parsed.Registers[i])
		}
	}
	return nil
}

// checkedAlone turns the failure of a value's check (a tree, a register, a
// context variable) into an error of kind at field, but for a value that
// runs out of its bytes: a sized tree in it whose body runs on past them,
// which the reference keeps unparsed, delimited by its size, when the body
// then breaks a rule in the fields after it. Only those fields can settle
// that, so the first such value's kind is recorded in open and nil
// returned, for the caller to read the value where consensus does
// (inContext).
func checkedAlone(err error, kind ErrorKind, field string, open *ErrorKind) *Error {
	if err == nil {
		return nil
	}
	if !errors.Is(err, wire.ErrTruncated) {
		return &Error{Kind: kind, Field: field, Err: err}
	}
	if *open == "" {
		*open = kind
	}
	return nil
}
