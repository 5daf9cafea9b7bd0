package devnet

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/async-emission/auditor/ergo"
)

// The manifest: what a Scenario planted, and what an auditor of its protocol
// should conclude about each box. The vocabulary is PROTOCOL.md's.

// Box classes (PROTOCOL.md §3).
const (
	ClassState       = "state"
	ClassFunnel      = "funnel"
	ClassEmission    = "emission"
	ClassEmitted     = "emitted"
	ClassParticipant = "participant"
)

// Verdicts (PROTOCOL.md §4).
const (
	VerdictVerified = "verified"
	VerdictInvalid  = "invalid"
)

// Reason codes (PROTOCOL.md §4).
const (
	ReasonNoParticipantToken = "emission.no_participant_token"
	ReasonParticipantAmount  = "emission.participant_amount"
	ReasonAsyncTokenCount    = "emission.async_token_count"
	ReasonBadMint            = "emission.bad_mint"
	ReasonSupplyLeak         = "emission.supply_leak"
	ReasonNoBootstrapState   = "emission.no_bootstrap_state"
	ReasonNotFromFunnel      = "emission.not_from_funnel"
	ReasonOrphanToken        = "emission.orphan_token"
	ReasonLineageBreak       = "emission.lineage_break"
	ReasonInvalidParent      = "emission.invalid_parent"
	ReasonEscaped            = "emission.escaped"
	ReasonNotFromEmission    = "emitted.not_from_emission"
	ReasonInvalidEmission    = "emitted.invalid_emission"
	ReasonMissingDataInput   = "emitted.missing_data_input"
	ReasonStaleState         = "emitted.stale_state"
	// ReasonEmittedUnverifiedReference is emitted.unverified_reference; the
	// state update's code is ReasonUnverifiedReference.
	ReasonEmittedUnverifiedReference = "emitted.unverified_reference"
	ReasonWrongTemplate              = "emitted.wrong_template"
	ReasonUnknownToken               = "emitted.unknown_token"
	ReasonAmountMismatch             = "emitted.amount_mismatch"
	ReasonBadBootstrap               = "participant.bad_bootstrap"
	ReasonUnverifiedReference        = "sync.unverified_reference"
)

// Reasons lists every reason code of PROTOCOL.md §4, in its order.
func Reasons() []string {
	return []string{
		ReasonNoParticipantToken, ReasonParticipantAmount, ReasonAsyncTokenCount, ReasonBadMint,
		ReasonSupplyLeak, ReasonNoBootstrapState, ReasonNotFromFunnel, ReasonOrphanToken,
		ReasonLineageBreak, ReasonInvalidParent, ReasonEscaped,
		ReasonNotFromEmission, ReasonInvalidEmission, ReasonMissingDataInput, ReasonStaleState,
		ReasonEmittedUnverifiedReference, ReasonWrongTemplate, ReasonUnknownToken, ReasonAmountMismatch,
		ReasonBadBootstrap, ReasonUnverifiedReference,
	}
}

// VerdictKind tells the two verdicts a box can get apart.
type VerdictKind string

const (
	// VerdictCreated is the verdict every relevant box gets when the block
	// that creates it is connected.
	VerdictCreated VerdictKind = "created"
	// VerdictSpent is the second verdict an emission box gets from the block
	// that spends it: only emission.escaped is recorded so.
	VerdictSpent VerdictKind = "spent"
)

// Expectation is one verdict an auditor of the Scenario's protocol must
// reach on the final chain.
//
// Every box of a class (PROTOCOL.md §3) that the Scenario creates has
// exactly one expectation of Kind VerdictCreated; an emission box whose
// spend lets async tokens escape has a second one, of Kind VerdictSpent.
// Boxes of no class (changes, fees) have none.
type Expectation struct {
	// Kind is VerdictCreated for the verdict made when the box is created,
	// VerdictSpent for the one made when it is spent.
	Kind VerdictKind
	// BoxID is the box's id.
	BoxID ergo.Digest
	// TxID is the transaction that created the box (VerdictCreated) or
	// spent it (VerdictSpent).
	TxID ergo.Digest
	// Height is the height of the final block holding that transaction:
	// the block whose connection makes the verdict.
	Height uint32
	// Protocol is the name of the [[protocol]] section the box belongs to.
	Protocol string
	// Class is the box's class: ClassState, ClassFunnel, ClassEmission,
	// ClassEmitted or ClassParticipant.
	Class string
	// Verdict is VerdictVerified or VerdictInvalid.
	Verdict string
	// Reasons are the reason codes of an invalid verdict, sorted and
	// distinct; nil for a verified one.
	Reasons []string
	// Case names what made the box, for people reading a manifest: a valid
	// action (such as "bootstrap"), or "plant:" and the reason code the
	// planted case is about (its other boxes are listed under it too). It
	// is not part of the verdict.
	Case string
}

// Expect declares what an auditor should conclude about a box the Scenario
// created (or spent) in this block. The Height is set to the block's, the
// Reasons are sorted and the verdict derived from them: a verdict is
// VerdictInvalid exactly when it has reasons. Declarations are collected
// for Devnet.Expectations and otherwise cost nothing.
func (s *BlockBuilder) Expect(e Expectation) {
	if s.record == nil {
		return
	}
	e.Height = s.b.height
	e.Verdict = VerdictVerified
	if len(e.Reasons) > 0 {
		e.Reasons = slices.Compact(slices.Sorted(slices.Values(e.Reasons)))
		e.Verdict = VerdictInvalid
	} else {
		e.Reasons = nil
	}
	s.record(e)
}

// ErrHeight reports a height outside the final chain.
var ErrHeight = errors.New("devnet: height beyond the final chain")

// Expectations lists the expectations the Scenario declared for the final
// chain's blocks 1 to maxHeight, in block order and, within a block, in the
// order the Scenario declared them (its transactions' order). It generates
// the final chain that far if needed and replays it from the genesis state
// (no block is kept for it: a replay costs about what serving every block
// once does). Without a Scenario it returns nothing.
func (d *Devnet) Expectations(maxHeight uint32) ([]Expectation, error) {
	return d.ExpectationsContext(context.Background(), maxHeight)
}

// ExpectationsContext is Expectations with a context that can abort the
// generation and the replay.
func (d *Devnet) ExpectationsContext(ctx context.Context, maxHeight uint32) ([]Expectation, error) {
	if maxHeight > uint32(d.cfg.Blocks) {
		return nil, fmt.Errorf("%w: %d, the chain ends at %d", ErrHeight, maxHeight, d.cfg.Blocks)
	}
	if d.cfg.Scenario == nil || maxHeight == 0 {
		return nil, nil
	}
	if err := d.generateTo(ctx, maxHeight); err != nil {
		return nil, err
	}
	st, err := d.checkpointBelow(0)
	if err != nil {
		return nil, err
	}
	var out []Expectation
	record := func(e Expectation) { out = append(out, e) }
	for h := uint32(1); h <= maxHeight; h++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		bd, err := d.gen.build(st, h, finalBranch, d.finalID, record)
		if err != nil {
			return nil, err
		}
		d.mu.RLock()
		rec := d.final[h-1]
		d.mu.RUnlock()
		if err := sameBlock(&rec, bd); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// generateTo generates the final chain up to height.
func (d *Devnet) generateTo(ctx context.Context, height uint32) error {
	d.genMu.Lock()
	defer d.genMu.Unlock()
	return d.extend(ctx, height)
}

// stateAfter returns the generator's state after final block height,
// generating the chain that far if needed.
func (d *Devnet) stateAfter(ctx context.Context, height uint32) (*state, error) {
	if err := d.generateTo(ctx, height); err != nil {
		return nil, err
	}
	st, err := d.checkpointBelow(height)
	if err != nil {
		return nil, err
	}
	if _, err := d.replayFinal(st, height, false); err != nil {
		return nil, err
	}
	return st, nil
}
