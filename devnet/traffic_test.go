package devnet

import (
	"slices"
	"testing"

	"github.com/async-emission/auditor/ergo/sigma"
)

// TestKeepWholeBurns: change over two boxes' worth loses its last tokens,
// but never one an output took part of (that would burn part of a token).
func TestKeepWholeBurns(t *testing.T) {
	var change []sigma.Token
	for i := range 2*maxTokensPerBox + 3 {
		change = append(change, sigma.Token{ID: [32]byte{byte(i)}, Amount: 10})
	}
	none := func([32]byte) bool { return false }
	if got := keepWholeBurns(change, none); !slices.Equal(got, change[:2*maxTokensPerBox]) {
		t.Fatalf("nothing paid: kept %v", got)
	}
	paid := func(id [32]byte) bool { return id[0] == 2*maxTokensPerBox+1 }
	got := keepWholeBurns(change, paid)
	if len(got) != 2*maxTokensPerBox || got[0] != change[2*maxTokensPerBox+1] || !slices.Equal(got[1:], change[:2*maxTokensPerBox-1]) {
		t.Fatalf("token %d paid in part: kept %v", 2*maxTokensPerBox+1, got)
	}
	if short := change[:3]; !slices.Equal(keepWholeBurns(short, paid), short) {
		t.Fatal("short change changed")
	}
}
