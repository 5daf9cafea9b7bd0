package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/devnet"
)

// TestDemo runs a short demo: the feed shows invalid verdicts (the action
// tree's with their actions), forks and the report, the summary's counts
// are the store's, it counts results by action and names a result built on
// a result built on a result, which verify explains as verified, and the
// report exists.
func TestDemo(t *testing.T) {
	var out, errOut bytes.Buffer
	dir := t.TempDir()
	o := demoOptions{blocks: 250, seed: 2026, rate: 0.3, blockTime: time.Second, dir: dir}
	if err := demo(context.Background(), o, &out, &errOut); err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut.String())
	}
	text := out.String()
	for _, want := range []string{".invalid.", "auditor.chain.rollback", ".retracted.", "auditor.report.ready", "auditor.tree.invalid.emitted", "emitted/aggregate"} {
		if !strings.Contains(text, want) {
			t.Errorf("the feed shows no %s event:\n%s", want, text)
		}
	}
	if strings.Contains(text, "\x1b[") {
		t.Error("colour codes written to a writer that is not a terminal")
	}
	m := regexp.MustCompile(`audited (\d+) blocks .* through (\d+) reorgs: (\d+) verified and (\d+) invalid verdicts`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no summary:\n%s", text)
	}
	if m[1] != "250" || m[2] == "0" {
		t.Errorf("summary %q: want 250 blocks and some reorgs", m[0])
	}
	var verified, invalid int64
	for _, c := range storeStatus(t, dir).Verdicts {
		switch {
		case c.Reason != "":
		case c.Verdict == "verified":
			verified += c.Count
		default:
			invalid += c.Count
		}
	}
	if m[3] != strconv.FormatInt(verified, 10) || m[4] != strconv.FormatInt(invalid, 10) || invalid == 0 {
		t.Errorf("summary %q; the store has %d verified and %d invalid", m[0], verified, invalid)
	}
	if !regexp.MustCompile(`(?m)^  tree settle +\d+ verified +\d+ invalid$`).MatchString(text) {
		t.Errorf("no count of the tree's settlements:\n%s", text)
	}
	deep := regexp.MustCompile(`verify --data-dir \S+ ([0-9a-f]{64})`).FindStringSubmatch(text)
	if deep == nil {
		t.Fatalf("no result built on a result built on a result named:\n%s", text)
	}
	var vout bytes.Buffer
	if code := run([]string{"verify", "--data-dir", dir, deep[1]}, &env{stdout: &vout, stderr: &vout}); code != exitOK ||
		!strings.Contains(vout.String(), "built on the results:") {
		t.Errorf("verify %s: exit %d\n%s", deep[1], code, vout.String())
	}
	reports := regexp.MustCompile(`(?m)^  (/\S+\.(json|html))$`).FindAllStringSubmatch(text, -1)
	if len(reports) != 2 {
		t.Fatalf("report paths %q", reports)
	}
	for _, r := range reports {
		if _, err := os.Stat(r[1]); err != nil {
			t.Error(err)
		}
	}
	// The chain the demo audited is the devnet's final chain.
	d, err := devnet.New(devnet.Config{Seed: o.seed, Blocks: int(o.blocks), TxsPerBlock: 4,
		Scenario: &devnet.AsyncEmission{ForgeryRate: o.rate}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if want := d.FinalID(o.blocks); storeStatus(t, dir).TipID != want {
		t.Errorf("tip %s, want the final chain's %s", storeStatus(t, dir).TipID, want)
	}
}
