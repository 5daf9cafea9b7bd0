package ha

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/natstest"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/publish"
)

// memChain is a main chain and its outbox in memory, as the store keeps
// them: blocks connect one after another, each writing its verdict events
// to the outbox. Its protocols are complete to the tip in generation 0
// unless protocols says otherwise; rescinded are its rescan retractions.
type memChain struct {
	mu        sync.Mutex
	blocks    []Block
	outbox    []publish.Pending
	done      map[int64]bool
	replaced  int // rows superseded
	protocols map[string]Protocol
	rescinded map[VerdictRef]publish.Message
}

func (c *memChain) add(b Block) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blocks = append(c.blocks, b)
	c.write(b.Verdicts...)
}

func (c *memChain) write(ms ...publish.Message) {
	for _, m := range ms {
		c.outbox = append(c.outbox, publish.Pending{Seq: int64(len(c.outbox) + 1), Message: m})
	}
}

// judge adds the verdict events ms of protocol to the block at height (a
// backfill's), and moves the protocol's cursor there.
func (c *memChain) judge(protocol string, height uint32, ms ...publish.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.blocks, func(b Block) bool { return b.Height == height })
	c.blocks[i].Verdicts = append(slices.Clip(c.blocks[i].Verdicts), ms...)
	c.write(ms...)
	p := c.protocols[protocol]
	p.Cursor = height
	c.protocols[protocol] = p
}

// rescan begins protocol's history again from height from in generation
// gen, as db.Store.RescanProtocol does: its verdict events from there are
// retracted (enc.Rescinded, in the outbox) and leave the chain.
func (c *memChain) rescan(t testing.TB, enc *publish.Encoder, protocol string, from uint32, gen int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.blocks {
		b := &c.blocks[i]
		if b.Height < from {
			continue
		}
		var keep []publish.Message
		for _, m := range b.Verdicts {
			ev, _ := publish.DecodeEvent(m.Payload)
			d, _ := ev.Verdict()
			if d.Protocol != protocol {
				keep = append(keep, m)
				continue
			}
			conn, g, _ := publish.IDConnects(m.ID)
			r, err := enc.Rescinded(m, publish.BlockRef{ID: b.ID, Height: b.Height, Timestamp: b.Timestamp, Connects: conn},
				publish.RescanData{Protocol: protocol, FromHeight: from, Generation: gen})
			if err != nil {
				t.Fatal(err)
			}
			c.rescinded[VerdictRef{b.ID, d.Box.ID, protocol, d.Kind, g}] = r
			c.write(r)
		}
		b.Verdicts = keep
	}
	c.protocols[protocol] = Protocol{Cursor: from - 1, Generation: gen, BackfillFrom: from, Since: time.Now()}
}

func (c *memChain) ProtocolEvents(_ context.Context, protocol string, from, to uint32, limit int) ([]Block, uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Block
	read := 0
	for _, b := range c.blocks {
		if b.Height < from || b.Height > to {
			continue
		}
		pb := b
		pb.Verdicts = nil
		for _, m := range b.Verdicts {
			if ev, err := publish.DecodeEvent(m.Payload); err == nil {
				if d, err := ev.Verdict(); err == nil && d.Protocol == protocol {
					pb.Verdicts = append(pb.Verdicts, m)
				}
			}
		}
		if len(pb.Verdicts) == 0 {
			continue
		}
		out = append(out, pb)
		if read += len(pb.Verdicts); limit > 0 && read > limit && b.Height < to {
			return out, b.Height + 1, nil
		}
	}
	return out, to + 1, nil
}

func (c *memChain) Retracted(_ context.Context, refs []VerdictRef) (map[VerdictRef]publish.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[VerdictRef]publish.Message{}
	for _, r := range refs {
		if m, ok := c.rescinded[r]; ok {
			out[r] = m
		}
	}
	return out, nil
}

// Snapshot reads as the store's ChainEvents does: whole blocks from from
// up, stopping after the block at which more than limit events above
// newAbove were read.
func (c *memChain) Snapshot(_ context.Context, from, newAbove uint32, limit int, ids []ergo.Digest) (*Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &Snapshot{OutboxSeq: int64(len(c.outbox)), From: from, Complete: true, Main: map[ergo.Digest]bool{}}
	if n := len(c.blocks); n > 0 {
		s.Tip, s.HasTip, s.To = Point{c.blocks[n-1].ID, c.blocks[n-1].Height}, true, c.blocks[n-1].Height
	}
	read := 0
	for _, b := range c.blocks {
		if b.Height < from || len(b.Verdicts) == 0 {
			continue
		}
		s.Blocks = append(s.Blocks, b)
		if b.Height > newAbove {
			read += len(b.Verdicts)
		}
		if limit > 0 && read > limit && b.Height < s.Tip.Height {
			s.To, s.Complete = b.Height, false
			break
		}
	}
	for _, id := range ids {
		s.Main[id] = slices.ContainsFunc(c.blocks, func(b Block) bool { return b.ID == id })
	}
	s.Protocols = maps.Clone(c.protocols)
	if s.Protocols == nil {
		s.Protocols = map[string]Protocol{"demo": {Cursor: s.Tip.Height}}
	}
	return s, nil
}

func (c *memChain) Header(_ context.Context, id ergo.Digest) (Header, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.blocks {
		if b.ID == id {
			return Header{ID: b.ID, Parent: b.Parent, Height: b.Height, Main: true}, true, nil
		}
	}
	return Header{}, false, nil
}

func (c *memChain) MainChainID(_ context.Context, h uint32) (ergo.Digest, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.blocks {
		if b.Height == h {
			return b.ID, true, nil
		}
	}
	return ergo.Digest{}, false, nil
}

func (c *memChain) Pending(_ context.Context, after int64, limit int) ([]publish.Pending, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []publish.Pending
	for _, r := range c.outbox {
		if r.Seq > after && !c.done[r.Seq] && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (c *memChain) Published(_ context.Context, seqs []int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range seqs {
		c.done[s] = true
	}
	return nil
}

func (c *memChain) Supersede(_ context.Context, seqs []int64, through int64) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, r := range c.outbox {
		if !c.done[r.Seq] && (r.Seq <= through || slices.Contains(seqs, r.Seq)) {
			c.done[r.Seq] = true
			n++
		}
	}
	c.replaced += int(n)
	return n, nil
}

func (c *memChain) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.outbox) - len(c.done)
}

// runMember runs a member of its own connection to url on chain.
type runMember struct {
	*Member
	stop context.CancelFunc
	done chan struct{}
}

func startMember(t testing.TB, url, id string, chain *memChain, replicas int) *runMember {
	t.Helper()
	return startMemberWith(t, url, chain, Config{Lease: LeaseConfig{ID: id, TTL: time.Second, Replicas: replicas},
		Stream: publish.StreamConfig{Replicas: replicas}, PollInterval: 20 * time.Millisecond})
}

func startMemberWith(t testing.TB, url string, chain *memChain, cfg Config) *runMember {
	t.Helper()
	nc, js := connect(t, url)
	m, err := New(js, chain, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &runMember{Member: m, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		m.Run(ctx) //nolint:errcheck // its context's error
	}()
	t.Cleanup(func() { r.stop(); <-r.done; nc.Close() })
	return r
}

// streamIDs reads the stream's message ids, in order.
func streamIDs(t *testing.T, url string) []string {
	t.Helper()
	var ids []string
	for _, m := range streamMessages(t, url) {
		ids = append(ids, m.ID)
	}
	return ids
}

// TestMembersHandOverAndFence: two members on the same chain. One leads
// and publishes the chain; the other stands by, superseding its outbox.
// A message another publisher gets into the stream makes the leader's next
// one refused: it reads the stream again and goes on. The leader stops:
// the other takes over, finds the stream holding its chain, publishes
// nothing again, and then the blocks that come. The stream holds every
// verdict once.
func TestMembersHandOverAndFence(t *testing.T) {
	url := natstest.NewCluster(t, 1).URLs()[0]
	f := newFixture(t)
	chains := []*memChain{{done: map[int64]bool{}}, {done: map[int64]bool{}}}
	add := func(b Block) {
		for _, c := range chains {
			c.add(b)
		}
	}
	var want []string
	for h := uint32(1); h <= 3; h++ {
		b := f.block(byte(h), h, byte(2*h), byte(2*h+1))
		add(b)
		for _, m := range b.Verdicts {
			want = append(want, m.ID)
		}
	}
	ms := []*runMember{startMember(t, url, "a1", chains[0], 1), startMember(t, url, "a2", chains[1], 1)}
	var leader, standby int
	published := func(n int) {
		t.Helper()
		poll.Until(t, 20*time.Second, fmt.Sprintf("%d events in the stream", n), func() (bool, string) {
			ids := streamIDs(t, url)
			return len(ids) >= n, fmt.Sprintf("%d", len(ids))
		})
	}
	published(len(want))
	poll.Until(t, 10*time.Second, "a leader and a standby", func() (bool, string) {
		a, b := ms[0].Status(), ms[1].Status()
		switch {
		case a.Role == Leader && b.Holder == "a1":
			leader, standby = 0, 1
		case b.Role == Leader && a.Holder == "a2":
			leader, standby = 1, 0
		default:
			return false, fmt.Sprintf("%+v / %+v", a.LeaseState, b.LeaseState)
		}
		return chains[standby].pending() == 0, fmt.Sprintf("%d pending on the standby", chains[standby].pending())
	})

	// Another publisher gets in.
	nc, _ := nats.Connect(url)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	rep, err := (&publish.Encoder{}).ReportReady(publish.Report{Name: "other", Time: time.UnixMilli(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: rep.Subject, Data: rep.Payload, Header: nats.Header{nats.MsgIdHdr: []string{rep.ID}}}); err != nil {
		t.Fatal(err)
	}
	want = append(want, rep.ID)
	errorsBefore := ms[leader].Status().Errors
	b4 := f.block(4, 4, 8)
	add(b4)
	ms[leader].Notify()
	want = append(want, b4.Verdicts[0].ID)
	published(len(want))
	if st := ms[leader].Status(); st.Errors <= errorsBefore || st.Role != Leader {
		t.Fatalf("the leader's publish after the intruder's was not refused: %+v", st)
	}

	// The leader stops; the standby takes over.
	ms[leader].stop()
	<-ms[leader].done
	poll.Until(t, 10*time.Second, "the standby leading", func() (bool, string) {
		st := ms[standby].Status()
		return st.Role == Leader && st.Reconciliations > 0, fmt.Sprintf("%+v", st.LeaseState)
	})
	b5 := f.block(5, 5, 10, 11)
	chains[standby].add(b5)
	ms[standby].Notify()
	for _, m := range b5.Verdicts {
		want = append(want, m.ID)
	}
	published(len(want))
	// Every row handled: nothing more comes, the stream is exactly want.
	poll.Until(t, 10*time.Second, "the outbox handled", func() (bool, string) {
		return chains[standby].pending() == 0, fmt.Sprintf("%d pending", chains[standby].pending())
	})
	if got := streamIDs(t, url); !slices.Equal(got, want) {
		t.Fatalf("the stream holds\n%v\nwant\n%v", got, want)
	}
}

// TestReconciliationOncePerSession: a leader whose chain the stream lacks
// publishes it in several rounds of at most PlanEvents events, and counts
// one reconciliation (the metric counts takeovers and failures, not
// rounds). The outbox rows it then publishes as they come are each told
// to OnAck with the time they were written.
func TestReconciliationOncePerSession(t *testing.T) {
	url := natstest.NewCluster(t, 1).URLs()[0]
	f := newFixture(t)
	chain := &memChain{done: map[int64]bool{}}
	var want []string
	for h := uint32(1); h <= 6; h++ {
		b := f.block(byte(h), h, byte(2*h), byte(2*h+1))
		chain.add(b)
		for _, m := range b.Verdicts {
			want = append(want, m.ID)
		}
	}
	var acks sync.Map // written -> acked
	m := startMemberWith(t, url, chain, Config{Lease: LeaseConfig{ID: "a1", TTL: time.Second, Replicas: 1},
		Stream: publish.StreamConfig{Replicas: 1}, PollInterval: 20 * time.Millisecond, PlanEvents: 2,
		OnAck: func(written, acked time.Time) { acks.Store(written, acked) }})
	poll.Until(t, 20*time.Second, "the chain published", func() (bool, string) {
		return chain.pending() == 0 && m.Status().Published == uint64(len(want)), fmt.Sprintf("%+v", m.Status())
	})
	if got := streamIDs(t, url); !slices.Equal(got, want) {
		t.Fatalf("the stream holds\n%v\nwant\n%v", got, want)
	}
	if st := m.Status(); st.Reconciliations != 1 || st.Errors != 0 {
		t.Fatalf("%d reconciliations and %d errors for one session in several rounds", st.Reconciliations, st.Errors)
	}
	n := 0
	acks.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Fatalf("OnAck called %d times for events published from the comparison", n)
	}
	b := f.block(7, 7, 14)
	written := time.Now().Add(-time.Second)
	chain.mu.Lock()
	chain.blocks = append(chain.blocks, b)
	chain.outbox = append(chain.outbox, publish.Pending{Seq: int64(len(chain.outbox) + 1), Message: b.Verdicts[0], Written: written})
	chain.mu.Unlock()
	m.Notify()
	poll.Until(t, 10*time.Second, "the new row acknowledged", func() (bool, string) {
		v, ok := acks.Load(written)
		return ok && !v.(time.Time).Before(written.Add(time.Second)), fmt.Sprintf("%+v", m.Status())
	})
}
