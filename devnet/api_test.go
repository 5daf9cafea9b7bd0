package devnet

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/fixtures"
)

// TestAPIErrors: malformed or unknown requests get the node's JSON error
// body with the right status, never a panic.
func TestAPIErrors(t *testing.T) {
	d := newDevnet(t, Config{Seed: 1, Blocks: 10})
	n := serve(t, d)
	unknown := strings.Repeat("ab", 32)
	tooMany, _ := json.Marshal(slices.Repeat([]string{unknown}, MaxHeaderIDs+1))
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/blocks/zz", "", 400},
		{"GET", "/blocks/" + unknown, "", 404},
		{"GET", "/blocks/abcd", "", 404}, // hex, but no id
		{"GET", "/blocks/" + unknown + "/header", "", 404},
		{"GET", "/blocks/xyz/header", "", 400},
		{"GET", "/blocks/at/-1", "", 400},
		{"GET", "/blocks/at/abc", "", 400},
		{"GET", "/blocks/at/99999999999", "", 400},
		{"GET", "/blocks/at/header", "", 400},
		{"POST", "/blocks/headerIds", string(tooMany), 400},
		{"POST", "/blocks/headerIds", "{", 400},
		{"POST", "/blocks/headerIds", "", 400},
		{"POST", "/blocks/headerIds", "null", 400},
		{"POST", "/blocks/headerIds", `{"ids":[]}`, 400},
		{"POST", "/blocks/headerIds", "[1,2]", 400},
		{"POST", "/blocks/headerIds", `["zz"]`, 400},
		{"POST", "/blocks/headerIds", "[" + strings.Repeat(`"00",`, maxBody/5) + `"00"]`, 413},
		{"GET", "/blocks/chainSlice?fromHeight=x", "", 400},
		{"GET", "/blocks/chainSlice?toHeight=9999999999", "", 400},
		{"GET", "/blocks/chainSlice?fromHeight=5&toHeight=3", "", 400},
		{"GET", "/", "", 404},
		{"GET", "/nope", "", 404},
		{"GET", "/info/", "", 404},
		{"GET", "/blocks/a/b/c", "", 404},
		{"GET", "/blocks/" + unknown + "/transactions", "", 404},
		{"GET", "/transactions/unconfirmed", "", 404},
		{"POST", "/info", "", 405},
		{"GET", "/blocks/headerIds", "", 405},
		{"DELETE", "/blocks/" + unknown, "", 405},
	} {
		status, body := n.do(c.method, c.path, c.body)
		var e apiError
		if err := json.Unmarshal(body, &e); err != nil || status != c.status || e.Error != c.status || e.Reason == "" || e.Detail == "" {
			name := c.path
			if len(name) > 60 {
				name = name[:60] + "…"
			}
			t.Errorf("%s %s: %d %.200s, want %d and an error body", c.method, name, status, body, c.status)
		}
	}
}

// TestAPIAnswers covers the successful answers beyond what the chain tests
// fetch: heights above the tip, POST /blocks/headerIds's order and
// omissions.
func TestAPIAnswers(t *testing.T) {
	d := newDevnet(t, Config{Seed: 1, Blocks: 10})
	n := serve(t, d)
	for _, h := range []string{"0", "11", "2147483647"} {
		if body := n.get("/blocks/at/" + h); string(body) != "[]" {
			t.Errorf("/blocks/at/%s: %s, want []", h, body)
		}
	}
	id1, id3 := d.FinalID(1), d.FinalID(3)
	ask, _ := json.Marshal([]string{strings.Repeat("00", 32), id3.String(), "abcd", id1.String(), id3.String()})
	status, body := n.do(http.MethodPost, "/blocks/headerIds", string(ask))
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); status != 200 || err != nil {
		t.Fatalf("POST /blocks/headerIds: %d %v", status, err)
	}
	var got []ergo.Digest
	for _, m := range raw {
		got = append(got, verifyBlock(t, m).Header.ComputeID())
	}
	if want := []ergo.Digest{id3, id1, id3}; !slices.Equal(got, want) {
		t.Fatalf("POST /blocks/headerIds answered %v, want %v (unknown ids left out, order kept)", got, want)
	}
	if _, body := n.do(http.MethodPost, "/blocks/headerIds", "[]"); string(body) != "[]" {
		t.Fatalf("no ids: %s", body)
	}
}

// TestChainSliceSemantics: the slice starts one above fromHeight and ends
// at toHeight or the tip, as on the node.
func TestChainSliceSemantics(t *testing.T) {
	d := newDevnet(t, Config{Seed: 2, Blocks: 30})
	n := serve(t, d)
	span := func(lo, hi uint32) []uint32 {
		var s []uint32
		for h := lo; h <= hi; h++ {
			s = append(s, h)
		}
		return s
	}
	for _, c := range []struct {
		query string
		want  []uint32
	}{
		{"?fromHeight=0&toHeight=10", span(1, 10)},
		{"?fromHeight=1&toHeight=10", span(2, 10)},
		{"?fromHeight=5&toHeight=5", []uint32{5}},
		{"?fromHeight=5&toHeight=6", []uint32{6}},
		{"?fromHeight=10&toHeight=100", span(11, 30)},
		{"?fromHeight=-3&toHeight=4", span(1, 4)},
		{"?fromHeight=0&toHeight=0", span(1, 30)},
		{"?fromHeight=40&toHeight=50", []uint32{30}},
		{"", span(2, 30)},
	} {
		hs := n.chainSlice(c.query)
		if got := heights(hs); !slices.Equal(got, c.want) {
			t.Errorf("chainSlice%s: heights %v, want %v", c.query, got, c.want)
		}
		for _, h := range hs {
			if h.ComputeID() != d.FinalID(h.Height) {
				t.Errorf("chainSlice%s: header %d is not the chain's", c.query, h.Height)
			}
		}
	}
}

// TestInfo: /info has node 6's fields and decodes as the auditor reads it;
// before the first block its heights and ids are null.
func TestInfo(t *testing.T) {
	d := newDevnet(t, Config{Seed: 4, Blocks: 5, BlockTime: time.Hour})
	n := serve(t, d)
	var fields map[string]any
	n.getJSON("/info", &fields)
	for _, k := range []string{"fullHeight", "headersHeight", "bestFullHeaderId", "genesisBlockId", "difficulty", "fullBlocksScore"} {
		if v, ok := fields[k]; !ok || v != nil {
			t.Errorf("before the first block, %s is %v, want null", k, v)
		}
	}
	if ids := n.idsAt(1); len(ids) != 0 || len(n.chainSlice("")) != 0 {
		t.Errorf("before the first block, blocks are listed")
	}
	for d.Step() {
	}
	info := n.info()
	prev := d.FinalID(4)
	if info.FullHeight != 5 || info.BestFullHeaderID != d.FinalID(5) || info.GenesisBlockID != d.FinalID(1) ||
		info.Difficulty.Cmp(params.InitialDifficulty) != 0 || info.FullBlocksScore.Int64() != 5*params.InitialDifficulty.Int64() ||
		info.HeadersScore.Int64() != 5*params.InitialDifficulty.Int64() {
		t.Fatalf("/info: %+v", info)
	}
	n.getJSON("/info", &fields)
	if fields["previousFullHeaderId"] != prev.String() || fields["isMining"] != false || fields["peersCount"] != 0.0 || fields["stateType"] != "utxo" {
		t.Errorf("/info: %v", fields)
	}
	var node map[string]any
	fixtures.JSON(t, &node, "api", "info_mainnet_node6.0.x.json")
	for k := range node {
		if _, ok := fields[k]; !ok && k != "restApiUrl" { // restApiUrl: only when the node is configured with one
			t.Errorf("/info lacks node 6's field %q", k)
		}
	}
}

// TestHandlerNeverPanics throws odd requests at the handler.
func TestHandlerNeverPanics(t *testing.T) {
	n := serve(t, newDevnet(t, Config{Seed: 1, Blocks: 3}))
	for _, p := range []string{
		"/blocks/", "/blocks//header", "/blocks/at/", "/blocks/at//", "/blocks/%00", "/blocks/at/1/2",
		"/blocks/chainSlice?fromHeight=-2147483648&toHeight=2147483647",
		"/blocks/chainSlice?fromHeight=2147483647&toHeight=2147483647",
		"/blocks/chainSlice?toHeight=-5",
	} {
		for _, m := range []string{"GET", "POST", "PUT"} {
			status, _ := n.do(m, p, "[]")
			if status >= 500 {
				t.Errorf("%s %s: %d", m, p, status)
			}
		}
	}
	status, body := n.do("GET", "/blocks/chainSlice?fromHeight=-2147483648&toHeight=2147483647", "")
	if status != 200 || !strings.HasPrefix(string(body), "[{") {
		t.Errorf("the widest slice: %d %.100s", status, body)
	}
}

func TestUnavailable(t *testing.T) {
	srv := httptest.NewServer(Unavailable("generating"))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e apiError
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != 503 || e.Error != 503 || e.Detail != "generating" {
		t.Fatalf("%d %+v %v", resp.StatusCode, e, err)
	}
}
