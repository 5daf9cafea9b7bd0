package sigma

import (
	"bytes"
	"math/big"

	"golang.org/x/crypto/blake2b"
)

// Header is the value of type Header (ErgoTree v3): a block header in its
// consensus serialization, as read from a register or a constant.
type Header struct {
	// Bytes is the header's serialization; its blake2b256 is the header id.
	Bytes []byte

	Version          uint8
	ParentID         [32]byte
	ADProofsRoot     [32]byte
	TransactionsRoot [32]byte
	StateRoot        [33]byte
	Timestamp        uint64
	ExtensionRoot    [32]byte
	NBits            uint32
	Height           uint32
	Votes            [3]byte
	// UnparsedBytes holds the fields of future header versions (5 and up).
	UnparsedBytes []byte

	// The Autolykos solution. W and D are part of version 1 solutions only;
	// for later versions they are the generator and 0, as the reference
	// reports them.
	MinerPK GroupElement
	W       GroupElement
	Nonce   [8]byte
	D       *big.Int
}

// ID returns the header id, blake2b256 of its serialization.
func (h *Header) ID() [32]byte { return blake2b.Sum256(h.Bytes) }

// Header versions that change the layout.
const (
	headerVersionInitial = 1 // Autolykos v1 solution, no extension-length byte
	headerVersion60      = 4 // last version whose extension bytes are ignored
)

// readHeader reads a header as the reference ErgoHeader serializer does.
func (d *decoder) readHeader() (*Header, error) {
	r := d.r
	start := r.Pos()
	h := new(Header)
	var err error
	if h.Version, err = r.Byte("header version"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		dst  []byte
		name string
	}{
		{h.ParentID[:], "header parent id"},
		{h.ADProofsRoot[:], "header AD proofs root"},
		{h.TransactionsRoot[:], "header transactions root"},
		{h.StateRoot[:], "header state root"},
	} {
		b, err := r.Fixed(len(f.dst), f.name)
		if err != nil {
			return nil, err
		}
		copy(f.dst, b)
	}
	if h.Timestamp, err = r.U64("header timestamp"); err != nil {
		return nil, err
	}
	if h.ExtensionRoot, err = r.Digest32("header extension root"); err != nil {
		return nil, err
	}
	nBits, err := r.Fixed(4, "header nBits")
	if err != nil {
		return nil, err
	}
	h.NBits = uint32(nBits[0])<<24 | uint32(nBits[1])<<16 | uint32(nBits[2])<<8 | uint32(nBits[3])
	if h.Height, err = readUIntExact(r, "header height"); err != nil {
		return nil, err
	}
	votes, err := r.Fixed(3, "header votes")
	if err != nil {
		return nil, err
	}
	copy(h.Votes[:], votes)
	if h.Version > headerVersionInitial {
		n, err := r.Byte("header extension length")
		if err != nil {
			return nil, err
		}
		// The reference reader skips nothing for versions 2 to 4, even when
		// the length byte is not zero.
		if n > 0 && h.Version > headerVersion60 {
			b, err := r.Fixed(int(n), "header extension")
			if err != nil {
				return nil, err
			}
			h.UnparsedBytes = bytes.Clone(b)
		}
	}
	if h.MinerPK, err = readGroupElement(r, "header miner public key"); err != nil {
		return nil, err
	}
	h.W = generator // what the reference reports for solutions without w
	if h.Version == headerVersionInitial {
		if h.W, err = readGroupElement(r, "header w"); err != nil {
			return nil, err
		}
	}
	nonce, err := r.Fixed(8, "header nonce")
	if err != nil {
		return nil, err
	}
	copy(h.Nonce[:], nonce)
	h.D = new(big.Int)
	if h.Version == headerVersionInitial {
		dOff := r.Pos()
		n, err := r.Byte("header d length")
		if err != nil {
			return nil, err
		}
		b, err := r.Fixed(int(n), "header d")
		if err != nil {
			return nil, err
		}
		h.D.SetBytes(b)
		if h.D.BitLen() > 255 {
			return nil, invalidAt(dOff, "header d", "does not fit a 256-bit signed integer")
		}
	}
	h.Bytes = bytes.Clone(r.Since(start))
	return h, nil
}
