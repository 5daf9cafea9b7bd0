package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
)

const demoSynopsis = `[--blocks N] [--seed N] [--forgery-rate F] [--follow] [--http ADDR] [--data-dir DIR]

Shows the auditor at work, in one process: a simulated Ergo node running
the async-emission scenario (two protocol deployments, "demo" and the
action tree "tree", whose users build on each other's results; users acting
asynchronously, forks, and planted forgeries of every kind), the embedded
NATS server, and the auditor following the node. Every event the auditor
publishes is printed as it arrives. Once the chain is audited it writes a
report, prints its path and a summary, and exits; with --follow it goes on
following a node that makes a block every --block-time until SIGINT.

Everything is kept in --data-dir (default: a new temporary directory), so that
auditor status, verify and report can look at it afterwards.`

// The demo chain: reorgs every demoReorgEvery blocks, demoReorgDepth deep.
const (
	demoReorgEvery = 40
	demoReorgDepth = 3
	// demoFollowBlocks is the length of the chain --follow can reach.
	demoFollowBlocks = 200_000
)

func runDemo(e *env, args []string) error {
	fs := newFlagSet(e, "demo", demoSynopsis)
	blocks := fs.Int("blocks", 1210, "blocks to audit before the report")
	seed := fs.Int64("seed", 2026, "the devnet's seed")
	rate := fs.Float64("forgery-rate", devnet.DefaultForgeryRate, "share of scenario actions that are forged (0 to 1)")
	follow := fs.Bool("follow", false, "keep running after the report, with a new block every --block-time")
	blockTime := fs.Duration("block-time", 2*time.Second, "with --follow, how often a new block appears")
	httpAddr := fs.String("http", "", "serve HTTP on `ADDR` (e.g. 127.0.0.1:8080); \"\" runs none")
	dir := fs.String("data-dir", "", "keep the database, NATS store and reports in `DIR` (default: a new temporary directory)")
	all := fs.Bool("all", false, "print every verified verdict too, not only a running count")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return badInput{fmt.Errorf("unexpected arguments %q", fs.Args())}
	case *blocks < demoReorgEvery || *blocks > demoFollowBlocks/2:
		return badInput{fmt.Errorf("--blocks %d: give %d to %d", *blocks, demoReorgEvery, demoFollowBlocks/2)}
	case *blockTime <= 0:
		return badInput{fmt.Errorf("--block-time %s: must be positive", *blockTime)}
	case *httpAddr != "" && !loopbackListen(*httpAddr):
		return badInput{fmt.Errorf("--http %s: the demo serves on loopback only (127.0.0.1:8080): its HTTP server has no authentication", *httpAddr)}
	}
	if *dir == "" {
		var err error
		if *dir, err = os.MkdirTemp("", "auditor-demo-"); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal exits at once
	}()
	return demo(ctx, demoOptions{
		blocks: uint32(*blocks), seed: *seed, rate: *rate, follow: *follow, blockTime: *blockTime,
		http: *httpAddr, dir: *dir, color: colorful(e.stdout), all: *all,
		log: fs.logger(LogConfig{Level: "warn", Format: "console"}),
	}, e.stdout, e.stderr)
}

type demoOptions struct {
	blocks    uint32
	seed      int64
	rate      float64
	follow    bool
	blockTime time.Duration
	http      string
	dir       string
	color     bool
	all       bool // print verified verdicts too
	log       zerolog.Logger
}

// colorful tells whether w is a terminal that wants colour.
func colorful(w io.Writer) bool {
	f, ok := w.(*os.File)
	_, noColor := os.LookupEnv("NO_COLOR")
	return ok && !noColor && isatty.IsTerminal(f.Fd())
}

func demo(ctx context.Context, o demoOptions, stdout, stderr io.Writer) error {
	length := int(o.blocks)
	if o.follow {
		length = demoFollowBlocks
	}
	// The devnet makes a block visible only when stepped (BlockTime is
	// never used: Run is not called), so the demo sets the pace.
	dn, err := devnet.New(devnet.Config{
		Seed: o.seed, Blocks: length, TxsPerBlock: 4, BlockTime: time.Millisecond,
		ReorgEvery: demoReorgEvery, ReorgDepth: demoReorgDepth,
		Scenario: &devnet.AsyncEmission{ForgeryRate: o.rate},
	}, zerolog.Nop())
	if err != nil {
		return badInput{err}
	}
	pcs, err := dn.Protocols()
	if err != nil {
		return err
	}
	var names []string
	for _, pc := range pcs {
		names = append(names, strconv.Quote(pc.Name))
	}
	node, err := serveDemoNode(ctx, dn)
	if err != nil {
		return err
	}
	defer node.close()

	cfg := DefaultConfig()
	cfg.DataDir = o.dir
	cfg.Node.URL = node.url
	cfg.Scan.Network = "devnet"
	cfg.Scan.PollInterval = Duration(5 * time.Millisecond)
	cfg.NATS.Listen = "" // in-process only: nothing else on the machine is touched
	cfg.HTTP.Listen = o.http
	cfg.Reports.Schedule = ""
	if o.follow {
		cfg.Reports.Schedule = "@every 1m"
	}
	if cfg.Protocols, err = protocolSpecs(devnet.ProtocolsTOML(pcs)); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := o.log

	until := o.blocks
	if o.follow {
		until = 0
	}
	d, err := openDaemon(ctx, cfg, until, log)
	if err != nil {
		return err
	}
	defer d.close()
	d.reportAtEnd = !o.follow

	fmt.Fprintf(stdout, "auditor demo: a simulated node at %s with protocols %s, NATS in-process, data in %s\n",
		node.url, strings.Join(names, " and "), o.dir)
	if o.http != "" {
		fmt.Fprintf(stdout, "HTTP: http://%s/api/v1/status, /metrics, /reports/\n", d.http.Addr())
	}
	fmt.Fprintln(stdout, "events as the auditor publishes them (verified verdicts counted, the rest shown):")
	f := &feed{w: stdout, color: o.color, all: o.all}
	sub, err := d.link.Conn.Subscribe(cfg.NATS.SubjectPrefix+".>", f.show)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe() //nolint:errcheck // the connection closes next

	// The chain grows while the auditor follows it: fast up to o.blocks,
	// then (--follow) one block every blockTime.
	stepCtx, stopStepping := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopStepping(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		step(stepCtx, dn, o, func() uint32 {
			tip, _, _ := d.store.Tip(stepCtx)
			return tip.Height
		})
	}()

	if err := d.run(ctx); err != nil {
		return err
	}
	if ctx.Err() != nil && !o.follow {
		return ctx.Err()
	}
	if err := f.await(d); err != nil {
		fmt.Fprintf(stderr, "auditor demo: %v\n", err)
	}
	return summarize(stdout, d, strings.Join(names, " and "), f)
}

// step makes the devnet's blocks visible: every millisecond, but near a
// fork only once the auditor has caught up with the last step, so that it
// sees every fork; past o.blocks (--follow), one every o.blockTime.
func step(ctx context.Context, dn *devnet.Devnet, o demoOptions, audited func() uint32) {
	for {
		h, _ := dn.Tip()
		wait := time.Millisecond
		if h >= o.blocks {
			wait = o.blockTime
		} else if nearFork(h) {
			// Until the auditor has the tip, or a while has passed.
			for deadline := time.Now().Add(time.Second); audited() < h && time.Now().Before(deadline); {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Millisecond):
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if !dn.Step() {
			return
		}
	}
}

// nearFork tells whether the devnet's next steps at height h show or
// resolve a fork.
func nearFork(h uint32) bool {
	r := h % demoReorgEvery
	return r+demoReorgDepth+1 >= demoReorgEvery || r <= 1
}

// demoNode is the devnet served on a loopback port.
type demoNode struct {
	url  string
	stop context.CancelFunc
	done chan struct{}
}

func serveDemoNode(ctx context.Context, dn *devnet.Devnet) (*demoNode, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n := &demoNode{url: "http://" + ln.Addr().String(), stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		devnet.Serve(ctx, ln, dn.Handler(), zerolog.Nop()) //nolint:errcheck // nil once stopped
	}()
	return n, nil
}

// close stops the server and waits for it.
func (n *demoNode) close() {
	n.stop()
	<-n.done
}

// protocolSpecs decodes the [[protocol]] sections of a TOML text.
func protocolSpecs(text string) ([]rules.ProtocolSpec, error) {
	cfg := DefaultConfig()
	if _, err := decodeConfig([]byte(text), &cfg); err != nil {
		return nil, err
	}
	return cfg.Protocols, nil
}

// feed prints the events it receives, one line each, coloured by kind.
type feed struct {
	w     io.Writer
	color bool
	all   bool       // print verified verdicts, not only count them
	mu    sync.Mutex // one line at a time
	seen  atomic.Int64
	bad   atomic.Int64 // invalid verdicts
	good  atomic.Int64 // verified verdicts
}

const (
	ansiReset   = "\x1b[0m"
	ansiRed     = "\x1b[31m"
	ansiGreen   = "\x1b[32m"
	ansiYellow  = "\x1b[33m"
	ansiMagenta = "\x1b[35m"
	ansiCyan    = "\x1b[36m"
)

func (f *feed) show(m *nats.Msg) {
	// Subjects are <prefix>.<protocol>.<verdict|retracted>.<class>,
	// <prefix>.chain.rollback and <prefix>.report.ready (PROTOCOL.md §6).
	parts := strings.Split(m.Subject, ".")
	color := ""
	if len(parts) == 4 {
		switch parts[2] {
		case "verified":
			color = ansiGreen
			if n := f.good.Add(1); !f.all {
				if n%500 == 0 {
					f.print(ansiGreen, fmt.Sprintf("%-24s  … %d verified verdicts so far", "", n))
				}
				f.seen.Add(1)
				return
			}
		case "invalid":
			color = ansiRed
			f.bad.Add(1)
		case "retracted":
			color = ansiYellow
		}
	} else if strings.HasSuffix(m.Subject, ".chain.rollback") {
		color = ansiMagenta
	} else if strings.HasSuffix(m.Subject, ".report.ready") {
		color = ansiCyan
	}
	f.print(color, formatEvent(m.Subject, m.Data))
	f.seen.Add(1)
}

func (f *feed) print(color, line string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.color && color != "" {
		fmt.Fprintln(f.w, color+line+ansiReset)
	} else {
		fmt.Fprintln(f.w, line)
	}
}

// await waits, a few seconds at most, until the feed has printed every
// event the outbox holds.
func (f *feed) await(d *daemon) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		written, _, err := d.store.OutboxCounts(ctx)
		if err != nil {
			return err
		}
		if f.seen.Load() >= written {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the feed showed %d of the %d events published", f.seen.Load(), written)
		case <-time.After(delay):
		}
	}
}

// summarize prints what the demo audited and where to look next.
func summarize(w io.Writer, d *daemon, protocols string, f *feed) error {
	ctx := context.Background()
	st, err := d.store.Status(ctx)
	if err != nil {
		return err
	}
	byReason := map[rules.Reason]int64{}
	var verified, invalid int64
	for _, c := range st.Verdicts {
		switch {
		case c.Reason != "":
			byReason[c.Reason] += c.Count
		case c.Verdict == rules.StatusVerified:
			verified += c.Count
		default:
			invalid += c.Count
		}
	}
	st2 := d.follower.Stats()
	fmt.Fprintf(w, "\naudited %d blocks (tip %s) through %d reorgs: %d verified and %d invalid verdicts for %s\n",
		st.TipHeight, st.TipID, st2.Reorgs, verified, invalid, protocols)
	for _, r := range rules.Reasons() {
		if n := byReason[r]; n > 0 {
			fmt.Fprintf(w, "  %-32s %4d  %s\n", r, n, r.Sentence())
		}
	}
	if err := showTree(ctx, w, d.store, d.cfg); err != nil {
		return err
	}
	if d.finalReport == nil {
		return nil
	}
	rep := d.finalReport.Report
	conserved := "every lineage conserved"
	if !rep.Summary.Conserved {
		conserved = fmt.Sprintf("%d lineages and %d participant-token boxes fail conservation",
			rep.Summary.FailingLineages, rep.Summary.MisplacedParticipantBoxes)
	}
	fmt.Fprintf(w, "\nreport (%s):\n", conserved)
	for _, p := range d.finalReport.Files {
		fmt.Fprintf(w, "  %s\n", p)
	}
	fmt.Fprintf(w, "\nlook further:\n  go run ./cmd/auditor status --data-dir %s\n  go run ./cmd/auditor verify --data-dir %s BOXID\n", d.cfg.DataDir, d.cfg.DataDir)
	return nil
}

// showTree prints the results of cfg's actions by action, in the
// configuration's order, and a result built on a result built on a result,
// all verified, to look at with verify.
func showTree(ctx context.Context, w io.Writer, store *db.Store, cfg Config) error {
	var order []string
	for _, p := range cfg.Protocols {
		for _, a := range p.Actions {
			order = append(order, p.Name+" "+a.Name)
		}
	}
	if len(order) == 0 {
		return nil
	}
	data, err := store.ReportData(ctx, db.ReportQuery{})
	if err != nil {
		return err
	}
	counts := map[string][2]int64{}
	for _, c := range data.Actions {
		key := c.Protocol + " " + c.Action
		n := counts[key]
		if c.Verdict == rules.StatusVerified {
			n[0] += c.All
		} else {
			n[1] += c.All
		}
		counts[key] = n
	}
	fmt.Fprintf(w, "\nresults by action (each built on the results its action requires):\n")
	for _, key := range order {
		fmt.Fprintf(w, "  %-24s %5d verified %5d invalid\n", key, counts[key][0], counts[key][1])
	}
	box, ok, err := deepResult(ctx, store)
	if err != nil || !ok {
		return err
	}
	fmt.Fprintf(w, "a result built on a result built on a result:\n  go run ./cmd/auditor verify --data-dir %s %s\n", cfg.DataDir, box)
	return nil
}

// deepResult finds a verified result whose transaction read a verified
// result that was itself built on a verified result.
func deepResult(ctx context.Context, store *db.Store) (ergo.Digest, bool, error) {
	vs, err := store.Verdicts(ctx, db.VerdictFilter{})
	if err != nil {
		return ergo.Digest{}, false, err
	}
	// builtOnVerified returns a verified result box read by the
	// transaction that created box.
	builtOnVerified := func(box ergo.Digest) (ergo.Digest, bool, error) {
		ex, ok, err := store.Explain(ctx, box)
		if err != nil || !ok {
			return ergo.Digest{}, false, err
		}
		for _, r := range ex.Read {
			for _, v := range r.Verdicts {
				if v.Class == rules.ClassEmitted && v.Valid() && v.Action != "" {
					return r.BoxID, true, nil
				}
			}
		}
		return ergo.Digest{}, false, nil
	}
	tried := 0
	for i := len(vs) - 1; i >= 0 && tried < 100; i-- {
		v := vs[i]
		if v.Class != rules.ClassEmitted || !v.Valid() || v.Action == "" {
			continue
		}
		tried++
		below, ok, err := builtOnVerified(v.BoxID)
		if err != nil {
			return ergo.Digest{}, false, err
		}
		if !ok {
			continue
		}
		if _, ok, err := builtOnVerified(below); err != nil || ok {
			return v.BoxID, ok, err
		}
	}
	return ergo.Digest{}, false, nil
}
