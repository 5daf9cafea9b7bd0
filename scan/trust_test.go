package scan_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/scan"
)

// steppedDevnet is a devnet whose chain is shown by hand, up to height
// shown, and a follower of it running until the test ends.
func steppedDevnet(t *testing.T, blocks int, shown uint32, cfg scan.FollowerConfig) (*devnet.Devnet, *scan.Follower, *db.Store, func() error) {
	t.Helper()
	d, url := newDevnet(t, devnet.Config{Seed: seed, Blocks: blocks, TxsPerBlock: 3, BlockTime: time.Hour})
	for h, _ := d.Tip(); h < shown; h, _ = d.Tip() {
		d.Step()
	}
	store := openStore(t, t.TempDir())
	cfg.Params, cfg.PollInterval = consensus.Devnet(), time.Millisecond
	f := scan.NewFollower(newClient(t, url, zerolog.Nop()), store, keepAll{}, cfg, zerolog.Nop())
	stop := runFollower(t, f)
	waitForTip(t, d, store)
	return d, f, store, stop
}

// waitForTip waits until the store's tip is the devnet's visible tip.
func waitForTip(t *testing.T, d *devnet.Devnet, store *db.Store) {
	t.Helper()
	_, id := d.Tip()
	poll.Until(t, 30*time.Second, "the store to reach the node's tip", func() (bool, string) {
		tip, _, _ := store.Tip(context.Background())
		return tip.ID == id, fmt.Sprintf("store at %d %s, node at %s", tip.Height, tip.ID, id)
	})
}

// TestRefusedBranchesLeaveTheStoreAsItIs shows the follower, at tip 40,
// competing branches that break each rule the devnet can break, and
// rule-abiding ones with less or as much work: each is refused, named by
// its rule in the stats, and the store stays as it was (nothing
// disconnected). Then a branch with more work is adopted, and the final
// chain, heavier again, takes over with the digest of a straight sync.
func TestRefusedBranchesLeaveTheStoreAsItIs(t *testing.T) {
	d, f, store, stop := steppedDevnet(t, 60, 40, scan.FollowerConfig{})
	want, _ := digest(t, store)
	tip40, _, _ := store.Tip(context.Background())

	type refused struct {
		name string
		b    devnet.Branch
		rule consensus.Rule
	}
	cases := []refused{
		{"less work", devnet.Branch{Fork: 37, Length: 2}, consensus.RuleWork},
		{"as much work", devnet.Branch{Fork: 38, Length: 2}, consensus.RuleWork},
	}
	for _, rule := range devnet.BreakableRules {
		cases = append(cases, refused{"breaks " + string(rule), devnet.Branch{Fork: 38, Length: 3, Break: rule}, rule})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := f.Stats().Refused[c.rule]
			branchTip, err := d.ShowBranch(context.Background(), c.b)
			if err != nil {
				t.Fatal(err)
			}
			poll.Until(t, 30*time.Second, "the branch to be refused", func() (bool, string) {
				st := f.Stats()
				return st.Refused[c.rule] > before && st.Refusing, fmt.Sprintf("refusals %v", st.Refused)
			})
			st := f.Stats()
			if r := st.LastRefusal; r == nil || r.Rule != c.rule || r.ID != branchTip && c.rule != consensus.RuleWork {
				t.Errorf("last refusal %+v, want rule %s of block %s", r, c.rule, branchTip)
			}
			if got, _ := digest(t, store); got != want || st.Disconnected != 0 {
				t.Fatalf("a refused branch changed the store (%d blocks disconnected)", st.Disconnected)
			}
			if tip, _, _ := store.Tip(context.Background()); tip != tip40 {
				t.Fatalf("tip %v, want %v", tip, tip40)
			}
			d.ShowFinal()
			poll.Until(t, 30*time.Second, "the refusal to clear once the node is back", func() (bool, string) {
				return !f.Stats().Refusing, ""
			})
		})
	}

	branchTip, err := d.ShowBranch(context.Background(), devnet.Branch{Fork: 38, Length: 3})
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the heavier branch to be adopted", func() (bool, string) {
		tip, _, _ := store.Tip(context.Background())
		return tip.ID == branchTip, fmt.Sprintf("store at %d", tip.Height)
	})
	if st := f.Stats(); st.Reorgs != 1 || st.Disconnected != 2 {
		t.Fatalf("%d reorgs, %d blocks disconnected; want 1 and 2", st.Reorgs, st.Disconnected)
	}
	d.ShowFinal()
	for h, _ := d.Tip(); h < 42; h, _ = d.Tip() {
		d.Step()
	}
	waitForTip(t, d, store) // the final chain is one block heavier than the branch at 42
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	_, straightURL := newDevnet(t, devnet.Config{Seed: seed, Blocks: 60, TxsPerBlock: 3})
	straight, _ := digest(t, syncTo(t, straightURL, 42, scan.FollowerConfig{Params: consensus.Devnet()}))
	if got, _ := digest(t, store); got != straight {
		t.Fatalf("digest %s after the branches, %s after a straight sync", got, straight)
	}
}

// TestWithheldBranchKeepsTheChain shows a branch with more work whose
// blocks the node does not serve: nothing is disconnected until they come.
func TestWithheldBranchKeepsTheChain(t *testing.T) {
	d, f, store, stop := steppedDevnet(t, 60, 40, scan.FollowerConfig{})
	defer stop()
	want, _ := digest(t, store)
	branchTip, err := d.ShowBranch(context.Background(), devnet.Branch{Fork: 38, Length: 3, Withhold: true})
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the withheld branch to be put off", func() (bool, string) {
		st := f.Stats()
		return st.Withheld >= 2 && st.Withholding, fmt.Sprintf("withheld %d", st.Withheld)
	})
	if got, _ := digest(t, store); got != want || f.Stats().Disconnected != 0 || f.Stats().Reorgs != 0 {
		t.Fatal("a branch whose blocks are withheld changed the store")
	}
	d.ServeBranch()
	poll.Until(t, 30*time.Second, "the branch to be adopted once served", func() (bool, string) {
		tip, _, _ := store.Tip(context.Background())
		return tip.ID == branchTip, fmt.Sprintf("store at %d", tip.Height)
	})
	poll.Until(t, 5*time.Second, "withholding to clear", func() (bool, string) { return !f.Stats().Withholding, "" })
}

// TestCheckpointIsTheTrustRoot follows a chain from a checkpoint below the
// first block (its headers checked up to it, headers first) and above it
// (the headers up to it linked to it), and refuses a checkpoint the node's
// chain does not pass through and a branch that leaves it.
func TestCheckpointIsTheTrustRoot(t *testing.T) {
	const blocks = 90
	d, url := newDevnet(t, devnet.Config{Seed: seed, Blocks: blocks, TxsPerBlock: 3})
	ctx := context.Background()
	follow := func(t *testing.T, cp consensus.Checkpoint, start uint32) (*db.Store, error) {
		store := openStore(t, t.TempDir())
		f := scan.NewFollower(newClient(t, url, zerolog.Nop()), store, keepAll{}, scan.FollowerConfig{
			Params: consensus.Devnet(), Checkpoint: cp, StartHeight: start, UntilHeight: blocks, PollInterval: time.Millisecond}, zerolog.Nop())
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return store, f.Run(rctx)
	}
	plain, err := follow(t, consensus.Checkpoint{}, 50)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := digest(t, plain)
	if root, ok, _ := plain.TrustRoot(ctx); !ok || root.Kind != db.TrustFirstBlock || root.Height != 50 || root.ID != d.FinalID(50) {
		t.Fatalf("trust root without a checkpoint: %+v", root)
	}

	for _, c := range []struct {
		name      string
		cp, start uint32
	}{{"below the first block", 20, 50}, {"above the first block", 70, 50}, {"at the first block", 50, 50}} {
		t.Run(c.name, func(t *testing.T) {
			cp := consensus.Checkpoint{Height: c.cp, ID: d.FinalID(c.cp)}
			store, err := follow(t, cp, c.start)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := digest(t, store); got != want {
				t.Fatalf("digest %s from the checkpoint, %s without", got, want)
			}
			root, ok, _ := store.TrustRoot(ctx)
			if !ok || root.Kind != db.TrustCheckpoint || root.Height != cp.Height || root.ID != cp.ID {
				t.Fatalf("trust root %+v, want the checkpoint", root)
			}
			// The headers between the checkpoint and the first block are held.
			for h := min(c.cp, c.start-1); h <= max(c.cp, c.start-1); h++ {
				if r, ok, _ := store.MainChainHeader(ctx, h); !ok || r.ID != d.FinalID(h) || r.Block != (h >= c.start) {
					t.Fatalf("header at %d: %+v", h, r)
				}
			}
		})
	}
	t.Run("not on the node's chain", func(t *testing.T) {
		cp := consensus.Checkpoint{Height: 30, ID: d.FinalID(31)}
		store, err := follow(t, cp, 40)
		if !errors.Is(err, scan.ErrCheckpoint) || !strings.Contains(err.Error(), cp.ID.String()) || !strings.Contains(err.Error(), d.FinalID(30).String()) {
			t.Fatalf("got %v, want ErrCheckpoint naming both ids", err)
		}
		if _, ok, _ := store.Tip(ctx); ok {
			t.Fatal("a block was stored")
		}
	})
}

// TestBranchLeavingTheCheckpointIsRefused: a heavier branch that replaces
// the checkpoint's block is refused.
func TestBranchLeavingTheCheckpointIsRefused(t *testing.T) {
	d0, _ := newDevnet(t, devnet.Config{Seed: seed, Blocks: 60, TxsPerBlock: 3})
	cp := consensus.Checkpoint{Height: 36, ID: d0.FinalID(36)}
	d, f, store, stop := steppedDevnet(t, 60, 40, scan.FollowerConfig{Checkpoint: cp})
	defer stop()
	want, _ := digest(t, store)
	if _, err := d.ShowBranch(context.Background(), devnet.Branch{Fork: 34, Length: 10}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the branch to be refused", func() (bool, string) {
		return f.Stats().Refused[consensus.RuleCheckpoint] > 0, fmt.Sprintf("%v", f.Stats().Refused)
	})
	if r := f.Stats().LastRefusal; r.Height != cp.Height {
		t.Fatalf("refusal %+v, want the header at the checkpoint's height", r)
	}
	if got, _ := digest(t, store); got != want {
		t.Fatal("the refused branch changed the store")
	}
}

// slices records the ids of every header the node serves in chain slices.
type slices struct {
	next http.Handler
	mu   sync.Mutex
	ids  map[ergo.Digest]int
}

func (s *slices) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/blocks/chainSlice" {
		s.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, r)
	var hs []struct {
		ID ergo.Digest `json:"id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &hs); err == nil {
		s.mu.Lock()
		for _, h := range hs {
			s.ids[h.ID]++
		}
		s.mu.Unlock()
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// TestEachProofOfWorkIsComputedOnce follows a chain through reorgs and
// checks that the client computed exactly one proof of work per distinct
// header the node served, however many times it served it (catch-up, the
// tip checks of every poll, reorg walks, branch evaluation).
func TestEachProofOfWorkIsComputedOnce(t *testing.T) {
	d, err := devnet.New(devnet.Config{Seed: seed, Blocks: 120, TxsPerBlock: 3, BlockTime: time.Hour, ReorgEvery: 9, ReorgDepth: 3}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s := &slices{next: d.Handler(), ids: map[ergo.Digest]int{}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	store := openStore(t, t.TempDir())
	c := newClient(t, srv.URL, zerolog.Nop())
	f := scan.NewFollower(c, store, keepAll{}, scan.FollowerConfig{Params: consensus.Devnet(), PollInterval: time.Millisecond, Batch: 5}, zerolog.Nop())
	stop := runFollower(t, f)
	stepAndFollow(t, d, store)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	served := 0
	for _, n := range s.ids {
		served += n
	}
	if got := c.Stats().PoWChecks; got != uint64(len(s.ids)) {
		t.Fatalf("%d proofs of work computed for %d distinct headers (%d served)", got, len(s.ids), served)
	}
	if served <= len(s.ids) || f.Stats().Reorgs == 0 {
		t.Fatalf("%d headers served, %d distinct, %d reorgs: the test proves nothing", served, len(s.ids), f.Stats().Reorgs)
	}
	t.Logf("%d distinct headers served %d times, one proof of work each", len(s.ids), served)
}

// TestStoreFromBeforeTheRulesIsUpgraded opens a store as the auditor wrote
// it before the header rules (no version, nBits or work on its headers, no
// trust root): the follower takes what the rules read from the node, each
// header checked against the stored id, sets the trust root where the
// rules start, and follows on to the digest of a straight sync.
func TestStoreFromBeforeTheRulesIsUpgraded(t *testing.T) {
	const blocks = 340
	d, url := newDevnet(t, devnet.Config{Seed: seed, Blocks: blocks, TxsPerBlock: 2})
	dir := t.TempDir()
	store, err := db.Open(context.Background(), dir+"/auditor.db", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	cfg := scan.FollowerConfig{Params: consensus.Devnet(), PollInterval: time.Millisecond, MaxReorgDepth: 10, UntilHeight: 300}
	if err := scan.NewFollower(newClient(t, url, zerolog.Nop()), store, keepAll{}, cfg, zerolog.Nop()).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	store.Close()
	execSQL(t, dir, `UPDATE headers SET version = NULL, n_bits = NULL, work = NULL`, `DELETE FROM trust_root`, `DELETE FROM context_headers`)

	store = openStore(t, dir)
	cfg.UntilHeight = blocks
	f := scan.NewFollower(newClient(t, url, zerolog.Nop()), store, keepAll{}, cfg, zerolog.Nop())
	if err := f.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The rules read at most MaxReorgDepth + one difficulty window (8
	// epochs of 32 below 513) below the tip.
	root, ok, _ := store.TrustRoot(context.Background())
	if wantH := uint32(300 - 10 - 8*32); !ok || root.Kind != db.TrustUpgrade || root.Height != wantH || root.ID != d.FinalID(wantH) {
		t.Fatalf("trust root %+v, want the upgrade at %d", root, wantH)
	}
	want, _ := digest(t, syncTo(t, url, blocks, scan.FollowerConfig{Params: consensus.Devnet()}))
	got, st := digest(t, store)
	if got != want {
		t.Fatalf("digest %s after the upgrade (tip %d), %s after a straight sync", got, st.TipHeight, want)
	}
}

// TestTrustRootOfAnInterruptedFirstCommit: a store whose first blocks were
// committed but whose trust root was not (the process stopped between the
// two) gets its first block as the trust root, not an upgrade.
func TestTrustRootOfAnInterruptedFirstCommit(t *testing.T) {
	d, url := newDevnet(t, devnet.Config{Seed: seed, Blocks: 60, TxsPerBlock: 2})
	dir := t.TempDir()
	store, err := db.Open(context.Background(), dir+"/auditor.db", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	cfg := scan.FollowerConfig{Params: consensus.Devnet(), StartHeight: 20, PollInterval: time.Millisecond, UntilHeight: 40}
	if err := scan.NewFollower(newClient(t, url, zerolog.Nop()), store, keepAll{}, cfg, zerolog.Nop()).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	store.Close()
	execSQL(t, dir, `DELETE FROM trust_root`)
	store = openStore(t, dir)
	cfg.UntilHeight = 60
	if err := scan.NewFollower(newClient(t, url, zerolog.Nop()), store, keepAll{}, cfg, zerolog.Nop()).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if root, ok, _ := store.TrustRoot(context.Background()); !ok || root.Kind != db.TrustFirstBlock || root.Height != 20 || root.ID != d.FinalID(20) {
		t.Fatalf("trust root %+v, want the first block", root)
	}
}

// execSQL runs statements on the closed store of dir, as another program
// (or an older auditor) would have left it.
func execSQL(t *testing.T, dir string, statements ...string) {
	t.Helper()
	raw, err := sql.Open("sqlite3", dir+"/auditor.db")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range statements {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}
