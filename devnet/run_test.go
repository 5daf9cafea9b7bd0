package devnet

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/internal/poll"
)

// TestRun: Run shows a block every BlockTime, reorgs included, until the
// final chain is visible, and returns nil when its context is done.
func TestRun(t *testing.T) {
	d := newDevnet(t, Config{Seed: 6, Blocks: 12, BlockTime: time.Millisecond, ReorgEvery: 5, ReorgDepth: 2})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	poll.True(t, 20*time.Second, "the final chain to be visible", d.Done)
	if h, id := d.Tip(); h != 12 || id != d.FinalID(12) {
		t.Fatalf("tip %d %s", h, id)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunWithoutBlockTime(t *testing.T) {
	d := newDevnet(t, Config{Seed: 6, Blocks: 3})
	if !d.Done() || d.Step() {
		t.Fatal("with BlockTime 0 the whole chain is not visible at once")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestNewContextCancelled: generation stops when its context is done.
func TestNewContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewContext(ctx, Config{Seed: 1, Blocks: 100}, zerolog.Nop()); !errors.Is(err, context.Canceled) {
		t.Fatalf("NewContext with a cancelled context: %v", err)
	}
}

// TestServe serves on a loopback port and shuts down when the context is
// done, refusing connections afterwards.
func TestServe(t *testing.T) {
	d := newDevnet(t, Config{Seed: 1, Blocks: 3})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, d.Handler(), zerolog.New(zerolog.NewTestWriter(t))) }()
	resp, err := http.Get(url + "/info")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/info: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(url + "/info"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("after shutdown: %v, want connection refused", err)
	}
}

func TestListenAndServeBadAddress(t *testing.T) {
	if err := ListenAndServe(context.Background(), "127.0.0.1:99999", http.NotFoundHandler(), zerolog.Nop()); err == nil {
		t.Fatal("listening on port 99999 succeeded")
	}
}

// cancelledDuringPoW is a context that is live when generation checks it
// before building a block, and done when the proof of work checks it.
type cancelledDuringPoW struct {
	context.Context
	checks atomic.Int32
}

func (c *cancelledDuringPoW) Err() error {
	if c.checks.Add(1) > 1 {
		return context.Canceled
	}
	return nil
}

// TestAbandonedBlockLeavesNoTrace: a block whose generation is cancelled
// part-way is generated again, identically, later.
func TestAbandonedBlockLeavesNoTrace(t *testing.T) {
	d := newDevnet(t, Config{Seed: 14, Blocks: 6, BlockTime: time.Hour})
	d.Step()
	d.genMu.Lock()
	err := d.extend(&cancelledDuringPoW{Context: context.Background()}, 2)
	d.genMu.Unlock()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("extend: %v, want cancelled", err)
	}
	for d.Step() {
	}
	want := newDevnet(t, Config{Seed: 14, Blocks: 6})
	for h := uint32(1); h <= 6; h++ {
		if d.FinalID(h) != want.FinalID(h) {
			t.Fatalf("block %d differs after an abandoned attempt", h)
		}
	}
}
