package consensus

import (
	"fmt"
	"math/big"

	"github.com/async-emission/auditor/ergo/autolykos"
)

// Work is the score a header adds to its chain: its required difficulty,
// as the node's fork choice counts it (the best chain is the one whose
// headers' difficulties sum highest; a tie keeps the chain held).
func Work(nBits uint32) (*big.Int, error) {
	return autolykos.DecodeCompactBits(nBits)
}

// WorkBytes is the width of an encoded cumulative work: 256 bits hold the
// difficulties of far more headers than Ergo will ever have (mainnet's are
// below 2^70).
const WorkBytes = 32

// EncodeWork encodes a cumulative work as WorkBytes big-endian bytes, so
// that encoded works compare as byte strings in the order of the numbers.
func EncodeWork(w *big.Int) ([]byte, error) {
	if w.Sign() < 0 || w.BitLen() > 8*WorkBytes {
		return nil, fmt.Errorf("consensus: cumulative work %s does not fit in %d bytes", w, WorkBytes)
	}
	return w.FillBytes(make([]byte, WorkBytes)), nil
}

// DecodeWork is the inverse of EncodeWork.
func DecodeWork(b []byte) (*big.Int, error) {
	if len(b) != WorkBytes {
		return nil, fmt.Errorf("consensus: an encoded cumulative work has %d bytes, not %d", len(b), WorkBytes)
	}
	return new(big.Int).SetBytes(b), nil
}
