package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ha"
	"github.com/async-emission/auditor/publish"
)

// HAConfig makes the auditor one of a group sharing a NATS cluster: every
// auditor of the group follows and judges the chain, and the one holding
// the lease publishes (README.md, High availability).
type HAConfig struct {
	Enabled bool   `toml:"enabled"`
	ID      string `toml:"id"` // "": the host name
	// LeaseTTL is how long the lease outlives its holder's last renewal.
	LeaseTTL Duration `toml:"lease_ttl"`
	Bucket   string   `toml:"bucket"`
}

// validate checks the [ha] section, reporting each problem with bad.
func (h *HAConfig) validate(c *Config, bad func(field, format string, args ...any)) {
	if h.Enabled && len(c.NATS.URL) == 0 {
		bad("ha.enabled", "HA needs the NATS servers the group shares: set nats.url (the embedded server serves this auditor alone)")
	}
	if h.ID != "" {
		if err := ha.CheckID(h.ID); err != nil {
			bad("ha.id", "%q is not 1 to 64 letters, digits, '.', '_', ':' or '-' starting with a letter or a digit", h.ID)
		}
	}
	if d := time.Duration(h.LeaseTTL); d < ha.MinLeaseTTL || d > ha.MaxLeaseTTL {
		bad("ha.lease_ttl", "%s is not %s to %s", d, ha.MinLeaseTTL, ha.MaxLeaseTTL)
	}
	if err := ha.CheckBucket(h.Bucket); err != nil {
		bad("ha.bucket", "%q is not 1 to 64 of a-z, A-Z, 0-9, _ and -", h.Bucket)
	}
}

// memberID is this auditor's id in its group: ha.id, else the host name.
func (h *HAConfig) memberID() (string, error) {
	if h.ID != "" {
		return h.ID, nil
	}
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("ha.id: not set, and the host name is not known (%w): set ha.id", err)
	}
	if err := ha.CheckID(host); err != nil {
		return "", fmt.Errorf("ha.id: not set, and the host name %q cannot be an id: set ha.id", host)
	}
	return host, nil
}

// newMember builds the HA member that publishes in the relay's stead.
// eligible tells whether this auditor is in sync to lead; onAck is told
// of each outbox row published.
func newMember(cfg Config, store *db.Store, js jetstream.JetStream, eligible func() bool, onAck func(written, acked time.Time), log zerolog.Logger) (*ha.Member, error) {
	id, err := cfg.HA.memberID()
	if err != nil {
		return nil, badInput{err}
	}
	return ha.New(js, haChain{outboxSource{store}}, ha.Config{
		Lease: ha.LeaseConfig{
			Bucket: cfg.HA.Bucket, ID: id, TTL: time.Duration(cfg.HA.LeaseTTL),
			Replicas: cfg.NATS.Replicas, Eligible: eligible,
		},
		Stream:     streamConfig(cfg.NATS),
		Encoder:    encoder(cfg.NATS),
		Window:     cfg.Scan.MaxReorgDepth + haWindowMargin,
		AckTimeout: relayAckTimeout,
		BackoffMax: relayBackoffMax,
		OnAck:      onAck,
	}, log)
}

// haWindowMargin is how many heights beyond scan.max_reorg_depth the
// members compare their chain with the stream.
const haWindowMargin = 64

// inSync is the lease's eligibility: the node's height is known and the
// store's tip is at most max_lag blocks below it.
func (d *daemon) inSync() bool {
	st := d.follower.Stats()
	if st.NodeHeight == 0 {
		return false
	}
	tip, ok, err := d.store.Tip(context.Background())
	return err == nil && ok && tip.Height+d.cfg.HTTP.MaxLag >= st.NodeHeight
}

// haChain is the store as an HA member reads and marks it.
type haChain struct{ outboxSource }

func (c haChain) Snapshot(ctx context.Context, from, newAbove uint32, limit int, ids []ergo.Digest) (*ha.Snapshot, error) {
	ce, err := c.store.ChainEvents(ctx, from, newAbove, limit, ids)
	if err != nil {
		return nil, err
	}
	out := &ha.Snapshot{OutboxSeq: ce.OutboxSeq, Tip: ha.Point{ID: ce.Tip.ID, Height: ce.Tip.Height}, HasTip: ce.HasTip,
		From: ce.From, To: ce.To, Complete: ce.Complete, Main: ce.Main, Blocks: haBlocks(ce.Blocks), Protocols: map[string]ha.Protocol{}}
	for _, p := range ce.Protocols {
		if p.State != db.ProtocolPruned {
			out.Protocols[p.Name] = ha.Protocol{Cursor: p.Cursor, Generation: p.Generation, BackfillFrom: p.BackfillFrom, Since: p.ChangedAt}
		}
	}
	return out, nil
}

func haBlocks(bs []db.BlockEvents) []ha.Block {
	out := make([]ha.Block, len(bs))
	for i, b := range bs {
		hb := ha.Block{ID: b.ID, Parent: b.ParentID, Height: b.Height, Timestamp: b.Timestamp, Verdicts: make([]publish.Message, len(b.Verdicts))}
		for k, m := range b.Verdicts {
			hb.Verdicts[k] = publish.Message(m)
		}
		out[i] = hb
	}
	return out
}

func (c haChain) ProtocolEvents(ctx context.Context, protocol string, from, to uint32, limit int) ([]ha.Block, uint32, error) {
	ce, err := c.store.ProtocolChainEvents(ctx, protocol, from, to, limit)
	if err != nil {
		return nil, 0, err
	}
	next := ce.To + 1
	if ce.Complete {
		next = max(next, to+1)
	}
	return haBlocks(ce.Blocks), next, nil
}

// Retracted finds the store's retractions of the verdicts by their ids (a
// verdict is retracted once, so its retraction's id follows from its
// own): in the block's current connection, a rescan's; in an earlier one,
// a disconnect's (the latest).
func (c haChain) Retracted(ctx context.Context, refs []ha.VerdictRef) (map[ha.VerdictRef]publish.Message, error) {
	blocks := make([]ergo.Digest, 0, len(refs))
	for _, r := range refs {
		blocks = append(blocks, r.Block)
	}
	connects, err := c.store.MainChainConnects(ctx, blocks)
	if err != nil {
		return nil, err
	}
	type candidate struct {
		ref      ha.VerdictRef
		connects int
	}
	var ids []string
	byID := map[string]candidate{}
	for _, r := range refs {
		for n := connects[r.Block]; n >= 1; n-- {
			id := publish.RetractionID(r.Block, r.Box, r.Protocol, r.Kind, n, r.Generation)
			ids, byID[id] = append(ids, id), candidate{r, n}
		}
	}
	ms, err := c.store.OutboxMessages(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := map[ha.VerdictRef]publish.Message{}
	best := map[ha.VerdictRef]int{}
	for id, m := range ms {
		ev, err := publish.DecodeEvent(m.Payload)
		if err != nil || ev.Type != publish.TypeRetracted {
			continue
		}
		d, err := ev.Retraction()
		cand := byID[id]
		current := cand.connects == connects[cand.ref.Block]
		if err != nil || current != (d.Rescan != nil) || cand.connects <= best[cand.ref] {
			continue
		}
		out[cand.ref], best[cand.ref] = publish.Message(m), cand.connects
	}
	return out, nil
}

func (c haChain) Header(ctx context.Context, id ergo.Digest) (ha.Header, bool, error) {
	r, main, ok, err := c.store.Header(ctx, id)
	return ha.Header{ID: r.ID, Parent: r.ParentID, Height: r.Height, Main: main}, ok, err
}

func (c haChain) MainChainID(ctx context.Context, height uint32) (ergo.Digest, bool, error) {
	return c.store.MainChainID(ctx, height)
}

func (c haChain) Supersede(ctx context.Context, seqs []int64, through int64) (int64, error) {
	return c.store.SupersedeOutbox(ctx, seqs, through)
}

var _ ha.Chain = haChain{}

// haStatus is the member's view as the status shows it.
func haStatus(st ha.Status) api.HAStatus {
	out := api.HAStatus{ID: st.ID, Role: string(st.Role), Takeovers: st.Takeovers, Losses: st.Losses,
		StreamSeq: &st.StreamSeq, Superseded: &st.Superseded, Reconciliations: &st.Reconciliations, Error: st.Err}
	if st.Holder != "" {
		out.Leader, out.Epoch = &st.Holder, &st.Epoch
	}
	if !st.Since.IsZero() {
		since := st.Since.UTC()
		out.Since = &since
	}
	return out
}

// readHAStatus reads the lease from NATS for auditor status: this
// auditor's role is leader when the lease names its id. It waits at most
// a few seconds for NATS; then the role is "unknown", with the error.
func readHAStatus(cfg Config) api.HAStatus {
	out := api.HAStatus{Role: "unknown"}
	id, err := cfg.HA.memberID()
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.ID = id
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := publish.Connect(ctx, connConfig(cfg.NATS, cfg.NATS.URL), zerolog.Nop())
	if err != nil {
		out.Error = err.Error()
		return out
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err == nil {
		var holder string
		var epoch uint64
		if holder, epoch, err = ha.ReadLease(ctx, js, cfg.HA.Bucket); err == nil {
			out.Role = string(ha.Standby)
			if holder == id {
				out.Role = string(ha.Leader)
			}
			if holder != "" {
				out.Leader, out.Epoch = &holder, &epoch
			}
			return out
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer from NATS within 5s: %w", err)
	}
	out.Error = err.Error()
	return out
}
