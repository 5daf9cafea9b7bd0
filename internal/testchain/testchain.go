// Package testchain gives tests the real parts of a sync: a devnet served
// over loopback HTTP, the [[protocol]] sections that watch its
// async-emission deployments (read the way the configuration reads them),
// a SQLite store in a temporary directory, and the follower and rules that
// fill it.
package testchain

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

// Chain is a devnet served on a loopback port until the test ends.
type Chain struct {
	Devnet *devnet.Devnet
	URL    string
	// Protocols watch the devnet's async-emission deployments: the demo
	// protocol, then the action tree; none when cfg has no such scenario.
	Protocols []rules.Protocol
	// Protocol is the demo protocol's, Protocols[0]; the zero Protocol when
	// cfg has no such scenario.
	Protocol rules.Protocol
}

// New makes the devnet of cfg and serves it.
func New(t testing.TB, cfg devnet.Config) *Chain {
	t.Helper()
	d, err := devnet.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	c := &Chain{Devnet: d, URL: srv.URL}
	if _, ok := cfg.Scenario.(*devnet.AsyncEmission); ok {
		pcs, err := d.Protocols()
		if err != nil {
			t.Fatal(err)
		}
		c.Protocols = ParseProtocols(t, devnet.ProtocolsTOML(pcs))
		c.Protocol = c.Protocols[0]
	}
	return c
}

// ParseProtocols reads [[protocol]] sections the way the configuration
// does.
func ParseProtocols(t testing.TB, text string) []rules.Protocol {
	t.Helper()
	var file struct {
		Protocol []rules.ProtocolSpec `toml:"protocol"`
	}
	if err := toml.Unmarshal([]byte(text), &file); err != nil {
		t.Fatalf("%v in\n%s", err, text)
	}
	ps, errs := rules.ParseProtocols(file.Protocol)
	if len(errs) > 0 || len(ps) == 0 {
		t.Fatalf("%v in\n%s", errs, text)
	}
	return ps
}

// OpenStore opens a store in a new temporary directory, closed when the
// test ends, and returns it with its file's path.
func OpenStore(t testing.TB) (*db.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auditor.db")
	s, err := db.Open(context.Background(), path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// Client is a node client of the chain, with short backoffs.
func (c *Chain) Client(t testing.TB) *scan.Client {
	t.Helper()
	client, err := scan.NewClient(scan.ClientConfig{URL: c.URL, RequestTimeout: 10 * time.Second, MaxAttempts: 8,
		BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// Engine judges blocks for the chain's protocols.
func (c *Chain) Engine() *rules.Engine {
	return rules.NewEngine(c.Protocols, nil, zerolog.Nop())
}

// Follower follows the chain into store with the chain's rules; a zero
// PollInterval is a millisecond.
func (c *Chain) Follower(t testing.TB, store scan.Store, cfg scan.FollowerConfig) *scan.Follower {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Millisecond
	}
	return scan.NewFollower(c.Client(t), store, c.Engine(), cfg, zerolog.Nop())
}

// Sync follows the chain into store up to height, and returns the
// follower's counters.
func (c *Chain) Sync(t testing.TB, store scan.Store, height uint32) scan.FollowerStats {
	t.Helper()
	f := c.Follower(t, store, scan.FollowerConfig{Params: consensus.Devnet(), UntilHeight: height, Batch: 16, Ahead: 4})
	// No deadline of its own: on a loaded machine a long sync is slow,
	// not wrong; one that hangs is stopped by go test's -timeout, with
	// every goroutine's stack.
	if err := f.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	return f.Stats()
}
