package sigma

import (
	"github.com/async-emission/auditor/ergo/wire"
)

// Type codes of the serialization format (TypeSerializer in the reference
// implementation). Codes below tupleCode pack a type constructor and an
// embeddable primitive into one byte: constructor*12 + primitive, where
// primitive 0 means "the argument type follows".
const (
	primRange       = 12 // MaxPrimTypeCode + 1
	collCode        = 1 * primRange
	nestedCollCode  = 2 * primRange
	optionCode      = 3 * primRange
	optionCollCode  = 4 * primRange
	pair1Code       = 5 * primRange // (prim, T); 60 alone: (T1, T2)
	pair2Code       = 6 * primRange // (T, prim); 72 alone: (T1, T2, T3)
	pairSymCode     = 7 * primRange // (prim, prim); 84 alone: (T1, T2, T3, T4)
	tupleCode       = 8 * primRange // 96: length byte, then the items
	typeVarCode     = 103
	funcCode        = 112 // ErgoTree v3 function types
	tripleTypeCode  = pair2Code
	quadrupleTypeCd = pairSymCode
)

// maxTypeDepth bounds the nesting of types. The reference reader has no
// limit of its own beyond the JVM stack; this one is deep enough that no
// type fitting in a box (4096 bytes) is refused, and shallow enough to keep
// recursion cheap.
const maxTypeDepth = 4096

// ReadType reads one serialized type.
func ReadType(r *wire.Reader) (Type, error) {
	return readType(r, 0)
}

func readType(r *wire.Reader, depth int) (Type, error) {
	if depth >= maxTypeDepth {
		return nil, failAt(ErrDepth, r.Pos(), "type", "nested deeper than %d", maxTypeDepth)
	}
	start := r.Pos()
	c, err := r.Byte("type code")
	if err != nil {
		return nil, err
	}
	if c == 0 {
		return nil, failAt(ErrUnknownType, start, "type", "type code 0")
	}
	if c < tupleCode {
		cons, prim := c/primRange, c%primRange
		// arg reads the constructor's argument: the packed primitive, or a
		// full type when the primitive slot is 0.
		arg := func() (Type, error) {
			if prim == 0 {
				return readType(r, depth+1)
			}
			return embeddable(prim, start)
		}
		switch cons {
		case 0:
			return embeddable(prim, start)
		case 1:
			elem, err := arg()
			if err != nil {
				return nil, err
			}
			return CollOf(elem), nil
		case 2:
			elem, err := arg()
			if err != nil {
				return nil, err
			}
			return CollOf(CollOf(elem)), nil
		case 3:
			elem, err := arg()
			if err != nil {
				return nil, err
			}
			return OptionOf(elem), nil
		case 4:
			elem, err := arg()
			if err != nil {
				return nil, err
			}
			return OptionOf(CollOf(elem)), nil
		case 5: // (prim, T), or (T1, T2) when prim is 0
			if prim == 0 {
				return readTuple(r, 2, depth)
			}
			t1, err := embeddable(prim, start)
			if err != nil {
				return nil, err
			}
			t2, err := readType(r, depth+1)
			if err != nil {
				return nil, err
			}
			return TupleOf(t1, t2), nil
		case 6: // (T, prim), or a triple when prim is 0
			if prim == 0 {
				return readTuple(r, 3, depth)
			}
			t2, err := embeddable(prim, start)
			if err != nil {
				return nil, err
			}
			t1, err := readType(r, depth+1)
			if err != nil {
				return nil, err
			}
			return TupleOf(t1, t2), nil
		default: // 7: (prim, prim), or a quadruple when prim is 0
			if prim == 0 {
				return readTuple(r, 4, depth)
			}
			t, err := embeddable(prim, start)
			if err != nil {
				return nil, err
			}
			return TupleOf(t, t), nil
		}
	}
	switch c {
	case tupleCode:
		n, err := r.Byte("tuple length")
		if err != nil {
			return nil, err
		}
		return readTuple(r, int(n), depth)
	case typeVarCode:
		n, err := r.Byte("type variable name length")
		if err != nil {
			return nil, err
		}
		name, err := r.Fixed(int(n), "type variable name")
		if err != nil {
			return nil, err
		}
		return TypeVar(name), nil
	case funcCode:
		return readFuncType(r, depth)
	}
	if p := PrimType(c); p.valid() {
		return p, nil
	}
	return nil, failAt(ErrUnknownType, start, "type", "type code %d", c)
}

// embeddable returns the primitive type packed in a type byte.
func embeddable(code byte, off int) (Type, error) {
	if p := PrimType(code); p.embeddable() {
		return p, nil
	}
	return nil, failAt(ErrUnknownType, off, "type", "primitive type code %d", code)
}

func readTuple(r *wire.Reader, n, depth int) (Type, error) {
	items := make([]Type, n) // n <= 255
	for i := range items {
		t, err := readType(r, depth+1)
		if err != nil {
			return nil, err
		}
		items[i] = t
	}
	return TupleOf(items...), nil
}

func readFuncType(r *wire.Reader, depth int) (Type, error) {
	n, err := r.Byte("function domain length")
	if err != nil {
		return nil, err
	}
	dom := make([]Type, n)
	for i := range dom {
		if dom[i], err = readType(r, depth+1); err != nil {
			return nil, err
		}
	}
	rng, err := readType(r, depth+1)
	if err != nil {
		return nil, err
	}
	np, err := r.Byte("function type parameter count")
	if err != nil {
		return nil, err
	}
	params := make([]TypeVar, np)
	for i := range params {
		off := r.Pos()
		t, err := readType(r, depth+1)
		if err != nil {
			return nil, err
		}
		v, ok := t.(TypeVar)
		if !ok {
			return nil, failAt(ErrUnknownType, off, "function type parameter", "%s is not a type variable", t)
		}
		params[i] = v
	}
	return &FuncType{Dom: dom, Range: rng, TypeParams: params}, nil
}

// WriteType appends the canonical (shortest) encoding of t, the one the
// reference writer produces. It fails only for malformed types: nil
// components, tuples with more than 255 items, type-variable names or
// function signatures longer than 255.
func WriteType(w *wire.Writer, t Type) error {
	return writeType(w, t, 0)
}

func writeType(w *wire.Writer, t Type, depth int) error {
	if depth >= maxTypeDepth {
		return writeErr("type", "nested deeper than %d", maxTypeDepth)
	}
	switch t := t.(type) {
	case PrimType:
		if !t.valid() {
			return writeErr("type", "unknown primitive type %d", byte(t))
		}
		w.Byte(byte(t))
		return nil
	case *CollType:
		if t == nil {
			break
		}
		if p, ok := t.Elem.(PrimType); ok && p.embeddable() {
			w.Byte(collCode + byte(p))
			return nil
		}
		if inner, ok := t.Elem.(*CollType); ok && inner != nil {
			if p, ok := inner.Elem.(PrimType); ok && p.embeddable() {
				w.Byte(nestedCollCode + byte(p))
				return nil
			}
		}
		w.Byte(collCode)
		return writeType(w, t.Elem, depth+1)
	case *OptionType:
		if t == nil {
			break
		}
		if p, ok := t.Elem.(PrimType); ok && p.embeddable() {
			w.Byte(optionCode + byte(p))
			return nil
		}
		if inner, ok := t.Elem.(*CollType); ok && inner != nil {
			if p, ok := inner.Elem.(PrimType); ok && p.embeddable() {
				w.Byte(optionCollCode + byte(p))
				return nil
			}
		}
		w.Byte(optionCode)
		return writeType(w, t.Elem, depth+1)
	case *TupleType:
		if t == nil {
			break
		}
		return writeTupleType(w, t.Items, depth)
	case *FuncType:
		if t == nil {
			break
		}
		if len(t.Dom) > 255 || len(t.TypeParams) > 255 {
			return writeErr("function type", "%d arguments and %d type parameters exceed 255", len(t.Dom), len(t.TypeParams))
		}
		w.Byte(funcCode)
		w.Byte(byte(len(t.Dom)))
		for _, d := range t.Dom {
			if err := writeType(w, d, depth+1); err != nil {
				return err
			}
		}
		if err := writeType(w, t.Range, depth+1); err != nil {
			return err
		}
		w.Byte(byte(len(t.TypeParams)))
		for _, p := range t.TypeParams {
			if err := writeType(w, p, depth+1); err != nil {
				return err
			}
		}
		return nil
	case TypeVar:
		if len(t) > 255 {
			return writeErr("type variable", "name of %d bytes exceeds 255", len(t))
		}
		w.Byte(typeVarCode)
		w.Byte(byte(len(t)))
		w.Write([]byte(t))
		return nil
	}
	return writeErr("type", "%T is not a type", t)
}

func writeTupleType(w *wire.Writer, items []Type, depth int) error {
	if len(items) == 2 {
		t1, t2 := items[0], items[1]
		p1, ok1 := t1.(PrimType)
		ok1 = ok1 && p1.embeddable()
		p2, ok2 := t2.(PrimType)
		ok2 = ok2 && p2.embeddable()
		switch {
		case ok1 && ok2 && p1 == p2:
			w.Byte(pairSymCode + byte(p1))
			return nil
		case ok1:
			w.Byte(pair1Code + byte(p1))
			return writeType(w, t2, depth+1)
		case ok2:
			w.Byte(pair2Code + byte(p2))
			return writeType(w, t1, depth+1)
		}
		w.Byte(pair1Code)
	} else {
		switch n := len(items); {
		case n == 3:
			w.Byte(tripleTypeCode)
		case n == 4:
			w.Byte(quadrupleTypeCd)
		case n <= 255:
			w.Byte(tupleCode)
			w.Byte(byte(n))
		default:
			return writeErr("tuple type", "%d items exceed 255", n)
		}
	}
	for _, it := range items {
		if err := writeType(w, it, depth+1); err != nil {
			return err
		}
	}
	return nil
}
