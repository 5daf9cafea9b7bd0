package consensus

import (
	"fmt"
	"math/bits"

	"github.com/async-emission/auditor/ergo"
)

// The block body rules: what the reference node checks of a block's
// transactions without the UTXO set, among the rules no soft fork can
// switch off (mayBeDisabled = false in its ValidationRules). What the
// decoder already refuses is not repeated here: a transaction without
// inputs or outputs or with more than 32,767 of them, a negative or
// oversized amount, a token amount of zero, more than 122 tokens in a box.
const (
	// RuleAmounts: the ERG of a transaction's outputs, and each token's
	// amount over them, add up within a signed 64-bit integer (txOutputSum,
	// txAssetsInOneBox).
	RuleAmounts Rule = "amounts"
	// RuleDoubleSpend: no box is spent twice in a block, by one transaction
	// (txInputsUnique) or by two (the second removal from the UTXO set
	// fails: fbOperationFailed).
	RuleDoubleSpend Rule = "double_spend"
	// RuleCreationHeight: no output is created at a height above its
	// block's (txFuture).
	RuleCreationHeight Rule = "creation_height"
)

// bodyRules are the rules of a block's body rather than of its header.
var bodyRules = map[Rule]bool{RuleAmounts: true, RuleDoubleSpend: true, RuleCreationHeight: true}

// CheckTransactions checks a block's transactions against the body rules
// and returns the first rule broken, as a *RuleError naming the block (by
// the header's id) and the transaction; nil when they hold. The block's
// ids and roots are FullBlock.VerifyBody's to check.
func CheckTransactions(b *ergo.FullBlock) error {
	h := &b.Header
	broken := func(rule Rule, tx *ergo.Transaction, format string, args ...any) error {
		return &RuleError{Rule: rule, Height: h.Height, ID: h.TrustedID(),
			Detail: fmt.Sprintf("transaction %s: ", tx.TrustedID()) + fmt.Sprintf(format, args...)}
	}
	spent := make(map[ergo.Digest]struct{}, len(b.Transactions)*2)
	for i := range b.Transactions {
		tx := &b.Transactions[i]
		for _, in := range tx.Inputs {
			if _, twice := spent[in.BoxID]; twice {
				return broken(RuleDoubleSpend, tx, "box %s is spent a second time in the block", in.BoxID)
			}
			spent[in.BoxID] = struct{}{}
		}
		var value uint64
		var tokens map[[32]byte]uint64
		for k := range tx.Outputs {
			out := &tx.Outputs[k]
			if out.CreationHeight > h.Height {
				return broken(RuleCreationHeight, tx, "output %d is created at height %d, above the block's", k, out.CreationHeight)
			}
			if value = addAmount(value, out.Value); value == overflow {
				return broken(RuleAmounts, tx, "the outputs' ERG add up beyond a signed 64-bit integer")
			}
			for _, t := range out.Tokens {
				if tokens == nil {
					tokens = map[[32]byte]uint64{}
				}
				if tokens[t.ID] = addAmount(tokens[t.ID], t.Amount); tokens[t.ID] == overflow {
					return broken(RuleAmounts, tx, "token %x: the outputs' amounts add up beyond a signed 64-bit integer", t.ID)
				}
			}
		}
	}
	return nil
}

// overflow marks a sum beyond the largest signed 64-bit amount.
const overflow = ^uint64(0)

// addAmount adds two amounts of at most 2^63-1 each, or returns overflow.
func addAmount(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 || s > 1<<63-1 {
		return overflow
	}
	return s
}
