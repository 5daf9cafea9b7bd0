package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/version"
)

// Store is what the server reads of the database; *db.Store implements it.
type Store interface {
	// Status reads every stored row (for the state digest): the server
	// caches it for Config.CacheTTL.
	Status(ctx context.Context) (db.Status, error)
	Tip(ctx context.Context) (tip db.Tip, ok bool, err error)
	Explain(ctx context.Context, id ergo.Digest) (*db.Explanation, bool, error)
	OutboxCounts(ctx context.Context) (written, pending int64, err error)
}

// PendingAger is a Store that knows when the oldest event not yet
// acknowledged by NATS was written (ok false: none is pending); the
// "publish" readiness check uses it.
type PendingAger interface {
	OldestPending(ctx context.Context) (written time.Time, ok bool, err error)
}

// VerdictCounter is a Store that can count the verdicts without computing
// the whole Status. The verdict metrics use it when the store has it, and
// Status().Verdicts otherwise.
type VerdictCounter interface {
	VerdictCounts(ctx context.Context) ([]db.VerdictCount, error)
}

// ProtocolHistorian is a Store that reads the protocols' histories without
// computing the whole Status; the protocol metrics use it.
type ProtocolHistorian interface {
	ProtocolHistories(ctx context.Context) ([]db.ProtocolHistory, error)
}

// BackfillStats is the daemon's backfill of one protocol
// (scan.BackfillProgress): its pace, and the time left at that pace.
type BackfillStats struct {
	BlocksPerSecond float64
	Remaining       time.Duration
	Done            bool
}

// ChainStats is the follower's view of the chain (scan.FollowerStats).
type ChainStats struct {
	NodeHeight      uint32 // the node's full height at the last check; 0: not known yet
	Connected       uint64 // blocks connected since the start
	Disconnected    uint64 // blocks disconnected by reorgs
	Reorgs          uint64
	DeepestReorg    uint32 // in blocks
	NodeErrors      uint64 // failed syncs blamed on the node
	LastConnectedAt time.Time
	// Refusals counts the headers and branches of the node refused, by
	// the consensus rule they broke ("work" for a branch without more
	// work); Withheld the times the node named a branch to adopt and did
	// not serve its blocks.
	Refusals map[string]uint64
	Withheld uint64
}

// PublishStats are the NATS relay's counters (publish.Stats).
type PublishStats struct {
	Published  uint64    `json:"published"`  // events acknowledged by JetStream, duplicates included
	Duplicates uint64    `json:"duplicates"` // of those, acknowledged as duplicates
	Errors     uint64    `json:"errors"`     // failures the relay backed off from
	InFlight   int       `json:"in_flight"`  // published, not yet acknowledged
	LastAck    time.Time `json:"last_ack,omitzero"`
}

// ReportStats are the report scheduler's counters (report.Stats).
type ReportStats struct {
	Runs        uint64    `json:"runs"`     // reports made
	Skipped     uint64    `json:"skipped"`  // runs skipped: the previous one was still running
	Failures    uint64    `json:"failures"` // runs that failed
	Running     bool      `json:"running"`
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// ConservationStats is the last conservation sweep of PROTOCOL.md §5
// (report.Sweep), which the daemon makes every reports.sweep_interval and
// with every report.
type ConservationStats struct {
	// CurrentAt is when the result was last known to hold: the sweep, or
	// a later check that found the tip where the sweep read it.
	CurrentAt time.Time `json:"current_at"`
	// TipHeight is the tip the sweep read.
	TipHeight uint32                 `json:"tip_height"`
	Protocols []ProtocolConservation `json:"protocols"`
}

// ProtocolConservation is what the sweep found of one protocol.
type ProtocolConservation struct {
	Protocol        string `json:"protocol"`
	Lineages        int    `json:"lineages"`         // lineages checked
	FailingLineages int    `json:"failing_lineages"` // of them, those that break conservation
	// MisplacedBoxes counts the live boxes holding participant tokens
	// where none may be; MisplacedTokens how many they hold.
	MisplacedBoxes  int    `json:"misplaced_participant_boxes"`
	MisplacedTokens uint64 `json:"misplaced_participant_tokens"`
}

// Config configures the server. Store is required; a nil callback leaves
// out what it would give (its metrics and its part of the status).
type Config struct {
	Store Store

	// Protocols are the names of the watched protocols: the verdict
	// metrics have a sample of every class, verdict and reason code of
	// each, zero included (a protocol only in the store shows what it
	// has).
	Protocols []string

	// MaxLag is how many blocks the store's tip may be below the node's
	// height for /readyz to answer 200. With scan.confirmations C the
	// follower stays C blocks behind, so MaxLag should exceed C.
	MaxLag uint32
	// Chain returns the follower's counters. Without it the node's height
	// is never known and /readyz never answers 200.
	Chain func() ChainStats
	// MaxPublishDelay, when positive and the store is a PendingAger,
	// makes /readyz fail while an event has waited longer than it for
	// NATS to acknowledge it (the "publish" check).
	MaxPublishDelay time.Duration
	// Checks are readiness checks besides the handler's own (chain, store,
	// lag, publish): the daemon's NATS connection, stream and store, and
	// whatever else can tell that the auditor is not ready.
	Checks []Check
	// Publish and Reports return the relay's and the report scheduler's
	// counters.
	Publish func() PublishStats
	Reports func() ReportStats
	// HA returns this auditor's part in its group, when it runs with HA.
	HA func() HAStatus

	// Conservation returns the last conservation sweep; ok is false before
	// the first.
	Conservation func() (stats ConservationStats, ok bool)

	// Latency, when set, are the latency histograms /metrics serves.
	Latency *Latency

	// Backfill returns the daemon's backfills, by protocol.
	Backfill func() map[string]BackfillStats

	// ReportsDir is served under /reports/; "" answers 404 there.
	ReportsDir string

	// CacheTTL is how long a read of the store (status, verdict counts,
	// outbox counts, tip) serves scrapes and status requests; default 2s.
	CacheTTL time.Duration
	// ScrapeTimeout bounds the store reads of one scrape; default 5s.
	ScrapeTimeout time.Duration
}

// Default values of Config.
const (
	DefaultCacheTTL      = 2 * time.Second
	DefaultScrapeTimeout = 5 * time.Second
)

// Handler serves the endpoints; see the package documentation.
type Handler struct {
	cfg Config
	log zerolog.Logger
	mux *http.ServeMux
	reg *prometheus.Registry

	status   *cache[db.Status]
	verdicts *cache[[]db.VerdictCount]
	outbox   *cache[outboxCounts]
	tip      *cache[tipState]
	// histories is nil when the store is no ProtocolHistorian.
	histories *cache[[]db.ProtocolHistory]
}

type outboxCounts struct{ written, pending int64 }

type tipState struct {
	tip db.Tip
	ok  bool
}

// NewHandler returns the server's handler.
func NewHandler(cfg Config, log zerolog.Logger) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("api: no store")
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.ScrapeTimeout <= 0 {
		cfg.ScrapeTimeout = DefaultScrapeTimeout
	}
	h := &Handler{cfg: cfg, log: log, mux: http.NewServeMux(), reg: prometheus.NewRegistry()}
	s := cfg.Store
	h.status = newCache(cfg.CacheTTL, s.Status)
	h.outbox = newCache(cfg.CacheTTL, func(ctx context.Context) (outboxCounts, error) {
		w, p, err := s.OutboxCounts(ctx)
		return outboxCounts{w, p}, err
	})
	h.tip = newCache(cfg.CacheTTL, func(ctx context.Context) (tipState, error) {
		t, ok, err := s.Tip(ctx)
		return tipState{t, ok}, err
	})
	if ph, ok := s.(ProtocolHistorian); ok {
		h.histories = newCache(cfg.CacheTTL, ph.ProtocolHistories)
	}
	if vc, ok := s.(VerdictCounter); ok {
		h.verdicts = newCache(cfg.CacheTTL, vc.VerdictCounts)
	} else {
		h.verdicts = newCache(0, func(ctx context.Context) ([]db.VerdictCount, error) {
			st, err := h.status.get(ctx)
			return st.Verdicts, err
		})
	}

	if err := h.reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("api: register the Go collector: %w", err)
	}
	if err := h.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("api: register the process collector: %w", err)
	}
	if err := h.reg.Register(buildInfo(version.Get())); err != nil {
		return nil, fmt.Errorf("api: register the build info: %w", err)
	}
	if err := h.reg.Register(&collector{h: h}); err != nil {
		return nil, fmt.Errorf("api: register the auditor's metrics: %w", err)
	}
	if cfg.Latency != nil {
		for _, c := range cfg.Latency.collectors() {
			if err := h.reg.Register(c); err != nil {
				return nil, fmt.Errorf("api: register the latency histograms: %w", err)
			}
		}
	}

	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /readyz", h.readyz)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{
		ErrorLog:            promLogger{log},
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            h.reg,
		MaxRequestsInFlight: 4,
	}))
	h.mux.HandleFunc("GET /api/v1/status", h.apiStatus)
	h.mux.HandleFunc("GET /api/v1/boxes/{id}", h.apiBox)
	h.mux.HandleFunc("GET /boxes/{id}", h.boxPage)
	h.mux.Handle("GET /reports/", reportsHandler(cfg.ReportsDir))
	return h, nil
}

// Registry returns the registry /metrics serves, for the caller to add
// collectors of its own.
func (h *Handler) Registry() *prometheus.Registry { return h.reg }

// ServeHTTP serves the endpoints. A method other than GET or HEAD on a
// known path gets 405; an unknown path 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// Readiness is /readyz's answer.
type Readiness struct {
	Ready      bool    `json:"ready"`
	NodeHeight *uint32 `json:"node_height"` // null: not known
	TipHeight  *uint32 `json:"tip_height"`  // null: the store holds no block
	Lag        *uint32 `json:"lag"`
	MaxLag     uint32  `json:"max_lag"`
	// Problems are why the auditor is not ready, each named by the check
	// that found it, in the order the checks run; [] when ready.
	Problems []Problem `json:"problems"`
}

// A Problem is one reason the auditor is not ready: the name of the check
// that found it and a sentence saying what it found.
type Problem struct {
	Check  string `json:"check"`
	Reason string `json:"reason"`
}

// A Check is a named readiness check: /readyz fails while any check finds
// a problem, and lists each problem with the check's name.
type Check struct {
	// Name names the check in each Problem it finds ("nats", "stream");
	// short, lower case, stable: alerts may match it.
	Name string
	// Problems returns what the check finds wrong now, each a sentence;
	// none when all is well. It is called on every probe, by concurrent
	// requests, with the probe's context: it must return quickly, reading
	// state kept up to date elsewhere (a counter, a connection's status,
	// what a background loop found) rather than making a round trip.
	Problems func(ctx context.Context) []string
}

// Names of the checks the handler makes itself (Config.Checks add more).
const (
	CheckChain   = "chain"   // the node's height is known
	CheckStore   = "store"   // the store is readable and holds a block
	CheckLag     = "lag"     // the tip is within MaxLag blocks of the node's height
	CheckPublish = "publish" // no event has waited unacknowledged longer than MaxPublishDelay
)

// Readiness runs the checks: the handler's own (chain, store, lag,
// publish), then Config.Checks in order.
func (h *Handler) Readiness(ctx context.Context) Readiness {
	return h.readiness(ctx, h.cfg.Chain)
}

// readiness runs the checks, with chain for Config.Chain.
func (h *Handler) readiness(ctx context.Context, chain func() ChainStats) Readiness {
	out := Readiness{MaxLag: h.cfg.MaxLag, Problems: []Problem{}}
	problem := func(check, format string, args ...any) {
		out.Problems = append(out.Problems, Problem{Check: check, Reason: fmt.Sprintf(format, args...)})
	}
	var node uint32
	if chain == nil {
		problem(CheckChain, "the chain is not followed")
	} else if node = chain().NodeHeight; node == 0 {
		problem(CheckChain, "the node's height is not known yet")
	} else {
		out.NodeHeight = &node
	}
	tip, ok, err := h.cfg.Store.Tip(ctx)
	switch {
	case err != nil:
		h.log.Warn().Err(err).Msg("readiness: reading the tip")
		problem(CheckStore, "the store cannot be read")
	case !ok:
		problem(CheckStore, "no block is connected yet")
	default:
		out.TipHeight = &tip.Height
	}
	if out.NodeHeight != nil && out.TipHeight != nil {
		l := lag(node, tip.Height, true)
		out.Lag = &l
		if l > h.cfg.MaxLag {
			problem(CheckLag, "%d blocks behind the node, more than %d", l, h.cfg.MaxLag)
		}
	}
	if pa, isAger := h.cfg.Store.(PendingAger); isAger && h.cfg.MaxPublishDelay > 0 {
		switch written, ok, err := pa.OldestPending(ctx); {
		case err != nil:
			h.log.Warn().Err(err).Msg("readiness: reading the outbox")
			problem(CheckPublish, "the outbox cannot be read")
		case ok && time.Since(written) > h.cfg.MaxPublishDelay:
			waited := time.Since(written)
			if waited >= time.Second {
				waited = waited.Round(time.Second)
			}
			problem(CheckPublish, "an event has waited %s for NATS to acknowledge it, more than %s",
				waited.Round(time.Millisecond), h.cfg.MaxPublishDelay)
		}
	}
	for _, c := range h.cfg.Checks {
		for _, p := range c.Problems(ctx) {
			problem(c.Name, "%s", p)
		}
	}
	out.Ready = len(out.Problems) == 0
	return out
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	rd := h.Readiness(r.Context())
	code := http.StatusOK
	if !rd.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rd)
}

// Status returns the store's status with the daemon's counters, as GET
// /api/v1/status serves it.
func (h *Handler) Status(ctx context.Context) (Status, error) {
	st, err := h.status.get(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("read the status: %w", err)
	}
	ob, err := h.outbox.get(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("count the outbox: %w", err)
	}
	out := NewStatus(st, ob.written, ob.pending)
	build := version.Get()
	out.Build = &build
	if h.cfg.Chain != nil {
		out.Chain = chainStatus(h.cfg.Chain(), st.TipHeight, !st.Empty)
	}
	if h.cfg.Publish != nil {
		p := h.cfg.Publish()
		out.Publish = &p
	}
	if h.cfg.Reports != nil {
		r := h.cfg.Reports()
		out.Reports = &r
	}
	if h.cfg.HA != nil {
		s := h.cfg.HA()
		out.HA = &s
	}
	if h.cfg.Conservation != nil {
		if c, ok := h.cfg.Conservation(); ok {
			out.Conservation = &c
		}
	}
	if h.cfg.Backfill != nil {
		bs := h.cfg.Backfill()
		for i := range out.Protocols {
			p := &out.Protocols[i]
			if b, ok := bs[p.Name]; ok && p.Backfilling && !b.Done {
				rate, left := b.BlocksPerSecond, b.Remaining.Seconds()
				p.BlocksPerSecond, p.TimeLeftSeconds = &rate, &left
			}
		}
	}
	return out, nil
}

func (h *Handler) apiStatus(w http.ResponseWriter, r *http.Request) {
	st, err := h.Status(r.Context())
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// ParseBoxID reads a box id as the API takes it: 64 hexadecimal digits.
func ParseBoxID(s string) (ergo.Digest, error) {
	id, err := ergo.ParseDigest(s)
	if err != nil {
		return ergo.Digest{}, fmt.Errorf("box id: %w", err)
	}
	return id, nil
}

func (h *Handler) apiBox(w http.ResponseWriter, r *http.Request) {
	id, err := ParseBoxID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ex, ok, err := h.cfg.Store.Explain(r.Context(), id)
	if err != nil {
		h.internalError(w, r, fmt.Errorf("explain box %s: %w", id, err))
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("box %s is not stored: no watched protocol found it relevant, or it is above the scanned tip", id))
		return
	}
	writeJSON(w, http.StatusOK, Explain(ex))
}

// internalError answers 500 for a failure of the store; the details go to
// the log. A request its client gave up on is logged at debug level.
func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, err error) {
	ev := h.log.Error()
	if r.Context().Err() != nil {
		ev = h.log.Debug()
	}
	ev.Err(err).Str("path", r.URL.Path).Msg("request failed")
	writeError(w, http.StatusInternalServerError, "internal error: see the auditor's log")
}

type errorJSON struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorJSON{msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // the types here always marshal
		code, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n')) //nolint:errcheck // the client went away
}

// promLogger logs promhttp's errors (a collector that failed, a broken
// connection) as warnings.
type promLogger struct{ log zerolog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Warn().Msg(strings.TrimSpace(fmt.Sprintln(v...)))
}
