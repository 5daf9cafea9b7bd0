package consensus

import (
	"fmt"
	"math/big"
	"time"

	"github.com/async-emission/auditor/ergo"
)

// Params are the consensus parameters of one network that the header rules
// need. The values for mainnet and testnet are the reference node's
// (mainnet.conf, testnet.conf and application.conf of ergoplatform/ergo);
// devnet's suit a simulated chain that must be cheap to mine.
type Params struct {
	Network string // "mainnet", "testnet" or "devnet"

	// BlockInterval is the block time the difficulty aims at.
	BlockInterval time.Duration
	// EpochLength is the number of blocks between two difficulty
	// recalculations before EIP-37; UseLastEpochs the number of past
	// epochs the recalculation reads.
	EpochLength   uint32
	UseLastEpochs uint32
	// InitialDifficulty is the genesis block's.
	InitialDifficulty *big.Int

	// Version2Height is where block version 2 (Autolykos v2) became
	// mandatory: headers below it have version 1, headers at or above it a
	// later one; the two heights around it require Version2Difficulty.
	// Zero on a network without that hard fork.
	Version2Height     uint32
	Version2Difficulty *big.Int

	// EIP37Height is the first height whose difficulty follows EIP-37,
	// recalculated every EIP37EpochLength blocks; zero on a network
	// without EIP-37 (the reference applies it on mainnet only).
	EIP37Height      uint32
	EIP37EpochLength uint32

	// VotingLength is the length of a voting epoch: the block version
	// (a voted parameter) changes only at the first block of one.
	VotingLength uint32
	// MaxVersion is the highest block version this build knows. A header
	// of a later version is refused: its rules are not ones the auditor
	// can check, so it must be upgraded first.
	MaxVersion uint8

	// GenesisID, when set, is the only block accepted at height 1.
	GenesisID ergo.Digest
}

// MaxTimeDrift is how far ahead of the auditor's clock a header's
// timestamp may be: ten block intervals, as on the node.
func (p *Params) MaxTimeDrift() time.Duration { return 10 * p.BlockInterval }

// eip37 reports whether the difficulty of height follows EIP-37.
func (p *Params) eip37(height uint32) bool {
	return p.EIP37Height > 0 && height >= p.EIP37Height
}

// epochLength is the difficulty epoch in force for the block at height.
func (p *Params) epochLength(height uint32) uint32 {
	if p.eip37(height) {
		return p.EIP37EpochLength
	}
	return p.EpochLength
}

// ContextDepth is how far below a height the difficulty rules may read:
// a header whose parent is at height h needs the headers down to h −
// ContextDepth(h+1).
func (p *Params) ContextDepth(height uint32) uint32 {
	return p.UseLastEpochs * p.epochLength(height)
}

func hexInt(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("consensus: bad constant " + s)
	}
	return v
}

func mustDigest(s string) ergo.Digest {
	d, err := ergo.ParseDigest(s)
	if err != nil {
		panic("consensus: bad constant " + s)
	}
	return d
}

// Mainnet returns the parameters of Ergo's main network.
func Mainnet() Params {
	return Params{
		Network:            "mainnet",
		BlockInterval:      2 * time.Minute,
		EpochLength:        1024,
		UseLastEpochs:      8,
		InitialDifficulty:  hexInt("011765000000"),
		Version2Height:     417_792,
		Version2Difficulty: hexInt("6f98d5000000"),
		EIP37Height:        844_673,
		EIP37EpochLength:   128,
		VotingLength:       1024,
		MaxVersion:         4,
		GenesisID:          mustDigest("b0244dfc267baca974a4caee06120321562784303a8a688976ae56170e4d175b"),
	}
}

// Testnet returns the parameters of Ergo's public test network (no
// Autolykos v2 hard fork by height and no EIP-37: the reference applies
// both to mainnet only).
func Testnet() Params {
	return Params{
		Network:           "testnet",
		BlockInterval:     45 * time.Second,
		EpochLength:       128,
		UseLastEpochs:     8,
		InitialDifficulty: big.NewInt(1),
		VotingLength:      128,
		MaxVersion:        4,
	}
}

// Devnet returns the parameters of the auditor's simulated chain: mainnet's
// algorithm with short epochs (both the pre-EIP-37 regression and EIP-37,
// from height 513) and a difficulty of a few hashes a block.
func Devnet() Params {
	return Params{
		Network:           "devnet",
		BlockInterval:     2 * time.Minute,
		EpochLength:       32,
		UseLastEpochs:     8,
		InitialDifficulty: big.NewInt(2),
		EIP37Height:       513,
		EIP37EpochLength:  16,
		VotingLength:      128,
		MaxVersion:        4,
	}
}

// Networks lists the network names ForNetwork knows.
var Networks = []string{"mainnet", "testnet", "devnet"}

// ForNetwork returns the parameters of a network by name.
func ForNetwork(name string) (Params, error) {
	switch name {
	case "mainnet":
		return Mainnet(), nil
	case "testnet":
		return Testnet(), nil
	case "devnet":
		return Devnet(), nil
	}
	return Params{}, fmt.Errorf("consensus: unknown network %q (mainnet, testnet or devnet)", name)
}
