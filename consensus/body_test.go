package consensus_test

import (
	"errors"
	"testing"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/internal/fixtures"
)

// block decodes a mainnet fixture block and verifies it.
func block(t *testing.T, name string) *ergo.FullBlock {
	t.Helper()
	b, err := ergo.DecodeBlock(fixtures.Read(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := b.Verify(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// TestMainnetBlocksKeepTheBodyRules: every real block of the fixtures,
// among them one of 46 transactions and 649 outputs, holds the rules.
func TestMainnetBlocksKeepTheBodyRules(t *testing.T) {
	for _, name := range fixtures.Glob(t, "blocks/mainnet_*.json") {
		if err := consensus.CheckTransactions(block(t, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestBodyRules breaks each rule in a real block (the ids no longer match,
// which is FullBlock.VerifyBody's to find, not this check's).
func TestBodyRules(t *testing.T) {
	cases := []struct {
		name  string
		rule  consensus.Rule
		apply func(b *ergo.FullBlock)
	}{
		{"a box spent by two transactions", consensus.RuleDoubleSpend, func(b *ergo.FullBlock) {
			b.Transactions[2].Inputs[0].BoxID = b.Transactions[1].Inputs[0].BoxID
		}},
		{"a box spent twice by one transaction", consensus.RuleDoubleSpend, func(b *ergo.FullBlock) {
			tx := &b.Transactions[1]
			tx.Inputs = append(tx.Inputs, tx.Inputs[0])
		}},
		{"an output created above the block", consensus.RuleCreationHeight, func(b *ergo.FullBlock) {
			b.Transactions[1].Outputs[0].CreationHeight = b.Header.Height + 1
		}},
		{"ERG beyond 64 bits", consensus.RuleAmounts, func(b *ergo.FullBlock) {
			tx := &b.Transactions[1]
			tx.Outputs = append(tx.Outputs, tx.Outputs[0])
			tx.Outputs[0].Value, tx.Outputs[1].Value = 1<<62, 1<<62
		}},
		{"a token beyond 64 bits", consensus.RuleAmounts, func(b *ergo.FullBlock) {
			tx := &b.Transactions[1]
			most, one := tx.Outputs[0], tx.Outputs[0]
			most.Tokens = []sigma.Token{{ID: [32]byte{1}, Amount: 1<<63 - 1}}
			one.Tokens = []sigma.Token{{ID: [32]byte{1}, Amount: 1}}
			tx.Outputs = append(tx.Outputs, most, one)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := block(t, "blocks/mainnet_1000003.json")
			c.apply(b)
			err := consensus.CheckTransactions(b)
			if !errors.Is(err, c.rule) {
				t.Fatalf("%v, want the %s rule", err, c.rule)
			}
			var re *consensus.RuleError
			if !errors.As(err, &re) || re.Height != b.Header.Height || re.ID != b.Header.TrustedID() {
				t.Fatalf("%v does not name the block", err)
			}
		})
	}
}
