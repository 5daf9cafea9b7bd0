package api

import (
	"time"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/version"
	"github.com/async-emission/auditor/rules"
)

// Status is the store's status as JSON: the output of `auditor status
// --json` and, with the daemon's counters added, of GET /api/v1/status.
type Status struct {
	Empty           bool        `json:"empty"`
	TipHeight       uint32      `json:"tip_height"`
	TipID           ergo.Digest `json:"tip_id"`
	Headers         int64       `json:"headers"`
	OrphanedHeaders int64       `json:"orphaned_headers"`
	Transactions    int64       `json:"transactions"`
	Boxes           int64       `json:"boxes"`
	UnspentBoxes    int64       `json:"unspent_boxes"`
	Spends          int64       `json:"spends"`
	DataInputReads  int64       `json:"data_input_reads"`
	StateDigest     ergo.Digest `json:"state_digest"`
	// Verdicts counts the verdicts by protocol, then class.
	Verdicts map[string]map[rules.Class]*VerdictCounts `json:"verdicts"`
	// EventsWritten counts the events ever written to the outbox;
	// OutboxPending those not yet acknowledged by NATS.
	EventsWritten int64 `json:"events_written"`
	OutboxPending int64 `json:"outbox_pending"`
	// TrustRoot is the header the stored chain was checked from; null
	// before the first block (or the checkpoint's bootstrap).
	TrustRoot *TrustRoot `json:"trust_root"`
	// Protocols are how far each protocol's history reaches, by name.
	Protocols []ProtocolStatus `json:"protocols"`

	// Build is the daemon's build (GET /api/v1/status only).
	Build *version.Info `json:"build,omitempty"`
	// The daemon's counters, when it runs the part that keeps them.
	Chain   *ChainStatus  `json:"chain,omitempty"`
	Publish *PublishStats `json:"publish,omitempty"`
	Reports *ReportStats  `json:"reports,omitempty"`
	// Conservation is the daemon's last conservation sweep, once it made
	// one.
	Conservation *ConservationStats `json:"conservation,omitempty"`
	// HA is this auditor's part in its group, when it runs with HA.
	HA *HAStatus `json:"ha,omitempty"`
}

// HAStatus is an auditor's part in its group (README.md, High
// availability): its role, and who holds the lease under which epoch.
type HAStatus struct {
	ID string `json:"id"`
	// Role is "leader" or "standby"; "unknown" when auditor status cannot
	// read the lease (Error says why).
	Role string `json:"role"`
	// Leader is the id of the auditor holding the lease and Epoch the
	// lease's epoch; null when nobody holds it (or it cannot be read).
	Leader *string `json:"leader"`
	Epoch  *uint64 `json:"epoch"`
	// The daemon's own: since when it leads, how often it took and lost
	// the lease, the last stream message it read, the outbox events it
	// did not publish itself, its comparisons of its chain with the
	// stream.
	Since           *time.Time `json:"since,omitempty"`
	Takeovers       uint64     `json:"takeovers"`
	Losses          uint64     `json:"losses"`
	StreamSeq       *uint64    `json:"stream_seq,omitempty"`
	Superseded      *uint64    `json:"superseded,omitempty"`
	Reconciliations *uint64    `json:"reconciliations,omitempty"`
	Error           string     `json:"error,omitempty"`
}

// TrustRoot is the store's trust root in a Status: the configured
// checkpoint ("checkpoint"), the first block connected ("first_block"), or
// where the header rules were first checked on a store written before them
// ("upgrade").
type TrustRoot struct {
	Height  uint32      `json:"height"`
	ID      ergo.Digest `json:"id"`
	Kind    string      `json:"kind"`
	Network string      `json:"network"`
	SetAt   time.Time   `json:"set_at"`
}

// ProtocolStatus is how far one protocol's history reaches: the height its
// verdicts and lineages are complete to, and, for one added to a store
// with blocks (or rescanned), its backfill.
type ProtocolStatus struct {
	Name string `json:"name"`
	// State is active (configured), inactive (removed from the
	// configuration: its rows kept, no longer judged) or pruned.
	State       string `json:"state"`
	StartHeight uint32 `json:"start_height,omitempty"`
	// Cursor is the height its history is complete to.
	Cursor uint32 `json:"cursor"`
	// Backfilling: active and its cursor below the tip; RemainingBlocks
	// how many it lacks, Progress the share of its backfill done (1 once
	// its history reaches the tip, or for one judged from the start).
	Backfilling     bool    `json:"backfilling"`
	BackfillFrom    uint32  `json:"backfill_from,omitempty"`
	RemainingBlocks uint32  `json:"remaining_blocks"`
	Progress        float64 `json:"progress"`
	// Generation counts the times its history was begun again (rescans);
	// its verdicts' message ids end in -g<generation> above 0.
	Generation int `json:"generation"`
	// The daemon's backfill under way: its pace and the time left at that
	// pace.
	BlocksPerSecond *float64 `json:"blocks_per_second,omitempty"`
	TimeLeftSeconds *float64 `json:"time_left_seconds,omitempty"`
}

// protocolStatuses are the histories of a store at tip as a Status shows
// them.
func protocolStatuses(hs []db.ProtocolHistory, tip uint32) []ProtocolStatus {
	out := make([]ProtocolStatus, 0, len(hs))
	for _, h := range hs {
		p := ProtocolStatus{Name: h.Name, State: string(h.State), StartHeight: h.StartHeight, Cursor: h.Cursor,
			Backfilling: h.Backfilling(tip), BackfillFrom: h.BackfillFrom, Generation: h.Generation, Progress: 1}
		if p.Backfilling {
			p.RemainingBlocks = tip - h.Cursor
			if h.BackfillFrom > 0 && h.BackfillFrom <= tip {
				p.Progress = float64(h.Cursor+1-min(h.BackfillFrom, h.Cursor+1)) / float64(tip+1-h.BackfillFrom)
			} else {
				p.Progress = 0
			}
		}
		out = append(out, p)
	}
	return out
}

// VerdictCounts counts one protocol's verdicts on one class of box.
type VerdictCounts struct {
	Verified int64                  `json:"verified"`
	Invalid  int64                  `json:"invalid"`
	Reasons  map[rules.Reason]int64 `json:"reasons"` // invalid verdicts by reason code
}

// ChainStatus is the follower's view of the chain in a Status.
type ChainStatus struct {
	NodeHeight         *uint32    `json:"node_height"` // null before the node's first answer
	Lag                *uint32    `json:"lag"`         // node height − tip height; null when the node height is not known
	BlocksConnected    uint64     `json:"blocks_connected"`
	BlocksDisconnected uint64     `json:"blocks_disconnected"`
	Reorgs             uint64     `json:"reorgs"`
	DeepestReorg       uint32     `json:"deepest_reorg"`
	NodeErrors         uint64     `json:"node_errors"`
	LastConnectedAt    *time.Time `json:"last_connected_at"`
	// Refusals counts what the node offered and the auditor refused, by
	// the rule broken; Withheld the branches whose blocks it did not serve.
	Refusals map[string]uint64 `json:"refusals"`
	Withheld uint64            `json:"withheld"`
}

// NewStatus returns the JSON form of the store's status st, with the
// outbox counts of db.Store.OutboxCounts.
func NewStatus(st db.Status, eventsWritten, outboxPending int64) Status {
	return Status{
		Empty: st.Empty, TipHeight: st.TipHeight, TipID: st.TipID,
		Headers: st.Headers, OrphanedHeaders: st.OrphanedHeaders, Transactions: st.Transactions,
		Boxes: st.Boxes, UnspentBoxes: st.UnspentBoxes, Spends: st.Spends, DataInputReads: st.DataInputReads,
		StateDigest: st.StateDigest, Verdicts: countVerdicts(st.Verdicts),
		EventsWritten: eventsWritten, OutboxPending: outboxPending, TrustRoot: trustRoot(st.TrustRoot),
		Protocols: protocolStatuses(st.Protocols, st.TipHeight),
	}
}

func trustRoot(r *db.TrustRoot) *TrustRoot {
	if r == nil {
		return nil
	}
	return &TrustRoot{Height: r.Height, ID: r.ID, Kind: string(r.Kind), Network: r.Network, SetAt: r.SetAt}
}

// countVerdicts nests the store's verdict counts by protocol and class.
func countVerdicts(cs []db.VerdictCount) map[string]map[rules.Class]*VerdictCounts {
	out := map[string]map[rules.Class]*VerdictCounts{}
	for _, c := range cs {
		if out[c.Protocol] == nil {
			out[c.Protocol] = map[rules.Class]*VerdictCounts{}
		}
		vc := out[c.Protocol][c.Class]
		if vc == nil {
			vc = &VerdictCounts{Reasons: map[rules.Reason]int64{}}
			out[c.Protocol][c.Class] = vc
		}
		switch {
		case c.Reason != "":
			vc.Reasons[c.Reason] += c.Count
		case c.Verdict == rules.StatusVerified:
			vc.Verified += c.Count
		default:
			vc.Invalid += c.Count
		}
	}
	return out
}

// chainStatus is c as a Status shows it, for a store at tip (when
// hasTip).
func chainStatus(c ChainStats, tip uint32, hasTip bool) *ChainStatus {
	out := &ChainStatus{BlocksConnected: c.Connected, BlocksDisconnected: c.Disconnected, Reorgs: c.Reorgs,
		DeepestReorg: c.DeepestReorg, NodeErrors: c.NodeErrors, Refusals: map[string]uint64{}, Withheld: c.Withheld}
	for r, n := range c.Refusals {
		out.Refusals[r] = n
	}
	if c.NodeHeight > 0 {
		out.NodeHeight = &c.NodeHeight
		lag := lag(c.NodeHeight, tip, hasTip)
		out.Lag = &lag
	}
	if !c.LastConnectedAt.IsZero() {
		t := c.LastConnectedAt.UTC()
		out.LastConnectedAt = &t
	}
	return out
}

// lag is how many blocks a store at tip (none: !hasTip) is behind the
// node's height; 0 when it is not behind.
func lag(node, tip uint32, hasTip bool) uint32 {
	if !hasTip {
		tip = 0
	}
	if tip >= node {
		return 0
	}
	return node - tip
}
