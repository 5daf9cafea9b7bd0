package sigma

import (
	"bytes"

	"github.com/async-emission/auditor/ergo/wire"
)

// Box registers and context-extension variables are read by the reference as
// expressions that must be "evaluated values": a constant, or one of the
// constant-like nodes TrueLeaf, FalseLeaf, GroupGenerator, Tuple,
// ConcreteCollection and ConcreteCollectionBooleanConstant. Writers emit
// constants, but the other forms are valid on chain and this package
// accepts them.

// isEvaluatedOpcode reports whether an expression starting with byte c is
// accepted as a register or context-extension value.
func isEvaluatedOpcode(c byte) bool {
	if c <= lastConstantCode {
		return true
	}
	switch c {
	case opTrue, opFalse, opGroupGenerator, opConcreteCollection, opConcreteCollectionBool, opTuple:
		return true
	}
	return false
}

// ReadRegisterValue consumes one register or context-extension value and
// returns its bytes (a copy). The value is a constant or a constant-like
// expression; DecodeRegisterValue reduces it to a Constant.
func ReadRegisterValue(r *wire.Reader) ([]byte, error) {
	return newDecoder(r).readRegisterValue()
}

func (d *decoder) readRegisterValue() ([]byte, error) {
	start := d.r.Pos()
	c, err := peek(d.r, "register value")
	if err != nil {
		return nil, err
	}
	if !isEvaluatedOpcode(c) {
		return nil, failAt(ErrNotConstant, start, "register value", "%s is not a constant", opName(c))
	}
	if err := d.readExpr(); err != nil {
		return nil, err
	}
	return bytes.Clone(d.r.Since(start)), nil
}

// CheckRegisterValue checks that b is exactly one register or
// context-extension value as ReadRegisterValue reads it (a constant whose
// group elements are curve points, say), without keeping what it reads.
func CheckRegisterValue(b []byte) error {
	d := newDecoder(wire.NewReader(b))
	d.check = true
	start := d.r.Pos()
	c, err := peek(d.r, "register value")
	if err != nil {
		return err
	}
	if !isEvaluatedOpcode(c) {
		return failAt(ErrNotConstant, start, "register value", "%s is not a constant", opName(c))
	}
	if err := d.readExpr(); err != nil {
		return err
	}
	return d.r.Done("register value")
}

// DecodeRegisterValue decodes a register or context-extension value that
// must span all of b. A constant decodes as ParseConstant does; a
// constant-like expression is reduced to the constant it denotes (a
// ConcreteCollection of constants becomes a collection constant, and so
// on), which fails with ErrNotConstant when an item is not itself constant.
func DecodeRegisterValue(b []byte) (Constant, error) {
	d := newDecoder(wire.NewReader(b))
	c, err := d.evalValue()
	if err == nil {
		err = d.r.Done("register value")
	}
	if err != nil {
		return Constant{}, err
	}
	return c, nil
}

// evalValue reads one evaluated-value expression and returns its constant.
func (d *decoder) evalValue() (Constant, error) {
	if err := d.enter("expression"); err != nil {
		return Constant{}, err
	}
	defer d.leave()
	r := d.r
	start := r.Pos()
	c, err := peek(r, "value")
	if err != nil {
		return Constant{}, err
	}
	if c <= lastConstantCode {
		return d.readConstantBody()
	}
	_ = r.Skip(1, "opcode") // peeked above
	switch c {
	case opTrue:
		return Constant{Type: TBoolean, Value: true}, nil
	case opFalse:
		return Constant{Type: TBoolean, Value: false}, nil
	case opGroupGenerator:
		return Constant{Type: TGroupElement, Value: generator}, nil
	case opConcreteCollectionBool:
		n, err := d.r.Count(maxCollLength, 0, "boolean collection size")
		if err != nil {
			return Constant{}, err
		}
		packed, err := r.Fixed((n+7)/8, "boolean collection bits")
		if err != nil {
			return Constant{}, err
		}
		return Constant{Type: CollOf(TBoolean), Value: unpackBits(packed, n)}, nil
	case opConcreteCollection:
		return d.evalCollection()
	case opTuple:
		off := r.Pos()
		n, err := r.Byte("tuple size")
		if err != nil {
			return Constant{}, err
		}
		if n > 127 {
			return Constant{}, invalidAt(off, "tuple", "negative size %d", int8(n))
		}
		types := make([]Type, n)
		items := make(Tuple, n)
		for i := range items {
			item, err := d.evalValue()
			if err != nil {
				return Constant{}, err
			}
			types[i], items[i] = item.Type, item.Value
		}
		return Constant{Type: TupleOf(types...), Value: items}, nil
	}
	if ops[c].read != nil {
		return Constant{}, failAt(ErrNotConstant, start, "value", "%s is not a constant", opName(c))
	}
	return Constant{}, failAt(ErrUnknownOpcode, start, "value", "opcode 0x%02x", c)
}

// evalCollection reduces a ConcreteCollection whose items are constants.
func (d *decoder) evalCollection() (Constant, error) {
	r := d.r
	n, err := d.r.Count(maxCollLength, 1, "collection size")
	if err != nil {
		return Constant{}, err
	}
	elem, err := ReadType(r)
	if err != nil {
		return Constant{}, err
	}
	var (
		byteItems []byte
		boolItems []bool
		items     []Value
	)
	switch elem {
	case TByte:
		byteItems = make([]byte, 0, n)
	case TBoolean:
		boolItems = make([]bool, 0, n)
	default:
		items = make([]Value, 0, n)
	}
	for range n {
		off := r.Pos()
		item, err := d.evalValue()
		if err != nil {
			return Constant{}, err
		}
		if !TypeEqual(item.Type, elem) {
			return Constant{}, invalidAt(off, "collection item", "%s item in a Coll[%s]", item.Type, elem)
		}
		switch elem {
		case TByte:
			b, _ := item.Value.(int8) // an item of type Byte holds an int8
			byteItems = append(byteItems, byte(b))
		case TBoolean:
			b, _ := item.Value.(bool)
			boolItems = append(boolItems, b)
		default:
			items = append(items, item.Value)
		}
	}
	t := CollOf(elem)
	switch elem {
	case TByte:
		return Constant{Type: t, Value: byteItems}, nil
	case TBoolean:
		return Constant{Type: t, Value: boolItems}, nil
	}
	return Constant{Type: t, Value: items}, nil
}
