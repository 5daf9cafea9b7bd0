package ha

import (
	"context"
	"errors"
	"fmt"

	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/internal/natstest"
	"github.com/async-emission/auditor/internal/poll"
)

// runLease runs a lease of its own connection to url; stop ends its Run
// (giving the lease up, unless crash closed the connection first).
type runLease struct {
	*Lease
	nc   *nats.Conn
	stop context.CancelFunc
	done chan struct{}
}

func startLease(t *testing.T, url, id string, ttl time.Duration) *runLease {
	t.Helper()
	nc, js := connect(t, url)
	l, err := NewLease(js, LeaseConfig{ID: id, TTL: ttl}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &runLease{Lease: l, nc: nc, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		l.Run(ctx) //nolint:errcheck // its context's error
	}()
	t.Cleanup(func() { r.stop(); <-r.done; nc.Close() })
	return r
}

// crash stops the lease as a killed process would: its connection goes
// first, so that it cannot give the lease up.
func (r *runLease) crash() {
	r.nc.Close()
	r.stop()
	<-r.done
}

// leaderOf waits until exactly one of the leases leads and the others see
// it, and returns it.
func leaderOf(t *testing.T, ls ...*runLease) *runLease {
	t.Helper()
	var leader *runLease
	poll.Until(t, 20*time.Second, "one leader", func() (bool, string) {
		leader = nil
		var states []string
		for _, l := range ls {
			st := l.State()
			states = append(states, fmt.Sprintf("%s: %s holder %q epoch %d", l.ID(), st.Role, st.Holder, st.Epoch))
			if _, ok := l.Term(); ok {
				if leader != nil {
					t.Fatalf("two leaders: %v", states)
				}
				leader = l
			}
		}
		if leader == nil {
			return false, fmt.Sprint(states)
		}
		lst := leader.State()
		for _, l := range ls {
			if st := l.State(); st.Holder != lst.Holder || st.Epoch != lst.Epoch {
				return false, fmt.Sprint(states)
			}
		}
		return true, ""
	})
	return leader
}

// TestLeaseOneHolderThenTakeover: of three auditors one holds the lease
// and the others see it with its epoch. Its holder dies without giving it
// up: another takes it, under a higher epoch, and not before the dead
// holder's lease ran out on its own clock; the dead one's term is no
// longer valid.
func TestLeaseOneHolderThenTakeover(t *testing.T) {
	url := natstest.NewCluster(t, 1).URLs()[0]
	const ttl = time.Second
	ls := []*runLease{startLease(t, url, "a1", ttl), startLease(t, url, "a2", ttl), startLease(t, url, "a3", ttl)}
	first := leaderOf(t, ls...)
	e1, _ := first.Term()
	first.mu.Lock()
	validUntil := first.validUntil
	first.mu.Unlock()
	first.crash()
	var rest []*runLease
	for _, l := range ls {
		if l != first {
			rest = append(rest, l)
		}
	}
	second := leaderOf(t, rest...)
	e2, _ := second.Term()
	st := second.State()
	if e2 <= e1 || st.Takeovers != 1 || st.Holder != second.ID() {
		t.Fatalf("after %s (epoch %d): %s epoch %d, %+v", first.ID(), e1, second.ID(), e2, st)
	}
	if st.Since.Before(validUntil) {
		t.Fatalf("%s took the lease at %s, before %s's ran out at %s", second.ID(), st.Since, first.ID(), validUntil)
	}
	// What auditor status reads.
	nc, _ := nats.Connect(url)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	holder, epoch, err := ReadLease(context.Background(), js, DefaultBucket)
	if err != nil || holder != second.ID() || epoch != e2 {
		t.Fatalf("ReadLease: %q %d %v, want %q %d", holder, epoch, err, second.ID(), e2)
	}
}

// TestLeaseGivenUpOnStop: a holder stopping cleanly deletes the entry on
// its revision, so a standby takes over at once; and Confirm, a
// compare-and-set, fails for a holder whose lease another took.
func TestLeaseGivenUpOnStop(t *testing.T) {
	url := natstest.NewCluster(t, 1).URLs()[0]
	const ttl = 30 * time.Second // no lapse during the test: only a release lets the standby in
	a, b := startLease(t, url, "a1", ttl), startLease(t, url, "a2", ttl)
	first := leaderOf(t, a, b)
	other := b
	if first == b {
		other = a
	}
	e1, _ := first.Term()
	if err := first.Confirm(context.Background(), e1); err != nil {
		t.Fatalf("confirm by the holder: %v", err)
	}
	first.stop()
	<-first.done
	second := leaderOf(t, other)
	if e2, _ := second.Term(); e2 <= e1 {
		t.Fatalf("epoch %d after %d", e2, e1)
	}
	if err := first.Confirm(context.Background(), e1); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("confirm by the former holder: %v", err)
	}
}

// TestLeaseRefusesBadConfig: the configuration is checked, each problem
// an ErrConfig.
func TestLeaseRefusesBadConfig(t *testing.T) {
	for _, c := range []LeaseConfig{{}, {ID: "a b"}, {ID: "a", Bucket: "x.y"}, {ID: "a", TTL: time.Millisecond}, {ID: "a", Replicas: 7}} {
		if _, err := NewLease(nil, c, zerolog.Nop()); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
