package api_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

// chain is a store synced from a devnet running the async-emission
// scenario (with planted forgeries), as the daemon would have it.
type chain struct {
	store    *db.Store
	exp      []devnet.Expectation
	height   uint32
	follower scan.FollowerStats
	// written and pending are the outbox's counts: an event a verdict,
	// the first acked of them marked published.
	written, pending, acked int64
}

const (
	chainBlocks = 60
	chainAcked  = 5
)

func syncChain(t *testing.T) *chain {
	t.Helper()
	ctx := context.Background()
	d, err := devnet.New(devnet.Config{Seed: 5, Blocks: chainBlocks, TxsPerBlock: 3,
		Scenario: &devnet.AsyncEmission{ForgeryRate: 0.3}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	pc, err := d.Protocol()
	if err != nil {
		t.Fatal(err)
	}
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "auditor.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	store.SetEvents(idEncoder{}, func() {})
	client, err := scan.NewClient(scan.ClientConfig{URL: srv.URL, RequestTimeout: 5 * time.Second, MaxAttempts: 4,
		BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	engine := rules.NewEngine([]rules.Protocol{protocolOf(pc)}, nil, zerolog.Nop())
	f := scan.NewFollower(client, store, engine, scan.FollowerConfig{UntilHeight: chainBlocks, PollInterval: time.Millisecond}, zerolog.Nop())
	runCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := f.Run(runCtx); err != nil {
		t.Fatal(err)
	}
	c := &chain{store: store, height: chainBlocks, follower: f.Stats(), acked: chainAcked}
	if c.exp, err = d.Expectations(chainBlocks); err != nil {
		t.Fatal(err)
	}
	rows, err := store.OutboxPending(ctx, 0, chainAcked)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, r := range rows {
		seqs = append(seqs, r.Seq)
	}
	if err := store.MarkPublished(ctx, seqs); err != nil {
		t.Fatal(err)
	}
	c.written, c.pending = int64(len(c.exp)), int64(len(c.exp))-chainAcked
	if w, p, err := store.OutboxCounts(ctx); err != nil || w != c.written || p != c.pending {
		t.Fatalf("outbox counts %d written, %d pending (%v); want %d and %d", w, p, err, c.written, c.pending)
	}
	return c
}

// protocolOf is the [[protocol]] section the devnet deployed, parsed.
func protocolOf(pc devnet.ProtocolConfig) rules.Protocol {
	funnel, emitted := ergo.Digest(pc.FunnelTemplate), ergo.Digest(pc.EmittedTemplate)
	p := rules.Protocol{Name: pc.Name, ParticipantTokenID: pc.ParticipantTokenID, StateNFTID: pc.StateNFTID,
		EmissionTemplate: pc.EmissionTemplate, FunnelTemplate: &funnel, EmittedTemplate: &emitted,
		AsyncSupply: pc.AsyncSupply, StartHeight: pc.StartHeight}
	for _, r := range pc.EmissionRequires {
		req := rules.Requirement{Class: rules.Class(r.Class)}
		fmt.Sscanf(r.EmittedRegister, "R%d", &req.EmittedRegister)
		fmt.Sscanf(r.DataInputRegister, "R%d", &req.DataInputRegister)
		p.EmissionRequires = append(p.EmissionRequires, req)
	}
	return p
}

// idEncoder writes an event per verdict, with its message id alone.
type idEncoder struct{}

func (idEncoder) Verdict(v *rules.Verdict, _ *ergo.Box, b db.BlockRef) (db.Message, error) {
	return event(fmt.Sprintf("%s-%s-%s-%s", b.ID, v.BoxID, v.Protocol, v.Kind)), nil
}

func (idEncoder) Retraction(orig db.Message, _ db.BlockRef) (db.Message, error) {
	return event(orig.ID + "-retracted"), nil
}

func (idEncoder) Rollback(_ db.Reorg, b db.BlockRef) (db.Message, error) {
	return event(b.ID.String() + "-rollback"), nil
}

func event(id string) db.Message {
	return db.Message{ID: id, Subject: "test.event", Payload: []byte(id)}
}
