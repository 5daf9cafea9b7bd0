package sigma

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"hash/maphash"
	"sync/atomic"

	"github.com/async-emission/auditor/ergo/wire"
)

// ErgoTree header bits.
const (
	treeVersionMask     = 0x07
	treeSizeFlag        = 0x08
	treeSegregationFlag = 0x10
)

// ErgoTree is a parsed ErgoTree: the serialized guarding script of a box.
type ErgoTree struct {
	// Bytes is the tree's serialization, verbatim.
	Bytes []byte
	// Header is the first byte: the version (bits 0-2) and the flags.
	// Bits 5 to 7 are kept as read; the reference ignores them.
	Header              byte
	Version             uint8
	HasSize             bool
	ConstantSegregation bool
	// Constants are the segregated constants, which ConstantPlaceholder
	// nodes of the root expression refer to by index.
	Constants []Constant
	// Template is the root expression's serialization: the tree without
	// its header, size and constants. It is nil when the constants section
	// could not be parsed.
	Template []byte
	// RootErr is set when the body did not parse. Only a tree with the size
	// flag can be unparsed (the reference keeps it as an UnparsedErgoTree
	// and the box stays valid); the declared size then delimits it.
	RootErr error
}

// ReadErgoTree reads exactly one ErgoTree.
//
// The body (constants and root expression) of a tree with the size flag is
// read like the reference reads it: from the input, not from the declared
// size. When it parses, the tree ends where its root expression ends, even
// if that differs from the declared size (the reference does not compare
// them). When it does not, the tree is returned with RootErr set, spanning
// the declared size, and no error. A tree without the size flag whose body
// does not parse is an error: its end cannot be known. So is a body that runs
// out of input, with or without the flag.
func ReadErgoTree(r *wire.Reader) (*ErgoTree, error) {
	return newDecoder(r).readErgoTree()
}

// ParseErgoTree reads an ErgoTree that must span all of b.
func ParseErgoTree(b []byte) (*ErgoTree, error) {
	r := wire.NewReader(b)
	t, err := ReadErgoTree(r)
	if err == nil {
		err = r.Done("ErgoTree")
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// CheckErgoTree checks that b is exactly one ErgoTree as ReadErgoTree reads
// it (an unparsed sized tree included), without keeping what it reads. It is
// the check that bytes given as a box's tree are the tree a parser reading
// the box would delimit: that its fields after the tree are not read into
// it, nor it into them. A sized tree whose body runs out of its bytes fails
// with wire.ErrTruncated, though the reference may keep it unparsed in a
// box whose next fields make the body break a rule: whether it does, only
// those fields tell (ergo checks such a tree in its transaction's bytes).
//
// The answer depends on the bytes alone, and trees recur (a contract's
// boxes, a wallet's outputs, the miner fee), so the trees that passed are
// remembered: a tree byte for byte equal to one of them passes at the cost
// of a comparison.
func CheckErgoTree(b []byte) error {
	slot := &checkedTrees[maphash.Bytes(checkedSeed, b)%uint64(len(checkedTrees))]
	if p := slot.Load(); p != nil && *p == string(b) {
		return nil
	}
	d := newDecoder(wire.NewReader(b))
	d.check = true
	if _, err := d.readErgoTree(); err != nil {
		return err
	}
	if err := d.r.Done("ErgoTree"); err != nil {
		return err
	}
	if len(b) <= maxCheckedTree {
		t := string(b)
		slot.Store(&t)
	}
	return nil
}

// checkedTrees remembers trees CheckErgoTree accepted, one per slot, so that
// a hit is an exact match; trees longer than maxCheckedTree are checked each
// time, which bounds the memory to 4 MiB.
var (
	checkedTrees [1 << 12]atomic.Pointer[string]
	checkedSeed  = maphash.MakeSeed()
)

const maxCheckedTree = 1024

// TemplateHash returns sha256 of the template, the hash by which explorers
// and indexers group trees that differ only in their constants.
func (t *ErgoTree) TemplateHash() ([32]byte, error) {
	if t.Template == nil {
		return [32]byte{}, errors.New("ErgoTree template unknown: the constants section did not parse")
	}
	return sha256.Sum256(t.Template), nil
}

func (d *decoder) readErgoTree() (*ErgoTree, error) {
	r := d.r
	start := r.Pos()
	h, err := r.Byte("ErgoTree header")
	if err != nil {
		return nil, err
	}
	t := &ErgoTree{
		Header:              h,
		Version:             h & treeVersionMask,
		HasSize:             h&treeSizeFlag != 0,
		ConstantSegregation: h&treeSegregationFlag != 0,
	}
	if t.Version != 0 && !t.HasSize {
		// CheckHeaderSizeBit, enforced before the body is read.
		return nil, invalidAt(start, "ErgoTree header", "version %d requires the size flag (header 0x%02x)", t.Version, h)
	}
	var size uint32
	if t.HasSize {
		if size, err = r.U32("ErgoTree size"); err != nil {
			return nil, err
		}
	}
	bodyStart := r.Pos()

	// The body is read through a reader of its own so that an unparsed
	// tree can be delimited by its declared size afterwards.
	body := wire.NewReader(r.Bytes())
	_ = body.Skip(bodyStart, "ErgoTree body") // within r's bytes
	saved := d.r
	d.r = body
	consts, templateStart, err := d.readTreeBody(t.ConstantSegregation)
	d.r = saved
	buf := r.Bytes()
	clone := bytes.Clone
	if d.check {
		clone = func(b []byte) []byte { return b }
	}

	if err == nil {
		_ = r.Skip(body.Pos()-bodyStart, "ErgoTree body") // within r's bytes
		t.Bytes = clone(buf[start:body.Pos()])
		t.Constants = consts
		t.Template = clone(buf[templateStart:body.Pos()])
		return t, nil
	}
	// Only a body that breaks a rule is kept unparsed. One that runs out of
	// input is an error even with the size flag: the reference reader fails
	// there (not a validation error), and inside a box or a transaction the
	// body would have been read on into the fields that follow the tree, so
	// the declared size could not say where the tree ends.
	if !t.HasSize || size > maxInt32 || errors.Is(err, wire.ErrTruncated) {
		return nil, err
	}
	if err := r.Skip(int(size), "ErgoTree body"); err != nil {
		return nil, err
	}
	end := r.Pos()
	t.Bytes = clone(buf[start:end])
	t.RootErr = err
	if templateStart >= 0 && templateStart <= end {
		t.Constants = consts
		t.Template = clone(buf[templateStart:end])
	}
	return t, nil
}

// readTreeBody reads the constants section and the root expression. It
// returns the constants and the offset where the root expression starts, or
// -1 when the constants section failed.
func (d *decoder) readTreeBody(segregated bool) ([]Constant, int, error) {
	consts, n, err := d.readConstants(segregated)
	if err != nil {
		return nil, -1, err
	}
	templateStart := d.r.Pos()
	saved := d.consts
	d.consts = n
	err = d.readExpr()
	d.consts = saved
	return consts, templateStart, err
}

// readConstants reads the segregated constants section (nothing when the
// tree does not segregate its constants) and returns the constants and their
// number. A decoder that only checks keeps none: it returns the number alone.
func (d *decoder) readConstants(segregated bool) ([]Constant, int, error) {
	if !segregated {
		return nil, 0, nil
	}
	r := d.r
	off := r.Pos()
	n, err := r.U32("ErgoTree constant count")
	if err != nil {
		return nil, 0, err
	}
	// The reference converts the count to a JVM Int; a count that
	// overflows it is negative and reads as no constants.
	if n > maxInt32 {
		n = 0
	}
	if uint64(n) > uint64(r.Len()) {
		return nil, 0, wire.Errorf(wire.ErrTruncated, off, "ErgoTree constants",
			"%d constants cannot fit in the %d bytes left", n, r.Len())
	}
	if d.check {
		for range n {
			if _, err := d.readConstantBody(); err != nil {
				return nil, 0, err
			}
		}
		return nil, int(n), nil
	}
	var consts []Constant
	if n > 0 {
		consts = make([]Constant, n)
	}
	for i := range consts {
		if consts[i], err = d.readConstantBody(); err != nil {
			return nil, 0, err
		}
	}
	return consts, int(n), nil
}

// TemplateHashOf returns the template hash of a complete serialized tree:
// sha256 of its template (TemplateOf), the hash the explorer uses and the
// one the auditor stores.
func TemplateHashOf(tree []byte) ([32]byte, error) {
	t, err := TemplateOf(tree)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(t), nil
}

// TemplateOf returns the template of a complete serialized tree: everything
// after its header, size and constants (a subslice of tree). It reads only
// those: unlike ParseErgoTree it does not parse the root expression, which
// is needed to find where a tree ends inside other bytes but not to take
// the template of a tree given whole. For every tree ParseErgoTree accepts,
// the two agree.
func TemplateOf(tree []byte) ([]byte, error) {
	r := wire.NewReader(tree)
	h, err := r.Byte("ErgoTree header")
	if err != nil {
		return nil, err
	}
	if h&treeVersionMask != 0 && h&treeSizeFlag == 0 {
		return nil, invalidAt(0, "ErgoTree header", "version %d requires the size flag (header 0x%02x)", h&treeVersionMask, h)
	}
	if h&treeSizeFlag != 0 {
		if _, err := r.U32("ErgoTree size"); err != nil {
			return nil, err
		}
	}
	d := newDecoder(r)
	d.check = true // skipped, not kept
	if _, _, err := d.readConstants(h&treeSegregationFlag != 0); err != nil {
		return nil, err
	}
	return tree[r.Pos():], nil
}
