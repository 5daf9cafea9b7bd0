package ha

import (
	"encoding/hex"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/publish"
	"github.com/async-emission/auditor/rules"
)

// p2pkTree pays to the secp256k1 generator's public key.
const p2pkTree = "0008cd0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"

func digest(b byte) ergo.Digest {
	var d ergo.Digest
	for i := range d {
		d[i] = b
	}
	return d
}

// chainFixture makes blocks with verdict events, as a store makes them:
// block n (a byte) at height h holds a verdict on each of its boxes.
type chainFixture struct {
	t   testing.TB
	enc *publish.Encoder
}

func newFixture(t testing.TB) *chainFixture {
	return &chainFixture{t: t, enc: &publish.Encoder{}}
}

// box is the box named b: its value and transaction are b's.
func (f *chainFixture) box(b byte) *ergo.Box {
	tree, err := hex.DecodeString(p2pkTree)
	if err != nil {
		f.t.Fatal(err)
	}
	return &ergo.Box{Box: sigma.Box{BoxCandidate: sigma.BoxCandidate{Value: 1000 + uint64(b), ErgoTree: tree, CreationHeight: 1}, TxID: digest(b)}}
}

// verdict is the event of box b's verdict of protocol demo made by block
// id at height, in connection connects; invalid ones carry a reason.
func (f *chainFixture) verdict(id byte, height uint32, b byte, connects int, invalid bool) publish.Message {
	return f.event("demo", id, height, b, connects, 0, invalid)
}

// judged is the event of box b's verdict of protocol demo made by block
// id at height, in connection connects, by protocol generation generation
// (its history begun again that many times: auditor rescan).
func (f *chainFixture) judged(id byte, height uint32, b byte, connects, generation int) publish.Message {
	return f.event("demo", id, height, b, connects, generation, false)
}

// event is the event of box b's verdict of protocol made by block id at
// height, in connection connects, in the protocol's generation generation;
// invalid ones carry a reason.
func (f *chainFixture) event(protocol string, id byte, height uint32, b byte, connects, generation int, invalid bool) publish.Message {
	box := f.box(b)
	v := &rules.Verdict{Protocol: protocol, Kind: rules.KindCreated, Class: rules.ClassEmitted, BoxID: box.ComputeID(), TxID: box.TxID}
	if invalid {
		v.Reasons = []rules.Reason{rules.ReasonStaleState}
	}
	m, err := f.enc.Verdict(v, box, publish.BlockRef{ID: digest(id), Height: height, Timestamp: 1_600_000_000_000 + uint64(height),
		Connects: connects, Generation: generation})
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

// block is block id at height with a verdict on each box, as the store
// holds it (its own first connection).
func (f *chainFixture) block(id byte, height uint32, boxes ...byte) Block {
	blk := Block{ID: digest(id), Parent: digest(id - 1), Height: height, Timestamp: 1_600_000_000_000 + uint64(height)}
	for _, b := range boxes {
		blk.Verdicts = append(blk.Verdicts, f.verdict(id, height, b, 1, false))
	}
	return blk
}

// rollback is the rollback event of block id at height, connection
// connects.
func (f *chainFixture) rollback(id byte, height uint32, connects int) publish.Message {
	m, err := f.enc.Rollback(publish.Rollback{ForkID: digest(id - 1), ForkHeight: height - 1, Depth: 1,
		Block: publish.BlockRef{ID: digest(id), Height: height, Timestamp: 1_600_000_000_000 + uint64(height), Connects: connects}})
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

// retraction is the retraction of the verdict event m of block id at
// height, connection connects.
func (f *chainFixture) retraction(m publish.Message, id byte, height uint32, connects int) publish.Message {
	r, err := f.enc.Retraction(m, publish.BlockRef{ID: digest(id), Height: height, Timestamp: 1_600_000_000_000 + uint64(height), Connects: connects})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// rescinded is the retraction of the verdict event m of block id at
// height, connection connects, by the rescan of its protocol that begins
// generation generation from height from.
func (f *chainFixture) rescinded(m publish.Message, id byte, height uint32, connects int, from uint32, generation int) publish.Message {
	ev, err := publish.DecodeEvent(m.Payload)
	if err != nil {
		f.t.Fatal(err)
	}
	d, err := ev.Verdict()
	if err != nil {
		f.t.Fatal(err)
	}
	r, err := f.enc.Rescinded(m, publish.BlockRef{ID: digest(id), Height: height, Timestamp: 1_600_000_000_000 + uint64(height), Connects: connects},
		publish.RescanData{Protocol: d.Protocol, FromHeight: from, Generation: generation})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// stream applies messages to a new ledger as a stream holding them would
// be read, and fails the test on a message the ledger does not take.
func (f *chainFixture) stream(window uint32, msgs ...publish.Message) *Ledger {
	l := NewLedger(window)
	for _, m := range msgs {
		f.apply(l, m)
	}
	return l
}

func (f *chainFixture) apply(l *Ledger, m publish.Message) {
	f.t.Helper()
	before := l.Counts()
	l.Apply(l.LastSeq()+1, m)
	if after := l.Counts(); after.Anomalies != before.Anomalies || after.Foreign != before.Foreign {
		f.t.Fatalf("the ledger does not take %s: %+v", m.ID, after)
	}
}

// ledgerStep is a message and how many foreign messages and anomalies
// the ledger is to count for it.
type ledgerStep struct {
	msg              publish.Message
	foreign, anomaly uint64
}

// applySteps applies each step's message to l and checks what it counts.
func applySteps(t *testing.T, l *Ledger, steps []ledgerStep) {
	t.Helper()
	for i, s := range steps {
		before := l.Counts()
		l.Apply(l.LastSeq()+1, s.msg)
		after := l.Counts()
		if after.Foreign-before.Foreign != s.foreign || after.Anomalies-before.Anomalies != s.anomaly {
			t.Fatalf("step %d (%s): %+v after %+v", i, s.msg.ID, after, before)
		}
	}
}

// snapshot is a snapshot of a chain of blocks (ascending), its tip at
// tip, asked about ids, of a store whose protocol "demo" is complete to
// the tip in generation 0.
func snapshot(tip uint32, blocks []Block, main map[ergo.Digest]bool) *Snapshot {
	var tipID ergo.Digest
	for _, b := range blocks {
		if b.Height == tip {
			tipID = b.ID
		}
	}
	return &Snapshot{Tip: Point{tipID, tip}, HasTip: true, Blocks: blocks, To: tip, Complete: true, Main: main,
		Protocols: map[string]Protocol{"demo": {Cursor: tip}}}
}

// plan runs the planner as a member's reconciliation does of the window
// (no rescan retraction found, nothing below the floor), with fork as the
// fork point, and returns the messages' ids.
func plan(t *testing.T, l *Ledger, snap *Snapshot, fork Point) ([]string, *planner) {
	t.Helper()
	c, err := compare(l, snap)
	if err != nil {
		t.Fatal(err)
	}
	if c.behind > 0 {
		t.Fatalf("behind at %d", c.behind)
	}
	p := &planner{enc: &publish.Encoder{}, id: "a1", epoch: 7, l: l}
	if err := p.retract(c.stale, fork, snap.Tip); err != nil {
		t.Fatal(err)
	}
	if err := p.publishChain(snap.Blocks); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, pl := range p.out {
		ids = append(ids, pl.msg.ID)
	}
	return ids, p
}

// connect connects to the NATS server at url with a JetStream context.
func connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}
