// Package consensus holds the header rules of Ergo's consensus that can be
// checked without the UTXO set: the difficulty each height requires (the
// node's difficulty adjustment before and after EIP-37), the link to the
// parent, the timestamp, the block version, the votes, the proof of work
// against the required target, and the fork choice by cumulative work; and
// the few rules of a block's transactions that need no UTXO set either
// (CheckTransactions).
//
// The reference is the Ergo node (ergoplatform/ergo): DifficultyAdjustment
// and DifficultySerializer (ergo-core, org.ergoplatform.mining.difficulty),
// HeadersProcessor.requiredDifficultyAfter and its HeaderValidator,
// ErgoStateContext's vote checks, and ErgoTransaction's validation with
// ValidationRules. This package re-implements them; it
// shares no code with the node.
//
// Chain parameters come from the auditor's configuration (Mainnet, Testnet,
// Devnet), never from the node: a node cannot talk the auditor into an
// easier chain.
//
// Every rule a header breaks is a *RuleError naming the rule, the header's
// height and id; errors.Is(err, consensus.RuleDifficulty) tells which.
package consensus
