package sigma

import (
	"github.com/async-emission/auditor/ergo/wire"
)

// SigmaBoolean is the value of a SigmaProp: a tree of sigma-protocol
// statements. Its dynamic type is one of TrivialProp, ProveDlog,
// ProveDHTuple, CAnd, COr or CThreshold.
type SigmaBoolean interface{ isSigmaBoolean() }

// TrivialProp is the proposition that is always (true) or never (false)
// proven.
type TrivialProp bool

// ProveDlog is knowledge of the discrete logarithm of H: a public key.
type ProveDlog struct{ H GroupElement }

// ProveDHTuple is knowledge of x with U = G^x and V = H^x.
type ProveDHTuple struct{ G, H, U, V GroupElement }

// CAnd holds when all of its children do.
type CAnd struct{ Children []SigmaBoolean }

// COr holds when any of its children does.
type COr struct{ Children []SigmaBoolean }

// CThreshold holds when at least K of its children do.
type CThreshold struct {
	K        uint16
	Children []SigmaBoolean
}

func (TrivialProp) isSigmaBoolean()  {}
func (ProveDlog) isSigmaBoolean()    {}
func (ProveDHTuple) isSigmaBoolean() {}
func (CAnd) isSigmaBoolean()         {}
func (COr) isSigmaBoolean()          {}
func (CThreshold) isSigmaBoolean()   {}

// Opcodes that tag the nodes of a serialized SigmaBoolean; they coincide with
// the expression opcodes of the corresponding ErgoTree operations.
const (
	sbAnd          = opAnd
	sbOr           = opOr
	sbAtLeast      = opAtLeast
	sbProveDlog    = opProveDlog
	sbProveDHTuple = opProveDHTuple
	sbFalse        = 0xd2 // TrivialPropFalseCode
	sbTrue         = 0xd3 // TrivialPropTrueCode
)

// maxThresholdChildren is the reference limit on the children of a
// threshold (its polynomial arithmetic works over bytes).
const maxThresholdChildren = 255

// readSigmaBoolean reads a SigmaBoolean tree; every node counts one nesting
// level, as in the reference serializer.
func (d *decoder) readSigmaBoolean() (SigmaBoolean, error) {
	if err := d.enter("sigma proposition"); err != nil {
		return nil, err
	}
	defer d.leave()
	start := d.r.Pos()
	op, err := d.r.Byte("sigma proposition opcode")
	if err != nil {
		return nil, err
	}
	switch op {
	case sbTrue:
		return TrivialProp(true), nil
	case sbFalse:
		return TrivialProp(false), nil
	case sbProveDlog:
		h, err := readGroupElement(d.r, "proveDlog h")
		return ProveDlog{H: h}, err
	case sbProveDHTuple:
		var t ProveDHTuple
		for _, f := range []struct {
			p    *GroupElement
			name string
		}{{&t.G, "proveDHTuple g"}, {&t.H, "proveDHTuple h"}, {&t.U, "proveDHTuple u"}, {&t.V, "proveDHTuple v"}} {
			if *f.p, err = readGroupElement(d.r, f.name); err != nil {
				return nil, err
			}
		}
		return t, nil
	case sbAnd, sbOr:
		children, err := d.readSigmaChildren()
		if err != nil {
			return nil, err
		}
		if op == sbAnd {
			return CAnd{Children: children}, nil
		}
		return COr{Children: children}, nil
	case sbAtLeast:
		k, err := d.r.U16("threshold k")
		if err != nil {
			return nil, err
		}
		children, err := d.readSigmaChildren()
		if err != nil {
			return nil, err
		}
		if len(children) > maxThresholdChildren || int(k) > len(children) {
			return nil, invalidAt(start, "threshold", "k=%d of %d children", k, len(children))
		}
		return CThreshold{K: k, Children: children}, nil
	}
	return nil, failAt(ErrUnknownOpcode, start, "sigma proposition", "opcode 0x%02x", op)
}

func (d *decoder) readSigmaChildren() ([]SigmaBoolean, error) {
	n, err := d.r.Count(0xffff, 1, "sigma proposition children")
	if err != nil {
		return nil, err
	}
	children := make([]SigmaBoolean, n)
	for i := range children {
		if children[i], err = d.readSigmaBoolean(); err != nil {
			return nil, err
		}
	}
	return children, nil
}

// writeSigmaBoolean appends the serialization of sb.
func writeSigmaBoolean(w *wire.Writer, sb SigmaBoolean, depth int) error {
	if depth >= maxLevel {
		return writeErr("sigma proposition", "nested deeper than %d", maxLevel)
	}
	switch sb := sb.(type) {
	case TrivialProp:
		if sb {
			w.Byte(sbTrue)
		} else {
			w.Byte(sbFalse)
		}
	case ProveDlog:
		w.Byte(sbProveDlog)
		w.Write(sb.H[:])
	case ProveDHTuple:
		w.Byte(sbProveDHTuple)
		for _, g := range []GroupElement{sb.G, sb.H, sb.U, sb.V} {
			w.Write(g[:])
		}
	case CAnd:
		w.Byte(sbAnd)
		return writeSigmaChildren(w, sb.Children, depth)
	case COr:
		w.Byte(sbOr)
		return writeSigmaChildren(w, sb.Children, depth)
	case CThreshold:
		if len(sb.Children) > maxThresholdChildren || int(sb.K) > len(sb.Children) {
			return writeErr("threshold", "k=%d of %d children", sb.K, len(sb.Children))
		}
		w.Byte(sbAtLeast)
		w.U16(sb.K)
		return writeSigmaChildren(w, sb.Children, depth)
	default:
		return writeErr("sigma proposition", "%T is not a SigmaBoolean", sb)
	}
	return nil
}

func writeSigmaChildren(w *wire.Writer, children []SigmaBoolean, depth int) error {
	if len(children) > 0xffff {
		return writeErr("sigma proposition", "%d children exceed 65535", len(children))
	}
	w.U16(uint16(len(children)))
	for _, c := range children {
		if err := writeSigmaBoolean(w, c, depth+1); err != nil {
			return err
		}
	}
	return nil
}
