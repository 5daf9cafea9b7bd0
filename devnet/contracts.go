package devnet

import (
	"encoding/binary"
	"encoding/hex"
	"math/big"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/ergo/wire"
)

// The ErgoTrees of the generated chain. The emission and fee contracts are
// mainnet's, byte for byte; the others are built here from templates whose
// parameters are segregated constants, so that boxes of one contract share
// a template hash whatever their parameters, as on mainnet.

// ErgoTree header bytes.
const (
	treeP2PK             = 0x00 // version 0, no flags: a bare proposition
	treeSegregated       = 0x10 // version 0, constants segregated
	treeSegregatedSized  = 0x18 // version 0, constants segregated, size given
	treeHeaderSizeFlag   = 0x08
	minerRewardDelay     = 720 // mainnet's MinerRewardDelay, in blocks
	schnorrProofSize     = 56  // a proveDlog spending proof
	genesisEmissionValue = 93_409_132_500_000_000
)

var (
	// emissionTree is mainnet's emission contract, which guards the box
	// every block's first transaction spends and recreates.
	emissionTree = mustHex("101004020e36100204a00b08cd0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798ea02d192a39a8cc7a7017300730110010204020404040004c0fd4f05808c82f5f6030580b8c9e5ae040580f882ad16040204c0944004c0f407040004000580f882ad16d19683030191a38cc7a7019683020193c2b2a57300007473017302830108cdeeac93a38cc7b2a573030001978302019683040193b1a5730493c2a7c2b2a573050093958fa3730673079973089c73097e9a730a9d99a3730b730c0599c1a7c1b2a5730d00938cc7b2a5730e0001a390c1a7730f")

	// feeTree is mainnet's miner-fee contract: transaction fees are paid
	// to it, and the block's last transaction collects them for the miner.
	feeTree = mustHex("1005040004000e36100204a00b08cd0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798ea02d192a39a8cc7a701730073011001020402d19683030193a38cc7b2a57300000193c2b2a57301007473027303830108cdeeac93b1a57304")
)

// Templates (root expressions) of the generated contracts; each refers to
// its parameters by ConstantPlaceholder (0x73 n).
var (
	// {HEIGHT >= SELF.creationInfo._1 + c0} && c1: mainnet's miner reward
	// contract (c0 = 720, c1 = the miner's key).
	minerRewardTemplate = []byte{0xea, 0x02, 0xd1, 0x92, 0xa3, 0x9a, 0x8c, 0xc7, 0xa7, 0x01, 0x73, 0x00, 0x73, 0x01}

	// {HEIGHT >= c0} && c1: a vault its owner can spend from a height on.
	vaultTemplate = []byte{0xea, 0x02, 0xd1, 0x92, 0xa3, 0x73, 0x00, 0x73, 0x01}

	// c0 || {OUTPUTS(c1).value >= c2 && OUTPUTS(c3).propositionBytes == c4}:
	// a sell order its seller (c0) can cancel and anybody can fill by
	// paying c2 to the seller's tree c4.
	orderTemplate = []byte{0xeb, 0x02, 0x73, 0x00, 0xd1, 0xed,
		0x92, 0xc1, 0xb2, 0xa5, 0x73, 0x01, 0x00, 0x73, 0x02,
		0x93, 0xc2, 0xb2, 0xa5, 0x73, 0x03, 0x00, 0x73, 0x04}

	// c0: an oracle box its operator (c0) republishes.
	oracleTemplate = []byte{0x73, 0x00}
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic("devnet: bad hex literal: " + err.Error())
	}
	return b
}

// p2pkTree is the tree of a P2PK address: proveDlog(pk) as a bare constant.
func p2pkTree(pk sigma.GroupElement) []byte {
	t := make([]byte, 0, 3+len(pk))
	t = append(t, treeP2PK, byte(sigma.TSigmaProp), 0xcd)
	return append(t, pk[:]...)
}

// secp256k1P is the order of the secp256k1 base field.
var secp256k1P, _ = new(big.Int).SetString("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f", 16)

// derivePoint derives a secp256k1 point from seed: the first hash in the
// chain H(seed ‖ counter) that is the x coordinate of a curve point (x < p
// and x³ + 7 a square mod p). The devnet needs public keys only: spending
// proofs are random bytes, which the auditor does not check.
func derivePoint(seed [32]byte) sigma.GroupElement {
	var buf [36]byte
	copy(buf[:], seed[:])
	seven := big.NewInt(7)
	for ctr := uint32(0); ; ctr++ {
		binary.BigEndian.PutUint32(buf[32:], ctr)
		x := ergo.Hash(buf[:])
		xi := new(big.Int).SetBytes(x[:])
		if xi.Cmp(secp256k1P) >= 0 {
			continue
		}
		rhs := new(big.Int).Exp(xi, big.NewInt(3), secp256k1P)
		rhs.Add(rhs, seven).Mod(rhs, secp256k1P)
		if big.Jacobi(rhs, secp256k1P) != 1 {
			continue
		}
		var g sigma.GroupElement
		g[0] = 0x02 | seed[0]&1 // either y works
		copy(g[1:], x[:])
		return g
	}
}

// encoder serializes constants and trees. Its error is sticky: the first
// failure is kept and every later call does nothing, so a block is built
// without checking each register and checked once at the end. Every value
// the generator encodes is well-typed, so a failure is a bug.
type encoder struct{ err error }

func (e *encoder) constant(t sigma.Type, v sigma.Value) []byte {
	if e.err != nil {
		return nil
	}
	b, err := sigma.Constant{Type: t, Value: v}.Bytes()
	if err != nil {
		e.err = err
	}
	return b
}

// Typed constants, as registers and context variables hold them.
func (e *encoder) long(v int64) []byte   { return e.constant(sigma.TLong, v) }
func (e *encoder) int(v int32) []byte    { return e.constant(sigma.TInt, v) }
func (e *encoder) bytes(b []byte) []byte { return e.constant(sigma.CollOf(sigma.TByte), b) }
func (e *encoder) group(g sigma.GroupElement) []byte {
	return e.constant(sigma.TGroupElement, g)
}
func (e *encoder) prop(pk sigma.GroupElement) []byte {
	return e.constant(sigma.TSigmaProp, sigma.ProveDlog{H: pk})
}

func (e *encoder) longs(vs ...int64) []byte {
	items := make([]sigma.Value, len(vs))
	for i, v := range vs {
		items[i] = v
	}
	return e.constant(sigma.CollOf(sigma.TLong), items)
}

// bytesLong is a (Coll[Byte], Long) pair.
func (e *encoder) bytesLong(b []byte, v int64) []byte {
	return e.constant(sigma.TupleOf(sigma.CollOf(sigma.TByte), sigma.TLong), sigma.Tuple{b, v})
}

// tree serializes an ErgoTree of the given header (segregated constants,
// optionally sized) from its template and constants.
func (e *encoder) tree(header byte, template []byte, consts ...sigma.Constant) []byte {
	if e.err != nil {
		return nil
	}
	body := wire.NewWriter(make([]byte, 0, 64))
	body.U32(uint32(len(consts)))
	for _, c := range consts {
		if err := sigma.WriteConstant(body, c); err != nil {
			e.err = err
			return nil
		}
	}
	body.Write(template)
	w := wire.NewWriter(make([]byte, 0, body.Len()+3))
	w.Byte(header)
	if header&treeHeaderSizeFlag != 0 {
		w.U32(uint32(body.Len()))
	}
	w.Write(body.Bytes())
	return w.Bytes()
}

func propConst(pk sigma.GroupElement) sigma.Constant {
	return sigma.Constant{Type: sigma.TSigmaProp, Value: sigma.ProveDlog{H: pk}}
}

func intConst(v int32) sigma.Constant { return sigma.Constant{Type: sigma.TInt, Value: v} }

// minerRewardTree is where a block's miner is paid: spendable by the miner
// minerRewardDelay blocks after the box was created.
func (e *encoder) minerRewardTree(pk sigma.GroupElement) []byte {
	return e.tree(treeSegregated, minerRewardTemplate, intConst(minerRewardDelay), propConst(pk))
}

// vaultTree locks a box for its owner until height unlock. It is the one
// sized tree (header 0x18) of the chain.
func (e *encoder) vaultTree(pk sigma.GroupElement, unlock uint32) []byte {
	return e.tree(treeSegregatedSized, vaultTemplate, intConst(int32(unlock)), propConst(pk))
}

// orderTree is a sell order: cancelled by the seller, or filled by paying
// price to the seller's P2PK tree in output 0.
func (e *encoder) orderTree(seller sigma.GroupElement, price uint64) []byte {
	return e.tree(treeSegregated, orderTemplate,
		propConst(seller),
		intConst(0),
		sigma.Constant{Type: sigma.TLong, Value: int64(price)},
		intConst(0),
		sigma.Constant{Type: sigma.CollOf(sigma.TByte), Value: p2pkTree(seller)},
	)
}

// oracleTree guards the oracle box its operator republishes.
func (e *encoder) oracleTree(operator sigma.GroupElement) []byte {
	return e.tree(treeSegregated, oracleTemplate, propConst(operator))
}
