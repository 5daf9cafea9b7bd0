package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/internal/natstest"
	"github.com/async-emission/auditor/scan"
)

// The binary under test, built once per test run.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	// The in-process daemons recover from NATS failures sooner (the
	// auditor processes the tests start keep the defaults).
	relayAckTimeout, relayBackoffMax, streamWatchInterval = 3*time.Second, time.Second, 200*time.Millisecond
	code := m.Run()
	natstest.RemoveBinary()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

func auditorBinary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "auditor-bin-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "auditor")
		out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = err
			built.path = string(out)
		}
	})
	if built.err != nil {
		t.Fatalf("build auditor: %v\n%s", built.err, built.path)
	}
	return built.path
}

func startDevnet(t *testing.T, cfg devnet.Config) string {
	t.Helper()
	d, err := devnet.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// watchingConfig writes a configuration file that watches the ErgoTree
// templates of every output in the devnet's first blocks, so that the
// store holds boxes, spends and data-input reads, not just headers.
func watchingConfig(t *testing.T, url string) (path string, cfg Config) {
	t.Helper()
	c, err := scan.NewClient(scan.ClientConfig{URL: url}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var templates []string
	for h := uint32(1); h <= 5; h++ {
		ids, err := c.BlockIDsAt(context.Background(), h)
		if err != nil || len(ids) == 0 {
			t.Fatalf("block ids at %d: %v", h, err)
		}
		b, err := c.Block(context.Background(), ids[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range b.Transactions {
			for _, out := range tx.Outputs {
				tree, err := sigma.ParseErgoTree(out.ErgoTree)
				if err != nil {
					continue
				}
				if th, err := tree.TemplateHash(); err == nil && !seen[hex.EncodeToString(th[:])] {
					seen[hex.EncodeToString(th[:])] = true
					templates = append(templates, fmt.Sprintf("%q", hex.EncodeToString(th[:])))
				}
			}
		}
	}
	path = filepath.Join(t.TempDir(), "auditor.toml")
	toml := fmt.Sprintf("[scan]\nnetwork = \"devnet\"\npoll_interval = \"1ms\"\n[watch]\ntemplates = [%s]\n[nats]\nlisten = \"\"\n[http]\nlisten = \"\"\n[reports]\nschedule = \"\"\n", strings.Join(templates, ", "))
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err = loadConfig(path, func(c *Config) { c.Node.URL = url })
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

func storeStatus(t testing.TB, dir string) db.Status {
	t.Helper()
	s, err := db.Open(context.Background(), filepath.Join(dir, dbFile), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRunWithFlagsOnlyAndStatus(t *testing.T) {
	url := startDevnet(t, devnet.Config{Seed: 7, Blocks: 40, TxsPerBlock: 4})
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut}
	if code := run([]string{"run", "--node", url, "--network", "devnet", "--data-dir", dir, "--until-height", "40", "--http", "127.0.0.1:0"}, e); code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, errOut.String())
	}
	out.Reset()
	if code := run([]string{"status", "--data-dir", dir, "--json"}, e); code != exitOK {
		t.Fatalf("status: exit %d\n%s", code, errOut.String())
	}
	var st api.Status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out.String())
	}
	if st.Empty || st.TipHeight != 40 || st.Headers != 40 || st.StateDigest != storeStatus(t, dir).StateDigest {
		t.Fatalf("status %+v", st)
	}
	out.Reset()
	if code := run([]string{"status", "--data-dir", dir}, e); code != exitOK || !bytes.Contains(out.Bytes(), []byte(st.StateDigest.String())) {
		t.Fatalf("status without --json: exit %d\n%s", code, out.String())
	}
	if code := run([]string{"status", "--data-dir", filepath.Join(dir, "absent")}, e); code != exitBadInput {
		t.Fatalf("status of a missing data dir: exit %d, want 2", code)
	}
	if code := run([]string{"status", "--data-dir", dir, "extra"}, e); code != exitBadInput {
		t.Fatalf("status with a stray argument: exit %d, want 2", code)
	}
	if code := run([]string{"run", "--node", "not a url", "--data-dir", dir}, e); code != exitBadInput {
		t.Fatalf("run with a bad node URL: exit %d, want 2", code)
	}
}

// checkVerifyTree: verify explains the action tree: a verified settlement
// shows its action and the results it was built on (an aggregate and a
// quote, verified, each proved by its emission box); the aggregate shows
// the settlement among what was built on it; a result planted on a result
// whose emission box it did not read (or could not: its lineage was
// closed) shows that basis unproved.
func checkVerifyTree(t *testing.T, dir string, exp []devnet.Expectation) {
	t.Helper()
	explain := func(box ergo.Digest) api.Explanation {
		t.Helper()
		var out bytes.Buffer
		run([]string{"verify", "--data-dir", dir, "--json", box.String()}, &env{stdout: &out, stderr: &out})
		var ex api.Explanation
		if err := json.Unmarshal(out.Bytes(), &ex); err != nil {
			t.Fatalf("verify --json %s: %v\n%s", box, err, out.String())
		}
		return ex
	}
	var settled, unproved bool
	for _, x := range exp {
		if x.Protocol != devnet.TreeProtocol || x.Class != devnet.ClassEmitted {
			continue
		}
		switch {
		case x.Case == "tree:"+devnet.ActionSettle && !settled:
			ex := explain(x.BoxID)
			if len(ex.Verdicts) != 1 || ex.Verdicts[0].Action != devnet.ActionSettle {
				t.Fatalf("verify %s: verdicts %+v, want one of action settle", x.BoxID, ex.Verdicts)
			}
			kinds := map[string]api.Basis{}
			for _, b := range ex.BuiltOn {
				if len(b.Verdicts) != 1 || b.Verdicts[0].Verdict != devnet.VerdictVerified || b.ProvedBy == nil {
					t.Fatalf("verify %s: built on %+v, want verified results, each proved", x.BoxID, b)
				}
				kinds[b.Verdicts[0].Action] = b
			}
			agg, ok := kinds[devnet.ActionAggregate]
			if _, quoted := kinds[devnet.ActionQuote]; !ok || !quoted || len(kinds) != 2 {
				t.Fatalf("verify %s: built on %+v, want an aggregate and a quote", x.BoxID, ex.BuiltOn)
			}
			if !slices.ContainsFunc(explain(agg.BoxID).Dependents, func(v api.Verdict) bool { return v.BoxID == x.BoxID }) {
				t.Errorf("verify %s (an aggregate): the settlement %s is not among what was built on it", agg.BoxID, x.BoxID)
			}
			var out bytes.Buffer
			run([]string{"verify", "--data-dir", dir, x.BoxID.String()}, &env{stdout: &out, stderr: &out})
			if text := out.String(); !strings.Contains(text, "emitted/settle") || !strings.Contains(text, "built on the results:") ||
				!strings.Contains(text, "proved by emission box "+agg.ProvedBy.String()) {
				t.Errorf("verify %s (text) does not show the tree:\n%s", x.BoxID, text)
			}
			settled = true
		case (x.Case == "plant:tree-unproved-result" || x.Case == "plant:tree-closed-lineage-result") && !unproved:
			ex := explain(x.BoxID)
			if !slices.ContainsFunc(ex.BuiltOn, func(b api.Basis) bool { return b.ProvedBy == nil }) {
				t.Errorf("verify %s (built on an unproved result): built on %+v", x.BoxID, ex.BuiltOn)
			}
			unproved = true
		}
	}
	if !settled || !unproved {
		t.Errorf("the manifest has a verified settlement: %t, a result built on an unproved one: %t", settled, unproved)
	}
}

// TestRunKeepsProtocolBoxes runs against the async-emission scenario with
// the [[protocol]] section the devnet prints: every box the scenario's
// manifest classifies is stored and judged, each once (with the other
// outputs of the transactions that create them: changes and fees).
func TestRunKeepsProtocolBoxes(t *testing.T) {
	const blocks = 120
	d, err := devnet.New(devnet.Config{Seed: 5, Blocks: blocks, TxsPerBlock: 4, Scenario: &devnet.AsyncEmission{ForgeryRate: 0.3}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	pcs, err := d.Protocols()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "auditor.toml")
	if err := os.WriteFile(path, []byte(devnetScanTOML+devnet.ProtocolsTOML(pcs)+"[nats]\nlisten = \"\"\n[http]\nlisten = \"\"\n[reports]\nschedule = \"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out bytes.Buffer
	if code := run([]string{"run", "--config", path, "--node", srv.URL, "--data-dir", dir, "--until-height", fmt.Sprint(blocks)}, &env{stdout: &out, stderr: &out}); code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, out.String())
	}
	exp, err := d.Expectations(blocks)
	if err != nil {
		t.Fatal(err)
	}
	var created int64
	for _, e := range exp {
		if e.Kind == devnet.VerdictCreated {
			created++
		}
	}
	st := storeStatus(t, dir)
	var verdicts int64
	for _, c := range st.Verdicts {
		if c.Reason == "" {
			verdicts += c.Count
		}
	}
	if created == 0 || st.Boxes < created || verdicts != int64(len(exp)) {
		t.Fatalf("stored %d boxes and %d verdicts; the manifest classifies %d boxes and has %d verdicts",
			st.Boxes, verdicts, created, len(exp))
	}

	// verify explains each kind of box as the manifest says.
	explained := map[string]bool{}
	for _, x := range exp {
		key := fmt.Sprintf("%s %s %s %s", x.Protocol, x.Kind, x.Class, x.Verdict)
		if explained[key] {
			continue
		}
		explained[key] = true
		var out bytes.Buffer
		// Flags after the argument, as people type them.
		code := run([]string{"verify", x.BoxID.String(), "--data-dir", dir, "--json"}, &env{stdout: &out, stderr: &out})
		if want := map[bool]int{true: exitOK, false: exitFailed}[x.Verdict == devnet.VerdictVerified && x.Kind == devnet.VerdictCreated]; code != want && x.Kind == devnet.VerdictCreated {
			t.Errorf("verify %s (%s): exit %d, want %d\n%s", x.BoxID, key, code, want, out.String())
		}
		var ex api.Explanation
		if err := json.Unmarshal(out.Bytes(), &ex); err != nil {
			t.Fatalf("verify --json %s: %v\n%s", x.BoxID, err, out.String())
		}
		var found bool
		for _, v := range ex.Verdicts {
			if string(v.Kind) != string(x.Kind) || v.Protocol != x.Protocol {
				continue
			}
			found = true
			var codes []string
			for _, r := range v.Reasons {
				codes = append(codes, string(r.Code))
				if r.Sentence == "" {
					t.Errorf("verify %s: reason %s has no sentence", x.BoxID, r.Code)
				}
			}
			if string(v.Class) != x.Class || v.Verdict != x.Verdict || !slices.Equal(codes, x.Reasons) || v.TxID != x.TxID {
				t.Errorf("verify %s: %+v; the manifest says %+v", x.BoxID, v, x)
			}
		}
		if !found {
			t.Errorf("verify %s: no %s verdict in %s", x.BoxID, x.Kind, out.String())
		}
		if x.Class == devnet.ClassEmitted && x.Verdict == devnet.VerdictVerified &&
			(ex.Lineage == nil || len(ex.Lineage.Emissions) == 0 || ex.Lineage.Emissions[0].Verdict != devnet.VerdictVerified) {
			t.Errorf("verify %s: a verified emitted box without a verified lineage back to its bootstrap: %+v", x.BoxID, ex.Lineage)
		}
		out.Reset()
		if code := run([]string{"verify", "--data-dir", dir, x.BoxID.String()}, &env{stdout: &out, stderr: &out}); !strings.Contains(out.String(), x.BoxID.String()) || code == exitBadInput {
			t.Errorf("verify %s (text): exit %d\n%s", x.BoxID, code, out.String())
		}
	}
	if len(explained) < 10 {
		t.Errorf("explained only %v", explained)
	}
	out.Reset()
	if code := run([]string{"verify", "--data-dir", dir, strings.Repeat("ab", 32)}, &env{stdout: &out, stderr: &out}); code != exitFailed {
		t.Errorf("verify of a box not stored: exit %d, want 1", code)
	}
	if code := run([]string{"verify", "--data-dir", dir, "xyz"}, &env{stdout: &out, stderr: &out}); code != exitBadInput {
		t.Errorf("verify of a malformed id: exit %d, want 2", code)
	}

	checkVerifyTree(t, dir, exp)

	// status --json counts the verdicts by protocol and class.
	out.Reset()
	if code := run([]string{"status", "--data-dir", dir, "--json"}, &env{stdout: &out, stderr: &out}); code != exitOK {
		t.Fatalf("status: exit %d\n%s", code, out.String())
	}
	var sj api.Status
	if err := json.Unmarshal(out.Bytes(), &sj); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for _, x := range exp {
		want[fmt.Sprintf("%s %s %s", x.Protocol, x.Class, x.Verdict)]++
		for _, r := range x.Reasons {
			want[fmt.Sprintf("%s %s %s", x.Protocol, x.Class, r)]++
		}
	}
	got := map[string]int64{}
	for protocol, classes := range sj.Verdicts {
		for class, c := range classes {
			got[fmt.Sprintf("%s %s verified", protocol, class)] += c.Verified
			got[fmt.Sprintf("%s %s invalid", protocol, class)] += c.Invalid
			for r, n := range c.Reasons {
				got[fmt.Sprintf("%s %s %s", protocol, class, r)] += n
			}
		}
	}
	maps.DeleteFunc(got, func(_ string, n int64) bool { return n == 0 })
	if !maps.Equal(got, want) {
		t.Errorf("status --json verdict counts %v, the manifest's %v", got, want)
	}
}

// TestKilledRunResumesToTheSameState kills `auditor run` with SIGKILL at
// random moments of a sync, ten times, restarting it each time, and checks
// the result against an uninterrupted sync.
func TestKilledRunResumesToTheSameState(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills processes")
	}
	const blocks = 900
	bin := auditorBinary(t)
	url := startDevnet(t, devnet.Config{Seed: 11, Blocks: blocks, TxsPerBlock: 8})

	cfgPath, cfg := watchingConfig(t, url)
	cfg.DataDir = t.TempDir()
	if p := startProcess(t, bin, "run", "--config", cfgPath, "--node", url, "--data-dir", cfg.DataDir, "--until-height", fmt.Sprint(blocks)); p.wait(t, time.Minute) != nil {
		t.Fatalf("the uninterrupted run failed:\n%s", p.stderr)
	}
	want := storeStatus(t, cfg.DataDir)
	if want.Boxes == 0 || want.Spends == 0 {
		t.Fatalf("the watched state is too thin to compare: %+v", want)
	}

	dir := t.TempDir()
	// The test reads the tip through its own connection while the
	// auditor writes (WAL lets readers and one writer share the file).
	watch, err := db.Open(context.Background(), filepath.Join(dir, dbFile), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	tipHeight := func() uint32 {
		tip, _, err := watch.Tip(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return tip.Height
	}
	rng := rand.New(rand.NewPCG(2026, 11))
	args := []string{"run", "--config", cfgPath, "--node", url, "--data-dir", dir, "--until-height", "900"}
	var kills int
	for kills < 10 {
		tip := tipHeight()
		if tip >= blocks {
			t.Fatalf("the sync finished after %d kills; the chain is too short to kill it 10 times", kills)
		}
		// Kill once the tip passes a random height in the next stretch,
		// plus a random delay, so kills land at varied points of the
		// fetch/verify/commit cycle. Each stretch is at most 1/(15-kills)
		// of what remains, so a third of the chain is left after ten.
		threshold := tip + 1 + uint32(rng.IntN(int(blocks-tip)/(15-kills)))
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.Now().Add(time.Minute)
	poll:
		for {
			select {
			case err := <-exited:
				t.Fatalf("auditor exited before being killed (%v) at tip %d, threshold %d:\n%s", err, tipHeight(), threshold, stderr.String())
			default:
			}
			if tipHeight() >= threshold {
				break poll
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("no progress to height %d:\n%s", threshold, stderr.String())
			}
			time.Sleep(100 * time.Microsecond)
		}
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-exited
		kills++
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	got := storeStatus(t, dir)
	t.Logf("after %d kills: %d boxes, %d spends, %d data reads, digest %s", kills, got.Boxes, got.Spends, got.DataInputReads, got.StateDigest)
	if got.StateDigest != want.StateDigest || got.TipHeight != blocks {
		t.Fatalf("after %d kills: tip %d digest %s; uninterrupted: tip %d digest %s", kills, got.TipHeight, got.StateDigest, want.TipHeight, want.StateDigest)
	}
}
