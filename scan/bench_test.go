package scan_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

// BenchmarkCatchUp measures catch-up end to end — a devnet chain served from
// memory over loopback HTTP, decoded, verified and connected into SQLite —
// for a store that keeps headers only, one that keeps every box, and the
// rules engine judging a protocol (on the plain chain it finds nothing: the
// cost of looking; with the async-emission scenario it judges a protocol
// deployment). It also reports the rate of decoding and verifying the same
// blocks alone on one goroutine, as a reference for the decoder; the two
// rates are not a ratio of costs (the catch-up runs on every core, the
// server in the same process): cmd/auditor's BenchmarkCPUPerBlock compares
// CPU per block against the verification floor.
//
//	go test -run '^$' -bench CatchUp -benchtime 3x ./scan/
func BenchmarkCatchUp(b *testing.B) {
	const blocks = 500
	for _, chain := range []struct {
		name     string
		scenario devnet.Scenario
	}{{"plain", nil}, {"async-emission", &devnet.AsyncEmission{ForgeryRate: 0.1}}} {
		d, err := devnet.New(devnet.Config{Seed: 1, Blocks: blocks, TxsPerBlock: 10, Scenario: chain.scenario}, zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(d.Handler())
		raw := fetchAll(b, srv.URL, d, blocks)
		engine := rules.NewEngine([]rules.Protocol{benchProtocol(b, d)}, nil, zerolog.Nop())
		for _, c := range []struct {
			name  string
			judge db.Judge
		}{{"headers-only", nil}, {"keep-all", db.KeepAll{}}, {"rules", engine}} {
			b.Run(chain.name+"/"+c.name, func(b *testing.B) {
				catchUp(b, srv.URL, raw, c.judge)
			})
		}
		srv.Close()
	}
}

// benchProtocol is the protocol of d's async-emission deployment, or, on a
// chain without one, a protocol of tokens and templates the chain does not
// hold.
func benchProtocol(b *testing.B, d *devnet.Devnet) rules.Protocol {
	p := rules.Protocol{Name: "bench", AsyncSupply: rules.DefaultAsyncSupply, StartHeight: 1,
		ParticipantTokenID: ergo.Hash([]byte("participant")), StateNFTID: ergo.Hash([]byte("state")),
		EmissionTemplate: rules.SHA256Template(ergo.Hash([]byte("emission"))),
		EmissionRequires: []rules.Requirement{{Class: rules.ClassState, EmittedRegister: 4, DataInputRegister: 4}}}
	pc, err := d.Protocol()
	if err != nil {
		return p
	}
	funnel, emitted := rules.SHA256Template(pc.FunnelTemplate), rules.SHA256Template(pc.EmittedTemplate)
	p.ParticipantTokenID, p.StateNFTID, p.EmissionTemplate = pc.ParticipantTokenID, pc.StateNFTID, rules.SHA256Template(pc.EmissionTemplate)
	p.FunnelTemplate, p.EmittedTemplate, p.StartHeight = &funnel, &emitted, pc.StartHeight
	return p
}

// fetchAll fetches every block once: it warms the devnet's cache (so
// generation is not measured) and gives the bytes for the decode-and-verify
// baseline.
func fetchAll(b *testing.B, url string, d *devnet.Devnet, blocks uint32) [][]byte {
	raw := make([][]byte, 0, blocks)
	for h := uint32(1); h <= blocks; h++ {
		resp, err := http.Get(url + "/blocks/" + d.FinalID(h).String())
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("block %d: %d %v", h, resp.StatusCode, err)
		}
		raw = append(raw, body)
	}
	return raw
}

func catchUp(b *testing.B, url string, raw [][]byte, judge db.Judge) {
	blocks := uint32(len(raw))
	var e2e time.Duration
	for b.Loop() {
		b.StopTimer()
		store, err := db.Open(context.Background(), filepath.Join(b.TempDir(), "auditor.db"), zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		client, err := scan.NewClient(scan.ClientConfig{URL: url}, zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		f := scan.NewFollower(client, store, judge, scan.FollowerConfig{Params: consensus.Devnet(), UntilHeight: blocks}, zerolog.Nop())
		b.StartTimer()
		start := time.Now()
		if err := f.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		e2e += time.Since(start)
		b.StopTimer()
		store.Close()
		b.StartTimer()
	}
	start := time.Now()
	for _, body := range raw {
		blk, err := ergo.DecodeBlock(body)
		if err != nil {
			b.Fatal(err)
		}
		if err := blk.Verify(); err != nil {
			b.Fatal(err)
		}
	}
	verifyRate := float64(blocks) / time.Since(start).Seconds()
	e2eRate := float64(int(blocks)*b.N) / e2e.Seconds()
	b.ReportMetric(e2eRate, "blocks/s")
	b.ReportMetric(verifyRate, "verify-blocks/s")
}

// BenchmarkLongSync syncs a long devnet chain served by a separate `auditor
// devnet` process (so this process holds only the auditor) and reports the
// peak RSS and the RSS at every tenth of the sync: memory must stay flat,
// not grow with the chain. It runs only when AUDITOR_LONG_SYNC_BLOCKS is
// set (it takes minutes):
//
//	AUDITOR_LONG_SYNC_BLOCKS=100000 go test -run '^$' -bench LongSync -benchtime 1x -timeout 60m ./scan/
func BenchmarkLongSync(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("AUDITOR_LONG_SYNC_BLOCKS"))
	if n <= 0 {
		b.Skip("set AUDITOR_LONG_SYNC_BLOCKS (e.g. 100000) to run the long sync")
	}
	if b.N > 1 {
		b.Skip("one sync is the measurement")
	}
	bin := filepath.Join(b.TempDir(), "auditor")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/auditor").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dev := exec.CommandContext(ctx, bin, "devnet", "--seed", "1", "--blocks", strconv.Itoa(n), "--listen", "127.0.0.1:0")
	stdout, _ := dev.StdoutPipe()
	dev.Stderr = os.Stderr
	if err := dev.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cancel(); dev.Wait() }() // stop the devnet, then reap it
	url := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if i := strings.Index(sc.Text(), "http://"); i >= 0 {
			url = strings.Fields(sc.Text()[i:])[0]
			break
		}
	}
	if url == "" {
		b.Fatal("the devnet did not print its URL")
	}
	go io.Copy(io.Discard, stdout)
	client, err := scan.NewClient(scan.ClientConfig{URL: url, RequestTimeout: 10 * time.Minute}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	// The devnet generates the chain before /info reports it.
	for {
		info, err := client.Info(ctx)
		if err == nil && info.FullHeight == uint32(n) {
			break
		}
		time.Sleep(time.Second)
	}
	store, err := db.Open(ctx, filepath.Join(b.TempDir(), "auditor.db"), zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	f := scan.NewFollower(client, store, nil, scan.FollowerConfig{Params: consensus.Devnet(), UntilHeight: uint32(n)}, zerolog.Nop())
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- f.Run(ctx) }()
	var samples []string
	next := uint32(n / 10)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			peak := procStatusKB("VmHWM")
			b.ReportMetric(float64(n)/elapsed.Seconds(), "blocks/s")
			b.ReportMetric(float64(peak)/1024, "peak-RSS-MB")
			b.Logf("RSS at each tenth of the sync (MB): %s; peak %d MB", strings.Join(samples, " "), peak/1024)
			return
		case <-tick.C:
			if st := f.Stats(); st.Connected >= uint64(next) {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				samples = append(samples, fmt.Sprintf("%d:%d(heap %d)", next, procStatusKB("VmRSS")/1024, m.HeapInuse>>20))
				next += uint32(n / 10)
			}
		}
	}
}

// procStatusKB reads a kB field of /proc/self/status (0 where unavailable).
func procStatusKB(field string) int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			v, _ := strconv.Atoi(strings.Fields(line)[1])
			return v
		}
	}
	return 0
}
