package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/natstest"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/publish"
)

// haConfigFile writes the configuration of auditor id of an HA group
// watching the devnet's deployments, publishing to the servers urls with
// lease TTL ttl, and returns its path and the configuration read back.
func haConfigFile(t testing.TB, d *devnet.Devnet, nodeURL string, urls []string, id string, ttl time.Duration, extra string) (string, Config) {
	t.Helper()
	pcs, err := d.Protocols()
	if err != nil {
		t.Fatal(err)
	}
	return haConfigOf(t, t.TempDir(), nodeURL, urls, id, ttl, extra, pcs)
}

// haConfigOf is haConfigFile's, with the data in dataDir, watching the
// sections pcs.
func haConfigOf(t testing.TB, dataDir, nodeURL string, urls []string, id string, ttl time.Duration, extra string, pcs []devnet.ProtocolConfig) (string, Config) {
	t.Helper()
	quoted := make([]string, len(urls))
	for i, u := range urls {
		quoted[i] = strconv.Quote(u)
	}
	text := "data_dir = " + strconv.Quote(dataDir) + "\n" +
		"[node]\nurl = " + strconv.Quote(nodeURL) + "\n" +
		"[scan]\nnetwork = \"devnet\"\npoll_interval = \"5ms\"\n" +
		"[nats]\nurl = [" + strings.Join(quoted, ", ") + "]\nreplicas = " + fmt.Sprint(min(len(urls), 3)) + "\n" +
		"[http]\nlisten = \"\"\n[reports]\nschedule = \"\"\n" +
		"[ha]\nenabled = true\nid = " + strconv.Quote(id) + "\nlease_ttl = " + strconv.Quote(ttl.String()) + "\n" +
		extra + devnet.ProtocolsTOML(pcs)
	path := filepath.Join(t.TempDir(), id+".toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

// recorded is a message the recorder received.
type recorded struct {
	seq       uint64
	id        string
	subject   string
	payload   []byte
	at        time.Time // when the recorder got it
	epoch     uint64    // its leaseepoch, publisher
	publisher string
}

// recorder is a subscriber of the stream with a durable consumer: it
// records every message delivered, acknowledging each, until stopped.
type recorder struct {
	mu   sync.Mutex
	msgs []recorded // by stream sequence
	seen map[uint64]bool
	err  error
	stop context.CancelFunc
	done chan struct{}
}

// record starts a recorder on the servers urls (the stream may not exist
// yet: it waits for it).
func record(t testing.TB, urls []string) *recorder {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &recorder{stop: stop, done: make(chan struct{}), seen: map[uint64]bool{}}
	go func() {
		defer close(r.done)
		defer nc.Close()
		r.run(ctx, js)
	}()
	t.Cleanup(r.close)
	return r
}

func (r *recorder) close() {
	r.stop()
	<-r.done
}

func (r *recorder) run(ctx context.Context, js jetstream.JetStream) {
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		var err error
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cons, err = js.CreateOrUpdateConsumer(cctx, publish.DefaultStream, jetstream.ConsumerConfig{
			Durable: "recorder", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
			MaxDeliver: -1, AckWait: 5 * time.Second, FilterSubject: publish.DefaultPrefix + ".>",
		})
		cancel()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			continue // a node down, a leader moving: fetch again
		}
		for m := range batch.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				r.fail(err)
				continue
			}
			rm := recorded{seq: meta.Sequence.Stream, id: m.Headers().Get(nats.MsgIdHdr), subject: m.Subject(), payload: m.Data(), at: time.Now()}
			if ev, err := publish.DecodeEvent(rm.payload); err == nil {
				rm.epoch, rm.publisher = ev.LeaseEpoch, ev.Publisher
			}
			r.mu.Lock()
			// A message delivered again (its ack lost, or the consumer's
			// leader moved) is recorded once, in stream order.
			if !r.seen[rm.seq] {
				r.seen[rm.seq] = true
				i, _ := slices.BinarySearchFunc(r.msgs, rm.seq, func(m recorded, seq uint64) int { return cmp.Compare(m.seq, seq) })
				r.msgs = slices.Insert(r.msgs, i, rm)
			}
			r.mu.Unlock()
			m.Ack() //nolint:errcheck // a lost ack redelivers the message, recorded once
		}
	}
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

// replaySettled replays what was recorded so far once it is the stream's
// messages from the first with none missing; false while one is missing,
// saying so. A message whose delivery was lost arrives again after the
// later ones (after the consumer's AckWait), so the log can lack one for
// a while.
func (r *recorder) replaySettled(t testing.TB) (replayed, bool, string) {
	log := r.log()
	for i, m := range log {
		if m.seq != uint64(i+1) {
			return replayed{}, false, fmt.Sprintf("%d messages recorded, stream message %d missing: it is being delivered again", len(log), i+1)
		}
	}
	return replay(t, log), true, ""
}

// log returns what was recorded so far.
func (r *recorder) log() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.msgs...)
}

// verdictKey names a verdict: one per box, protocol and kind on a chain.
type verdictKey struct {
	box      ergo.Digest
	protocol string
	kind     string
}

// verdictValue is what a verdict says and where it was made.
type verdictValue struct {
	block   ergo.Digest
	verdict string
	reasons string
}

// replayed is the subscriber's view after replaying a log: the verdicts
// live (not retracted), and what the log held.
type replayed struct {
	live                                    map[verdictKey]verdictValue
	verdicts, retractions, rollbacks, other int
	epochs                                  map[uint64]string // the publisher of each epoch
}

// replay replays the log as a subscriber would and fails the test on
// anything a subscriber must never see: a gap in the stream's sequence, a
// message id twice, a second live verdict on a box, a retraction of a
// verdict not live, a rollback of a block with verdicts not retracted, an
// epoch going down, two publishers under one epoch.
func replay(t testing.TB, log []recorded) replayed {
	t.Helper()
	out := replayed{live: map[verdictKey]verdictValue{}, epochs: map[uint64]string{}}
	ids := map[string]bool{}
	liveIDs := map[string]verdictKey{}
	var epoch uint64
	for i, m := range log {
		if m.seq != uint64(i+1) {
			t.Fatalf("message %d of the log is stream message %d: a gap", i+1, m.seq)
		}
		if ids[m.id] {
			t.Fatalf("stream message %d: id %s seen before", m.seq, m.id)
		}
		ids[m.id] = true
		ev, err := publish.DecodeEvent(m.payload)
		if err != nil {
			t.Fatalf("stream message %d: %v", m.seq, err)
		}
		if ev.ID != m.id {
			t.Fatalf("stream message %d: event %s under message id %s", m.seq, ev.ID, m.id)
		}
		if ev.LeaseEpoch < epoch {
			t.Fatalf("stream message %d (%s): epoch %d after epoch %d", m.seq, m.id, ev.LeaseEpoch, epoch)
		}
		epoch = ev.LeaseEpoch
		if p, ok := out.epochs[epoch]; ok && p != ev.Publisher {
			t.Fatalf("stream message %d: epoch %d published by %s and %s", m.seq, epoch, p, ev.Publisher)
		}
		out.epochs[epoch] = ev.Publisher
		switch ev.Type {
		case publish.TypeVerdict:
			d, err := ev.Verdict()
			if err != nil {
				t.Fatal(err)
			}
			k := verdictKey{d.Box.ID, d.Protocol, d.Kind}
			if prev, ok := out.live[k]; ok {
				t.Fatalf("stream message %d (%s): box %s has a live verdict already, from block %s", m.seq, m.id, d.Box.ID, prev.block)
			}
			var codes []string
			for _, r := range d.Reasons {
				codes = append(codes, r.Code)
			}
			out.live[k] = verdictValue{d.BlockID, d.Verdict, strings.Join(codes, ",")}
			liveIDs[m.id] = k
			out.verdicts++
		case publish.TypeRetracted:
			d, err := ev.Retraction()
			if err != nil {
				t.Fatal(err)
			}
			k, ok := liveIDs[d.Retracts]
			if !ok {
				t.Fatalf("stream message %d (%s) retracts %s, which is not live", m.seq, m.id, d.Retracts)
			}
			delete(liveIDs, d.Retracts)
			delete(out.live, k)
			out.retractions++
		case publish.TypeRollback:
			d, err := ev.Rollback()
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range out.live {
				if v.block == d.Block.ID {
					t.Fatalf("stream message %d (%s): rollback of block %s, whose verdicts are not all retracted", m.seq, m.id, d.Block.ID)
				}
			}
			out.rollbacks++
		default:
			out.other++
		}
	}
	return out
}

// storeVerdictMap returns the verdicts of the store in dir's main chain.
func storeVerdictMap(t testing.TB, dir string) map[verdictKey]verdictValue {
	t.Helper()
	s, err := db.Open(context.Background(), filepath.Join(dir, dbFile), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	vs, err := s.Verdicts(context.Background(), db.VerdictFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[verdictKey]verdictValue{}
	for _, v := range vs {
		var codes []string
		for _, r := range v.Reasons {
			codes = append(codes, string(r))
		}
		out[verdictKey{v.BoxID, v.Protocol, string(v.Kind)}] = verdictValue{v.BlockID, v.Status(), strings.Join(codes, ",")}
	}
	return out
}

// sameVerdicts fails the test unless the live verdicts are the store's.
func sameVerdicts(t testing.TB, what string, live, want map[verdictKey]verdictValue) {
	t.Helper()
	var diffs []string
	for k, v := range want {
		if got, ok := live[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("missing %s/%s/%s", k.box, k.protocol, k.kind))
		} else if got != v {
			diffs = append(diffs, fmt.Sprintf("%s/%s/%s: %+v, want %+v", k.box, k.protocol, k.kind, got, v))
		}
	}
	for k := range live {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %s/%s/%s", k.box, k.protocol, k.kind))
		}
	}
	if len(diffs) > 0 {
		if len(diffs) > 10 {
			diffs = append(diffs[:10], fmt.Sprintf("… %d more", len(diffs)-10))
		}
		t.Fatalf("%s: %d live verdicts, %d in the store:\n%s", what, len(live), len(want), strings.Join(diffs, "\n"))
	}
}

// haGroup is a group of auditor processes publishing to a NATS cluster,
// following one devnet, with a recorder subscribed to the stream.
type haGroup struct {
	t       testing.TB
	bin     string
	nats    *natstest.Cluster
	d       *devnet.Devnet
	ttl     time.Duration
	members map[string]*haProc
	rec     *recorder
}

// haProc is one auditor of a group, as a process (nil while down).
type haProc struct {
	id      string
	path    string
	cfg     Config
	p       *process
	watch   *db.Store
	started int
	runs    []*process  // every process started, the last one p
	running atomic.Bool // p is not nil (for the stepper's goroutine)
}

// newHAGroup starts a NATS cluster of nodes nodes, each a nats-server
// process, and the auditors ids, each as a process, following d at
// nodeURL with lease TTL ttl.
func newHAGroup(t testing.TB, d *devnet.Devnet, nodeURL string, nodes int, ttl time.Duration, ids ...string) *haGroup {
	t.Helper()
	g := &haGroup{t: t, bin: auditorBinary(t), nats: natstest.NewProcessCluster(t, nodes), d: d, ttl: ttl, members: map[string]*haProc{}}
	g.rec = record(t, g.nats.URLs())
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, m := range g.members {
			if m.p != nil {
				t.Logf("auditor %s (started %d times), its last lines:\n%s", m.id, m.started, lastLines(m.p.stderr.String(), 60))
			}
		}
		g.haLog()
	})
	for _, id := range ids {
		path, cfg := haConfigFile(t, d, nodeURL, g.nats.URLs(), id, ttl, "[log]\nlevel = \"info\"\n")
		m := &haProc{id: id, path: path, cfg: cfg, watch: openWatch(t, cfg.DataDir)}
		g.members[id] = m
		g.start(id)
	}
	return g
}

// start starts auditor id's process.
func (g *haGroup) start(id string) {
	m := g.members[id]
	m.p = startProcess(g.t, g.bin, "run", "--config", m.path)
	m.runs = append(m.runs, m.p)
	m.started++
	m.running.Store(true)
}

// alive fails the test when a member that should run has exited.
func (g *haGroup) alive() {
	for _, m := range g.members {
		if m.p != nil && m.p.exited() {
			g.t.Fatalf("auditor %s exited (%v):\n%s", m.id, m.p.err, lastLines(m.p.stderr.String(), 40))
		}
	}
}

// caught tells whether every member has the tip id; the stepper calls
// it, on its own goroutine (a member down counts as caught up).
func (g *haGroup) caught(ctx context.Context, _ uint32, id ergo.Digest) bool {
	for _, m := range g.members {
		if !m.running.Load() {
			continue
		}
		if tip, ok, err := m.watch.Tip(ctx); err != nil || !ok || tip.ID != id {
			return false
		}
	}
	return true
}

// leader waits for an auditor to hold the lease under an epoch above
// after, and returns it.
func (g *haGroup) leader(after uint64) (string, uint64) {
	var id string
	var epoch uint64
	poll.Until(g.t, 30*time.Second, fmt.Sprintf("a leader after epoch %d", after), func() (bool, string) {
		g.alive()
		id, epoch = leaseHolder(g.t, g.nats.URLs())
		return id != "" && epoch > after, fmt.Sprintf("holder %q, epoch %d", id, epoch)
	})
	return id, epoch
}

// firstAfter waits for the recorder to get a message of an epoch above
// epoch and returns when it got it, and the epoch.
func (g *haGroup) firstAfter(epoch uint64, timeout time.Duration) (time.Time, uint64) {
	var at time.Time
	var next uint64
	poll.Until(g.t, timeout, fmt.Sprintf("an event of an epoch after %d", epoch), func() (bool, string) {
		g.alive()
		log := g.rec.log()
		for i := len(log) - 1; i >= 0 && log[i].epoch > epoch; i-- {
			at, next = log[i].at, log[i].epoch
		}
		return next > 0, fmt.Sprintf("%d recorded, the last of epoch %d", len(log), lastEpoch(log))
	})
	return at, next
}

func lastEpoch(log []recorded) uint64 {
	if len(log) == 0 {
		return 0
	}
	return log[len(log)-1].epoch
}

// settle waits until every member is at the devnet's tip, which must be
// on its final chain, and the recorder has every verdict of the final
// chain live, then checks the log and returns its replay.
func (g *haGroup) settle(timeout time.Duration) replayed {
	g.t.Helper()
	h, final := g.d.Tip()
	if final != g.d.FinalID(h) {
		g.t.Fatalf("the devnet shows a competing branch at %d", h)
	}
	var want map[verdictKey]verdictValue
	var first *haProc
	poll.Until(g.t, timeout, "every auditor at the final tip, the final chain published", func() (bool, string) {
		g.alive()
		for _, m := range g.members {
			if tip, ok, err := m.watch.Tip(context.Background()); err != nil || !ok || tip.ID != final {
				return false, fmt.Sprintf("%s at %d", m.id, tip.Height)
			}
			first = m
		}
		want = storeVerdictMap(g.t, first.cfg.DataDir)
		r := replay(g.t, g.rec.log())
		return len(r.live) == len(want), fmt.Sprintf("%d verdicts live of %d", len(r.live), len(want))
	})
	r := replay(g.t, g.rec.log())
	sameVerdicts(g.t, "the subscriber's log", r.live, want)
	digest := storeStatus(g.t, first.cfg.DataDir).StateDigest
	for _, m := range g.members {
		if d := storeStatus(g.t, m.cfg.DataDir).StateDigest; d != digest {
			g.t.Fatalf("state digests differ: %s %s, %s %s", first.id, digest, m.id, d)
		}
	}
	return r
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// haLog logs every line of the members' HA components, each run's in
// turn.
func (g *haGroup) haLog() {
	for _, m := range g.members {
		for i, p := range m.runs {
			for _, l := range strings.Split(p.stderr.String(), "\n") {
				if strings.Contains(l, `"component":"ha"`) {
					g.t.Log(m.id, i+1, l)
				}
			}
		}
	}
}
