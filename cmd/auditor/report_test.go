package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/publish"
)

// TestReportCommand makes a report of a synced store with auditor report,
// and sees the next run of the daemon publish its report.ready event.
func TestReportCommand(t *testing.T) {
	const blocks = 120
	d, url := newScenarioDevnet(t, devnet.Config{Seed: 5, Blocks: blocks, TxsPerBlock: 2})
	ns := natsServer(t, t.TempDir(), 0)
	path, cfg := scenarioConfig(t, d, url, ns.ClientURL())
	if err := runAuditor(context.Background(), cfg, blocks, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}

	// The configuration's block explorer is linked from the HTML report.
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text = bytes.Replace(text, []byte("[reports]\n"), []byte("[reports]\nexplorer_url = \"https://explorer.example/en/boxes/{box}\"\n"), 1)
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}

	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr}
	if code := run([]string{"report", "--config", path, "--out", out}, e); code != exitOK {
		t.Fatalf("report: exit %d\n%s", code, stderr.String())
	}
	files := strings.Fields(stdout.String())
	if len(files) != 2 || !strings.HasSuffix(files[0], ".json") || !strings.HasSuffix(files[1], ".html") {
		t.Fatalf("report printed %q", stdout.String())
	}
	for _, f := range files {
		if !strings.HasPrefix(f, out) {
			t.Errorf("%s is not in --out %s", f, out)
		}
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	if page, err := os.ReadFile(files[1]); err != nil || !bytes.Contains(page, []byte(`href="https://explorer.example/en/boxes/`)) {
		t.Errorf("the HTML report links no box to reports.explorer_url (%v)", err)
	}
	if _, pending := outboxRows(t, cfg.DataDir); pending != 1 {
		t.Fatalf("%d events pending after the report, want its report.ready", pending)
	}

	// The daemon, already at the height, publishes the announcement.
	if err := runAuditor(context.Background(), cfg, blocks, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "after the report", ns.ClientURL(), cfg.DataDir)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	m, err := js.GetLastMsg(publish.DefaultStream, "auditor.report.ready")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := publish.DecodeEvent(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := ev.Report()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rd.Files, files) {
		t.Fatalf("report.ready names %q, the command printed %q", rd.Files, files)
	}

	for _, args := range [][]string{
		{"report", "--config", path, "extra"},
		{"report", "--data-dir", t.TempDir()}, // no database there
	} {
		if code := run(args, e); code != exitBadInput {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
