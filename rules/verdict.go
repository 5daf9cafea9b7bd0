package rules

import (
	"slices"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
)

// Reason is a reason code of PROTOCOL.md §4: the promise a box breaks.
type Reason string

// The reason codes, in PROTOCOL.md §4's order.
const (
	ReasonNoParticipantToken Reason = "emission.no_participant_token"
	ReasonParticipantAmount  Reason = "emission.participant_amount"
	ReasonAsyncTokenCount    Reason = "emission.async_token_count"
	ReasonBadMint            Reason = "emission.bad_mint"
	ReasonSupplyLeak         Reason = "emission.supply_leak"
	ReasonNoBootstrapState   Reason = "emission.no_bootstrap_state"
	ReasonNotFromFunnel      Reason = "emission.not_from_funnel"
	ReasonOrphanToken        Reason = "emission.orphan_token"
	ReasonLineageBreak       Reason = "emission.lineage_break"
	ReasonInvalidParent      Reason = "emission.invalid_parent"
	ReasonEscaped            Reason = "emission.escaped"
	ReasonNotFromEmission    Reason = "emitted.not_from_emission"
	ReasonInvalidEmission    Reason = "emitted.invalid_emission"
	ReasonMissingDataInput   Reason = "emitted.missing_data_input"
	ReasonStaleState         Reason = "emitted.stale_state"
	// ReasonEmittedUnverifiedReference is emitted.unverified_reference, the
	// emitted box's counterpart of sync.unverified_reference
	// (ReasonUnverifiedReference).
	ReasonEmittedUnverifiedReference Reason = "emitted.unverified_reference"
	ReasonWrongTemplate              Reason = "emitted.wrong_template"
	ReasonUnknownToken               Reason = "emitted.unknown_token"
	ReasonAmountMismatch             Reason = "emitted.amount_mismatch"
	ReasonBadBootstrap               Reason = "participant.bad_bootstrap"
	ReasonUnverifiedReference        Reason = "sync.unverified_reference"
)

var reasonText = map[Reason]string{
	ReasonNoParticipantToken: "the emission box holds no participant token",
	ReasonParticipantAmount:  "the emission box holds a participant-token amount other than 1",
	ReasonAsyncTokenCount:    "the emission box holds no token, or more than one token, besides the participant token",
	ReasonBadMint:            "the bootstrap minted the async token with an amount other than the protocol's async supply",
	ReasonSupplyLeak:         "the bootstrap minted the async token but put some of it into another output",
	ReasonNoBootstrapState:   "the bootstrap did not read the protocol's state box as a data-input",
	ReasonNotFromFunnel:      "the bootstrap did not spend the funnel: the participant token came from elsewhere",
	ReasonOrphanToken:        "the transaction neither minted the async token nor spent the previous emission box of that token",
	ReasonLineageBreak:       "the box continues a lineage but changes the participant token or raises the async balance",
	ReasonInvalidParent:      "the emission box it continues had an invalid verdict",
	ReasonEscaped:            "the emission box was spent without a continuation and async tokens left the contract",
	ReasonNotFromEmission:    "the transaction that created it did not spend the current emission box of its token",
	ReasonInvalidEmission:    "the emission box it came from, or its lineage, is invalid",
	ReasonMissingDataInput:   "its transaction lacks a data-input that a requirement of its action (or emission_requires) asks for",
	ReasonStaleState:         "a required data-input is present but its register does not match (a stale state)",
	ReasonEmittedUnverifiedReference: "its transaction builds on another async result without proof: the result it reads is invalid, " +
		"or its emission box is not read with it",
	ReasonWrongTemplate:       "it has none of the protocol's emitted templates",
	ReasonUnknownToken:        "it has an emitted template but holds no async token of a known lineage",
	ReasonAmountMismatch:      "the emission transaction's outputs hold more or less async token than the emission balance went down by",
	ReasonBadBootstrap:        "a participant token left the funnel without a valid emission box being created",
	ReasonUnverifiedReference: "the state update read an async-emitted box without its emission box, or an invalid one",
}

// Reasons lists every reason code, in PROTOCOL.md §4's order.
func Reasons() []Reason {
	return []Reason{
		ReasonNoParticipantToken, ReasonParticipantAmount, ReasonAsyncTokenCount, ReasonBadMint,
		ReasonSupplyLeak, ReasonNoBootstrapState, ReasonNotFromFunnel, ReasonOrphanToken,
		ReasonLineageBreak, ReasonInvalidParent, ReasonEscaped,
		ReasonNotFromEmission, ReasonInvalidEmission, ReasonMissingDataInput, ReasonStaleState,
		ReasonEmittedUnverifiedReference, ReasonWrongTemplate, ReasonUnknownToken, ReasonAmountMismatch,
		ReasonBadBootstrap, ReasonUnverifiedReference,
	}
}

// Sentence is the reason in a sentence people read ("" for an unknown code).
func (r Reason) Sentence() string { return reasonText[r] }

// Known reports whether r is one of PROTOCOL.md's codes.
func (r Reason) Known() bool { _, ok := reasonText[r]; return ok }

// Classes lists the box classes, in PROTOCOL.md §3's order.
func Classes() []Class {
	return []Class{ClassState, ClassFunnel, ClassEmission, ClassEmitted, ClassParticipant}
}

// Kind tells a box's two possible verdicts apart.
type Kind string

const (
	// KindCreated is the verdict every classified box gets from the block
	// that creates it.
	KindCreated Kind = "created"
	// KindSpent is the second verdict an emission box gets from the block
	// that spends it when its async tokens escape (emission.escaped).
	KindSpent Kind = "spent"
)

// Verdict is the auditor's conclusion about one box for one protocol.
type Verdict struct {
	Protocol string
	Kind     Kind
	Class    Class
	BoxID    ergo.Digest
	// Reasons are sorted and distinct; none means the box is verified.
	Reasons []Reason
	// TxID is the transaction that created the box (KindCreated) or spent
	// it (KindSpent); TxIndex its position in the block.
	TxID    ergo.Digest
	TxIndex int
	// Lineage is the async token id of the emission lineage the box belongs
	// to, when it belongs to one.
	Lineage *ergo.Digest
	// Action is the kind of async action an emitted box is the result of:
	// the [[protocol.action]] whose emitted_template it has; "" for another
	// class or a result of no action.
	Action string
}

// Valid reports whether the verdict is "verified".
func (v *Verdict) Valid() bool { return len(v.Reasons) == 0 }

// Status is "verified" or "invalid".
func (v *Verdict) Status() string {
	if v.Valid() {
		return StatusVerified
	}
	return StatusInvalid
}

// The two verdicts.
const (
	StatusVerified = "verified"
	StatusInvalid  = "invalid"
)

// normalize sorts and deduplicates reasons; nil when there are none.
func normalize(rs []Reason) []Reason {
	if len(rs) == 0 {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(rs)))
}

// Known is what the rules know of a box created before the transaction
// being judged: its contents as stored, and the roles the protocols gave it.
type Known struct {
	ID        ergo.Digest
	Tokens    []sigma.Token
	Registers [][]byte // R4 onwards, serialized
	// Template is the sha256 template hash; HasTemplate is false when the
	// tree's constants do not parse. TemplateBlake2b is the blake2b256
	// one, known (HasBlake2b) only when some protocol names a template in
	// that convention (Engine.UsesBlake2b): it costs a hash per output.
	Template        ergo.Digest
	HasTemplate     bool
	TemplateBlake2b ergo.Digest
	HasBlake2b      bool
	Roles           []Role
}

// Role is the class one protocol gave a box, and whether the box's created
// verdict is invalid.
type Role struct {
	Protocol string
	Class    Class
	Invalid  bool
}

// Amount is how much of token the box holds.
func (k *Known) Amount(token ergo.Digest) uint64 {
	var n uint64
	for i := range k.Tokens {
		if k.Tokens[i].ID == token {
			n += k.Tokens[i].Amount
		}
	}
	return n
}

// Role returns the role protocol gave the box.
func (k *Known) Role(protocol string) (Role, bool) {
	for _, r := range k.Roles {
		if r.Protocol == protocol {
			return r, true
		}
	}
	return Role{}, false
}

// LineageKey names an emission lineage: its protocol and async token id.
type LineageKey struct {
	Protocol string
	Token    ergo.Digest
}

// Lineage is an emission lineage's state.
type Lineage struct {
	// Current is the lineage's current emission box: the root the bootstrap
	// created, or the last box that continued it. Once the lineage is
	// closed, the last one, spent.
	Current ergo.Digest
	// Broken: one of its emission boxes got an invalid verdict, the escaped
	// verdict included.
	Broken bool
	// Closed: its current box was spent and no output continued it.
	Closed bool
}

// Step is a change to a lineage made by one transaction: its state after,
// and the async tokens the transaction minted or burnt.
type Step struct {
	LineageKey
	TxID    ergo.Digest
	TxIndex int
	Lineage
	Minted uint64 // the supply minted, at the bootstrap
	Burnt  uint64 // tokens of the lineage the transaction's inputs held and its outputs do not
}

// Judgement is what the rules conclude from one block.
type Judgement struct {
	// Keep says which outputs the store keeps: Keep[i][j] for output j of
	// transaction i; a nil Keep[i] keeps none of transaction i's.
	Keep [][]bool
	// Verdicts, in block order.
	Verdicts []Verdict
	// Steps are the lineage changes, in block order.
	Steps []Step
}
