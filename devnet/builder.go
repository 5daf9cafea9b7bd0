package devnet

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/ergo/wire"
)

// ErrInvalidTx is wrapped by the error BlockBuilder.Add returns for a
// transaction that breaks a rule of Ergo's the devnet enforces.
var ErrInvalidTx = errors.New("devnet: invalid transaction")

// minValuePerByte is mainnet's minimum box value per serialized byte.
const minValuePerByte = 360

// proofKind is the spending proof an input carries. The auditor does not
// check proofs, so a signature is random bytes of a Schnorr proof's size.
type proofKind uint8

const (
	proofNone      proofKind = iota // the script reduces to true: an empty proof
	proofSignature                  // a proveDlog proof
)

// spend is one input of a transaction being added.
type spend struct {
	box   *Box
	proof proofKind
	ext   []ergo.ContextVar
}

// output is one output of a transaction being added, with what the
// generator needs to know to spend it later.
type output struct {
	sigma.BoxCandidate
	kind   boxKind
	owner  int
	unlock uint32
	price  uint64
}

// builder assembles one block's transactions over a state, which it
// updates as each transaction is added: a later transaction may spend an
// earlier one's outputs, as on mainnet.
type builder struct {
	g      *generator
	st     *state
	height uint32
	rng    *rand.Rand
	enc    encoder
	miner  int // the user who mines the block
	txs    []ergo.Transaction
	fees   []*Box // fee outputs of this block, collected by its last transaction

	oracleUpdated bool
}

// fail records a generator fault; the block is then abandoned.
func (b *builder) fail(err error) {
	if b.enc.err == nil {
		b.enc.err = err
	}
}

// add validates and appends a transaction, then updates the state: the
// inputs are spent, the tracked outputs become spendable. Nothing changes
// when it returns an error.
func (b *builder) add(ins []spend, data []*Box, outs []output) ([]*Box, error) {
	if err := b.check(ins, data, outs); err != nil {
		return nil, fmt.Errorf("%w at height %d: %v", ErrInvalidTx, b.height, err)
	}
	tx := ergo.Transaction{Inputs: make([]ergo.Input, len(ins)), Outputs: make([]ergo.Box, len(outs))}
	for i, in := range ins {
		tx.Inputs[i] = ergo.Input{BoxID: in.box.ID, Extension: in.ext}
		if in.proof == proofSignature {
			tx.Inputs[i].Proof = randomBytes(b.rng, schnorrProofSize)
		}
	}
	if len(data) > 0 {
		tx.DataInputs = make([]ergo.Digest, len(data))
		for i, d := range data {
			tx.DataInputs[i] = d.ID
		}
	}
	for i := range outs {
		tx.Outputs[i].BoxCandidate = outs[i].BoxCandidate
	}
	id := tx.ComputeID()
	boxes := make([]*Box, len(outs))
	for i := range tx.Outputs {
		o := &tx.Outputs[i]
		o.TxID, o.Index = id, uint16(i)
		boxes[i] = &Box{Box: *o, ID: o.ComputeID(), kind: outs[i].kind, owner: outs[i].owner, unlock: outs[i].unlock, price: outs[i].price}
	}
	for _, in := range ins {
		if in.box.kind == kindFee {
			i := slices.Index(b.fees, in.box)
			b.fees = slices.Delete(b.fees, i, i+1)
		} else {
			b.st.remove(in.box)
		}
	}
	for _, nb := range boxes {
		if nb.kind == kindFee {
			b.fees = append(b.fees, nb)
		} else {
			b.st.add(nb)
		}
	}
	b.txs = append(b.txs, tx)
	return boxes, nil
}

// check enforces the rules of Ergo that a generated transaction could break:
// live and distinct inputs, live data inputs, the value balance, token
// conservation (a transaction may mint one token, whose id is its first
// input's id, and may burn tokens), output limits and creation heights.
func (b *builder) check(ins []spend, data []*Box, outs []output) error {
	if len(ins) == 0 || len(outs) == 0 {
		return fmt.Errorf("%d inputs and %d outputs: a transaction needs both", len(ins), len(outs))
	}
	var in, out uint64
	var carry uint64
	var tokensIn []sigma.Token
	for i, s := range ins {
		if s.box == nil {
			return fmt.Errorf("input %d: no box", i)
		}
		if !b.spendable(s.box) {
			return fmt.Errorf("input %d: box %s is not unspent", i, s.box.ID)
		}
		for _, prev := range ins[:i] {
			if prev.box == s.box {
				return fmt.Errorf("input %d: box %s is spent twice", i, s.box.ID)
			}
		}
		if len(s.ext) > 255 {
			return fmt.Errorf("input %d: %d context variables, at most 255", i, len(s.ext))
		}
		for j, v := range s.ext {
			if slices.ContainsFunc(s.ext[:j], func(w ergo.ContextVar) bool { return w.Key == v.Key }) {
				return fmt.Errorf("input %d: context variable %d is given twice", i, v.Key)
			}
		}
		in, carry = bits.Add64(in, s.box.Value, carry)
		var ok bool
		if tokensIn, ok = addTokens(tokensIn, s.box.Tokens); !ok {
			return errors.New("input token amounts overflow a signed 64-bit sum")
		}
	}
	if carry != 0 {
		return errors.New("input value overflows")
	}
	for i, d := range data {
		if d == nil || !b.st.live(d) {
			return fmt.Errorf("data input %d: not an unspent box", i)
		}
		if slices.ContainsFunc(ins, func(s spend) bool { return s.box == d }) {
			return fmt.Errorf("data input %d: box %s is also spent", i, d.ID)
		}
	}
	var tokensOut []sigma.Token
	for i, o := range outs {
		switch {
		case o.CreationHeight > b.height:
			return fmt.Errorf("output %d: creation height %d is above the block's %d", i, o.CreationHeight, b.height)
		case len(o.Tokens) > ergo.MaxTokens:
			return fmt.Errorf("output %d: %d tokens, at most %d", i, len(o.Tokens), ergo.MaxTokens)
		case len(o.Registers) > sigma.MaxRegisters:
			return fmt.Errorf("output %d: %d registers, at most %d", i, len(o.Registers), sigma.MaxRegisters)
		case len(o.ErgoTree) == 0:
			return fmt.Errorf("output %d: no ErgoTree", i)
		}
		for j, t := range o.Tokens {
			if t.Amount == 0 || t.Amount > 1<<63-1 {
				return fmt.Errorf("output %d: token %d: amount %d is not in 1 … 2^63-1", i, j, t.Amount)
			}
		}
		box := sigma.Box{BoxCandidate: o.BoxCandidate, Index: uint16(i)} // the size does not depend on the transaction id
		if size := boxSize(&box); o.Value < minValuePerByte*uint64(size) {
			return fmt.Errorf("output %d: value %d is below the minimum %d for its %d bytes", i, o.Value, minValuePerByte*uint64(size), size)
		}
		out, carry = bits.Add64(out, o.Value, carry)
		var ok bool
		if tokensOut, ok = addTokens(tokensOut, o.Tokens); !ok {
			return errors.New("output token amounts overflow a signed 64-bit sum")
		}
	}
	if carry != 0 {
		return errors.New("output value overflows")
	}
	if in != out {
		return fmt.Errorf("inputs hold %d nanoERG, outputs %d: they must be equal", in, out)
	}
	minted := ins[0].box.ID
	for _, t := range tokensOut {
		if [32]byte(minted) == t.ID {
			continue
		}
		if have := tokenAmount(tokensIn, t.ID); t.Amount > have {
			return fmt.Errorf("token %x: outputs hold %d, inputs %d", t.ID, t.Amount, have)
		}
	}
	return nil
}

// spendable reports whether box may be spent in the block being built.
func (b *builder) spendable(box *Box) bool {
	if box.kind == kindFee {
		return slices.Contains(b.fees, box)
	}
	if box.unlock > b.height {
		return false
	}
	return b.st.live(box)
}

// boxSize is the size of a box's standalone serialization, which mainnet's
// minimum box value is proportional to.
func boxSize(box *sigma.Box) int {
	w := wire.NewWriter(make([]byte, 0, 256))
	if err := box.Write(w); err != nil {
		return 0
	}
	return w.Len()
}

// addTokens adds tokens to a running total, keeping ids in order of first
// appearance. It reports false when an amount would exceed 2^63-1, the
// largest a token amount (a JVM Long) can be.
func addTokens(total []sigma.Token, tokens []sigma.Token) ([]sigma.Token, bool) {
	for _, t := range tokens {
		i := slices.IndexFunc(total, func(x sigma.Token) bool { return x.ID == t.ID })
		if i < 0 {
			total = append(total, sigma.Token{ID: t.ID})
			i = len(total) - 1
		}
		sum, carry := bits.Add64(total[i].Amount, t.Amount, 0)
		if carry != 0 || sum > 1<<63-1 {
			return total, false
		}
		total[i].Amount = sum
	}
	return total, true
}

func tokenAmount(tokens []sigma.Token, id [32]byte) uint64 {
	for _, t := range tokens {
		if t.ID == id {
			return t.Amount
		}
	}
	return 0
}

// randomBytes returns n bytes from rng.
func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	fillRandom(rng, b)
	return b
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := rng.Uint64()
		for j := i; j < len(b) && j < i+8; j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
}
