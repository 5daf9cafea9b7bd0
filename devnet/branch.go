package devnet

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/autolykos"
)

// Branch is a competing branch the devnet can show in place of its final
// chain (ShowBranch), for tests of a scanner's header checks and fork
// choice: valid in every respect but the one asked for.
type Branch struct {
	// Fork is the final block it builds on; Length how many blocks it has
	// above it. Every branch has the final chain's timestamps, so the same
	// difficulty at each height: one no longer than the final chain shown
	// above Fork carries no more work.
	Fork   uint32
	Length int
	// Break is the rule its last block breaks; "" breaks none. It is one
	// of BreakableRules.
	Break consensus.Rule
	// Withhold serves the branch's headers (chain slices, /blocks/at) but
	// not its blocks, until ServeBranch.
	Withhold bool
}

// BreakableRules are the rules a Branch's last block can break, and how:
//   - RuleDifficulty: it is mined at difficulty 1, below the 2 required;
//   - RuleTimestamp: it has its parent's timestamp;
//   - RuleFuture: it is dated an hour ahead of the machine's clock;
//   - RuleVersion: it has block version 5, newer than the rules know;
//   - RuleVotes: it votes for one parameter twice;
//   - RulePoW: its nonce does not solve the puzzle;
//   - RuleDoubleSpend: its last transaction spends its first one's first
//     input again;
//   - RuleCreationHeight: its first output is created a block above it;
//   - RuleAmounts: its last transaction's outputs hold 2^63 nanoERG.
var BreakableRules = []consensus.Rule{consensus.RuleDifficulty, consensus.RuleTimestamp, consensus.RuleFuture,
	consensus.RuleVersion, consensus.RuleVotes, consensus.RulePoW,
	consensus.RuleDoubleSpend, consensus.RuleCreationHeight, consensus.RuleAmounts}

// forgeryFor is how seal breaks rule.
func forgeryFor(rule consensus.Rule, parent func() *headerRecord) (*forgery, error) {
	switch rule {
	case "":
		return nil, nil
	case consensus.RuleDifficulty:
		return &forgery{edit: func(h *ergo.Header) { h.NBits = autolykos.EncodeCompactBits(big.NewInt(1)) }}, nil
	case consensus.RuleTimestamp:
		return &forgery{edit: func(h *ergo.Header) { h.Timestamp = parent().timestamp }}, nil
	case consensus.RuleFuture:
		return &forgery{edit: func(h *ergo.Header) { h.Timestamp = uint64(time.Now().Add(time.Hour).UnixMilli()) }}, nil
	case consensus.RuleVersion:
		return &forgery{edit: func(h *ergo.Header) { h.Version = 5 }}, nil
	case consensus.RuleVotes:
		return &forgery{edit: func(h *ergo.Header) { h.Votes = [3]byte{1, 1, 0} }}, nil
	case consensus.RulePoW:
		return &forgery{spoilPoW: true}, nil
	case consensus.RuleDoubleSpend:
		return &forgery{body: func(bd *body, _ uint32) {
			tx := &bd.txs[len(bd.txs)-1]
			tx.Inputs = append(slices.Clip(tx.Inputs), bd.txs[0].Inputs[0])
			relink(tx)
		}}, nil
	case consensus.RuleCreationHeight:
		return &forgery{body: func(bd *body, height uint32) {
			tx := &bd.txs[0]
			tx.Outputs = slices.Clone(tx.Outputs)
			tx.Outputs[0].CreationHeight = height + 1
			relink(tx)
		}}, nil
	case consensus.RuleAmounts:
		return &forgery{body: func(bd *body, _ uint32) {
			tx := &bd.txs[len(bd.txs)-1]
			tx.Outputs = append(slices.Clone(tx.Outputs), tx.Outputs[0])
			tx.Outputs[0].Value, tx.Outputs[len(tx.Outputs)-1].Value = 1<<62, 1<<62
			relink(tx)
		}}, nil
	}
	return nil, fmt.Errorf("devnet: a branch cannot break rule %q (see BreakableRules)", rule)
}

// relink links a changed transaction's outputs to it: its new id, their
// places.
func relink(tx *ergo.Transaction) {
	id := tx.ComputeID()
	for i := range tx.Outputs {
		tx.Outputs[i].TxID, tx.Outputs[i].Index = id, uint16(i)
	}
}

// testStream seeds the streams of the i-th branch shown (reorg alternates
// use their height, always below it).
func testStream(i int) uint32 { return 1<<31 | uint32(i) }

// ShowBranch builds b and makes it the visible best chain, in place of the
// final chain (or of another branch), and returns its tip's id. The final
// chain is generated up to b.Fork first. Step, or ShowFinal, shows the
// final chain again as it was.
func (d *Devnet) ShowBranch(ctx context.Context, b Branch) (ergo.Digest, error) {
	d.genMu.Lock()
	defer d.genMu.Unlock()
	if b.Fork < 1 || int(b.Fork) > d.cfg.Blocks || b.Length < 1 || b.Length > MaxReorgDepth {
		return ergo.Digest{}, fmt.Errorf("devnet: a branch on block %d of %d with %d blocks (1 … %d)", b.Fork, d.cfg.Blocks, b.Length, MaxReorgDepth)
	}
	if err := d.extend(ctx, b.Fork); err != nil {
		return ergo.Digest{}, err
	}
	d.mu.RLock()
	a := &altBranch{fork: b.Fork, event: b.Fork + uint32(b.Length), stream: testStream(len(d.alts)), test: true, withhold: b.Withhold}
	a.bodyStream = a.stream
	d.mu.RUnlock()
	forge, err := forgeryFor(b.Break, func() *headerRecord {
		if len(a.headers) > 0 {
			return &a.headers[len(a.headers)-1]
		}
		return d.finalRecord(a.fork)
	})
	if err != nil {
		return ergo.Digest{}, err
	}
	a.forge = forge
	if _, err := d.buildBranch(ctx, a); err != nil {
		return ergo.Digest{}, err
	}
	d.mu.Lock()
	d.alts = append(d.alts, a)
	for i := range a.headers {
		d.index[a.headers[i].id] = blockRef{height: a.fork + 1 + uint32(i), alt: len(d.alts) - 1}
	}
	d.mu.Unlock()
	d.show(view{height: a.event, alt: len(d.alts) - 1})
	tip := a.headers[len(a.headers)-1].id
	d.log.Info().Uint32("fork", a.fork).Int("length", b.Length).Str("breaks", string(b.Break)).Bool("withheld", b.Withhold).
		Str("tip", tip.String()).Msg("showing a test branch")
	return tip, nil
}

// ServeBranch serves the blocks of the branches shown with Withhold.
func (d *Devnet) ServeBranch() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.alts {
		a.withhold = false
	}
}

// ShowFinal shows the final chain again, up to the highest final block
// shown before.
func (d *Devnet) ShowFinal() {
	d.genMu.Lock()
	defer d.genMu.Unlock()
	d.showFinal()
}

// showFinal is ShowFinal; the caller holds genMu.
func (d *Devnet) showFinal() {
	d.mu.RLock()
	h := d.finalShown
	d.mu.RUnlock()
	d.show(view{height: h, alt: -1})
}
