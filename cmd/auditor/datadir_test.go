package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/internal/testfs"
	"github.com/async-emission/auditor/internal/testlog"
	"github.com/async-emission/auditor/lock"
	"github.com/async-emission/auditor/publish"
)

// TestSecondAuditorRefused: while a daemon runs on a data directory, a
// second `auditor run` and an `auditor demo --dir` on it are refused at
// once, naming the directory and the daemon's process; `status`, `verify`
// and `report` work beside it (the report's event is published by the
// running daemon); once the daemon has stopped, the directory can be run
// again.
func TestSecondAuditorRefused(t *testing.T) {
	const blocks = 60
	bin := auditorBinary(t)
	d, url := newScenarioDevnet(t, devnet.Config{Seed: 13, Blocks: blocks, TxsPerBlock: 2, BlockTime: time.Hour})
	for range blocks {
		d.Step()
	}
	ns := natsServer(t, t.TempDir(), 0)
	path, cfg := scenarioConfig(t, d, url, ns.ClientURL())
	watch := openWatch(t, cfg.DataDir)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runAuditor(ctx, cfg, 0, zerolog.Nop()) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("the daemon: %v", err)
			}
		}
	}
	defer stop()
	poll.Until(t, 30*time.Second, "the daemon's sync, published", func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("the daemon returned: %v", err)
		default:
		}
		tip, pending := watchTip(t, watch), watchPending(t, watch)
		return tip == blocks && pending == 0, fmt.Sprintf("tip %d, %d pending", tip, pending)
	})

	holder := fmt.Sprintf("%s is in use by process %d", cfg.DataDir, os.Getpid())
	for _, args := range [][]string{
		{"run", "--config", path, "--node", url, "--until-height", fmt.Sprint(blocks)},
		{"demo", "--data-dir", cfg.DataDir, "--blocks", "40"},
	} {
		start := time.Now()
		p := startProcess(t, bin, args...)
		err := p.wait(t, 30*time.Second)
		if err == nil || !strings.Contains(p.stderr.String(), holder) {
			t.Fatalf("auditor %s beside the daemon: %v\n%s\nwant a refusal saying %q", args[0], err, p.stderr, holder)
		}
		t.Logf("auditor %s refused after %s: %s", args[0], time.Since(start).Round(time.Millisecond), strings.TrimSpace(p.stderr.String()))
	}

	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut}
	if code := run([]string{"status", "--data-dir", cfg.DataDir}, e); code != exitOK || !strings.Contains(out.String(), fmt.Sprintf("tip           %d", blocks)) {
		t.Fatalf("status beside the daemon: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	box := firstVerdictBox(t, cfg.DataDir)
	out.Reset()
	if code := run([]string{"verify", "--data-dir", cfg.DataDir, box}, e); code == exitBadInput || !strings.Contains(out.String(), box) {
		t.Fatalf("verify beside the daemon: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"report", "--config", path, "--out", t.TempDir()}, e); code != exitOK {
		t.Fatalf("report beside the daemon: exit %d\n%s", code, errOut.String())
	}
	// The running daemon's relay publishes the report's announcement.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	poll.Until(t, 30*time.Second, "the report's event published", func() (bool, string) {
		_, subjects := streamMessages(t, ns.ClientURL())
		for _, s := range subjects {
			if s == "auditor.report.ready" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d messages, none a report.ready", len(subjects))
	})

	stop()
	if err := runAuditor(context.Background(), cfg, blocks, zerolog.Nop()); err != nil {
		t.Fatalf("a run once the daemon has stopped: %v", err)
	}
	sameEvents(t, "after the report", ns.ClientURL(), cfg.DataDir)
}

// firstVerdictBox is the id of a box the store holds a verdict on.
func firstVerdictBox(t *testing.T, dir string) string {
	t.Helper()
	ids, _ := outboxRows(t, dir)
	for _, id := range ids {
		if parts := strings.Split(id, "-"); len(parts) == 5 {
			return parts[1] // <block>-<box>-<protocol>-<kind>-<connects>
		}
	}
	t.Fatal("no verdict event in the outbox")
	return ""
}

// TestUnwritableDirectoriesFailAtStart: the daemon does not start, and
// says why, when its data directory is on a read-only mount, when its
// database can only be read, when the NATS store is read-only or used by
// another server, and when nats.max_bytes does not fit the store's disk;
// each is found before the first block.
func TestUnwritableDirectoriesFailAtStart(t *testing.T) {
	d, url := newScenarioDevnet(t, devnet.Config{Seed: 14, Blocks: 20, TxsPerBlock: 2})
	_, base := scenarioConfig(t, d, url, "")
	start := func(t *testing.T, cfg Config) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		began := time.Now()
		err := runAuditor(ctx, cfg, 20, zerolog.Nop())
		if err == nil {
			t.Fatal("started")
		}
		if took := time.Since(began); took > 10*time.Second {
			t.Errorf("refused after %s", took)
		}
		return err
	}
	want := func(t *testing.T, err error, parts ...string) {
		t.Helper()
		t.Logf("refused: %v", err)
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("%v\nwant it to say %q", err, p)
			}
		}
	}

	t.Run("data directory on a read-only mount", func(t *testing.T) {
		cfg := base
		cfg.DataDir = filepath.Join(testfs.Tmpfs(t, 1<<20, true), "data")
		err := start(t, cfg)
		want(t, err, "data_dir", cfg.DataDir, "read-only file system")
		if !errors.Is(err, lock.ErrUnwritable) {
			t.Fatalf("%v is not lock.ErrUnwritable", err)
		}
	})
	t.Run("database read-only", func(t *testing.T) {
		cfg := base
		cfg.DataDir = t.TempDir()
		if err := runAuditor(context.Background(), cfg, 5, zerolog.Nop()); err != nil {
			t.Fatal(err)
		}
		testfs.ReadOnlyBind(t, filepath.Join(cfg.DataDir, dbFile))
		err := start(t, cfg)
		want(t, err, filepath.Join(cfg.DataDir, dbFile), "readonly database")
		if tip := storeStatus(t, cfg.DataDir).TipHeight; tip != 5 {
			t.Fatalf("tip %d after the refusal, want 5", tip)
		}
	})
	t.Run("reports directory read-only", func(t *testing.T) {
		cfg := base
		cfg.DataDir = t.TempDir()
		cfg.Reports.Schedule = "@daily"
		cfg.Reports.Dir = testfs.Tmpfs(t, 1<<20, true)
		want(t, start(t, cfg), "reports.dir", "read-only file system")
	})
	t.Run("NATS store on a read-only mount", func(t *testing.T) {
		cfg := base
		cfg.DataDir = t.TempDir()
		cfg.NATS.StoreDir = testfs.Tmpfs(t, 1<<20, true)
		want(t, start(t, cfg), "nats.store_dir", cfg.NATS.StoreDir, "read-only file system")
	})
	t.Run("NATS store used by another server", func(t *testing.T) {
		cfg := base
		cfg.DataDir = t.TempDir()
		cfg.NATS.StoreDir = t.TempDir()
		other, err := publish.StartEmbedded(context.Background(), publish.EmbeddedConfig{StoreDir: cfg.NATS.StoreDir}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		defer other.Shutdown()
		err = start(t, cfg)
		want(t, err, "nats.store_dir", fmt.Sprintf("%s is in use by process %d", cfg.NATS.StoreDir, os.Getpid()))
		if !errors.Is(err, lock.ErrHeld) {
			t.Fatalf("%v is not lock.ErrHeld", err)
		}
	})
	t.Run("nats.max_bytes beyond the disk", func(t *testing.T) {
		cfg := base
		cfg.DataDir = t.TempDir()
		cfg.NATS.MaxBytes = 1 << 62
		err := start(t, cfg)
		want(t, err, "nats.max_bytes = 4611686018427387904", "free", "lower nats.max_bytes")
		if !errors.Is(err, publish.ErrNoSpace) {
			t.Fatalf("%v is not publish.ErrNoSpace", err)
		}
	})
}

// TestStartedLineHidesTheNodePassword: a password in node.url is not
// logged, by the "auditor started" line or any other.
func TestStartedLineHidesTheNodePassword(t *testing.T) {
	d, url := newScenarioDevnet(t, devnet.Config{Seed: 15, Blocks: 10, TxsPerBlock: 2})
	_, cfg := scenarioConfig(t, d, url, "")
	cfg.Node.URL = strings.Replace(url, "http://", "http://ops:s3cret@", 1)
	var logs testlog.Buffer
	if err := runAuditor(context.Background(), cfg, 10, zerolog.New(&logs).Level(zerolog.DebugLevel)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "s3cret") || !strings.Contains(logs.String(), `"node":"http://ops:xxxxx@`) {
		t.Fatalf("logs:\n%s", logs.String())
	}
}

// TestDrainTimeoutCountsPending: a stop whose drain times out (NATS down)
// logs how many events are pending, not a zero read at the deadline.
func TestDrainTimeoutCountsPending(t *testing.T) {
	d, url := newScenarioDevnet(t, devnet.Config{Seed: 16, Blocks: 30, TxsPerBlock: 2})
	ns := natsServer(t, t.TempDir(), 0)
	_, cfg := scenarioConfig(t, d, url, ns.ClientURL())
	ns.Shutdown() // every event stays pending
	ctx := context.Background()
	dm, err := openDaemon(ctx, cfg, 30, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer dm.close()
	var logs testlog.Buffer
	dm.log = zerolog.New(&logs)
	dm.drainTimeout = 100 * time.Millisecond
	if err := dm.run(ctx); err != nil {
		t.Fatal(err)
	}
	_, pending := outboxRows(t, cfg.DataDir)
	if pending == 0 {
		t.Fatal("nothing pending: the drain had nothing to time out on")
	}
	if want := fmt.Sprintf(`"outbox_pending":%d`, pending); !strings.Contains(logs.String(), want) || !strings.Contains(logs.String(), "stopping with events not yet acknowledged") {
		t.Fatalf("log:\n%s\nwant %s", logs.String(), want)
	}
}
