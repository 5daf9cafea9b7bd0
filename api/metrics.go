package api

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/internal/version"
	"github.com/async-emission/auditor/rules"
)

// The auditor's metrics. Those of a nil Config callback are left out; the
// node's height and the lag are left out until the node's height is known,
// and the timestamps until their event happened.
var (
	descStoreUp = prometheus.NewDesc("auditor_store_up",
		"1 when the last scrape read the store, 0 when a read failed (the store's metrics are then absent).", nil, nil)
	descTipHeight = prometheus.NewDesc("auditor_tip_height",
		"Height of the store's tip (0 while the store holds no block).", nil, nil)
	descVerdicts = prometheus.NewDesc("auditor_verdicts",
		"Stored verdicts by protocol, class of box and verdict (verified or invalid); every class and verdict of a configured protocol, zero included.",
		[]string{"protocol", "class", "verdict"}, nil)
	descReasons = prometheus.NewDesc("auditor_verdict_reasons",
		"Stored invalid verdicts carrying a reason code, by protocol and code (a verdict with two codes counts under each); every code of a configured protocol, zero included.",
		[]string{"protocol", "code"}, nil)
	descReadiness = prometheus.NewDesc("auditor_readiness_problems",
		"Problems each readiness check finds now, as /readyz lists them (0 for a check that passes): the auditor is ready when all are 0.",
		[]string{"check"}, nil)
	descOutboxPending = prometheus.NewDesc("auditor_outbox_pending_events",
		"Events in the outbox not yet acknowledged by NATS.", nil, nil)
	descEventsWritten = prometheus.NewDesc("auditor_outbox_events_written_total",
		"Events ever written to the outbox.", nil, nil)

	descNodeHeight = prometheus.NewDesc("auditor_node_height",
		"The node's full height at the follower's last check.", nil, nil)
	descLag = prometheus.NewDesc("auditor_lag_blocks",
		"How many blocks the store's tip is below the node's height.", nil, nil)
	descConnected = prometheus.NewDesc("auditor_blocks_connected_total",
		"Blocks connected since the start.", nil, nil)
	descDisconnected = prometheus.NewDesc("auditor_blocks_disconnected_total",
		"Blocks disconnected by reorgs since the start.", nil, nil)
	descReorgs = prometheus.NewDesc("auditor_reorgs_total",
		"Reorgs since the start.", nil, nil)
	descDeepestReorg = prometheus.NewDesc("auditor_reorg_depth_max_blocks",
		"Depth of the deepest reorg since the start.", nil, nil)
	descNodeErrors = prometheus.NewDesc("auditor_node_errors_total",
		"Syncs that failed because of the node (each retried).", nil, nil)
	descLastConnected = prometheus.NewDesc("auditor_last_block_connected_timestamp_seconds",
		"When the last block was connected, Unix time.", nil, nil)
	descRefusals = prometheus.NewDesc("auditor_node_refusals_total",
		`Headers and branches the node offered that the auditor refused, by the consensus rule they broke (rule="work": a branch without more work than the stored one).`,
		[]string{"rule"}, nil)
	descWithheld = prometheus.NewDesc("auditor_node_withheld_total",
		"Times the node named a branch with more work and did not serve its blocks (the stored chain was kept).", nil, nil)

	descPublished = prometheus.NewDesc("auditor_events_published_total",
		"Events acknowledged by JetStream, duplicates included.", nil, nil)
	descDuplicates = prometheus.NewDesc("auditor_events_duplicate_total",
		"Events JetStream acknowledged as duplicates of stored messages (republished).", nil, nil)
	descPublishErrors = prometheus.NewDesc("auditor_publish_errors_total",
		"Publish failures the relay backed off from (publish, ack timeout, outbox, stream).", nil, nil)
	descInFlight = prometheus.NewDesc("auditor_publish_in_flight_events",
		"Events published and not yet acknowledged.", nil, nil)
	descLastAck = prometheus.NewDesc("auditor_publish_last_ack_timestamp_seconds",
		"When JetStream last acknowledged an event, Unix time.", nil, nil)

	descConsLineages = prometheus.NewDesc("auditor_conservation_lineages",
		"Lineages the last conservation sweep checked, by protocol.", []string{"protocol"}, nil)
	descConsFailing = prometheus.NewDesc("auditor_conservation_failing_lineages",
		"Lineages that break conservation (held + burnt is not the async supply) at the last conservation sweep, by protocol.", []string{"protocol"}, nil)
	descConsMisplacedBoxes = prometheus.NewDesc("auditor_conservation_misplaced_participant_boxes",
		"Live boxes holding participant tokens where none may be (not the funnel, a participant box or an emission box holding exactly one) at the last conservation sweep, by protocol.", []string{"protocol"}, nil)
	descConsMisplacedTokens = prometheus.NewDesc("auditor_conservation_misplaced_participant_tokens",
		"Participant tokens those boxes hold, by protocol.", []string{"protocol"}, nil)
	descConsHeight = prometheus.NewDesc("auditor_conservation_tip_height",
		"The tip height the last conservation sweep read.", nil, nil)
	descConsCurrent = prometheus.NewDesc("auditor_conservation_current_timestamp_seconds",
		"When the last conservation sweep's result was last known to hold (the sweep, or a later check that the tip had not moved), Unix time.", nil, nil)
	descProtocolCursor = prometheus.NewDesc("auditor_protocol_cursor_height",
		"Height each protocol's history (verdicts, lineages) is complete to, by protocol and state (active, inactive, pruned).",
		[]string{"protocol", "state"}, nil)
	descProtocolRemaining = prometheus.NewDesc("auditor_protocol_backfill_remaining_blocks",
		"Blocks below the tip an active protocol's history still lacks (added later, or rescanned): 0 once the follower judges it.",
		[]string{"protocol"}, nil)
	descProtocolBackfillRate = prometheus.NewDesc("auditor_protocol_backfill_blocks_per_second",
		"Pace of a protocol's backfill under way since it began.", []string{"protocol"}, nil)

	descHALeader = prometheus.NewDesc("auditor_ha_leader",
		"1 while this auditor holds the lease of its group and publishes, 0 while it stands by.", nil, nil)
	descHAEpoch = prometheus.NewDesc("auditor_ha_epoch",
		"The epoch of the lease as this auditor last saw it (0: nobody holds it).", nil, nil)
	descHALeaderInfo = prometheus.NewDesc("auditor_ha_leader_info",
		"1, labelled with the id of the auditor holding the lease, while one does.", []string{"leader"}, nil)
	descHATakeovers = prometheus.NewDesc("auditor_ha_takeovers_total",
		"Times this auditor took the lease.", nil, nil)
	descHALosses = prometheus.NewDesc("auditor_ha_lease_losses_total",
		"Times this auditor lost the lease without giving it up (another took it, or it could not renew it in time).", nil, nil)
	descHAStreamSeq = prometheus.NewDesc("auditor_ha_stream_sequence",
		"The last message of the stream this auditor has read.", nil, nil)
	descHASuperseded = prometheus.NewDesc("auditor_ha_superseded_events_total",
		"Outbox events this auditor did not publish itself, since the start: a standby's, and those a leader found the stream to hold already.", nil, nil)
	descHAReconciliations = prometheus.NewDesc("auditor_ha_reconciliations_total",
		"Comparisons of this auditor's chain with the stream (at each takeover, and after each failure to publish).", nil, nil)

	descReportRuns = prometheus.NewDesc("auditor_report_runs_total",
		"Scheduled reports made.", nil, nil)
	descReportSkipped = prometheus.NewDesc("auditor_report_skipped_total",
		"Scheduled reports skipped because the previous one was still running.", nil, nil)
	descReportFailures = prometheus.NewDesc("auditor_report_failures_total",
		"Scheduled reports that failed.", nil, nil)
	descReportLastSuccess = prometheus.NewDesc("auditor_report_last_success_timestamp_seconds",
		"When the last report that succeeded started, Unix time.", nil, nil)
)

var (
	storeDescs   = []*prometheus.Desc{descStoreUp, descTipHeight, descVerdicts, descReasons, descOutboxPending, descEventsWritten, descReadiness}
	chainDescs   = []*prometheus.Desc{descNodeHeight, descLag, descConnected, descDisconnected, descReorgs, descDeepestReorg, descNodeErrors, descLastConnected, descRefusals, descWithheld}
	publishDescs = []*prometheus.Desc{descPublished, descDuplicates, descPublishErrors, descInFlight, descLastAck}
	reportDescs  = []*prometheus.Desc{descReportRuns, descReportSkipped, descReportFailures, descReportLastSuccess}
	consDescs    = []*prometheus.Desc{descConsLineages, descConsFailing, descConsMisplacedBoxes, descConsMisplacedTokens, descConsHeight, descConsCurrent}
	haDescs      = []*prometheus.Desc{descHALeader, descHAEpoch, descHALeaderInfo, descHATakeovers, descHALosses, descHAStreamSeq, descHASuperseded, descHAReconciliations}
	// protocolDescs are there when the store reads the histories
	// (ProtocolHistorian); the rate, with Config.Backfill.
	protocolDescs = []*prometheus.Desc{descProtocolCursor, descProtocolRemaining, descProtocolBackfillRate}
)

// buildInfo is auditor_build_info: 1, with the build in its labels (join
// it on instance to label other series with the version).
func buildInfo(b version.Info) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "auditor_build_info",
		Help: "Always 1; the labels say which build of the auditor runs.",
		ConstLabels: prometheus.Labels{
			"version": b.Version, "revision": b.Revision, "modified": strconv.FormatBool(b.Modified), "goversion": b.GoVersion,
		},
	})
	g.Set(1)
	return g
}

// collector makes the auditor's metrics at each scrape: the store's
// through the handler's caches, the others from one call of each
// callback.
type collector struct{ h *Handler }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	cfg := &c.h.cfg
	for _, part := range []struct {
		on    bool
		descs []*prometheus.Desc
	}{{true, storeDescs}, {cfg.Chain != nil, chainDescs}, {cfg.Publish != nil, publishDescs}, {cfg.Reports != nil, reportDescs},
		{cfg.Conservation != nil, consDescs}, {c.h.histories != nil, protocolDescs}, {cfg.HA != nil, haDescs}} {
		if part.on {
			for _, d := range part.descs {
				ch <- d
			}
		}
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	h := c.h
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.ScrapeTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	timestamp := func(d *prometheus.Desc, t time.Time) {
		if !t.IsZero() {
			gauge(d, float64(t.UnixNano())/1e9)
		}
	}

	up := 1.0
	failed := func(what string, err error) {
		up = 0
		h.log.Warn().Err(err).Msgf("metrics: %s", what)
	}
	tip, tipErr := h.tip.get(ctx)
	if tipErr != nil {
		failed("reading the tip", tipErr)
	} else {
		gauge(descTipHeight, float64(tip.tip.Height))
	}
	if vcs, err := h.verdicts.get(ctx); err != nil {
		failed("counting the verdicts", err)
	} else {
		verdicts, reasons := verdictSamples(vcs, h.cfg.Protocols)
		for _, s := range verdicts {
			gauge(descVerdicts, float64(s.n), s.labels...)
		}
		for _, s := range reasons {
			gauge(descReasons, float64(s.n), s.labels...)
		}
	}
	if ob, err := h.outbox.get(ctx); err != nil {
		failed("counting the outbox", err)
	} else {
		gauge(descOutboxPending, float64(ob.pending))
		counter(descEventsWritten, uint64(ob.written))
	}
	if h.histories != nil && tipErr == nil {
		if hs, err := h.histories.get(ctx); err != nil {
			failed("reading the protocols' histories", err)
		} else {
			c.protocols(hs, tip.tip.Height, gauge)
		}
	}
	gauge(descStoreUp, up)

	var chain func() ChainStats // the follower's counters, read once
	if h.cfg.Chain != nil {
		s := h.cfg.Chain()
		chain = func() ChainStats { return s }
	}
	problems := map[string]int{CheckChain: 0, CheckStore: 0, CheckLag: 0, CheckPublish: 0}
	for _, c := range h.cfg.Checks {
		problems[c.Name] += 0
	}
	for _, p := range h.readiness(ctx, chain).Problems {
		problems[p.Check]++
	}
	for check, n := range problems {
		gauge(descReadiness, float64(n), check)
	}

	if chain != nil {
		s := chain()
		if s.NodeHeight > 0 {
			gauge(descNodeHeight, float64(s.NodeHeight))
			if tipErr == nil {
				gauge(descLag, float64(lag(s.NodeHeight, tip.tip.Height, tip.ok)))
			}
		}
		counter(descConnected, s.Connected)
		counter(descDisconnected, s.Disconnected)
		counter(descReorgs, s.Reorgs)
		gauge(descDeepestReorg, float64(s.DeepestReorg))
		counter(descNodeErrors, s.NodeErrors)
		timestamp(descLastConnected, s.LastConnectedAt)
		for _, r := range consensus.Rules { // every rule, zero included
			counter(descRefusals, s.Refusals[string(r)], string(r))
		}
		counter(descWithheld, s.Withheld)
	}
	if h.cfg.Publish != nil {
		s := h.cfg.Publish()
		counter(descPublished, s.Published)
		counter(descDuplicates, s.Duplicates)
		counter(descPublishErrors, s.Errors)
		gauge(descInFlight, float64(s.InFlight))
		timestamp(descLastAck, s.LastAck)
	}
	if h.cfg.HA != nil {
		c.ha(h.cfg.HA(), gauge, counter)
	}
	if h.cfg.Reports != nil {
		s := h.cfg.Reports()
		counter(descReportRuns, s.Runs)
		counter(descReportSkipped, s.Skipped)
		counter(descReportFailures, s.Failures)
		timestamp(descReportLastSuccess, s.LastSuccess)
	}
	if h.cfg.Conservation != nil {
		if s, ok := h.cfg.Conservation(); ok {
			for _, p := range s.Protocols {
				gauge(descConsLineages, float64(p.Lineages), p.Protocol)
				gauge(descConsFailing, float64(p.FailingLineages), p.Protocol)
				gauge(descConsMisplacedBoxes, float64(p.MisplacedBoxes), p.Protocol)
				gauge(descConsMisplacedTokens, float64(p.MisplacedTokens), p.Protocol)
			}
			gauge(descConsHeight, float64(s.TipHeight))
			timestamp(descConsCurrent, s.CurrentAt)
		}
	}
}

// sample is one sample of a labelled family: its label values and count.
type sample struct {
	labels []string
	n      int64
}

// verdictSamples splits the store's verdict counts into the two families:
// verdicts by protocol, class and verdict (the totals), and invalid
// verdicts by protocol and reason code (summed over the classes). Every
// configured protocol has every class, verdict and code, zero included, so
// that a series exists before its first verdict (an alert comparing it
// with its past sees the first one). Both are sorted by their labels.
func verdictSamples(vcs []db.VerdictCount, protocols []string) (verdicts, reasons []sample) {
	byVerdict, byReason := samples{}, samples{}
	for _, p := range protocols {
		for _, c := range rules.Classes() {
			byVerdict.add(0, p, string(c), rules.StatusVerified)
			byVerdict.add(0, p, string(c), rules.StatusInvalid)
		}
		for _, r := range rules.Reasons() {
			byReason.add(0, p, string(r))
		}
	}
	for _, v := range vcs {
		if v.Reason == "" {
			byVerdict.add(v.Count, v.Protocol, string(v.Class), v.Verdict)
		} else {
			byReason.add(v.Count, v.Protocol, string(v.Reason))
		}
	}
	return byVerdict.sorted(), byReason.sorted()
}

// samples adds counts up by their label values, joined by NUL.
type samples map[string]int64

func (s samples) add(n int64, labels ...string) { s[strings.Join(labels, "\x00")] += n }

func (s samples) sorted() []sample {
	out := make([]sample, 0, len(s))
	for _, k := range slices.Sorted(maps.Keys(s)) {
		out = append(out, sample{strings.Split(k, "\x00"), s[k]})
	}
	return out
}

// protocols makes the metrics of the protocols' histories, of a store at
// tip: each one's cursor, the blocks each active one lacks, and the pace of
// the daemon's backfills under way.
func (c *collector) protocols(hs []db.ProtocolHistory, tip uint32, gauge func(*prometheus.Desc, float64, ...string)) {
	var backfills map[string]BackfillStats
	if c.h.cfg.Backfill != nil {
		backfills = c.h.cfg.Backfill()
	}
	for _, p := range hs {
		gauge(descProtocolCursor, float64(p.Cursor), p.Name, string(p.State))
		if p.State != db.ProtocolActive {
			continue
		}
		remaining := 0.0
		if p.Backfilling(tip) {
			remaining = float64(tip - p.Cursor)
			if b, ok := backfills[p.Name]; ok && !b.Done {
				gauge(descProtocolBackfillRate, b.BlocksPerSecond, p.Name)
			}
		}
		gauge(descProtocolRemaining, remaining, p.Name)
	}
}

// ha makes the metrics of this auditor's part in its group.
func (c *collector) ha(s HAStatus, gauge func(*prometheus.Desc, float64, ...string), counter func(*prometheus.Desc, uint64, ...string)) {
	leader := 0.0
	if s.Role == "leader" {
		leader = 1
	}
	gauge(descHALeader, leader)
	var epoch uint64
	if s.Epoch != nil {
		epoch = *s.Epoch
	}
	gauge(descHAEpoch, float64(epoch))
	if s.Leader != nil {
		gauge(descHALeaderInfo, 1, *s.Leader)
	}
	counter(descHATakeovers, s.Takeovers)
	counter(descHALosses, s.Losses)
	for _, m := range []struct {
		d       *prometheus.Desc
		v       *uint64
		counter bool
	}{{descHAStreamSeq, s.StreamSeq, false}, {descHASuperseded, s.Superseded, true}, {descHAReconciliations, s.Reconciliations, true}} {
		switch {
		case m.v == nil:
		case m.counter:
			counter(m.d, *m.v)
		default:
			gauge(m.d, float64(*m.v))
		}
	}
}
