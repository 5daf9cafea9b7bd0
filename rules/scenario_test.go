package rules_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/testchain"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

// syncScenario serves the devnet of cfg and follows its final chain to
// its end into a new store.
func syncScenario(t testing.TB, cfg devnet.Config) (*testchain.Chain, *db.Store) {
	t.Helper()
	c := testchain.New(t, cfg)
	store, _ := testchain.OpenStore(t)
	c.Sync(t, store, uint32(cfg.Blocks))
	return c, store
}

// verdictLine is one verdict in a form that compares and prints.
func verdictLine(kind, box, tx string, height uint32, protocol, class, verdict string, reasons []string) string {
	slices.Sort(reasons)
	return fmt.Sprintf("%s %s %s box %s tx %s at %d: %s %v", protocol, kind, class, box, tx, height, verdict, reasons)
}

func storedLines(t testing.TB, store *db.Store) []string {
	t.Helper()
	vs, err := store.Verdicts(context.Background(), db.VerdictFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		reasons := make([]string, len(v.Reasons))
		for k, r := range v.Reasons {
			reasons[k] = string(r)
		}
		out[i] = verdictLine(string(v.Kind), v.BoxID.String(), v.TxID.String(), v.Height, v.Protocol, string(v.Class), v.Status(), reasons)
	}
	slices.Sort(out)
	return out
}

func manifestLines(t testing.TB, d *devnet.Devnet, height uint32) []string {
	t.Helper()
	es, err := d.Expectations(height)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = verdictLine(string(e.Kind), e.BoxID.String(), e.TxID.String(), e.Height, e.Protocol, e.Class, e.Verdict, slices.Clone(e.Reasons))
	}
	slices.Sort(out)
	return out
}

// diff lists the lines only one side has, at most max of them.
func diff(want, got []string, max int) []string {
	var out []string
	w, g := map[string]bool{}, map[string]bool{}
	for _, l := range want {
		w[l] = true
	}
	for _, l := range got {
		g[l] = true
		if !w[l] {
			out = append(out, "unplanned: "+l)
		}
	}
	for _, l := range want {
		if !g[l] {
			out = append(out, "missing:   "+l)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), max)]
}

// TestScenarioVerdictsAreThePlantedOnes: a sync of 1,500 blocks of
// the async-emission scenario (the demo protocol and the action tree),
// forging a quarter of the protocols' actions, gives exactly the verdicts
// the scenario planted — every reason code at least once, nothing it did
// not plan; and, walking the action tree down from the stored verdicts, no
// verified result stands on an invalid or unproved one.
func TestScenarioVerdictsAreThePlantedOnes(t *testing.T) {
	t.Parallel()
	blocks := 1500
	if testing.Short() {
		blocks = 800
	}
	s, store := syncScenario(t, devnet.Config{Seed: 7, Blocks: blocks, TxsPerBlock: 2,
		Scenario: &devnet.AsyncEmission{ForgeryRate: 0.25}})
	got, want := storedLines(t, store), manifestLines(t, s.Devnet, uint32(blocks))
	if d := diff(want, got, 20); len(d) > 0 {
		t.Fatalf("%d verdicts stored, %d planted; they differ:\n%s", len(got), len(want), strings.Join(d, "\n"))
	}
	t.Run("verified results stand on verified, proved results", func(t *testing.T) {
		walkTree(t, store, s.Protocols)
	})
	seen := map[string]int{}
	for _, l := range got {
		for _, r := range rules.Reasons() {
			if strings.Contains(l, string(r)+" ") || strings.Contains(l, string(r)+"]") {
				seen[string(r)]++
			}
		}
	}
	for _, r := range rules.Reasons() {
		if seen[string(r)] == 0 && !testing.Short() {
			t.Errorf("no verdict with %s", r)
		}
	}
	t.Logf("%d verdicts over %d blocks; reason codes seen: %v", len(got), blocks, seen)
}

// walkTree checks, over every stored result of an action, that a verified
// one was built on verified, proved results: for each requirement of its
// action of class emitted, its transaction read a result of that protocol
// and action (any for none), verified, and with it that result's emission
// box, verified, of the same lineage. It walks down from every verified
// result through the results that meet its requirements to the leaves,
// finding every one of them verified, and reports the deepest chain (at
// least 3: a result built on a result built on a result), the verified
// results built on others, and the invalid results the tree holds.
func walkTree(t *testing.T, store *db.Store, protocols []rules.Protocol) {
	ctx := context.Background()
	vs, err := store.Verdicts(ctx, db.VerdictFilter{})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[[2]string]*rules.Action{}
	for i := range protocols {
		for k := range protocols[i].Actions {
			a := &protocols[i].Actions[k]
			actions[[2]string{protocols[i].Name, a.Name}] = a
		}
	}
	// supports returns the results that meet the emitted requirements of
	// result v's action, one per requirement; ok is false when one is met
	// by none.
	supports := func(v db.StoredVerdict) (below []db.StoredVerdict, ok bool) {
		ex, found, err := store.Explain(ctx, v.BoxID)
		if err != nil || !found {
			t.Fatalf("Explain(%s): %v %v", v.BoxID, found, err)
		}
		proved := func(r db.StoredVerdict) bool {
			return slices.ContainsFunc(ex.Read, func(e db.Related) bool {
				return slices.ContainsFunc(e.Verdicts, func(ev db.StoredVerdict) bool {
					return ev.Class == rules.ClassEmission && ev.Kind == rules.KindCreated && ev.Valid() &&
						ev.Protocol == r.Protocol && ev.Lineage != nil && r.Lineage != nil && *ev.Lineage == *r.Lineage
				})
			})
		}
		for _, req := range actions[[2]string{v.Protocol, v.Action}].Requires {
			if req.Class != rules.ClassEmitted {
				continue
			}
			met := false
			for _, d := range ex.Read {
				for _, r := range d.Verdicts {
					if !met && r.Class == rules.ClassEmitted && r.Kind == rules.KindCreated && r.Protocol == v.Protocol &&
						(req.Action == "" || r.Action == req.Action) && r.Valid() && proved(r) {
						below, met = append(below, r), true
					}
				}
			}
			if !met {
				return below, false
			}
		}
		return below, true
	}
	depth := map[ergo.Digest]int{}
	var walk func(v db.StoredVerdict, path []ergo.Digest) int
	walk = func(v db.StoredVerdict, path []ergo.Digest) int {
		if d, ok := depth[v.BoxID]; ok {
			return d
		}
		if !v.Valid() {
			t.Fatalf("walking down from %v: result %s (%s) is %s %v", path, v.BoxID, v.Action, v.Status(), v.Reasons)
		}
		if len(path) > 64 {
			t.Fatalf("a chain of results deeper than 64: %v", path)
		}
		below, ok := supports(v)
		if !ok {
			t.Fatalf("verified result %s (%s %s, at %d) is built on no verified, proved result for a requirement of its action",
				v.BoxID, v.Protocol, v.Action, v.Height)
		}
		d := 0
		for _, b := range below {
			d = max(d, walk(b, append(path, v.BoxID)))
		}
		depth[v.BoxID] = d + 1
		return d + 1
	}
	deepest, built, invalid := 0, 0, 0
	for _, v := range vs {
		if v.Kind != rules.KindCreated || v.Class != rules.ClassEmitted || v.Action == "" {
			continue
		}
		if !v.Valid() {
			invalid++
			continue
		}
		d := walk(v, nil)
		deepest = max(deepest, d)
		if d > 1 {
			built++
		}
	}
	if deepest < 3 || built == 0 || invalid == 0 {
		t.Errorf("the deepest chain of verified results is %d long (want 3 or more); %d verified results built on others, %d invalid results",
			deepest, built, invalid)
	}
	t.Logf("%d results walked: %d verified built on others, deepest chain %d; %d invalid", len(depth)+invalid, built, deepest, invalid)
}

// TestVerdictsDoNotDependOnForks is the property PROTOCOL.md §4 states: a
// verdict is a function of the chain, whatever forks led to it. For each
// seed, a sync that follows the devnet through random reorgs (depths 1 to
// 12, the follower catching up after random bursts of blocks, so that it
// sees most competing branches and misses others) ends with the verdicts,
// and the state digest, of a straight sync of the final chain.
func TestVerdictsDoNotDependOnForks(t *testing.T) {
	t.Parallel()
	seeds := 5
	if testing.Short() {
		seeds = 2
	}
	const blocks = 220
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 99))
			depth := 1 + rng.IntN(12)
			every := depth + 2 + rng.IntN(15)
			base := devnet.Config{Seed: int64(seed), Blocks: blocks, TxsPerBlock: 2,
				Scenario: &devnet.AsyncEmission{ForgeryRate: 0.3}}
			_, wantStore := syncScenario(t, base)
			want := storedLines(t, wantStore)

			forked := base
			forked.BlockTime, forked.ReorgEvery, forked.ReorgDepth = time.Hour, every, depth // stepped by hand
			s := testchain.New(t, forked)
			store, _ := testchain.OpenStore(t)
			f := s.Follower(t, store, scan.FollowerConfig{Params: consensus.Devnet(), Batch: 4, Ahead: 2})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- f.Run(ctx) }()
			// Step in random bursts; a burst ends early on a competing
			// branch, always the first time and then two times in three.
			seen := false
			for more := true; more; {
				for n := rng.IntN(6); n >= 0 && more; n-- {
					more = s.Devnet.Step()
					if h, id := s.Devnet.Tip(); id != s.Devnet.FinalID(h) && (!seen || rng.IntN(3) > 0) {
						seen = true
						break
					}
				}
				waitForTip(t, s.Devnet, store)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("follower stopped with %v", err)
			}
			got := storedLines(t, store)
			if d := diff(want, got, 20); len(d) > 0 {
				t.Fatalf("every %d depth %d: %d verdicts after forks, %d after a straight sync:\n%s",
					every, depth, len(got), len(want), strings.Join(d, "\n"))
			}
			if a, b := digestOf(t, store), digestOf(t, wantStore); a != b {
				t.Fatalf("state digest %s after forks, %s straight", a, b)
			}
			if st := f.Stats(); st.Reorgs == 0 {
				t.Fatalf("every %d depth %d: the follower saw no reorg", every, depth)
			}
		})
	}
}

// waitForTip polls until the store's tip is the devnet's visible tip.
func waitForTip(t *testing.T, d *devnet.Devnet, store *db.Store) {
	t.Helper()
	wantH, wantID := d.Tip()
	deadline := time.Now().Add(30 * time.Second)
	for {
		tip, ok, err := store.Tip(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ok && tip.Height == wantH && tip.ID == wantID {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store is at %d %s; the devnet at %d %s", tip.Height, tip.ID, wantH, wantID)
		}
		time.Sleep(time.Millisecond)
	}
}

func digestOf(t *testing.T, s *db.Store) string {
	t.Helper()
	d, err := s.StateDigest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
