// Package sigma decodes and encodes the ErgoTree serialization of the Ergo
// blockchain: types, data values and constants, boxes, and ErgoTrees with
// their expressions, byte for byte as the Scala reference node
// (sigmastate-interpreter) reads and writes them.
//
// # Reading
//
// Every reader takes a *wire.Reader and consumes exactly one item; the
// Parse functions take a byte slice that must hold exactly one. Readers never
// panic, bound their allocations by the size of the input and their
// recursion by the reference limits, and report failures as *wire.Error or
// *Error values that wrap a kind, to be tested with errors.Is.
//
// Box registers and context-extension variables hold constants, or one of
// the few constant-like expressions the reference also accepts there (see
// ReadRegisterValue and DecodeRegisterValue).
//
// The readers follow the reference where it is stricter than the format
// (BigInt lengths, register counts, curve points, threshold sizes, block
// items that must be definitions, ...) and where it is more lenient
// (redundant VLQ groups, any non-zero byte as true, ignored header bits, a
// sized ErgoTree whose body ends before or after its declared size), because
// the auditor must accept everything consensus accepts. Where matching the
// reference would need type inference or evaluation context, the readers
// are lenient and accept more than it does: they do not check that a root
// expression is of type SigmaProp, that a ValUse names a defined value, that
// the items of a ConcreteCollection have its element type, that a method
// call names a known method, that protocol 6.0 types, data and methods only
// occur where that version is active, or the 4096-byte position limits of
// trees and boxes. A sized ErgoTree whose body fails for any reason but
// running out of input is kept unparsed; the reference does so only for its
// soft-forkable validation errors.
//
// One check is stricter than the deployed reference: a non-empty collection
// of a zero-width type (Coll[Unit]) is refused, as the newest reference rule
// CheckZeroWidthCollection does, because a few bytes could describe billions
// of values.
//
// # Writing
//
// WriteType, WriteValue and WriteConstant produce the canonical encoding, the
// one the reference writer produces, so that registers built with them are
// the registers the node would build. Box and BoxCandidate write their
// ErgoTree and register bytes verbatim.
//
// # JSON
//
// Constant.MarshalJSON renders {"type": T, "value": V}, where T is the type
// in ErgoScript syntax (Long, Coll[Byte], (Coll[Byte], Long), Option[Int],
// ...) and V is rendered by type:
//
//	Boolean                  true or false
//	Byte, Short, Int         a JSON number
//	Long, BigInt,
//	UnsignedBigInt           a decimal string, so that no precision is lost
//	Coll[Byte]               a lowercase hex string
//	other collections        an array
//	tuples                   an array, one element per item
//	GroupElement             hex of the 33-byte compressed point
//	SigmaProp                {"op":"proveDlog","h":hex}
//	                         {"op":"proveDHTuple","g":hex,"h":hex,"u":hex,"v":hex}
//	                         {"op":"and"|"or","args":[...]}
//	                         {"op":"atLeast","k":n,"args":[...]}
//	                         {"op":"true"} or {"op":"false"}
//	AvlTree                  {"digest":hex,"insertAllowed":b,"updateAllowed":b,
//	                          "removeAllowed":b,"keyLength":n,"valueLength":n|null}
//	Option                   null for None, the value itself for Some
//	Unit                     {}
//	String                   a JSON string
//	Box                      {"boxId":hex,"value":"<decimal>","ergoTree":hex,
//	                          "creationHeight":n,"assets":[{"tokenId":hex,
//	                          "amount":"<decimal>"}],"additionalRegisters":
//	                          {"R4":{"type":T,"value":V},...},
//	                          "transactionId":hex,"index":n}
//	Header                   {"id":hex,"version":n,"parentId":hex,
//	                          "adProofsRoot":hex,"transactionsRoot":hex,
//	                          "stateRoot":hex,"timestamp":n,"extensionHash":hex,
//	                          "nBits":n,"height":n,"votes":hex,
//	                          "unparsedBytes":hex,"powSolutions":
//	                          {"pk":hex,"w":hex,"n":hex,"d":"<decimal>"}}
//
// Option[Option[T]] renders Some(None) and None alike, as null. A box
// register that does not decode renders as {"serializedValue":hex,
// "error":message}.
package sigma
