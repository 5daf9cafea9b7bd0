package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/lock"
	"github.com/async-emission/auditor/publish"
)

// protocolsConfig writes a configuration of the devnet's node, keeping
// its data in dataDir, publishing to natsURL ("" for an embedded server
// serving this process only), that watches the sections of pcs.
func protocolsConfig(t *testing.T, dataDir, nodeURL, natsURL string, pcs []devnet.ProtocolConfig) (string, Config) {
	t.Helper()
	nats := "[nats]\nlisten = \"\"\n"
	if natsURL != "" {
		nats = fmt.Sprintf("[nats]\nurl = [%q]\n", natsURL)
	}
	text := "data_dir = " + strconv.Quote(dataDir) + "\n[scan]\nnetwork = \"devnet\"\npoll_interval = \"1ms\"\n" + nats +
		"[http]\nlisten = \"\"\n[reports]\nschedule = \"\"\n" + devnet.ProtocolsTOML(pcs)
	path := filepath.Join(t.TempDir(), "auditor.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, func(c *Config) { c.Node.URL = nodeURL })
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

// runTo runs the daemon of cfg until height is connected and every
// protocol's history reaches it.
func runTo(t *testing.T, cfg Config, height uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := runAuditor(ctx, cfg, height, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
}

// storeVerdicts lists the verdicts of the store in dir, one line each.
func storeVerdicts(t *testing.T, dir string, f db.VerdictFilter) []string {
	t.Helper()
	s, err := db.Open(context.Background(), filepath.Join(dir, dbFile), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	vs, err := s.Verdicts(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf("%s %s %s %s@%d %s %v", v.Protocol, v.Kind, v.Class, v.BoxID, v.Height, v.Status(), v.Reasons)
	}
	return out
}

// histories returns the store's protocol histories by name.
func histories(t *testing.T, dir string) map[string]db.ProtocolHistory {
	t.Helper()
	out := map[string]db.ProtocolHistory{}
	for _, h := range storeStatus(t, dir).Protocols {
		out[h.Name] = h
	}
	return out
}

// TestProtocolsOverTime: an auditor watching the demo protocol alone is
// given the action tree, deployed far below its tip: the next run
// backfills it, and the store equals one that watched both from the start;
// `status` shows how far each history reaches. The tree removed from the
// configuration is kept, inactive; pruned, the store equals one that never
// watched it.
func TestProtocolsOverTime(t *testing.T) {
	const first, blocks = 150, 260
	d, url := newScenarioDevnet(t, devnet.Config{Seed: 9, Blocks: blocks, TxsPerBlock: 2})
	pcs, err := d.Protocols()
	if err != nil {
		t.Fatal(err)
	}
	demoOnly, both := pcs[:1], pcs

	dir := t.TempDir()
	_, demoCfg := protocolsConfig(t, dir, url, "", demoOnly)
	runTo(t, demoCfg, first)
	if h := histories(t, dir); len(h) != 1 || h["demo"].Cursor != first {
		t.Fatalf("histories after watching the demo protocol alone: %+v", h)
	}
	bothPath, bothCfg := protocolsConfig(t, dir, url, "", both)
	runTo(t, bothCfg, blocks)

	_, refCfg := protocolsConfig(t, t.TempDir(), url, "", both)
	runTo(t, refCfg, blocks)
	want, got := storeStatus(t, refCfg.DataDir), storeStatus(t, dir)
	if got.StateDigest != want.StateDigest {
		t.Errorf("state digest %s after adding the tree, %s watching both from the start", got.StateDigest, want.StateDigest)
	}
	if w, g := storeVerdicts(t, refCfg.DataDir, db.VerdictFilter{}), storeVerdicts(t, dir, db.VerdictFilter{}); !slices.Equal(w, g) {
		t.Errorf("%d verdicts after adding the tree, %d watching both from the start", len(g), len(w))
	}
	h := histories(t, dir)
	if tree := h["tree"]; tree.Cursor != blocks || tree.BackfillFrom != pcs[1].StartHeight || tree.State != db.ProtocolActive || tree.Generation != 0 {
		t.Errorf("the tree's history: %+v", tree)
	}
	var out bytes.Buffer
	if code := run([]string{"status", "--config", bothPath}, &env{stdout: &out, stderr: &out}); code != exitOK ||
		!strings.Contains(out.String(), "tree: active, history complete to the tip, start_height 3") {
		t.Errorf("status: exit %d:\n%s", code, out.String())
	}

	// Removed: kept, inactive; pruned: as if never watched.
	demoPath, _ := protocolsConfig(t, dir, url, "", demoOnly)
	runTo(t, demoCfg, blocks)
	if tree := histories(t, dir)["tree"]; tree.State != db.ProtocolInactive || tree.Cursor != blocks {
		t.Fatalf("the tree removed from the configuration: %+v", tree)
	}
	if n := len(storeVerdicts(t, dir, db.VerdictFilter{Protocol: "tree"})); n == 0 {
		t.Fatal("the tree's verdicts went with its section")
	}
	out.Reset()
	if code := run([]string{"prune", "--config", bothPath, "--protocol", "tree"}, &env{stdout: &out, stderr: &out}); code != exitBadInput ||
		!strings.Contains(out.String(), "still watches it") {
		t.Fatalf("prune of a configured protocol: exit %d: %s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"prune", "--config", demoPath, "--protocol", "tree"}, &env{stdout: &out, stderr: &out}); code != exitOK {
		t.Fatalf("prune: exit %d: %s", code, out.String())
	}
	t.Log(strings.TrimSpace(out.String()))
	_, neverCfg := protocolsConfig(t, t.TempDir(), url, "", demoOnly)
	runTo(t, neverCfg, blocks)
	if got, want := storeStatus(t, dir), storeStatus(t, neverCfg.DataDir); got.StateDigest != want.StateDigest {
		t.Errorf("pruned: state digest %s (%d boxes, %d txs, %d reads), %s never watching it (%d boxes, %d txs, %d reads)",
			got.StateDigest, got.Boxes, got.Transactions, got.DataInputReads, want.StateDigest, want.Boxes, want.Transactions, want.DataInputReads)
	}
}

// streamEvents returns every event of the stream, in order, with its
// subject.
func streamEvents(t *testing.T, url string) []streamEvent {
	t.Helper()
	var out []streamEvent
	eachStreamMessage(t, url, func(m *jetstream.RawStreamMsg) {
		ev, err := publish.DecodeEvent(m.Data)
		if err != nil {
			t.Fatalf("message %d: %v", m.Sequence, err)
		}
		out = append(out, streamEvent{Subject: m.Subject, Event: ev})
	})
	return out
}

type streamEvent struct {
	Subject string
	*publish.Event
}

// TestRescanRetractsAndJudgesAgain: `auditor rescan --protocol tree --from
// 150` is refused while a daemon holds the data directory; run offline, it
// retracts the tree's verdicts from that height (retracted events naming
// the rescan), and the next run judges the tree again from there while
// the demo protocol follows the tip: the store ends as it was (the rules
// did not change), and the stream holds, after the first run's events, a
// retraction of each of the tree's verdicts from 150 and its judgement
// again under a new message id (-g1), each once.
func TestRescanRetractsAndJudgesAgain(t *testing.T) {
	const blocks, from = 260, 150
	d, url := newScenarioDevnet(t, devnet.Config{Seed: 10, Blocks: blocks, TxsPerBlock: 2})
	ns := natsServer(t, t.TempDir(), 0)
	path, cfg := scenarioConfig(t, d, url, ns.ClientURL())
	runTo(t, cfg, blocks)
	before := storeStatus(t, cfg.DataDir)
	verdictsBefore := storeVerdicts(t, cfg.DataDir, db.VerdictFilter{})
	firstRun := streamEvents(t, ns.ClientURL())

	rescan := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := run(append([]string{"rescan", "--config", path}, args...), &env{stdout: &out, stderr: &out})
		return code, out.String()
	}
	held, err := lock.Acquire(cfg.DataDir, lockFile)
	if err != nil {
		t.Fatal(err)
	}
	if code, out := rescan("--protocol", "tree", "--from", strconv.Itoa(from)); code != exitFailed ||
		!strings.Contains(out, "is in use by process") || !strings.Contains(out, "stop the daemon first") {
		t.Fatalf("rescan while the directory is held: exit %d: %s", code, out)
	}
	held.Release()
	if code, out := rescan("--protocol", "nosuch"); code != exitBadInput || !strings.Contains(out, "no [[protocol]] section") {
		t.Fatalf("rescan of an unknown protocol: exit %d: %s", code, out)
	}
	code, out := rescan("--protocol", "tree", "--from", strconv.Itoa(from))
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("judged again from height %d (generation 1)", from)) {
		t.Fatalf("rescan: exit %d: %s", code, out)
	}
	t.Log(strings.TrimSpace(out))
	if tree := histories(t, cfg.DataDir)["tree"]; tree.Cursor != from-1 || tree.Generation != 1 || tree.BackfillFrom != from {
		t.Fatalf("the tree's history after the rescan: %+v", tree)
	}

	runTo(t, cfg, blocks)
	after := storeStatus(t, cfg.DataDir)
	if after.StateDigest != before.StateDigest {
		t.Errorf("state digest %s after the rescan, %s before", after.StateDigest, before.StateDigest)
	}
	if got := storeVerdicts(t, cfg.DataDir, db.VerdictFilter{}); !slices.Equal(got, verdictsBefore) {
		t.Errorf("%d verdicts after the rescan, %d before", len(got), len(verdictsBefore))
	}
	all := sameEvents(t, "after the rescan", ns.ClientURL(), cfg.DataDir)
	events := streamEvents(t, ns.ClientURL())
	if len(events) != len(all) || !slices.EqualFunc(events[:len(firstRun)], firstRun, func(a, b streamEvent) bool { return a.ID == b.ID }) {
		t.Fatal("the first run's events are not where they were")
	}

	// Each of the tree's verdicts from the height: retracted by the rescan
	// once, and published again; nothing else.
	type again struct {
		subject string
		*publish.VerdictData
	}
	judgedAgain := map[string]again{}
	retracted := map[string]*publish.RetractionData{}
	for _, e := range events[len(firstRun):] {
		switch e.Type {
		case publish.TypeVerdict:
			v, err := e.Verdict()
			if err != nil {
				t.Fatal(err)
			}
			judgedAgain[e.ID] = again{e.Subject, v}
		case publish.TypeRetracted:
			r, err := e.Retraction()
			if err != nil {
				t.Fatal(err)
			}
			if r.Rescan == nil || *r.Rescan != (publish.RescanData{Protocol: "tree", FromHeight: from, Generation: 1}) || r.DisconnectedBlock != nil {
				t.Fatalf("retraction %s: %+v", e.ID, r)
			}
			if _, twice := retracted[r.Retracts]; twice {
				t.Fatalf("%s retracted twice", r.Retracts)
			}
			retracted[r.Retracts] = r
		default:
			t.Fatalf("a %s event after the rescan", e.Type)
		}
	}
	n := 0
	for _, e := range firstRun {
		if e.Type != publish.TypeVerdict {
			continue
		}
		v, err := e.Verdict()
		if err != nil {
			t.Fatal(err)
		}
		r, gone := retracted[e.ID]
		a, back := judgedAgain[e.ID+"-g1"]
		switch {
		case v.Protocol != "tree" || v.Height < from:
			if gone || back {
				t.Errorf("%s (%s at %d) retracted or judged again", e.ID, v.Protocol, v.Height)
			}
		case !gone || !back:
			t.Errorf("%s: retracted %t, judged again %t", e.ID, gone, back)
		case a.Verdict != v.Verdict || !slices.Equal(a.Reasons, v.Reasons) || a.subject != e.Subject || r.Box.ID != v.Box.ID:
			t.Errorf("%s: judged again %s %s %v, was %s %s %v", e.ID, a.subject, a.Verdict, a.Reasons, e.Subject, v.Verdict, v.Reasons)
		default:
			n++
		}
	}
	if n == 0 || n != len(retracted) || n != len(judgedAgain) {
		t.Fatalf("%d of the tree's verdicts retracted and judged again; %d retractions, %d verdicts after the rescan", n, len(retracted), len(judgedAgain))
	}
	t.Logf("%d verdicts of the tree retracted by the rescan and published again", n)
}
