package publish

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Supervision defaults.
const (
	// DefaultSuperviseInterval is how often Supervise asks the server's
	// health.
	DefaultSuperviseInterval = 2 * time.Second
	// RecoverFree is the free space the store's file system needs before
	// Supervise restarts JetStream after a storage failure.
	RecoverFree = 1 << 20
	// maxRestartWait bounds the wait between restarts that do not help.
	maxRestartWait = time.Minute
)

// Supervise watches the server's JetStream until ctx is done, and brings it
// back after a storage failure. nats-server keeps failing a stream whose
// store could not be written (a full disk) until JetStream restarts, even
// once space is free again: every publish to it goes unanswered. Every
// interval (default DefaultSuperviseInterval) Supervise asks the server's
// health; while it is not healthy Problem says why, and when a stream's
// store failed to write (or JetStream is off), once the store's file
// system has RecoverFree bytes free, it restarts JetStream on the same
// store (the connections stay; what was stored stays, and the duplicate
// window is rebuilt from it), again after a doubling wait while that does
// not help. It returns ctx's error.
func (e *Embedded) Supervise(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultSuperviseInterval
	}
	wait := interval
	t := time.NewTimer(wait)
	defer t.Stop()
	failing := false
	var lastRestart, healthySince time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		msg := e.health()
		switch {
		case msg == "":
			if failing {
				e.log.Info().Msg("the embedded NATS server's JetStream is healthy again")
				healthySince = time.Now()
			}
			failing = false
			if time.Since(healthySince) >= maxRestartWait {
				wait = interval // a restart that held for a while starts the waits over
			}
			e.setProblem("")
		default:
			free, ferr := FreeSpace(e.cfg.StoreDir)
			if !failing {
				e.log.Warn().Str("health", msg).Str("free", Bytes(free)).Str("store_dir", e.cfg.StoreDir).
					Msg("the embedded NATS server's JetStream fails: publishing waits; JetStream restarts on the same store once the disk has room")
			}
			failing = true
			switch {
			case !e.restartable(msg):
				e.setProblem("embedded NATS server: " + msg) // said, not acted on
			case ferr == nil && free < RecoverFree:
				e.setProblem(fmt.Sprintf("embedded NATS store: %s; %s free on its file system: JetStream restarts once there is room", msg, Bytes(free)))
			case time.Since(lastRestart) >= wait:
				e.setProblem(fmt.Sprintf("embedded NATS store: %s; restarting JetStream", msg))
				lastRestart = time.Now()
				if err := e.restartJetStream(); err != nil {
					e.log.Warn().Err(err).Msg("restarting JetStream failed; trying again")
				} else {
					e.log.Info().Str("free", Bytes(free)).Msg("JetStream restarted on the same store")
				}
				wait = min(2*wait, maxRestartWait)
			}
		}
		t.Reset(interval)
	}
}

// health is "" when the server and its JetStream are healthy, else why not
// (a stream's write error, JetStream disabled).
func (e *Embedded) health() string {
	st := e.srv.Healthz(nil)
	if st.Error != "" {
		return st.Error
	}
	if st.Status != "ok" {
		return "status " + st.Status
	}
	return ""
}

// restartable tells whether a restart of JetStream is the cure for what
// the health check found: a store that failed to write, or JetStream
// disabled (nats-server turns it off when it runs out of resources).
func (e *Embedded) restartable(health string) bool {
	return strings.Contains(health, "write error") || !e.srv.JetStreamEnabled()
}

// restartJetStream stops JetStream if it runs and starts it again on the
// same store, with the limits it started with.
func (e *Embedded) restartJetStream() error {
	if e.srv.JetStreamEnabled() {
		if err := e.srv.ShutdownJetStream(); err != nil {
			return fmt.Errorf("stop JetStream: %w", err)
		}
	}
	cfg := &server.JetStreamConfig{StoreDir: e.cfg.StoreDir, MaxStore: e.cfg.MaxStore, MaxMemory: e.maxMemory}
	if err := e.srv.EnableJetStream(cfg); err != nil {
		return fmt.Errorf("start JetStream on %s: %w", e.cfg.StoreDir, err)
	}
	return nil
}

func (e *Embedded) setProblem(p string) {
	e.mu.Lock()
	e.problem = p
	e.mu.Unlock()
}

// Problem is why the server's JetStream cannot store now, as Supervise last
// found it; "" when it can (or nobody supervises).
func (e *Embedded) Problem() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.problem
}
