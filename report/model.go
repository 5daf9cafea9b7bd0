package report

import (
	"fmt"
	"math/big"
	"time"

	"github.com/async-emission/auditor/ergo"
)

// Schema is the value of a report's "schema" field; it changes when a field
// changes meaning or goes away (new fields may appear without a change).
const Schema = "async-emission-auditor/report/v1"

// Report is one audit report: the JSON file is this value, and the HTML
// file renders it. The fields' comments document them.
type Report struct {
	Schema      string           `json:"schema"`
	GeneratedAt time.Time        `json:"generated_at"`
	TimeZone    string           `json:"time_zone"`
	Period      Period           `json:"period"`
	Chain       ChainStatus      `json:"chain"`
	Summary     Summary          `json:"summary"`
	Protocols   []ProtocolReport `json:"protocols"`
}

// Period is what "the period" of a report covers: the verdicts made at
// heights FromHeight to ToHeight, the blocks connected since the last ok
// report (whose time is FromTime) up to ToTime.
type Period struct {
	FromHeight uint32     `json:"from_height"`
	ToHeight   uint32     `json:"to_height"`
	FromTime   *time.Time `json:"from_time"` // null for the first report
	ToTime     time.Time  `json:"to_time"`
	First      bool       `json:"first"` // no earlier ok report: the period is the whole stored chain
}

// Chain is the follower's view of the chain, which the caller fills in
// when it runs a report: a running auditor from its follower's statistics,
// `auditor report` not at all (the zero Chain). The tip a report describes
// is always the store's, read with everything else.
type Chain struct {
	// Following is true when a follower filled the fields below.
	Following       bool
	NodeHeight      uint32  // the node's full height at the follower's last check
	TipHeight       uint32  // the follower's tip when it filled the struct
	Reorgs          uint64  // reorgs the follower went through since it started
	DeepestReorg    uint32  // the deepest of them, in blocks
	BlocksPerSecond float64 // connected blocks per second, as the caller measures it
}

// ChainStatus is the report's "chain" object. The node fields are null
// when no follower was running.
type ChainStatus struct {
	Empty           bool         `json:"empty"`
	TipHeight       uint32       `json:"tip_height"`
	TipID           *ergo.Digest `json:"tip_id"`
	TipTime         *time.Time   `json:"tip_time"`
	Following       bool         `json:"following"`
	NodeHeight      *uint32      `json:"node_height"`
	Lag             *uint32      `json:"lag"`
	Reorgs          *uint64      `json:"reorgs"`
	DeepestReorg    *uint32      `json:"deepest_reorg"`
	BlocksPerSecond *float64     `json:"blocks_per_second"`
}

// Summary is the gist of a report: its "summary" object, the summary
// recorded in the database, and what an Announcer announces.
type Summary struct {
	Time      time.Time `json:"time"`
	Period    Period    `json:"period"`
	TipHeight uint32    `json:"tip_height"`
	// Conserved is true when every protocol's conservation sweep passed.
	Conserved bool `json:"conserved"`
	// FailingLineages and MisplacedParticipantBoxes count the sweeps'
	// findings over every protocol.
	FailingLineages           int `json:"failing_lineages"`
	MisplacedParticipantBoxes int `json:"misplaced_participant_boxes"`
	Lineages                  int `json:"lineages"`
	// Verdicts and Invalid count the period's verdicts; the AllTime ones
	// every stored verdict.
	Verdicts        int64 `json:"verdicts"`
	Invalid         int64 `json:"invalid"`
	VerdictsAllTime int64 `json:"verdicts_all_time"`
	InvalidAllTime  int64 `json:"invalid_all_time"`
	// Files are the report's file names (JSON, then HTML), without their
	// directory.
	Files []string `json:"files"`
	// NewFailingLineages and NewMisplacedParticipantBoxes count, over
	// every protocol, the lineages that stopped conserving and the boxes
	// newly holding misplaced participant tokens since the last report
	// (everything failing, for the first); ChangesKnown is false when the
	// last report did not record its findings (an earlier version made
	// it), and then they are 0.
	NewFailingLineages           int  `json:"new_failing_lineages"`
	NewMisplacedParticipantBoxes int  `json:"new_misplaced_participant_boxes"`
	ChangesKnown                 bool `json:"changes_known"`
}

// ProtocolReport is what a report says about one [[protocol]].
type ProtocolReport struct {
	Name               string      `json:"name"`
	ParticipantTokenID ergo.Digest `json:"participant_token_id"`
	AsyncSupply        Amount      `json:"async_supply"`
	// Templates are the protocol's template keys with their hashes, each
	// in the convention the configuration writes it in (PROTOCOL.md §2.2):
	// {"emission_template": "sha256:<hex>", "action[0].emitted_template":
	// "blake2b256:<hex>", …}.
	Templates map[string]string `json:"templates"`
	// Actions are the protocol's [[protocol.action]] names, in the
	// configuration's order; empty for a protocol without actions.
	Actions []string `json:"actions"`
	// Changes is what changed since the last report.
	Changes      Changes      `json:"changes"`
	Conservation Conservation `json:"conservation"`
	Verdicts     VerdictStats `json:"verdicts"`
	// Invalid lists the period's invalid verdicts in chain order; when
	// InvalidTotal is larger the list was cut (Config.MaxInvalid).
	Invalid      []InvalidBox  `json:"invalid"`
	InvalidTotal int64         `json:"invalid_total"`
	Lineages     []Lineage     `json:"lineages"`
	Heights      []HeightRange `json:"heights"`
}

// Changes is what changed in a protocol since the last ok report: the
// invalid verdicts of the period (all of them new), and the conservation
// findings that appeared or went away between that report's sweep and
// this one's.
type Changes struct {
	// Since is the last ok report's time; null for the first report, for
	// which everything it finds is new.
	Since *time.Time `json:"since"`
	// Known is false when the last report did not record what it found (an
	// earlier version made it): the lists below are then empty, not
	// computed.
	Known bool `json:"known"`
	// NewInvalid counts the period's invalid verdicts.
	NewInvalid int64 `json:"new_invalid"`
	// StoppedConserving are the lineages (async token ids) failing
	// conservation now that did not at the last report; ConservingAgain
	// those that failed then and do not now (a fork undid what failed).
	StoppedConserving []ergo.Digest `json:"stopped_conserving"`
	ConservingAgain   []ergo.Digest `json:"conserving_again"`
	// NewlyMisplaced are the live boxes holding misplaced participant
	// tokens now that did not at the last report; NoLongerMisplaced those
	// that did then and do not now (spent, or forked away).
	NewlyMisplaced    []ergo.Digest `json:"newly_misplaced"`
	NoLongerMisplaced []ergo.Digest `json:"no_longer_misplaced"`
}

// Conservation is the sweep of PROTOCOL.md §5 over the stored state.
type Conservation struct {
	OK              bool             `json:"ok"`
	LineagesChecked int              `json:"lineages_checked"`
	FailingLineages []LineageFailure `json:"failing_lineages"`
	Participant     ParticipantSweep `json:"participant_tokens"`
}

// The problems a lineage can have.
const (
	// ProblemBadMint: the lineage's journal minted another amount than
	// async_supply (or nothing).
	ProblemBadMint = "bad_mint"
	// ProblemUnbalanced: the async token live boxes hold plus what was
	// burnt is not what was minted: tokens appeared or vanished.
	ProblemUnbalanced = "unbalanced"
)

// LineageFailure is a lineage that breaks conservation: held + burnt is
// not async_supply, because the mint was not (bad_mint), or because tokens
// appeared or vanished since (unbalanced), or both.
type LineageFailure struct {
	TokenID   ergo.Digest `json:"token_id"`
	HolderBox ergo.Digest `json:"holder_box"`
	Problems  []string    `json:"problems"`
	Minted    Amount      `json:"minted"`
	Held      Amount      `json:"held"`
	Burnt     Amount      `json:"burnt"`
	// Difference is held + burnt − async_supply.
	Difference Amount `json:"difference"`
	Broken     bool   `json:"broken"`
	Closed     bool   `json:"closed"`
}

// ParticipantSweep is where the live participant tokens are.
type ParticipantSweep struct {
	Live          Amount         `json:"live"`
	InFunnel      Amount         `json:"in_funnel"`
	InEmission    Amount         `json:"in_emission"`
	InParticipant Amount         `json:"in_participant"`
	Misplaced     Amount         `json:"misplaced"`
	Boxes         int            `json:"boxes"`
	MisplacedList []MisplacedBox `json:"misplaced_boxes"`
}

// The reasons a box's participant tokens are misplaced.
const (
	// MisplacedUnclassified: the protocol gave the box no class.
	MisplacedUnclassified = "unclassified"
	// MisplacedClass: its class is neither funnel, emission nor participant.
	MisplacedClass = "wrong_class"
	// MisplacedEmissionAmount: an emission box holding other than exactly 1.
	MisplacedEmissionAmount = "emission_amount"
)

// MisplacedBox is a live box holding participant tokens where PROTOCOL.md
// §5 allows none.
type MisplacedBox struct {
	BoxID   ergo.Digest `json:"box_id"`
	Height  uint32      `json:"height"`
	Value   Amount      `json:"value"` // the box's value, nanoERG
	Amount  Amount      `json:"amount"`
	Class   string      `json:"class"`   // "" when unclassified
	Verdict string      `json:"verdict"` // its created verdict, "" when unclassified
	Problem string      `json:"problem"`
}

// VerdictStats are the verdict counts of the period and of all time.
type VerdictStats struct {
	Period  Counts `json:"period"`
	AllTime Counts `json:"all_time"`
}

// Counts counts verdicts. ByClass has every class of PROTOCOL.md §3 and
// ByReason every reason code of §4 (with 0 when none), plus any other found
// in the store. ByAction counts the verdicts on results (emitted boxes) by
// their action: every [[protocol.action]] of the protocol (with 0 when
// none), plus any other found in the store; results of no action are not
// in it.
type Counts struct {
	Total    int64                 `json:"total"`
	Verified int64                 `json:"verified"`
	Invalid  int64                 `json:"invalid"`
	Spent    int64                 `json:"spent"` // of Total: second verdicts on spent emission boxes
	ByClass  map[string]ClassCount `json:"by_class"`
	ByReason map[string]int64      `json:"by_reason"`
	ByAction map[string]ClassCount `json:"by_action"`
}

// ClassCount is the verdicts of one class.
type ClassCount struct {
	Verified int64 `json:"verified"`
	Invalid  int64 `json:"invalid"`
}

// InvalidBox is an invalid verdict.
type InvalidBox struct {
	BoxID   ergo.Digest  `json:"box_id"`
	Kind    string       `json:"kind"`
	Class   string       `json:"class"`
	Height  uint32       `json:"height"`
	TxID    ergo.Digest  `json:"tx_id"`
	TxIndex int          `json:"tx_index"`
	BlockID ergo.Digest  `json:"block_id"`
	Lineage *ergo.Digest `json:"lineage"`
	Action  string       `json:"action,omitempty"` // a result's action
	Reasons []Reason     `json:"reasons"`
	// Value is the box's value in nanoERG; absent when the store does not
	// hold the box.
	Value Amount `json:"value,omitempty"`
}

// Reason is a reason code with its sentence.
type Reason struct {
	Code     string `json:"code"`
	Sentence string `json:"sentence"`
}

// Lineage is an emission lineage's state.
type Lineage struct {
	TokenID ergo.Digest `json:"token_id"`
	// HolderBox is the lineage's current emission box, which holds the
	// participant token (the last one, spent, once closed).
	HolderBox ergo.Digest `json:"holder_box"`
	Balance   Amount      `json:"balance"`
	// Emitted is minted − balance − burnt: what has left the emission
	// contract and was not burnt, the lineage's tokens in circulation.
	Emitted            Amount `json:"emitted"`
	Burnt              Amount `json:"burnt"`
	Minted             Amount `json:"minted"`
	Held               Amount `json:"held"`
	FirstHeight        uint32 `json:"first_height"`
	LastActivityHeight uint32 `json:"last_activity_height"`
	Steps              int64  `json:"steps"`
	Broken             bool   `json:"broken"`
	Closed             bool   `json:"closed"`
	Conserved          bool   `json:"conserved"`
}

// HeightRange counts the verdicts made at heights From to To.
type HeightRange struct {
	From     uint32 `json:"from"`
	To       uint32 `json:"to"`
	Verified int64  `json:"verified"`
	Invalid  int64  `json:"invalid"`
}

// Amount is an exact token amount, written in JSON as a decimal string
// (amounts reach 2^63, beyond what a JSON number keeps exactly in most
// readers). It may be negative (Difference).
type Amount string

// amount renders a big integer.
func amount(v *big.Int) Amount {
	if v == nil {
		return "0"
	}
	return Amount(v.String())
}

// Big parses the amount; a malformed one is an error.
func (a Amount) Big() (*big.Int, error) {
	v, ok := new(big.Int).SetString(string(a), 10)
	if !ok {
		return nil, fmt.Errorf("report: amount %q is not a decimal integer", string(a))
	}
	return v, nil
}
