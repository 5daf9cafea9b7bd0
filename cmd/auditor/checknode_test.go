package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/devnet"
)

// TestCheckNode runs check-node against a devnet: a valid range exits 0
// with its figures; a chain whose last block is mined below the required
// difficulty exits 1 naming it.
func TestCheckNode(t *testing.T) {
	d, err := devnet.New(devnet.Config{Seed: 5, Blocks: 200, TxsPerBlock: 3, BlockTime: time.Hour}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for h, _ := d.Tip(); h < 150; h, _ = d.Tip() {
		d.Step()
	}
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	checkNode := func(args ...string) (int, checkNodeResult, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"check-node", "--node", srv.URL, "--network", "devnet", "--json"}, args...), &env{stdout: &out, stderr: &errOut})
		var res checkNodeResult
		if code != exitBadInput {
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("exit %d, output %q: %v; stderr %s", code, out.String(), err, errOut.String())
			}
		}
		return code, res, errOut.String()
	}

	code, res, _ := checkNode("--from", "1")
	if code != exitOK || res.From != 1 || res.To != 150 || res.Blocks != 150 || len(res.Bad) != 0 || res.BlocksPerSecond <= 0 || res.CPUMicrosPerBlk <= 0 {
		t.Fatalf("exit %d, %+v", code, res)
	}
	tip, err := d.ShowBranch(context.Background(), devnet.Branch{Fork: 147, Length: 3, Break: consensus.RuleDifficulty})
	if err != nil {
		t.Fatal(err)
	}
	code, res, _ = checkNode("--from", "100")
	if code != exitFailed || len(res.Bad) != 1 || res.Bad[0].Height != 150 || *res.Bad[0].ID != tip ||
		!strings.Contains(res.Bad[0].Error, "difficulty") || res.Blocks != 51 {
		t.Fatalf("exit %d, %+v", code, res)
	}
	if code, _, stderr := checkNode("--from", "140", "--to", "999"); code != exitBadInput || !strings.Contains(stderr, "no range") {
		t.Fatalf("a range above the node: exit %d, %s", code, stderr)
	}
}
