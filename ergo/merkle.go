package ergo

import "golang.org/x/crypto/blake2b"

// MerkleRoot is the root of Ergo's (scorex) Merkle tree over leaves: a leaf
// hashes as H(0x00 ‖ data), an inner node as H(0x01 ‖ left ‖ right), and a
// node without a right sibling as H(0x01 ‖ left). A tree of no leaves has
// the root H(""), as the genesis block's empty extension shows; a single
// leaf still gets an inner node above it.
func MerkleRoot(leaves [][]byte) Digest {
	if len(leaves) == 0 {
		return Hash(nil)
	}
	level := make([]Digest, len(leaves))
	h, _ := blake2b.New256(nil)
	for i, leaf := range leaves {
		h.Reset()
		h.Write([]byte{0})
		h.Write(leaf)
		h.Sum(level[i][:0])
	}
	for {
		next := level[:0]
		for i := 0; i < len(level); i += 2 {
			h.Reset()
			h.Write([]byte{1})
			h.Write(level[i][:])
			if i+1 < len(level) {
				h.Write(level[i+1][:])
			}
			var d Digest
			h.Sum(d[:0])
			next = append(next, d)
		}
		if len(next) == 1 {
			return next[0]
		}
		level = next
	}
}

// TransactionsRoot is a block's transactions root. Version 1 blocks commit
// the transaction ids; later versions commit the ids followed by every
// transaction's (31-byte) witness id.
func TransactionsRoot(version uint8, txs []Transaction) Digest {
	ids := make([]Digest, len(txs))
	for i := range txs {
		ids[i] = txs[i].ComputeID()
	}
	return transactionsRoot(version, txs, ids)
}

// transactionsRoot computes the root from already derived transaction ids.
func transactionsRoot(version uint8, txs []Transaction, ids []Digest) Digest {
	n := len(ids)
	if version > 1 {
		n *= 2
	}
	leaves := make([][]byte, 0, n)
	for i := range ids {
		leaves = append(leaves, ids[i][:])
	}
	if version > 1 {
		witness := make([][31]byte, len(txs))
		for i := range txs {
			witness[i] = txs[i].WitnessID()
			leaves = append(leaves, witness[i][:])
		}
	}
	return MerkleRoot(leaves)
}

// ExtensionRoot is the root of a block extension: each field is a leaf
// holding its key length, key and value.
func ExtensionRoot(fields []ExtensionField) Digest {
	leaves := make([][]byte, len(fields))
	for i, f := range fields {
		leaf := make([]byte, 0, 1+len(f.Key)+len(f.Value))
		leaf = append(leaf, byte(len(f.Key)))
		leaf = append(leaf, f.Key[:]...)
		leaves[i] = append(leaf, f.Value...)
	}
	return MerkleRoot(leaves)
}
