package sigma

import (
	"github.com/async-emission/auditor/ergo/wire"
)

// maxLevel is the reference deserializer's limit on nesting
// (SigmaConstants.MaxTreeDepth). Like the reference, one counter is shared
// by expressions, data values, sigma propositions and boxes nested in
// registers, so the limit applies to their combined depth.
const maxLevel = 110

// decoder threads the state that the reference SigmaByteReader carries
// through a parse.
type decoder struct {
	r *wire.Reader
	// level is the current nesting depth (SigmaByteReader.level).
	level int
	// consts is the number of segregated constants of the ErgoTree whose
	// body is being read: the valid range of ConstantPlaceholder indices.
	consts int
	// check is set when the values read are only checked, never kept:
	// they may then alias the input instead of copying it.
	check bool
}

func newDecoder(r *wire.Reader) *decoder { return &decoder{r: r} }

// enter increments the nesting level, failing past maxLevel.
func (d *decoder) enter(what string) error {
	if d.level >= maxLevel {
		return failAt(ErrDepth, d.r.Pos(), what, "nested deeper than %d", maxLevel)
	}
	d.level++
	return nil
}

func (d *decoder) leave() { d.level-- }

// maxInt32 bounds counts and indices read with the reference getUIntExact,
// which fails for values that do not fit a JVM Int.
const maxInt32 = 1<<31 - 1

// readUIntExact reads a putUInt value as the reference getUIntExact does:
// one that does not fit a JVM Int is an error.
func readUIntExact(r *wire.Reader, what string) (uint32, error) {
	off := r.Pos()
	v, err := r.U32(what)
	if err == nil && v > maxInt32 {
		return 0, invalidAt(off, what, "%d does not fit an Int", v)
	}
	return v, err
}
