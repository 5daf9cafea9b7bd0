package sigma

// explicitTypeArgs returns how many types follow the operands of a
// MethodCall or PropertyCall of the given method. Most methods infer their
// type parameters from the operands; the ErgoTree v3 (protocol 6.0)
// methods below declare them explicitly (SMethod.explicitTypeArgs in the
// reference), each with a single type parameter T.
//
// Method ids are not otherwise validated. The reference refuses an unknown
// method with a soft-forkable validation error (an unparsed tree when the
// tree has a size); this reader stays lenient so that it never refuses a
// method that a protocol update adds.
func explicitTypeArgs(typeID, methodID byte) int {
	switch typeID {
	case byte(TBox):
		if methodID == 19 { // Box.getReg[T](index: Int)
			return 1
		}
	case byte(TContext):
		if methodID == 12 { // Context.getVarFromInput[T](input: Short, id: Byte)
			return 1
		}
	case byte(TGlobal):
		switch methodID {
		case 4, // Global.deserializeTo[T](bytes)
			5,  // Global.fromBigEndianBytes[T](bytes)
			9,  // Global.some[T](value)
			10: // Global.none[T]
			return 1
		}
	}
	return 0
}
