// Package address encodes and decodes Ergo addresses, the Base58 strings
// that wallets and explorers show for the ErgoTree guarding a box.
//
// An address is
//
//	Base58(prefix ‖ content ‖ checksum)
//
// where prefix = network + kind (one byte), checksum is the first 4 bytes
// of Blake2b-256(prefix ‖ content) and the content depends on the kind:
//
//	P2PK  the 33-byte public key of a tree that is exactly proveDlog(pk)
//	P2SH  the first 24 bytes of Blake2b-256 of a serialized script
//	P2S   the serialized ErgoTree itself
//
// The reference is ErgoAddressEncoder in sigmastate-interpreter
// (org.ergoplatform.ErgoAddress). An address is a presentation of a tree,
// not part of consensus: FromErgoTree follows sigmastate 6, the version of
// the current Ergo node (see FromErgoTree about P2SH).
//
// No function of this package panics on any input.
package address

import (
	"bytes"
	"fmt"

	"golang.org/x/crypto/blake2b"
)

// Network is the network half of an address prefix byte.
type Network byte

// The networks of ErgoAddressEncoder.
const (
	Mainnet Network = 0x00
	Testnet Network = 0x10
)

// String returns "mainnet", "testnet" or the byte in hexadecimal.
func (n Network) String() string {
	switch n {
	case Mainnet:
		return "mainnet"
	case Testnet:
		return "testnet"
	}
	return fmt.Sprintf("network(%#02x)", byte(n))
}

// Kind is the address type half of an address prefix byte.
type Kind byte

// The address types of ErgoAddressEncoder.
const (
	P2PK Kind = 1 // pay to public key
	P2SH Kind = 2 // pay to script hash
	P2S  Kind = 3 // pay to script
)

// String returns "P2PK", "P2SH", "P2S" or the byte in hexadecimal.
func (k Kind) String() string {
	switch k {
	case P2PK:
		return "P2PK"
	case P2SH:
		return "P2SH"
	case P2S:
		return "P2S"
	}
	return fmt.Sprintf("kind(%#02x)", byte(k))
}

// Sizes of the parts of an address.
const (
	// ScriptHashSize is the size of a P2SH content: 192 bits of
	// Blake2b-256.
	ScriptHashSize = 24
	// ChecksumSize is the size of the checksum that ends an address.
	ChecksumSize = 4
	// MaxTreeSize is the largest ErgoTree a box can hold
	// (SigmaConstants.MaxPropositionBytes), and so the largest P2S content.
	MaxTreeSize = 4096
)

// maxEncodedLen bounds the length of an address string: Base58 spells a
// byte in less than 1.3657 characters, and the longest address has
// 1 + MaxTreeSize + ChecksumSize bytes. Parse rejects longer strings before
// decoding them, so that its quadratic Base58 decoding stays cheap.
const maxEncodedLen = (1+MaxTreeSize+ChecksumSize)*13657/10000 + 1

// Address is a decoded Ergo address. Content is the 33-byte public key of a
// P2PK address, the 24-byte script hash of a P2SH address and the ErgoTree
// bytes of a P2S address.
type Address struct {
	Network Network
	Kind    Kind
	Content []byte
}

// p2pkTreePrefix starts the ErgoTree of a P2PK address: header 00 (version
// 0, no constant segregation, no size), then a SigmaProp constant (type 08)
// holding ProveDlog (cd) of the public key that follows.
var p2pkTreePrefix = []byte{0x00, 0x08, 0xcd}

// The ErgoTree of a P2SH address, as Pay2SHAddress.script serializes it in
// sigmastate 6 (header 00, constants not segregated), around the 24-byte
// script hash:
//
//	ea 02        SigmaAnd of 2 items
//	d1           BoolToSigmaProp
//	93           EQ
//	b4           Slice
//	cb           CalcBlake2b256
//	e4           OptionGet
//	e3 7e 0e     GetVar(126, Coll[Byte])
//	04 00        Int constant 0
//	04 30        Int constant 24 (ZigZag)
//	0e 18        Coll[Byte] constant of 24 bytes: the hash
//	d4 08 7e     DeserializeContext(SSigmaProp, 126)
//
// that is, sigmaProp(blake2b256(getVar[Coll[Byte]](126).get).slice(0, 24)
// == hash) && executeFromVar[SigmaProp](126).
var (
	p2shTreePrefix = []byte{0x00, 0xea, 0x02, 0xd1, 0x93, 0xb4, 0xcb, 0xe4, 0xe3, 0x7e, 0x0e, 0x04, 0x00, 0x04, 0x30, 0x0e, 0x18}
	p2shTreeSuffix = []byte{0xd4, 0x08, 0x7e}
)

// FromErgoTree returns the address of tree on network net (Mainnet or
// Testnet), as the reference's ErgoAddressEncoder.fromProposition:
//
//   - P2PK when tree is exactly 00 08 cd followed by a 33-byte public key
//     in a valid encoding (the reference cannot read the tree otherwise;
//     33 zero bytes, the point at infinity, are valid);
//   - P2SH when tree is exactly the Pay2SHAddress script of sigmastate 6,
//     which reads the script from context variable 126;
//   - P2S, with a copy of the tree, otherwise.
//
// Other software writes older P2SH scripts: sigmastate 5 and Fleet read
// variable 1 (…e4 e3 01 0e… d4 08 01), and sigma-rust's tree lacks the
// OptionGet. The Ergo node (sigmastate 6) shows boxes guarded by those as
// P2S, and so does FromErgoTree. Explorers built on older libraries show
// some of them as P2SH addresses; such an address still parses, but its
// ErgoTree is the sigmastate 6 script, not the tree of those boxes.
//
// For every tree of 1 to MaxTreeSize bytes (every tree a box can hold),
// FromErgoTree(tree, net).ErgoTree() equals tree and, for net Mainnet or
// Testnet, Parse accepts the address string and returns the same Address.
func FromErgoTree(tree []byte, net Network) Address {
	switch {
	case len(tree) == len(p2pkTreePrefix)+PublicKeySize && bytes.HasPrefix(tree, p2pkTreePrefix) &&
		checkPublicKey(tree[len(p2pkTreePrefix):]) == nil:
		return Address{Network: net, Kind: P2PK, Content: bytes.Clone(tree[len(p2pkTreePrefix):])}
	case len(tree) == len(p2shTreePrefix)+ScriptHashSize+len(p2shTreeSuffix) &&
		bytes.HasPrefix(tree, p2shTreePrefix) && bytes.HasSuffix(tree, p2shTreeSuffix):
		return Address{Network: net, Kind: P2SH, Content: bytes.Clone(tree[len(p2shTreePrefix) : len(p2shTreePrefix)+ScriptHashSize])}
	}
	return Address{Network: net, Kind: P2S, Content: bytes.Clone(tree)}
}

// Encode returns the address string of tree on network net:
// FromErgoTree(tree, net).String().
func Encode(tree []byte, net Network) string {
	return FromErgoTree(tree, net).String()
}

// ErgoTree returns the tree that a payment to a sends coins to: 00 08 cd ‖ pk
// for P2PK, the sigmastate 6 Pay2SHAddress script around the hash for P2SH
// (see FromErgoTree), a copy of the content for P2S. It returns nil if a
// does not pass Validate.
func (a Address) ErgoTree() []byte {
	if a.Validate() != nil {
		return nil
	}
	switch a.Kind {
	case P2PK:
		return append(bytes.Clone(p2pkTreePrefix), a.Content...)
	case P2SH:
		tree := make([]byte, 0, len(p2shTreePrefix)+ScriptHashSize+len(p2shTreeSuffix))
		tree = append(tree, p2shTreePrefix...)
		tree = append(tree, a.Content...)
		return append(tree, p2shTreeSuffix...)
	default:
		return bytes.Clone(a.Content)
	}
}

// String returns the Base58 address string. It encodes the fields as they
// are: for an Address that does not pass Validate, the result is a string
// that Parse rejects.
func (a Address) String() string {
	b := make([]byte, 0, 1+len(a.Content)+ChecksumSize)
	b = append(b, byte(a.Network)+byte(a.Kind))
	b = append(b, a.Content...)
	sum := blake2b.Sum256(b)
	return base58Encode(append(b, sum[:ChecksumSize]...))
}

// Parse decodes an address string, checking its Base58 alphabet, length,
// checksum, network, kind and content (see Validate). Errors wrap one of
// ErrBase58, ErrLength, ErrChecksum, ErrNetwork, ErrKind and ErrPublicKey.
// For every address it accepts, String returns s again.
func Parse(s string) (Address, error) {
	switch {
	case s == "":
		return Address{}, errorf(ErrLength, "empty address")
	case len(s) > maxEncodedLen:
		return Address{}, errorf(ErrLength, "%d characters, at most %d", len(s), maxEncodedLen)
	}
	b, err := base58Decode(s)
	if err != nil {
		return Address{}, err
	}
	if len(b) <= 1+ChecksumSize {
		return Address{}, errorf(ErrLength, "%d bytes: too short for a prefix, content and checksum", len(b))
	}
	body, checksum := b[:len(b)-ChecksumSize], b[len(b)-ChecksumSize:]
	if sum := blake2b.Sum256(body); !bytes.Equal(sum[:ChecksumSize], checksum) {
		return Address{}, errorf(ErrChecksum, "checksum %x, computed %x", checksum, sum[:ChecksumSize])
	}
	a := Address{
		Network: Network(body[0] & 0xf0),
		Kind:    Kind(body[0] & 0x0f),
		Content: body[1:len(body):len(body)],
	}
	if err := a.Validate(); err != nil {
		return Address{}, err
	}
	return a, nil
}

// Validate checks that a is an address Parse would return: a known network
// and kind, and a content of the right size (1 to MaxTreeSize bytes for
// P2S) that is, for P2PK, a valid public key encoding. It does not check
// that a P2S content is a well-formed ErgoTree.
func (a Address) Validate() error {
	switch a.Network {
	case Mainnet, Testnet:
	default:
		return errorf(ErrNetwork, "prefix network nibble %#02x", byte(a.Network))
	}
	switch a.Kind {
	case P2PK:
		return checkPublicKey(a.Content)
	case P2SH:
		if len(a.Content) != ScriptHashSize {
			return errorf(ErrLength, "P2SH content of %d bytes, want %d", len(a.Content), ScriptHashSize)
		}
	case P2S:
		if len(a.Content) == 0 || len(a.Content) > MaxTreeSize {
			return errorf(ErrLength, "P2S content of %d bytes, want 1 to %d", len(a.Content), MaxTreeSize)
		}
	default:
		return errorf(ErrKind, "address type %d", byte(a.Kind))
	}
	return nil
}
