package ergo

import (
	"encoding/hex"
	"strconv"

	"github.com/async-emission/auditor/ergo/autolykos"
)

// The node's JSON rendering of the model, written by hand: field order and
// the context-extension order are part of the format, and blocks are
// rendered on the devnet's hot path. Ids that were given are rendered as
// given; ids that were not are derived.

// generator is the secp256k1 generator, which the node renders as the w of
// every Autolykos v2 solution.
var generator = [33]byte{0x02, 0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87, 0x0b, 0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16, 0xf8, 0x17, 0x98}

func appendHex(buf, b []byte) []byte {
	buf = append(buf, '"')
	buf = hex.AppendEncode(buf, b)
	return append(buf, '"')
}

func appendKey(buf []byte, key string) []byte {
	buf = append(buf, '"')
	buf = append(buf, key...)
	return append(buf, '"', ':')
}

func appendUint(buf []byte, v uint64) []byte { return strconv.AppendUint(buf, v, 10) }

// AppendJSON appends the box in the node's format.
func (b *Box) AppendJSON(buf []byte) []byte {
	id := b.BoxID
	if !b.HasBoxID {
		id = b.ComputeID()
	}
	buf = append(buf, '{')
	buf = appendKey(buf, "boxId")
	buf = appendHex(buf, id[:])
	buf = append(buf, ',')
	buf = appendKey(buf, "value")
	buf = appendUint(buf, b.Value)
	buf = append(buf, ',')
	buf = appendKey(buf, "ergoTree")
	buf = appendHex(buf, b.ErgoTree)
	buf = append(buf, ',')
	buf = appendKey(buf, "assets")
	buf = append(buf, '[')
	for i, t := range b.Tokens {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '{')
		buf = appendKey(buf, "tokenId")
		buf = appendHex(buf, t.ID[:])
		buf = append(buf, ',')
		buf = appendKey(buf, "amount")
		buf = appendUint(buf, t.Amount)
		buf = append(buf, '}')
	}
	buf = append(buf, ']', ',')
	buf = appendKey(buf, "creationHeight")
	buf = appendUint(buf, uint64(b.CreationHeight))
	buf = append(buf, ',')
	buf = appendKey(buf, "additionalRegisters")
	buf = append(buf, '{')
	for i, r := range b.Registers {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendKey(buf, RegisterName(4+i))
		buf = appendHex(buf, r)
	}
	buf = append(buf, '}', ',')
	buf = appendKey(buf, "transactionId")
	buf = appendHex(buf, b.TxID[:])
	buf = append(buf, ',')
	buf = appendKey(buf, "index")
	buf = appendUint(buf, uint64(b.Index))
	return append(buf, '}')
}

// MarshalJSON renders the box in the node's format.
func (b *Box) MarshalJSON() ([]byte, error) { return b.AppendJSON(nil), nil }

// AppendJSON appends the transaction in the node's format.
func (tx *Transaction) AppendJSON(buf []byte) []byte {
	id := tx.ID
	if !tx.HasID {
		id = tx.ComputeID()
	}
	buf = append(buf, '{')
	buf = appendKey(buf, "id")
	buf = appendHex(buf, id[:])
	buf = append(buf, ',')
	buf = appendKey(buf, "inputs")
	buf = append(buf, '[')
	for i := range tx.Inputs {
		in := &tx.Inputs[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '{')
		buf = appendKey(buf, "boxId")
		buf = appendHex(buf, in.BoxID[:])
		buf = append(buf, ',')
		buf = appendKey(buf, "spendingProof")
		buf = append(buf, '{')
		buf = appendKey(buf, "proofBytes")
		buf = appendHex(buf, in.Proof)
		buf = append(buf, ',')
		buf = appendKey(buf, "extension")
		buf = append(buf, '{')
		for k, v := range in.Extension {
			if k > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '"')
			buf = appendUint(buf, uint64(v.Key))
			buf = append(buf, '"', ':')
			buf = appendHex(buf, v.Value)
		}
		buf = append(buf, '}', '}', '}')
	}
	buf = append(buf, ']', ',')
	buf = appendKey(buf, "dataInputs")
	buf = append(buf, '[')
	for i := range tx.DataInputs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '{')
		buf = appendKey(buf, "boxId")
		buf = appendHex(buf, tx.DataInputs[i][:])
		buf = append(buf, '}')
	}
	buf = append(buf, ']', ',')
	buf = appendKey(buf, "outputs")
	buf = append(buf, '[')
	for i := range tx.Outputs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = tx.Outputs[i].AppendJSON(buf)
	}
	return append(buf, ']', '}')
}

// MarshalJSON renders the transaction in the node's format.
func (tx *Transaction) MarshalJSON() ([]byte, error) { return tx.AppendJSON(nil), nil }

// AppendJSON appends the header in the node's format, with the section ids
// and the difficulty derived from it.
func (h *Header) AppendJSON(buf []byte) []byte {
	id := h.ID
	if !h.HasID {
		id = h.ComputeID()
	}
	field := func(key string) { buf = append(buf, ','); buf = appendKey(buf, key) }
	buf = append(buf, '{')
	buf = appendKey(buf, "id")
	buf = appendHex(buf, id[:])
	field("parentId")
	buf = appendHex(buf, h.ParentID[:])
	field("version")
	buf = appendUint(buf, uint64(h.Version))
	field("height")
	buf = appendUint(buf, uint64(h.Height))
	field("timestamp")
	buf = appendUint(buf, h.Timestamp)
	field("nBits")
	buf = appendUint(buf, uint64(h.NBits))
	if d, err := autolykos.DecodeCompactBits(h.NBits); err == nil {
		field("difficulty")
		buf = append(buf, '"')
		buf = d.Append(buf, 10)
		buf = append(buf, '"')
	}
	field("votes")
	buf = appendHex(buf, h.Votes[:])
	field("stateRoot")
	buf = appendHex(buf, h.StateRoot[:])
	field("adProofsRoot")
	buf = appendHex(buf, h.ADProofsRoot[:])
	field("transactionsRoot")
	buf = appendHex(buf, h.TransactionsRoot[:])
	field("extensionHash")
	buf = appendHex(buf, h.ExtensionRoot[:])
	field("unparsedBytes")
	buf = appendHex(buf, h.UnparsedBytes)
	field("powSolutions")
	buf = append(buf, '{')
	buf = appendKey(buf, "pk")
	buf = appendHex(buf, h.PoW.PK[:])
	buf = append(buf, ',')
	buf = appendKey(buf, "w")
	if h.Version == 1 {
		buf = appendHex(buf, h.PoW.W[:])
	} else {
		buf = appendHex(buf, generator[:])
	}
	buf = append(buf, ',')
	buf = appendKey(buf, "n")
	buf = appendHex(buf, h.PoW.Nonce[:])
	buf = append(buf, ',')
	buf = appendKey(buf, "d")
	if h.Version == 1 && h.PoW.D != nil {
		buf = h.PoW.D.Append(buf, 10)
	} else {
		buf = append(buf, '0')
	}
	buf = append(buf, '}')
	for _, s := range []struct {
		key  string
		typ  byte
		root Digest
	}{
		{"adProofsId", SectionADProofs, h.ADProofsRoot},
		{"transactionsId", SectionTransactions, h.TransactionsRoot},
		{"extensionId", SectionExtension, h.ExtensionRoot},
	} {
		field(s.key)
		sid := SectionID(s.typ, id, s.root)
		buf = appendHex(buf, sid[:])
	}
	field("size")
	buf = appendUint(buf, uint64(len(h.Bytes())))
	return append(buf, '}')
}

// MarshalJSON renders the header in the node's format.
func (h *Header) MarshalJSON() ([]byte, error) { return h.AppendJSON(nil), nil }

// AppendJSON appends the full block as GET /blocks/{id} renders it.
func (b *FullBlock) AppendJSON(buf []byte) []byte {
	id := b.Header.ID
	if !b.Header.HasID {
		id = b.Header.ComputeID()
	}
	buf = append(buf, '{')
	buf = appendKey(buf, "header")
	buf = b.Header.AppendJSON(buf)
	buf = append(buf, ',')
	buf = appendKey(buf, "blockTransactions")
	buf = append(buf, '{')
	buf = appendKey(buf, "headerId")
	buf = appendHex(buf, id[:])
	buf = append(buf, ',')
	buf = appendKey(buf, "transactions")
	buf = append(buf, '[')
	for i := range b.Transactions {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = b.Transactions[i].AppendJSON(buf)
	}
	buf = append(buf, ']', '}', ',')
	buf = appendKey(buf, "extension")
	buf = append(buf, '{')
	buf = appendKey(buf, "headerId")
	buf = appendHex(buf, id[:])
	buf = append(buf, ',')
	buf = appendKey(buf, "digest")
	root := ExtensionRoot(b.Extension.Fields)
	buf = appendHex(buf, root[:])
	buf = append(buf, ',')
	buf = appendKey(buf, "fields")
	buf = append(buf, '[')
	for i, f := range b.Extension.Fields {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = appendHex(buf, f.Key[:])
		buf = append(buf, ',')
		buf = appendHex(buf, f.Value)
		buf = append(buf, ']')
	}
	buf = append(buf, ']', '}', ',')
	buf = appendKey(buf, "adProofs")
	if p := b.ADProofs; p != nil {
		buf = append(buf, '{')
		buf = appendKey(buf, "headerId")
		buf = appendHex(buf, p.HeaderID[:])
		buf = append(buf, ',')
		buf = appendKey(buf, "proofBytes")
		buf = appendHex(buf, p.ProofBytes)
		buf = append(buf, ',')
		buf = appendKey(buf, "digest")
		d := Hash(p.ProofBytes)
		buf = appendHex(buf, d[:])
		buf = append(buf, '}')
	} else {
		buf = append(buf, "null"...)
	}
	return append(buf, '}')
}

// MarshalJSON renders the full block as GET /blocks/{id} does.
func (b *FullBlock) MarshalJSON() ([]byte, error) { return b.AppendJSON(nil), nil }
