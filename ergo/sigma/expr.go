package sigma

import (
	"github.com/async-emission/auditor/ergo/wire"
)

// This file consumes serialized ErgoTree expressions. It builds no AST: it
// reads exactly the bytes the reference ValueSerializer would and checks
// what the reference checks while parsing (opcodes, types, constants,
// nesting, structural casts). It does not type-check.

// peek returns the next byte without consuming it.
func peek(r *wire.Reader, what string) (byte, error) {
	if r.Len() == 0 {
		return r.Byte(what) // reports the truncation
	}
	return r.Bytes()[r.Pos()], nil
}

// readExpr consumes one expression. Like the reference, each expression
// counts one nesting level.
func (d *decoder) readExpr() error {
	if err := d.enter("expression"); err != nil {
		return err
	}
	err := d.readExprBody()
	d.leave()
	return err
}

func (d *decoder) readExprBody() error {
	r := d.r
	start := r.Pos()
	c, err := peek(r, "opcode")
	if err != nil {
		return err
	}
	if c <= lastConstantCode {
		_, err := d.readConstantBody()
		return err
	}
	_ = r.Skip(1, "opcode") // peeked above
	spec := &ops[c]
	if spec.read == nil {
		return failAt(ErrUnknownOpcode, start, "expression", "opcode 0x%02x", c)
	}
	return spec.read(d)
}

// exprs returns a reader of n operand expressions.
func exprs(n int) operandReader {
	return func(d *decoder) error {
		for range n {
			if err := d.readExpr(); err != nil {
				return err
			}
		}
		return nil
	}
}

// exprList reads a VLQ count and that many expressions (putValues).
func exprList(d *decoder) error {
	n, err := d.r.Count(maxInt32, 1, "expression count")
	if err != nil {
		return err
	}
	return exprs(n)(d)
}

// readRelation reads a comparison or binary boolean operation. Two boolean
// constant operands are packed as ConcreteCollectionBooleanConstant's opcode
// followed by one byte of two bits.
func readRelation(d *decoder) error {
	c, err := peek(d.r, "relation operand")
	if err != nil {
		return err
	}
	if c == opConcreteCollectionBool {
		_, err := d.r.Fixed(2, "packed boolean operands")
		return err
	}
	return exprs(2)(d)
}

// readNumericCast reads Upcast or Downcast: the input and a numeric type.
func readNumericCast(d *decoder) error {
	if err := d.readExpr(); err != nil {
		return err
	}
	off := d.r.Pos()
	t, err := ReadType(d.r)
	if err != nil {
		return err
	}
	switch t {
	case TByte, TShort, TInt, TLong, TBigInt, TUnsignedBigInt:
		return nil
	}
	return invalidAt(off, "numeric cast", "%s is not a numeric type", t)
}

// readVarRef reads TaggedVariable or GetVar: a variable id and a type.
func readVarRef(d *decoder) error {
	if _, err := d.r.Byte("variable id"); err != nil {
		return err
	}
	_, err := ReadType(d.r)
	return err
}

func readValUse(d *decoder) error {
	_, err := d.r.U32("ValUse id")
	return err
}

func readConstantPlaceholder(d *decoder) error {
	off := d.r.Pos()
	id, err := readUIntExact(d.r, "constant placeholder index")
	if err != nil {
		return err
	}
	if int(id) >= d.consts {
		return invalidAt(off, "constant placeholder", "index %d of %d segregated constants", id, d.consts)
	}
	return nil
}

func readConcreteCollection(d *decoder) error {
	n, err := d.r.Count(maxCollLength, 1, "collection size")
	if err != nil {
		return err
	}
	if _, err := ReadType(d.r); err != nil {
		return err
	}
	return exprs(n)(d)
}

func readBoolCollection(d *decoder) error {
	n, err := d.r.Count(maxCollLength, 0, "boolean collection size")
	if err != nil {
		return err
	}
	_, err = d.r.Fixed((n+7)/8, "boolean collection bits")
	return err
}

// readTupleExpr reads a Tuple: a signed item count byte and the items.
func readTupleExpr(d *decoder) error {
	off := d.r.Pos()
	n, err := d.r.Byte("tuple size")
	if err != nil {
		return err
	}
	if n > 127 {
		return invalidAt(off, "tuple", "negative size %d", int8(n))
	}
	return exprs(int(n))(d)
}

func readSelectField(d *decoder) error {
	if err := d.readExpr(); err != nil {
		return err
	}
	_, err := d.r.Byte("field index")
	return err
}

// readOptional reads the flag of an optional operand and, when set, the
// operand.
func readOptional(d *decoder, what string) error {
	flag, err := d.r.Byte(what)
	if err != nil || flag == 0 {
		return err
	}
	return d.readExpr()
}

func readByIndex(d *decoder) error {
	if err := exprs(2)(d); err != nil {
		return err
	}
	return readOptional(d, "ByIndex default flag")
}

// readRegisterID reads a register number, R0 to R9.
func readRegisterID(d *decoder) error {
	off := d.r.Pos()
	id, err := d.r.Byte("register id")
	if err != nil {
		return err
	}
	if id > 9 {
		return invalidAt(off, "register id", "R%d does not exist", int8(id))
	}
	return nil
}

func readExtractRegisterAs(d *decoder) error {
	if err := d.readExpr(); err != nil {
		return err
	}
	if err := readRegisterID(d); err != nil {
		return err
	}
	_, err := ReadType(d.r)
	return err
}

func readDeserializeContext(d *decoder) error {
	if _, err := ReadType(d.r); err != nil {
		return err
	}
	_, err := d.r.Byte("context variable id")
	return err
}

func readDeserializeRegister(d *decoder) error {
	if err := readRegisterID(d); err != nil {
		return err
	}
	if _, err := ReadType(d.r); err != nil {
		return err
	}
	return readOptional(d, "DeserializeRegister default flag")
}

// readDefID reads the id of a ValDef or FunDef.
func readDefID(d *decoder) error {
	_, err := readUIntExact(d.r, "definition id")
	return err
}

func readValDef(d *decoder) error {
	if err := readDefID(d); err != nil {
		return err
	}
	return d.readExpr()
}

func readFunDef(d *decoder) error {
	if err := readDefID(d); err != nil {
		return err
	}
	off := d.r.Pos()
	n, err := d.r.Byte("type argument count")
	if err != nil {
		return err
	}
	if n > 127 {
		return invalidAt(off, "FunDef", "negative type argument count %d", int8(n))
	}
	for range n {
		off := d.r.Pos()
		t, err := ReadType(d.r)
		if err != nil {
			return err
		}
		if _, ok := t.(TypeVar); !ok {
			return invalidAt(off, "FunDef type argument", "%s is not a type variable", t)
		}
	}
	return d.readExpr()
}

// readBlockValue reads a block: its definitions (each a ValDef or FunDef)
// and the result expression.
func readBlockValue(d *decoder) error {
	n, err := d.r.Count(maxInt32, 3, "block item count")
	if err != nil {
		return err
	}
	for range n {
		off := d.r.Pos()
		c, err := peek(d.r, "block item")
		if err != nil {
			return err
		}
		if c != opValDef && c != opFunDef {
			return invalidAt(off, "block item", "%s is not a definition", opName(c))
		}
		if err := d.readExpr(); err != nil {
			return err
		}
	}
	return d.readExpr()
}

// readFuncValue reads a lambda: its arguments (id and type) and the body.
func readFuncValue(d *decoder) error {
	n, err := d.r.Count(maxInt32, 2, "function argument count")
	if err != nil {
		return err
	}
	for range n {
		if _, err := d.r.U32("function argument id"); err != nil {
			return err
		}
		if _, err := ReadType(d.r); err != nil {
			return err
		}
	}
	return d.readExpr()
}

func readApply(d *decoder) error {
	if err := d.readExpr(); err != nil {
		return err
	}
	return exprList(d)
}

// readMethodIDs reads the type and method ids of a method or property call.
func readMethodIDs(d *decoder) (typeID, methodID byte, err error) {
	ids, err := d.r.Fixed(2, "method ids")
	if err != nil {
		return 0, 0, err
	}
	return ids[0], ids[1], nil
}

// readTypeArgs reads the explicit type arguments that some ErgoTree v3
// methods carry after their operands.
func readTypeArgs(d *decoder, typeID, methodID byte) error {
	for range explicitTypeArgs(typeID, methodID) {
		if _, err := ReadType(d.r); err != nil {
			return err
		}
	}
	return nil
}

func readPropertyCall(d *decoder) error {
	typeID, methodID, err := readMethodIDs(d)
	if err != nil {
		return err
	}
	if err := d.readExpr(); err != nil {
		return err
	}
	return readTypeArgs(d, typeID, methodID)
}

func readMethodCall(d *decoder) error {
	typeID, methodID, err := readMethodIDs(d)
	if err != nil {
		return err
	}
	if err := d.readExpr(); err != nil {
		return err
	}
	if err := exprList(d); err != nil {
		return err
	}
	return readTypeArgs(d, typeID, methodID)
}
