package sigma

import (
	"github.com/async-emission/auditor/ergo/wire"
)

// Constant is a typed data value: the serialized form of registers,
// context-extension values and the segregated constants of an ErgoTree.
type Constant struct {
	Type  Type
	Value Value
}

// ReadConstant reads a constant: its type, then its value.
func ReadConstant(r *wire.Reader) (Constant, error) {
	d := newDecoder(r)
	// A constant read in place of a value expression (a register, a
	// context variable) counts one level before its data, as in the
	// reference.
	if err := d.enter("constant"); err != nil {
		return Constant{}, err
	}
	return d.readConstantBody()
}

// ParseConstant reads a constant that must span all of b.
func ParseConstant(b []byte) (Constant, error) {
	r := wire.NewReader(b)
	c, err := ReadConstant(r)
	if err == nil {
		err = r.Done("constant")
	}
	if err != nil {
		return Constant{}, err
	}
	return c, nil
}

// readConstantBody reads a type and a value of that type.
func (d *decoder) readConstantBody() (Constant, error) {
	t, err := ReadType(d.r)
	if err != nil {
		return Constant{}, err
	}
	v, err := d.readValue(t)
	if err != nil {
		return Constant{}, err
	}
	return Constant{Type: t, Value: v}, nil
}

// WriteConstant appends the serialization of c: its type in canonical form,
// then its value.
func WriteConstant(w *wire.Writer, c Constant) error {
	if err := WriteType(w, c.Type); err != nil {
		return err
	}
	return WriteValue(w, c.Type, c.Value)
}

// Bytes returns the serialization of c, e.g. the content of a register.
func (c Constant) Bytes() ([]byte, error) {
	w := wire.NewWriter(nil)
	if err := WriteConstant(w, c); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// String renders the constant as its JSON form.
func (c Constant) String() string {
	b, err := c.MarshalJSON()
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}
