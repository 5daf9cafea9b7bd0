package main

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/async-emission/auditor/internal/poll"
)

// endlessNode claims a long chain and answers every chain slice with a
// body that never ends (chunked, 2 GiB if read to the end), as a hostile
// node or a man in the middle could.
type endlessNode struct{ refused atomic.Int64 }

func (n *endlessNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/info" {
		fmt.Fprint(w, `{"name":"hostile","network":"devnet","fullHeight":100000,"headersHeight":100000,`+
			`"bestFullHeaderId":"`+strings.Repeat("ab", 32)+`","bestHeaderId":"`+strings.Repeat("ab", 32)+`"}`)
		return
	}
	chunk := []byte(strings.Repeat(`{"id":"`+strings.Repeat("cd", 32)+`"},`, 1<<10))
	w.Write([]byte{'['})
	for sent := 0; sent < 2<<30; sent += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			n.refused.Add(1) // the auditor hung up
			return
		}
	}
}

// peakRSS is a process's peak resident set size (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}

// TestEndlessAnswersKeepMemoryBounded runs the auditor against a node that
// answers with endless bodies for a while and checks its peak RSS: each
// refused answer may hold at most node.max_response_bytes.
func TestEndlessAnswersKeepMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the auditor as a process")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Fatalf("this test reads a process's peak memory from /proc: %v", err)
	}
	bin := auditorBinary(t)
	node := &endlessNode{}
	srv := httptest.NewServer(node)
	defer srv.Close()
	dir := t.TempDir()
	cfgPath := dir + "/auditor.toml"
	if err := os.WriteFile(cfgPath, []byte("[scan]\nnetwork = \"devnet\"\npoll_interval = \"50ms\"\n[nats]\nlisten = \"\"\n[http]\nlisten = \"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, bin, "run", "--config", cfgPath, "--node", srv.URL, "--data-dir", dir)
	// AUDITOR_ENDLESS_REFUSALS makes the run longer (the README's figure
	// is taken over a minute of refusals).
	refusals := int64(60)
	if n, err := strconv.ParseInt(os.Getenv("AUDITOR_ENDLESS_REFUSALS"), 10, 64); err == nil && n > 0 {
		refusals = n
	}
	began := time.Now()
	poll.Until(t, time.Hour, "the auditor to refuse endless answers", func() (bool, string) {
		return node.refused.Load() >= refusals, fmt.Sprintf("%d refused", node.refused.Load())
	})
	peak := peakRSS(t, p.cmd.Process.Pid)
	p.signal(t, os.Interrupt)
	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.stderr.String())
	}
	t.Logf("%d endless answers refused in %s, peak RSS %d MiB", node.refused.Load(), time.Since(began).Round(time.Second), peak>>20)
	if peak > 200<<20 {
		t.Fatalf("peak RSS %d MiB while refusing endless answers, want under 200 MiB", peak>>20)
	}
	if !strings.Contains(p.stderr.String(), "response too large") {
		t.Fatalf("no refusal logged:\n%s", p.stderr.String())
	}
}
