package consensus_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/fixtures"
)

// headerSet is mainnet headers by height, read from the fixtures; as a
// consensus.Chain it answers for the heights it holds and fails for the
// others, so that a rule that needs a header the vectors lack fails
// instead of passing.
type headerSet map[uint32]*ergo.Header

var errNoFixture = errors.New("no fixture header")

func (s headerSet) HeaderAt(_ context.Context, height uint32) (consensus.Summary, error) {
	h, ok := s[height]
	if !ok {
		return consensus.Summary{}, fmt.Errorf("%w at height %d", errNoFixture, height)
	}
	return summary(h), nil
}

func summary(h *ergo.Header) consensus.Summary {
	return consensus.Summary{Height: h.Height, Timestamp: h.Timestamp, NBits: h.NBits, Version: h.Version}
}

// add puts h in the set, failing on two different headers at one height.
func (s headerSet) add(t *testing.T, h *ergo.Header) {
	t.Helper()
	if old, ok := s[h.Height]; ok && old.ComputeID() != h.ComputeID() {
		t.Fatalf("two fixture headers at height %d", h.Height)
	}
	s[h.Height] = h
}

// loadBytes reads a file of serialized headers [{height, id, bytes}],
// checking each id.
func loadBytes(t *testing.T, s headerSet, name string) {
	t.Helper()
	var rows []struct {
		Height uint32 `json:"height"`
		ID     string `json:"id"`
		Bytes  string `json:"bytes"`
	}
	fixtures.JSON(t, &rows, "headers", name)
	for _, r := range rows {
		b, err := hex.DecodeString(r.Bytes)
		if err != nil {
			t.Fatalf("%s height %d: %v", name, r.Height, err)
		}
		h, err := ergo.ParseHeader(b)
		if err != nil {
			t.Fatalf("%s height %d: %v", name, r.Height, err)
		}
		if h.ID.String() != r.ID || h.Height != r.Height {
			t.Fatalf("%s: header %s at %d parses as %s at %d", name, r.ID, r.Height, h.ID, h.Height)
		}
		s.add(t, h)
	}
}

// loadJSON reads a file of headers in the node's JSON, checking each id.
func loadJSON(t *testing.T, s headerSet, name string) {
	t.Helper()
	var hs []*ergo.Header
	fixtures.JSON(t, &hs, "headers", name)
	for _, h := range hs {
		if err := h.CheckIDs(); err != nil {
			t.Fatalf("%s height %d: %v", name, h.Height, err)
		}
		s.add(t, h)
	}
}

func mainnetHeaders(t *testing.T) headerSet {
	s := headerSet{}
	loadBytes(t, s, "bytes_mainnet_1_2000_v1.json")
	for _, name := range []string{
		"chainslice_mainnet_417692_417791_v1.json", "chainslice_mainnet_417792_417891_v2.json",
		"chainslice_mainnet_844573_844672_v2.json", "chainslice_mainnet_844673_844772_v2.json",
		"chainslice_mainnet_1750000_1750049_v4.json",
	} {
		loadJSON(t, s, name)
	}
	for _, name := range []string{"bytes_mainnet_eip37_curated.json", "bytes_mainnet_1761792_1761795_v3.json", "bytes_mainnet_v2_curated.json"} {
		loadBytes(t, s, name)
	}
	return s
}

// The auditor's clock for mainnet vectors: long after all of them.
func mainnetClock() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }

// TestMainnetHeadersObeyTheRules checks every mainnet header whose parent
// the vectors hold against the mainnet rules: the difficulty each height
// requires (recalculated at the epoch boundaries the vectors cover: 1025,
// the Autolykos v2 activation at 417,792 and the EIP-37 activation at
// 844,673), links, timestamps, versions and votes; and the genesis header.
// Where a recalculation needs headers the vectors lack, it must fail, not
// pass.
func TestMainnetHeadersObeyTheRules(t *testing.T) {
	s := mainnetHeaders(t)
	v := consensus.NewValidator(consensus.Mainnet(), consensus.Checkpoint{}, mainnetClock)
	ctx := context.Background()

	if err := v.CheckGenesis(s[1], s[1].ComputeID()); err != nil {
		t.Fatalf("genesis: %v", err)
	}
	heights := make([]uint32, 0, len(s))
	for h := range s {
		heights = append(heights, h)
	}
	sort.Slice(heights, func(i, j int) bool { return heights[i] < heights[j] })

	checked, recalculated, unknown := 0, map[uint32]bool{}, map[uint32]bool{}
	for _, height := range heights {
		h, parent := s[height], s[height-1]
		if parent == nil {
			continue
		}
		err := v.CheckChild(ctx, h, h.ComputeID(), parent.ComputeID(), summary(parent), s)
		if errors.Is(err, errNoFixture) {
			if _, isRule := consensus.RuleOf(err); isRule || hasWindow(s, height) {
				t.Errorf("height %d: %v", height, err)
			}
			unknown[height] = true // the vectors lack the epoch ends: it must not pass
			continue
		}
		if err != nil {
			t.Errorf("height %d: %v", height, err)
			continue
		}
		checked++
		if h.NBits != parent.NBits {
			recalculated[height] = true
		}
	}
	t.Logf("%d headers checked; nBits changed at %v; not checkable (window missing) at %v", checked, keys(recalculated), keys(unknown))
	// The boundaries the vectors can check, each a real change of nBits
	// (1025 keeps it: one epoch of data is not a fit).
	for _, h := range []uint32{417792, 844673} {
		if !recalculated[h] {
			t.Errorf("height %d: no difficulty change checked there", h)
		}
	}
	for _, h := range []uint32{1750017, 1761793} {
		if !unknown[h] {
			t.Errorf("height %d: a recalculation without its window must fail", h)
		}
	}
	if checked < 2300 {
		t.Errorf("only %d headers checked", checked)
	}
}

// hasWindow reports whether s holds the epoch ends the difficulty of
// height needs on mainnet after EIP-37.
func hasWindow(s headerSet, height uint32) bool {
	p := consensus.Mainnet()
	for i := uint32(0); i <= p.UseLastEpochs; i++ {
		if _, ok := s[height-1-i*p.EIP37EpochLength]; !ok {
			return false
		}
	}
	return true
}

func keys(m map[uint32]bool) []uint32 {
	out := make([]uint32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// TestMainnetRequiredDifficulty pins the recalculated difficulties at the
// boundaries against the nBits the real chain carries.
func TestMainnetRequiredDifficulty(t *testing.T) {
	s := mainnetHeaders(t)
	p := consensus.Mainnet()
	for _, height := range []uint32{1025, 2000, 417791, 417792, 417793, 844672, 844673, 844674, 1750001} {
		got, err := consensus.RequiredDifficulty(context.Background(), &p, summary(s[height-1]), s)
		if err != nil {
			t.Fatalf("height %d: %v", height, err)
		}
		want, err := summary(s[height]).Difficulty()
		if err != nil {
			t.Fatal(err)
		}
		if got.Cmp(want) != 0 {
			t.Errorf("height %d: required %s, the chain has %s", height, got, want)
		}
	}
}

// TestMainnetRuleBreaches changes one field of a real header at a time
// (its id recomputed) and expects the rule it breaks.
func TestMainnetRuleBreaches(t *testing.T) {
	s := mainnetHeaders(t)
	clock := mainnetClock()
	v := consensus.NewValidator(consensus.Mainnet(), consensus.Checkpoint{}, func() time.Time { return clock })
	cp := consensus.Checkpoint{Height: 844673, ID: s[844672].ComputeID()} // another block's id
	vcp := consensus.NewValidator(consensus.Mainnet(), cp, func() time.Time { return clock })
	for _, c := range []struct {
		name   string
		height uint32
		change func(h *ergo.Header)
		v      *consensus.Validator
		rule   consensus.Rule
	}{
		{"nBits one below at the EIP-37 recalculation", 844673, func(h *ergo.Header) { h.NBits-- }, v, consensus.RuleDifficulty},
		{"nBits one above inside an epoch", 844700, func(h *ergo.Header) { h.NBits++ }, v, consensus.RuleDifficulty},
		{"difficulty 1 on a real parent", 844700, func(h *ergo.Header) { h.NBits = 0x01010000 }, v, consensus.RuleDifficulty},
		{"the v1 difficulty kept at the v2 activation", 417792, func(h *ergo.Header) { h.NBits = s[417791].NBits }, v, consensus.RuleDifficulty},
		{"another parent", 844700, func(h *ergo.Header) { h.ParentID[0] ^= 1 }, v, consensus.RuleParent},
		{"a height skipped", 844700, func(h *ergo.Header) { h.Height++ }, v, consensus.RuleHeight},
		{"the parent's timestamp", 844700, func(h *ergo.Header) { h.Timestamp = s[844699].Timestamp }, v, consensus.RuleTimestamp},
		{"before the parent", 844700, func(h *ergo.Header) { h.Timestamp = s[844699].Timestamp - 1 }, v, consensus.RuleTimestamp},
		{"21 minutes ahead of the clock", 844700, func(h *ergo.Header) { h.Timestamp = uint64(clock.Add(21 * time.Minute).UnixMilli()) }, v, consensus.RuleFuture},
		{"version 1 after the hard fork", 417793, func(h *ergo.Header) { h.Version = 1 }, v, consensus.RuleVersion},
		{"version 2 before it", 417791, func(h *ergo.Header) { h.Version = 2 }, v, consensus.RuleVersion},
		{"a version this build does not know", 1750001, func(h *ergo.Header) { h.Version = 5 }, v, consensus.RuleVersion},
		{"a version change inside a voting epoch", 844700, func(h *ergo.Header) { h.Version = 3 }, v, consensus.RuleVersion},
		{"a version below the parent's", 1750001, func(h *ergo.Header) { h.Version = 3 }, v, consensus.RuleVersion},
		{"three parameter votes", 844700, func(h *ergo.Header) { h.Votes = [3]byte{1, 2, 3} }, v, consensus.RuleVotes},
		{"a vote twice", 844700, func(h *ergo.Header) { h.Votes = [3]byte{1, 1, 0} }, v, consensus.RuleVotes},
		{"contradictory votes", 844700, func(h *ergo.Header) { h.Votes = [3]byte{2, 0xfe, 0} }, v, consensus.RuleVotes},
		{"another block at the checkpoint", 844673, func(*ergo.Header) {}, vcp, consensus.RuleCheckpoint},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := *s[c.height]
			c.change(&h)
			parent := s[c.height-1]
			err := c.v.CheckChild(context.Background(), &h, h.ComputeID(), parent.ComputeID(), summary(parent), s)
			if !errors.Is(err, c.rule) {
				t.Fatalf("got %v, want rule %s", err, c.rule)
			}
			var re *consensus.RuleError
			if !errors.As(err, &re) || re.Height != h.Height || re.ID != h.ComputeID() {
				t.Fatalf("the error does not name the header: %#v", err)
			}
		})
	}
	// The soft-fork vote does not count among the parameter votes.
	h := *s[844700]
	h.Votes = [3]byte{1, 2, 120}
	parent := s[844699]
	if err := v.CheckChild(context.Background(), &h, h.ComputeID(), parent.ComputeID(), summary(parent), s); err != nil {
		t.Errorf("two parameter votes and a soft-fork vote: %v", err)
	}
}

func TestMainnetGenesisBreaches(t *testing.T) {
	s := mainnetHeaders(t)
	v := consensus.NewValidator(consensus.Mainnet(), consensus.Checkpoint{}, mainnetClock)
	g := *s[1]
	g.Timestamp++ // another block at height 1
	if err := v.CheckGenesis(&g, g.ComputeID()); !errors.Is(err, consensus.RuleGenesis) {
		t.Errorf("another genesis: %v", err)
	}
	g = *s[1]
	g.NBits++
	if err := v.CheckGenesis(&g, s[1].ComputeID()); !errors.Is(err, consensus.RuleDifficulty) {
		t.Errorf("genesis at another difficulty: %v", err)
	}
}
