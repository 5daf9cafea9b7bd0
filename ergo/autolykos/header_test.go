package autolykos_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/async-emission/auditor/ergo/wire"
	"golang.org/x/crypto/blake2b"
)

// Test helpers that read Ergo headers. The header serializer proper lives
// elsewhere in the project; these exist only to feed Verify from fixtures,
// and each one is checked against header ids (blake2b256 of the full bytes)
// so that a mistake here cannot make a PoW test pass by accident.

// hexBytes is a JSON hex string.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	*h = d
	return err
}

// decimal is a JSON integer written either as a number or as a string (the
// node writes "difficulty" as a string since 2020, as a number before).
type decimal struct{ big.Int }

func (d *decimal) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if _, ok := d.SetString(s, 10); !ok {
		return fmt.Errorf("not a decimal integer: %s", b)
	}
	return nil
}

// jsonHeader is a header in the node's JSON format (GET /blocks/chainSlice).
type jsonHeader struct {
	ID               string   `json:"id"`
	Version          uint8    `json:"version"`
	ParentID         hexBytes `json:"parentId"`
	ADProofsRoot     hexBytes `json:"adProofsRoot"`
	TransactionsRoot hexBytes `json:"transactionsRoot"`
	StateRoot        hexBytes `json:"stateRoot"`
	Timestamp        uint64   `json:"timestamp"`
	ExtensionHash    hexBytes `json:"extensionHash"`
	NBits            uint32   `json:"nBits"`
	Height           uint32   `json:"height"`
	Votes            hexBytes `json:"votes"`
	UnparsedBytes    hexBytes `json:"unparsedBytes"`
	Difficulty       decimal  `json:"difficulty"`
	PowSolutions     struct {
		PK hexBytes `json:"pk"`
		N  hexBytes `json:"n"`
	} `json:"powSolutions"`
}

// bytesWithoutPow serializes h as HeaderSerializer.serializeWithoutPow does.
func (h *jsonHeader) bytesWithoutPow(t testing.TB) []byte {
	t.Helper()
	for _, f := range []struct {
		b    []byte
		size int
		name string
	}{{h.ParentID, 32, "parentId"}, {h.ADProofsRoot, 32, "adProofsRoot"}, {h.TransactionsRoot, 32, "transactionsRoot"},
		{h.StateRoot, 33, "stateRoot"}, {h.ExtensionHash, 32, "extensionHash"}, {h.Votes, 3, "votes"}} {
		if len(f.b) != f.size {
			t.Fatalf("header %s: %s has %d bytes, want %d", h.ID, f.name, len(f.b), f.size)
		}
	}
	w := wire.NewWriter(nil)
	w.Byte(h.Version)
	w.Write(h.ParentID)
	w.Write(h.ADProofsRoot)
	w.Write(h.TransactionsRoot)
	w.Write(h.StateRoot)
	w.U64(h.Timestamp)
	w.Write(h.ExtensionHash)
	w.Write(binary.BigEndian.AppendUint32(nil, h.NBits))
	w.U32(h.Height)
	w.Write(h.Votes)
	if h.Version > 1 {
		if len(h.UnparsedBytes) > 255 {
			t.Fatalf("header %s: %d unparsed bytes", h.ID, len(h.UnparsedBytes))
		}
		w.Byte(byte(len(h.UnparsedBytes)))
		w.Write(h.UnparsedBytes)
	}
	return w.Bytes()
}

// v2Pow returns msg and nonce of a v2+ JSON header after checking that the
// serialized header hashes to its id.
func (h *jsonHeader) v2Pow(t testing.TB) (msg [32]byte, nonce [8]byte) {
	t.Helper()
	without := h.bytesWithoutPow(t)
	if len(h.PowSolutions.PK) != 33 || len(h.PowSolutions.N) != 8 {
		t.Fatalf("header %s: pk %d bytes, nonce %d bytes", h.ID, len(h.PowSolutions.PK), len(h.PowSolutions.N))
	}
	full := append(append(bytes.Clone(without), h.PowSolutions.PK...), h.PowSolutions.N...)
	if id := blake2b.Sum256(full); hex.EncodeToString(id[:]) != h.ID {
		t.Fatalf("header at height %d: serialized id %x, JSON id %s", h.Height, id, h.ID)
	}
	copy(nonce[:], h.PowSolutions.N)
	return blake2b.Sum256(without), nonce
}

// rawHeader is an entry of the headers/bytes_mainnet_*.json fixtures.
type rawHeader struct {
	Height           uint32   `json:"height"`
	ID               string   `json:"id"`
	Bytes            hexBytes `json:"bytes"`
	HeaderWithoutPow hexBytes `json:"headerWithoutPow"`
}

// parsedHeader holds what Verify needs from a serialized header.
type parsedHeader struct {
	version uint8
	nBits   uint32
	height  uint32
	without []byte // the bytes without the PoW solution
	nonce   [8]byte
}

// parse reads a serialized header as HeaderSerializer.parse does, up to the
// PoW solution, whose nonce it takes for versions 2 and later.
func (h *rawHeader) parse(t testing.TB) parsedHeader {
	t.Helper()
	var p parsedHeader
	fail := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("header %s at height %d: %v", h.ID, h.Height, err)
		}
	}
	r := wire.NewReader(h.Bytes)
	var err error
	p.version, err = r.Byte("version")
	fail(err)
	fail(r.Skip(32+32+32+33, "parentId, adProofsRoot, transactionsRoot, stateRoot"))
	_, err = r.U64("timestamp")
	fail(err)
	fail(r.Skip(32, "extensionRoot"))
	nb, err := r.Fixed(4, "nBits")
	fail(err)
	p.nBits = binary.BigEndian.Uint32(nb)
	p.height, err = r.U32("height")
	fail(err)
	fail(r.Skip(3, "votes"))
	if p.version > 1 {
		n, err := r.Byte("new fields size")
		fail(err)
		fail(r.Skip(int(n), "new fields"))
	}
	p.without = r.Since(0)
	if p.version > 1 {
		fail(r.Skip(33, "pk"))
		nonce, err := r.Fixed(8, "nonce")
		fail(err)
		copy(p.nonce[:], nonce)
		fail(r.Done("v2 header"))
	}
	return p
}
