package devnet

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/ergo/wire"
)

// Scenario adds transactions of its own to every block: a protocol
// deployment and its users, on top of the background traffic.
//
// Block is called once for each block the devnet builds, after the
// emission transaction (and at height 1 the treasury's) and before the
// background traffic. The devnet rebuilds blocks from checkpoints whenever
// it no longer holds them, and builds alternate branches from the final
// chain's state, so Block must be a deterministic function of what its
// BlockBuilder offers: its height, its random source and the boxes. A
// Scenario keeps its state on chain — in the boxes it keeps (Output.Keep)
// — and never in itself.
type Scenario interface {
	Block(b *BlockBuilder) error
}

// BlockBuilder is a Scenario's access to the block being built.
type BlockBuilder struct {
	b      *builder
	rng    *rand.Rand
	record func(Expectation) // nil unless Devnet.Expectations is collecting
}

// Height is the height of the block being built.
func (s *BlockBuilder) Height() uint32 { return s.b.height }

// Rand is the Scenario's random source for this block, seeded from the
// devnet's seed, the branch and the height.
func (s *BlockBuilder) Rand() *rand.Rand { return s.rng }

// Users is the number of users, the holders of the traffic's wallets.
func (s *BlockBuilder) Users() int { return numUsers }

// User returns user u's public key and P2PK tree.
func (s *BlockBuilder) User(u int) (pk sigma.GroupElement, tree []byte) {
	return s.b.g.users[u].pk, s.b.g.users[u].tree
}

// Wallet returns the boxes user u can spend now: P2PK boxes, and matured
// miner rewards and vaults. The background traffic spends them too: use
// them in this block or expect them gone in the next.
func (s *BlockBuilder) Wallet(u int) []*Box { return s.b.walletOf(u) }

// Kept returns the live boxes the Scenario kept, in the devnet's order
// (which is deterministic but not creation order).
func (s *BlockBuilder) Kept() []*Box { return slices.Clone(s.b.st.kept) }

// Tx is a transaction for BlockBuilder.Add.
type Tx struct {
	Inputs     []Input
	DataInputs []*Box
	Outputs    []Output
}

// Input spends a box. Signed gives it a proveDlog-sized spending proof
// (random bytes: the auditor does not check proofs); otherwise the proof is
// empty, as for a script that reduces to true.
type Input struct {
	Box       *Box
	Extension []ergo.ContextVar // context variables, in serialized order
	Signed    bool
}

// Output is an output to create. One with Keep is listed by Kept until
// spent. One not kept that pays FeeTree is a fee, which the block's last
// transaction collects for the miner, as on mainnet; one that pays a
// user's P2PK tree joins that user's wallet; any other is not tracked, and
// can never be spent.
type Output struct {
	sigma.BoxCandidate
	Keep bool
}

// Add validates tx against the rules of Ergo the devnet enforces and adds
// it to the block: the inputs are Wallet and Kept boxes, unspent and each
// spent once; data inputs are unspent; the input and output values are
// equal; token amounts do not grow except for a token minted with the first
// input's id; outputs have an ErgoTree and registers that decode, at most 6
// registers, at most 122 tokens of positive amounts, at least 360 nanoERG
// per serialized byte, and a creation height at most the block's; context
// variables are constants with distinct ids. It returns the created boxes;
// an error wraps ErrInvalidTx and leaves the block unchanged.
func (s *BlockBuilder) Add(tx Tx) ([]*Box, error) {
	ins := make([]spend, len(tx.Inputs))
	for i, in := range tx.Inputs {
		if in.Box != nil {
			switch in.Box.kind {
			case kindWallet, kindReward, kindVault, kindKept:
			default:
				return nil, fmt.Errorf("%w at height %d: input %d: box %s is not a wallet box or a kept one", ErrInvalidTx, s.b.height, i, in.Box.ID)
			}
		}
		ins[i] = spend{box: in.Box, ext: in.Extension}
		if in.Signed {
			ins[i].proof = proofSignature
		}
	}
	for i, in := range tx.Inputs {
		for _, v := range in.Extension {
			if _, err := sigma.ParseConstant(v.Value); err != nil {
				return nil, fmt.Errorf("%w at height %d: input %d: context variable %d: %v", ErrInvalidTx, s.b.height, i, v.Key, err)
			}
		}
	}
	outs := make([]output, len(tx.Outputs))
	for i, o := range tx.Outputs {
		if err := wellFormed(&o.BoxCandidate); err != nil {
			return nil, fmt.Errorf("%w at height %d: output %d: %v", ErrInvalidTx, s.b.height, i, err)
		}
		outs[i] = output{BoxCandidate: o.BoxCandidate, kind: kindForeign, owner: -1}
		switch u, ok := s.b.g.userOf[string(o.ErgoTree)]; {
		case o.Keep:
			outs[i].kind = kindKept
		case bytes.Equal(o.ErgoTree, feeTree):
			outs[i].kind = kindFee
		case ok:
			outs[i].kind, outs[i].owner = kindWallet, u
		}
	}
	return s.b.add(ins, tx.DataInputs, outs)
}

// FeeTree returns mainnet's miner-fee contract, the tree transaction fees
// are paid to.
func FeeTree() []byte { return bytes.Clone(feeTree) }

// wellFormed checks what the devnet takes verbatim from a Scenario: the
// ErgoTree and the registers must read back, as a node (and the devnet's
// own checkpoints) will read them.
func wellFormed(c *sigma.BoxCandidate) error {
	if _, err := sigma.ParseErgoTree(c.ErgoTree); err != nil {
		return fmt.Errorf("ErgoTree: %v", err)
	}
	for i, reg := range c.Registers {
		r := wire.NewReader(reg)
		if _, err := sigma.ReadRegisterValue(r); err != nil {
			return fmt.Errorf("R%d: %v", 4+i, err)
		}
		if err := r.Done("register"); err != nil {
			return fmt.Errorf("R%d: %v", 4+i, err)
		}
	}
	return nil
}
