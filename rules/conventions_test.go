package rules_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/testchain"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

// blake2bOf maps the sha256 template hash of every output of the chain's
// first blocks to its blake2b256 one, as the node's index computes it.
func blake2bOf(t *testing.T, c *testchain.Chain, blocks uint32) map[string]string {
	t.Helper()
	out := map[string]string{}
	client := c.Client(t)
	for h := uint32(1); h <= blocks; h += 16 {
		var ids []ergo.Digest
		for k := h; k < h+16 && k <= blocks; k++ {
			ids = append(ids, c.Devnet.FinalID(k))
		}
		bs, err := client.Blocks(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			for _, tx := range b.Transactions {
				for _, o := range tx.Outputs {
					if hs, err := rules.HashTemplate(o.ErgoTree); err == nil {
						out[hs.SHA256.String()] = hs.Blake2b256.String()
					}
				}
			}
		}
	}
	return out
}

var templateKey = regexp.MustCompile(`(?m)^((?:emission|funnel|emitted)_template = ")([0-9a-f]{64})"$`)

// inBlake2b rewrites the template keys of [[protocol]] sections to their
// blake2b256 hashes, prefixed.
func inBlake2b(t *testing.T, toml string, blake map[string]string) string {
	t.Helper()
	return templateKey.ReplaceAllStringFunc(toml, func(line string) string {
		m := templateKey.FindStringSubmatch(line)
		b, ok := blake[m[2]]
		if !ok {
			t.Fatalf("no output of the chain has template %s", m[2])
		}
		return m[1] + "blake2b256:" + b + `"`
	})
}

// TestTemplateConventionsJudgeAlike: the scenario's protocols configured
// by the blake2b256 template hashes the node's index uses judge exactly as
// by sha256 — every key in blake2b256, or the action tree alone — and a
// configuration that names one template twice, once in each convention,
// is refused at the first box at it, naming both protocols.
func TestTemplateConventionsJudgeAlike(t *testing.T) {
	t.Parallel()
	// Long enough for verified and invalid verdicts of both protocols
	// (checked below), and no longer: the scenario is synced three times.
	const blocks = 160
	cfg := devnet.Config{Seed: 5, Blocks: blocks, TxsPerBlock: 2, Scenario: &devnet.AsyncEmission{ForgeryRate: 0.25}}
	c, sha := syncScenario(t, cfg)
	pcs, err := c.Devnet.Protocols()
	if err != nil {
		t.Fatal(err)
	}
	blake := blake2bOf(t, c, blocks)
	demoTOML, treeTOML := pcs[0].TOML(), pcs[1].TOML()
	want, _ := sha.StateDigest(context.Background())
	wantLines := storedLines(t, sha)
	for _, p := range []string{"demo", "tree"} {
		for _, status := range []string{"verified", "invalid"} {
			if !slices.ContainsFunc(wantLines, func(l string) bool { return strings.HasPrefix(l, p+" ") && strings.Contains(l, ": "+status+" ") }) {
				t.Fatalf("the chain has no %s verdict of protocol %s: too short to compare conventions", status, p)
			}
		}
	}

	for _, tc := range []struct {
		name, toml string
	}{
		{"every key in blake2b256", inBlake2b(t, demoTOML, blake) + "\n" + inBlake2b(t, treeTOML, blake)},
		{"the demo protocol in sha256, the tree in blake2b256", demoTOML + "\n" + inBlake2b(t, treeTOML, blake)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(tc.toml, "blake2b256:") {
				t.Fatal("no key rewritten")
			}
			ps := testchain.ParseProtocols(t, tc.toml)
			store, _ := testchain.OpenStore(t)
			f := scan.NewFollower(c.Client(t), store, rules.NewEngine(ps, nil, zerolog.Nop()),
				scan.FollowerConfig{Params: consensus.Devnet(), UntilHeight: blocks, Batch: 16, Ahead: 4, PollInterval: time.Millisecond}, zerolog.Nop())
			if err := f.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := storedLines(t, store); !slices.Equal(got, wantLines) {
				t.Fatalf("%d verdicts, %d by sha256 keys; they differ:\n%s", len(got), len(wantLines), strings.Join(diff(wantLines, got, 10), "\n"))
			}
			if got, _ := store.StateDigest(context.Background()); got != want {
				t.Fatalf("state digest %s, %s by sha256 keys", got, want)
			}
		})
	}

	t.Run("one template named in both conventions by two protocols", func(t *testing.T) {
		// A third protocol whose emitted template is the demo protocol's
		// emission template by its blake2b256 hash: check-config cannot
		// see it; the engine refuses at the first emission box.
		emission := fmt.Sprintf("%x", pcs[0].EmissionTemplate)
		third := fmt.Sprintf("[[protocol]]\nname = \"third\"\nparticipant_token_id = \"%s\"\nstate_nft_id = \"%s\"\n"+
			"emission_template = \"%s\"\nemitted_template = \"blake2b256:%s\"\n",
			ergo.Hash([]byte("p3")), ergo.Hash([]byte("n3")), ergo.Hash([]byte("e3")), blake[emission])
		ps := testchain.ParseProtocols(t, demoTOML+"\n"+third)
		if !rules.MixedConventions(ps) {
			t.Fatal("the configuration does not mix conventions")
		}
		store, _ := testchain.OpenStore(t)
		f := scan.NewFollower(c.Client(t), store, rules.NewEngine(ps, nil, zerolog.Nop()),
			scan.FollowerConfig{Params: consensus.Devnet(), UntilHeight: blocks, PollInterval: time.Millisecond}, zerolog.Nop())
		err := f.Run(context.Background())
		var shared *rules.SharedTemplateError
		if !errors.As(err, &shared) || shared.AProtocol != "demo" || shared.AKey != "emission_template" ||
			shared.BProtocol != "third" || shared.BKey != "emitted_template" {
			t.Fatalf("the follower stopped with %v, want a shared template of demo's emission_template and third's emitted_template", err)
		}
		if !strings.Contains(err.Error(), "sha256:"+emission) || !strings.Contains(err.Error(), "blake2b256:"+blake[emission]) {
			t.Errorf("the error does not name the template in both conventions: %v", err)
		}
	})
}
