package ergo

import (
	"errors"
	"math/big"

	"github.com/async-emission/auditor/ergo/autolykos"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/ergo/wire"
)

// Header is an Ergo block header as the node describes it.
type Header struct {
	ID    Digest // the id as given; meaningful only when HasID
	HasID bool

	Version          uint8
	ParentID         Digest
	ADProofsRoot     Digest
	TransactionsRoot Digest
	StateRoot        [33]byte
	Timestamp        uint64 // milliseconds since the Unix epoch
	ExtensionRoot    Digest // "extensionHash" in the node's JSON
	NBits            uint32 // difficulty in compact form
	Height           uint32
	Votes            [3]byte
	UnparsedBytes    []byte // serialized only for version > 1
	PoW              PowSolution

	// Values the node states that are derived from the above; each is
	// checked by CheckIDs when given.
	Difficulty     *big.Int // nil when not given
	ADProofsID     Digest
	TransactionsID Digest
	ExtensionID    Digest
	HasSectionIDs  bool
}

// PowSolution is the Autolykos solution. W and D are part of version 1
// solutions only; version 2 keeps PK and the nonce.
type PowSolution struct {
	PK    [33]byte
	W     [33]byte
	Nonce [8]byte
	D     *big.Int
}

// Block section type ids, which with the header id and the section's root
// give each section its id.
const (
	SectionADProofs     = 104
	SectionTransactions = 102
	SectionExtension    = 108
)

// SectionID is the id of a block section: Blake2b-256 of its type id, the
// header id and the section's root.
func SectionID(typeID byte, headerID, root Digest) Digest {
	var buf [65]byte
	buf[0] = typeID
	copy(buf[1:], headerID[:])
	copy(buf[33:], root[:])
	return Hash(buf[:])
}

// BytesWithoutPoW is the header serialization the proof of work commits to.
func (h *Header) BytesWithoutPoW() []byte {
	return h.appendWithoutPoW(wire.NewWriter(make([]byte, 0, 256))).Bytes()
}

func (h *Header) appendWithoutPoW(w *wire.Writer) *wire.Writer {
	w.Byte(h.Version)
	w.Write(h.ParentID[:])
	w.Write(h.ADProofsRoot[:])
	w.Write(h.TransactionsRoot[:])
	w.Write(h.StateRoot[:])
	w.U64(h.Timestamp)
	w.Write(h.ExtensionRoot[:])
	w.Write([]byte{byte(h.NBits >> 24), byte(h.NBits >> 16), byte(h.NBits >> 8), byte(h.NBits)})
	w.U32(h.Height)
	w.Write(h.Votes[:])
	if h.Version > 1 {
		w.Byte(byte(len(h.UnparsedBytes)))
		w.Write(h.UnparsedBytes)
	}
	return w
}

// Bytes is the full header serialization; its hash is the header id.
func (h *Header) Bytes() []byte {
	w := h.appendWithoutPoW(wire.NewWriter(make([]byte, 0, 256)))
	w.Write(h.PoW.PK[:])
	if h.Version == 1 {
		w.Write(h.PoW.W[:])
		w.Write(h.PoW.Nonce[:])
		d := unsignedBytes(h.PoW.D)
		w.Byte(byte(len(d)))
		w.Write(d)
	} else {
		w.Write(h.PoW.Nonce[:])
	}
	return w.Bytes()
}

// unsignedBytes is BouncyCastle's BigIntegers.asUnsignedByteArray, which
// the node uses for the v1 distance d: minimal big-endian magnitude, with
// zero as a single 0x00 byte.
func unsignedBytes(v *big.Int) []byte {
	if v == nil || v.Sign() == 0 {
		return []byte{0}
	}
	return v.Bytes()
}

// ComputeID derives the header id: Blake2b-256 of Bytes.
func (h *Header) ComputeID() Digest { return Hash(h.Bytes()) }

// TrustedID is the id the header states when it states one (HasID), which
// a caller that has verified the header may trust, and otherwise the
// derived one.
func (h *Header) TrustedID() Digest {
	if h.HasID {
		return h.ID
	}
	return h.ComputeID()
}

// PoWStatus is the outcome of a proof-of-work check.
type PoWStatus string

const (
	PoWOK        PoWStatus = "ok"
	PoWBad       PoWStatus = "bad"
	PoWUnchecked PoWStatus = "unchecked" // Autolykos v1 (block version 1) is not checked
)

// CheckPoW verifies the Autolykos v2 solution of a version 2+ header. A
// version 1 header is reported PoWUnchecked with a nil error: its v1
// solution is not verified, and callers must not claim it was.
func (h *Header) CheckPoW() (PoWStatus, error) {
	err := autolykos.Verify(Hash(h.BytesWithoutPoW()), h.PoW.Nonce, h.Version, h.Height, h.NBits)
	switch {
	case err == nil:
		return PoWOK, nil
	case errors.Is(err, autolykos.ErrV1Unchecked):
		return PoWUnchecked, nil
	default:
		return PoWBad, &Error{Kind: ErrPoW, Field: "powSolutions", Err: err}
	}
}

// CheckIDs verifies the header id and the derived values the node stated:
// difficulty, and the section ids (which bind the roots to this header).
func (h *Header) CheckIDs() error {
	id := h.ComputeID()
	if h.HasID && id != h.ID {
		return errorf(ErrIDMismatch, "id", "given %s, computed %s", h.ID, id)
	}
	if h.Difficulty != nil {
		d, err := autolykos.DecodeCompactBits(h.NBits)
		if err != nil {
			return &Error{Kind: ErrStated, Field: "nBits", Err: err}
		}
		if d.Cmp(h.Difficulty) != 0 {
			return errorf(ErrStated, "difficulty", "given %s, nBits %d encodes %s", h.Difficulty, h.NBits, d)
		}
	}
	if h.HasSectionIDs {
		for _, s := range []struct {
			field string
			typ   byte
			root  Digest
			given Digest
		}{
			{"adProofsId", SectionADProofs, h.ADProofsRoot, h.ADProofsID},
			{"transactionsId", SectionTransactions, h.TransactionsRoot, h.TransactionsID},
			{"extensionId", SectionExtension, h.ExtensionRoot, h.ExtensionID},
		} {
			if got := SectionID(s.typ, id, s.root); got != s.given {
				return errorf(ErrIDMismatch, s.field, "given %s, computed %s", s.given, got)
			}
		}
	}
	return nil
}

type headerJSON struct {
	ID               jHex     `json:"id"`
	ParentID         jHex     `json:"parentId"`
	Version          jNum     `json:"version"`
	ADProofsRoot     jHex     `json:"adProofsRoot"`
	TransactionsRoot jHex     `json:"transactionsRoot"`
	StateRoot        jHex     `json:"stateRoot"`
	Timestamp        jNum     `json:"timestamp"`
	ExtensionHash    jHex     `json:"extensionHash"`
	NBits            jNum     `json:"nBits"`
	Height           jNum     `json:"height"`
	Votes            jHex     `json:"votes"`
	UnparsedBytes    jHex     `json:"unparsedBytes"`
	PowSolutions     *powJSON `json:"powSolutions"`
	Difficulty       jBig     `json:"difficulty"`
	ADProofsID       jHex     `json:"adProofsId"`
	TransactionsID   jHex     `json:"transactionsId"`
	ExtensionID      jHex     `json:"extensionId"`
}

type powJSON struct {
	PK jHex `json:"pk"`
	W  jHex `json:"w"`
	N  jHex `json:"n"`
	D  jBig `json:"d"`
}

func (j *headerJSON) header(h *Header) error {
	var err error
	if h.ID, h.HasID, err = j.ID.optDigest("id"); err != nil {
		return err
	}
	v, err := j.Version.uint("version", 255)
	if err != nil {
		return err
	}
	if v == 0 {
		return errorf(ErrNumber, "version", "block versions start at 1")
	}
	h.Version = uint8(v)
	if h.ParentID, err = j.ParentID.digest("parentId"); err != nil {
		return err
	}
	if h.ADProofsRoot, err = j.ADProofsRoot.digest("adProofsRoot"); err != nil {
		return err
	}
	if h.TransactionsRoot, err = j.TransactionsRoot.digest("transactionsRoot"); err != nil {
		return err
	}
	if err = j.StateRoot.fixed("stateRoot", h.StateRoot[:]); err != nil {
		return err
	}
	if h.Timestamp, err = j.Timestamp.uint("timestamp", 1<<63-1); err != nil {
		return err
	}
	if h.ExtensionRoot, err = j.ExtensionHash.digest("extensionHash"); err != nil {
		return err
	}
	nbits, err := j.NBits.uint("nBits", 1<<32-1)
	if err != nil {
		return err
	}
	h.NBits = uint32(nbits)
	height, err := j.Height.uint("height", 1<<31-1)
	if err != nil {
		return err
	}
	h.Height = uint32(height)
	if err = j.Votes.fixed("votes", h.Votes[:]); err != nil {
		return err
	}
	if j.UnparsedBytes.set || j.UnparsedBytes.err != nil {
		if h.UnparsedBytes, err = j.UnparsedBytes.bytes("unparsedBytes"); err != nil {
			return err
		}
		if len(h.UnparsedBytes) > 255 {
			return errorf(ErrLength, "unparsedBytes", "%d bytes, at most 255", len(h.UnparsedBytes))
		}
		if len(h.UnparsedBytes) == 0 {
			h.UnparsedBytes = nil
		}
	}
	if j.PowSolutions == nil {
		return errorf(ErrMissingField, "powSolutions", "required")
	}
	p := j.PowSolutions
	if err = p.PK.fixed("powSolutions.pk", h.PoW.PK[:]); err != nil {
		return err
	}
	if err := checkPoint("powSolutions.pk", h.PoW.PK); err != nil {
		return err
	}
	if err = p.N.fixed("powSolutions.n", h.PoW.Nonce[:]); err != nil {
		return err
	}
	if h.Version == 1 {
		if err = p.W.fixed("powSolutions.w", h.PoW.W[:]); err != nil {
			return err
		}
		if err := checkPoint("powSolutions.w", h.PoW.W); err != nil {
			return err
		}
		if h.PoW.D, err = p.D.get("powSolutions.d"); err != nil {
			return err
		}
		if h.PoW.D.Sign() < 0 || len(unsignedBytes(h.PoW.D)) > 255 {
			return errorf(ErrNumber, "powSolutions.d", "out of range")
		}
	}
	if j.Difficulty.set || j.Difficulty.err != nil {
		if h.Difficulty, err = j.Difficulty.get("difficulty"); err != nil {
			return err
		}
	}
	var given [3]bool
	if h.ADProofsID, given[0], err = j.ADProofsID.optDigest("adProofsId"); err != nil {
		return err
	}
	if h.TransactionsID, given[1], err = j.TransactionsID.optDigest("transactionsId"); err != nil {
		return err
	}
	if h.ExtensionID, given[2], err = j.ExtensionID.optDigest("extensionId"); err != nil {
		return err
	}
	switch given {
	case [3]bool{true, true, true}:
		h.HasSectionIDs = true
	case [3]bool{}:
	default:
		return errorf(ErrMissingField, "adProofsId", "section ids must be given all together or not at all")
	}
	return nil
}

// checkPoint refuses a proof-of-work key that is not a group element, as
// the node's parser does (GroupElementSerializer).
func checkPoint(field string, b [33]byte) error {
	if err := sigma.CheckGroupElement(b); err != nil {
		return &Error{Kind: ErrPoW, Field: field, Detail: "not a secp256k1 point", Err: err}
	}
	return nil
}

// UnmarshalJSON decodes a header in the node's format. Errors are *Error
// values that name the offending field.
func (h *Header) UnmarshalJSON(raw []byte) error {
	var j headerJSON
	if err := unmarshal(raw, &j); err != nil {
		return err
	}
	*h = Header{}
	return j.header(h)
}

// ParseHeader decodes a serialized header (as hashed into its id). The
// result has HasID set to the id derived from b.
func ParseHeader(b []byte) (*Header, error) {
	h, err := readHeader(wire.NewReader(b))
	if err != nil {
		return nil, &Error{Kind: ErrBytes, Err: err}
	}
	h.ID, h.HasID = Hash(b), true
	return h, nil
}

func readHeader(r *wire.Reader) (*Header, error) {
	h := &Header{}
	var err error
	if h.Version, err = r.Byte("version"); err != nil {
		return nil, err
	}
	if h.Version == 0 {
		return nil, r.Fail(wire.ErrInvalid, "version", "block versions start at 1")
	}
	for _, f := range []struct {
		dst  []byte
		what string
	}{
		{h.ParentID[:], "parent id"},
		{h.ADProofsRoot[:], "AD proofs root"},
		{h.TransactionsRoot[:], "transactions root"},
		{h.StateRoot[:], "state root"},
	} {
		b, err := r.Fixed(len(f.dst), f.what)
		if err != nil {
			return nil, err
		}
		copy(f.dst, b)
	}
	if h.Timestamp, err = r.U64("timestamp"); err != nil {
		return nil, err
	}
	if h.ExtensionRoot, err = r.Digest32("extension root"); err != nil {
		return nil, err
	}
	nbits, err := r.Fixed(4, "nBits")
	if err != nil {
		return nil, err
	}
	h.NBits = uint32(nbits[0])<<24 | uint32(nbits[1])<<16 | uint32(nbits[2])<<8 | uint32(nbits[3])
	if h.Height, err = r.U32("height"); err != nil {
		return nil, err
	}
	votes, err := r.Fixed(3, "votes")
	if err != nil {
		return nil, err
	}
	copy(h.Votes[:], votes)
	if h.Version > 1 {
		n, err := r.Byte("unparsed bytes length")
		if err != nil {
			return nil, err
		}
		if n > 0 {
			b, err := r.Fixed(int(n), "unparsed bytes")
			if err != nil {
				return nil, err
			}
			h.UnparsedBytes = append([]byte(nil), b...)
		}
	}
	pk, err := r.Fixed(33, "pow pk")
	if err != nil {
		return nil, err
	}
	copy(h.PoW.PK[:], pk)
	if err := sigma.CheckGroupElement(h.PoW.PK); err != nil {
		return nil, err
	}
	if h.Version == 1 {
		w, err := r.Fixed(33, "pow w")
		if err != nil {
			return nil, err
		}
		copy(h.PoW.W[:], w)
		if err := sigma.CheckGroupElement(h.PoW.W); err != nil {
			return nil, err
		}
	}
	nonce, err := r.Fixed(8, "pow nonce")
	if err != nil {
		return nil, err
	}
	copy(h.PoW.Nonce[:], nonce)
	if h.Version == 1 {
		n, err := r.Byte("pow d length")
		if err != nil {
			return nil, err
		}
		d, err := r.Fixed(int(n), "pow d")
		if err != nil {
			return nil, err
		}
		// Read as the node reads it (unsigned, any length); a form the
		// node would not write shows up as an id mismatch, because the id
		// is derived from the re-serialization.
		h.PoW.D = new(big.Int).SetBytes(d)
	}
	return h, r.Done("header")
}
