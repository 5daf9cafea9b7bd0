package sigma

import "fmt"

// Expression opcodes (OpCodes in the reference implementation). Bytes 1 to
// lastConstantCode begin an inline constant (its type code); the operations
// use the codes above it.
const (
	lastConstantCode = 112

	opTaggedVariable         = 0x71
	opValUse                 = 0x72
	opConstantPlaceholder    = 0x73
	opSubstConstants         = 0x74
	opLongToByteArray        = 0x7a
	opByteArrayToBigInt      = 0x7b
	opByteArrayToLong        = 0x7c
	opDowncast               = 0x7d
	opUpcast                 = 0x7e
	opTrue                   = 0x7f
	opFalse                  = 0x80
	opUnitConstant           = 0x81 // reserved, no serializer
	opGroupGenerator         = 0x82
	opConcreteCollection     = 0x83
	opConcreteCollectionBool = 0x85
	opTuple                  = 0x86
	opSelectField            = 0x8c
	opLt                     = 0x8f
	opLe                     = 0x90
	opGt                     = 0x91
	opGe                     = 0x92
	opEq                     = 0x93
	opNeq                    = 0x94
	opIf                     = 0x95
	opAnd                    = 0x96
	opOr                     = 0x97
	opAtLeast                = 0x98
	opMinus                  = 0x99
	opPlus                   = 0x9a
	opXor                    = 0x9b
	opMultiply               = 0x9c
	opDivision               = 0x9d
	opModulo                 = 0x9e
	opExponentiate           = 0x9f
	opMultiplyGroup          = 0xa0
	opMin                    = 0xa1
	opMax                    = 0xa2
	opHeight                 = 0xa3
	opInputs                 = 0xa4
	opOutputs                = 0xa5
	opLastBlockUtxoRootHash  = 0xa6
	opSelf                   = 0xa7
	opMinerPubkey            = 0xac
	opMapCollection          = 0xad
	opExists                 = 0xae
	opForAll                 = 0xaf
	opFold                   = 0xb0
	opSizeOf                 = 0xb1
	opByIndex                = 0xb2
	opAppend                 = 0xb3
	opSlice                  = 0xb4
	opFilter                 = 0xb5
	opCreateAvlTree          = 0xb6
	opTreeLookup             = 0xb7
	opExtractAmount          = 0xc1
	opExtractScriptBytes     = 0xc2
	opExtractBytes           = 0xc3
	opExtractBytesWithNoRef  = 0xc4
	opExtractID              = 0xc5
	opExtractRegisterAs      = 0xc6
	opExtractCreationInfo    = 0xc7
	opCalcBlake2b256         = 0xcb
	opCalcSha256             = 0xcc
	opProveDlog              = 0xcd
	opProveDHTuple           = 0xce
	opSigmaPropIsProven      = 0xcf
	opSigmaPropBytes         = 0xd0
	opBoolToSigmaProp        = 0xd1
	opDeserializeContext     = 0xd4
	opDeserializeRegister    = 0xd5
	opValDef                 = 0xd6
	opFunDef                 = 0xd7
	opBlockValue             = 0xd8
	opFuncValue              = 0xd9
	opFuncApply              = 0xda
	opPropertyCall           = 0xdb
	opMethodCall             = 0xdc
	opGlobal                 = 0xdd
	opGetVar                 = 0xe3
	opOptionGet              = 0xe4
	opOptionGetOrElse        = 0xe5
	opOptionIsDefined        = 0xe6
	opModQ                   = 0xe7
	opPlusModQ               = 0xe8
	opMinusModQ              = 0xe9
	opSigmaAnd               = 0xea
	opSigmaOr                = 0xeb
	opBinOr                  = 0xec
	opBinAnd                 = 0xed
	opDecodePoint            = 0xee
	opLogicalNot             = 0xef
	opNegation               = 0xf0
	opBitInversion           = 0xf1
	opBitOr                  = 0xf2
	opBitAnd                 = 0xf3
	opBinXor                 = 0xf4
	opBitXor                 = 0xf5
	opBitShiftRight          = 0xf6
	opBitShiftLeft           = 0xf7
	opBitShiftRightZeroed    = 0xf8
	opContext                = 0xfe
	opXorOf                  = 0xff
)

// operandReader consumes the operands that follow an opcode.
type operandReader func(d *decoder) error

// opSpec describes how one operation is serialized.
type opSpec struct {
	name string
	read operandReader
}

// ops is the table of every operation the reference ValueSerializer
// registers. An opcode above lastConstantCode with no entry is unknown.
var ops [256]opSpec

func init() {
	leaf := func(d *decoder) error { return nil }
	def := func(read operandReader, codes map[byte]string) {
		for c, name := range codes {
			ops[c] = opSpec{name: name, read: read}
		}
	}
	def(leaf, map[byte]string{
		opTrue: "TrueLeaf", opFalse: "FalseLeaf", opGroupGenerator: "GroupGenerator",
		opHeight: "Height", opInputs: "Inputs", opOutputs: "Outputs",
		opLastBlockUtxoRootHash: "LastBlockUtxoRootHash", opSelf: "Self",
		opMinerPubkey: "MinerPubkey", opGlobal: "Global", opContext: "Context",
	})
	def(exprs(1), map[byte]string{
		opLongToByteArray: "LongToByteArray", opByteArrayToBigInt: "ByteArrayToBigInt",
		opByteArrayToLong: "ByteArrayToLong", opAnd: "AND", opOr: "OR", opXorOf: "XorOf",
		opSizeOf: "SizeOf", opExtractAmount: "ExtractAmount", opExtractScriptBytes: "ExtractScriptBytes",
		opExtractBytes: "ExtractBytes", opExtractBytesWithNoRef: "ExtractBytesWithNoRef",
		opExtractID: "ExtractId", opExtractCreationInfo: "ExtractCreationInfo",
		opCalcBlake2b256: "CalcBlake2b256", opCalcSha256: "CalcSha256",
		opProveDlog: "CreateProveDlog", opSigmaPropIsProven: "SigmaPropIsProven",
		opSigmaPropBytes: "SigmaPropBytes", opBoolToSigmaProp: "BoolToSigmaProp",
		opOptionGet: "OptionGet", opOptionIsDefined: "OptionIsDefined", opModQ: "ModQ",
		opDecodePoint: "DecodePoint", opLogicalNot: "LogicalNot", opNegation: "Negation",
		opBitInversion: "BitInversion",
	})
	def(exprs(2), map[byte]string{
		opAtLeast: "AtLeast", opMinus: "Minus", opPlus: "Plus", opXor: "Xor",
		opMultiply: "Multiply", opDivision: "Division", opModulo: "Modulo",
		opExponentiate: "Exponentiate", opMultiplyGroup: "MultiplyGroup", opMin: "Min", opMax: "Max",
		opMapCollection: "MapCollection", opExists: "Exists", opForAll: "ForAll",
		opAppend: "Append", opFilter: "Filter", opOptionGetOrElse: "OptionGetOrElse",
		opPlusModQ: "PlusModQ", opMinusModQ: "MinusModQ", opBitOr: "BitOr", opBitAnd: "BitAnd",
		opBitXor: "BitXor", opBitShiftRight: "BitShiftRight", opBitShiftLeft: "BitShiftLeft",
		opBitShiftRightZeroed: "BitShiftRightZeroed",
	})
	def(exprs(3), map[byte]string{
		opSubstConstants: "SubstConstants", opIf: "If", opTreeLookup: "TreeLookup",
		opFold: "Fold", opSlice: "Slice",
	})
	def(exprs(4), map[byte]string{opCreateAvlTree: "CreateAvlTree", opProveDHTuple: "CreateProveDHTuple"})
	def(readRelation, map[byte]string{
		opLt: "LT", opLe: "LE", opGt: "GT", opGe: "GE", opEq: "EQ", opNeq: "NEQ",
		opBinOr: "BinOr", opBinAnd: "BinAnd", opBinXor: "BinXor",
	})
	def(exprList, map[byte]string{opSigmaAnd: "SigmaAnd", opSigmaOr: "SigmaOr"})
	def(readNumericCast, map[byte]string{opUpcast: "Upcast", opDowncast: "Downcast"})
	def(readVarRef, map[byte]string{opTaggedVariable: "TaggedVariable", opGetVar: "GetVar"})

	ops[opValUse] = opSpec{"ValUse", readValUse}
	ops[opConstantPlaceholder] = opSpec{"ConstantPlaceholder", readConstantPlaceholder}
	ops[opConcreteCollection] = opSpec{"ConcreteCollection", readConcreteCollection}
	ops[opConcreteCollectionBool] = opSpec{"ConcreteCollectionBooleanConstant", readBoolCollection}
	ops[opTuple] = opSpec{"Tuple", readTupleExpr}
	ops[opSelectField] = opSpec{"SelectField", readSelectField}
	ops[opByIndex] = opSpec{"ByIndex", readByIndex}
	ops[opExtractRegisterAs] = opSpec{"ExtractRegisterAs", readExtractRegisterAs}
	ops[opDeserializeContext] = opSpec{"DeserializeContext", readDeserializeContext}
	ops[opDeserializeRegister] = opSpec{"DeserializeRegister", readDeserializeRegister}
	ops[opValDef] = opSpec{"ValDef", readValDef}
	ops[opFunDef] = opSpec{"FunDef", readFunDef}
	ops[opBlockValue] = opSpec{"BlockValue", readBlockValue}
	ops[opFuncValue] = opSpec{"FuncValue", readFuncValue}
	ops[opFuncApply] = opSpec{"Apply", readApply}
	ops[opPropertyCall] = opSpec{"PropertyCall", readPropertyCall}
	ops[opMethodCall] = opSpec{"MethodCall", readMethodCall}
}

// opName returns the name of the operation with the given opcode.
func opName(code byte) string {
	if n := ops[code].name; n != "" {
		return n
	}
	return fmt.Sprintf("opcode 0x%02x", code)
}
