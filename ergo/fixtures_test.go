package ergo

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/ergo/wire"
	"github.com/async-emission/auditor/internal/fixtures"
	"golang.org/x/crypto/blake2b"
)

// These tests re-derive every id, root and PoW in the mainnet fixtures
// vendored at testdata/ergo-fixtures (real mainnet data captured from live
// nodes; see SOURCES.md there). A missing fixture fails the test.

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("fixture hex: %v", err)
	}
	return b
}

func TestFixtureBlocks(t *testing.T) {
	files := fixtures.Glob(t, "blocks/*.json")
	if len(files) == 0 {
		t.Fatal("no block fixtures")
	}
	var txs, boxes int
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := DecodeBlock(fixtures.Read(t, "blocks", filepath.Base(f)))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if err := b.Verify(); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if !b.Header.HasID || b.Header.ComputeID() != b.Header.ID {
				t.Fatalf("header id not given or not derived")
			}
			st, err := b.Header.CheckPoW()
			if err != nil || st != PoWOK {
				t.Fatalf("pow: %s, %v", st, err)
			}
			if err := b.CheckTransactionsRoot(); err != nil {
				t.Fatal(err)
			}
			if err := b.CheckExtensionRoot(); err != nil {
				t.Fatal(err)
			}
			txs += len(b.Transactions)
			for i := range b.Transactions {
				boxes += len(b.Transactions[i].Outputs)
			}
		})
	}
	// SOURCES.md: the 12 blocks hold 149 transactions and 1,013 outputs.
	if txs != 149 || boxes != 1013 {
		t.Errorf("verified %d transactions and %d boxes, want 149 and 1013", txs, boxes)
	}
}

// tamper flips one byte of a hex string found in the JSON and checks that
// Verify reports the expected kind of error at the expected field.
func TestBlockVerifyDetectsTampering(t *testing.T) {
	raw := fixtures.Read(t, "blocks", "mainnet_700004.json")
	base, err := DecodeBlock(raw)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		edit  func(b *FullBlock)
		kind  ErrorKind
		field string
	}{
		{"box value", func(b *FullBlock) { b.Transactions[1].Outputs[0].Value++ }, ErrIDMismatch, "blockTransactions.transactions[1].outputs[0].boxId"},
		{"input box id", func(b *FullBlock) { b.Transactions[1].Inputs[0].BoxID[0] ^= 1 }, ErrIDMismatch, "blockTransactions.transactions[1].id"},
		{"proof bytes", func(b *FullBlock) { b.Transactions[1].Inputs[0].Proof[0] ^= 1 }, ErrRootMismatch, "header.transactionsRoot"},
		{"extension value", func(b *FullBlock) { b.Extension.Fields[0].Value[0] ^= 1 }, ErrRootMismatch, "extension.fields"},
		{"header timestamp", func(b *FullBlock) { b.Header.Timestamp++ }, ErrIDMismatch, "header.id"},
		{"pow nonce", func(b *FullBlock) { b.Header.PoW.Nonce[7] ^= 1; b.Header.HasID = false; b.Header.HasSectionIDs = false }, ErrPoW, "header.powSolutions"},
		{"output index", func(b *FullBlock) { b.Transactions[0].Outputs[0].Index = 5 }, ErrLink, "blockTransactions.transactions[0].outputs[0].index"},
		{"section header id", func(b *FullBlock) { b.TransactionsHeaderID[0] ^= 1 }, ErrLink, "blockTransactions.headerId"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := DecodeBlock(raw)
			if err != nil {
				t.Fatal(err)
			}
			c.edit(b)
			err = b.Verify()
			if !errors.Is(err, c.kind) {
				t.Fatalf("got %v, want kind %q", err, c.kind)
			}
			if !hasField(err, c.field) {
				t.Fatalf("got %v, want an error at %s", err, c.field)
			}
		})
	}
	if err := base.Verify(); err != nil {
		t.Fatalf("untampered block: %v", err)
	}
}

func hasField(err error, field string) bool {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			if hasField(e, field) {
				return true
			}
		}
	}
	var e *Error
	return errors.As(err, &e) && e.Field == field
}

// headerFixtures returns every JSON header in the fixtures, keyed by id.
func headerFixtures(t *testing.T) map[Digest]*Header {
	t.Helper()
	out := map[Digest]*Header{}
	add := func(src string, h *Header) {
		if !h.HasID {
			t.Fatalf("%s: header without id", src)
		}
		out[h.ID] = h
	}
	for _, f := range fixtures.Glob(t, "headers/*.json") {
		name := filepath.Base(f)
		raw := fixtures.Read(t, "headers", name)
		switch {
		case strings.HasPrefix(name, "chainslice_"), strings.HasPrefix(name, "lastHeaders_"):
			var hs []Header
			if err := json.Unmarshal(raw, &hs); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for i := range hs {
				add(name, &hs[i])
			}
		case strings.HasPrefix(name, "popowHeader_"):
			var p struct{ Header Header }
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			add(name, &p.Header)
		}
	}
	for _, f := range fixtures.Glob(t, "blocks/*.json") {
		var b FullBlock
		if err := json.Unmarshal(fixtures.Read(t, "blocks", filepath.Base(f)), &b); err != nil {
			t.Fatal(err)
		}
		add(f, &b.Header)
	}
	return out
}

func TestFixtureJSONHeaders(t *testing.T) {
	hs := headerFixtures(t)
	var ok, unchecked int
	for id, h := range hs {
		if err := h.CheckIDs(); err != nil {
			t.Errorf("header %s (height %d): %v", id, h.Height, err)
		}
		st, err := h.CheckPoW()
		switch {
		case err != nil:
			t.Errorf("header %s (height %d): %v", id, h.Height, err)
		case h.Version == 1 && st != PoWUnchecked:
			t.Errorf("v1 header %d: pow %s, want unchecked", h.Height, st)
		case h.Version > 1 && st != PoWOK:
			t.Errorf("v%d header %d: pow %s", h.Version, h.Height, st)
		case st == PoWOK:
			ok++
		default:
			unchecked++
		}
	}
	// SOURCES.md: 473 JSON headers (some appear in more than one file), of
	// which every v2+ PoW is valid; v1 PoW is not checked.
	if len(hs) != 473 || ok != 362 {
		t.Errorf("checked %d distinct headers and %d v2+ PoW, want 473 and 362", len(hs), ok)
	}
	t.Logf("%d distinct JSON headers: %d PoW ok, %d v1 unchecked", len(hs), ok, unchecked)
}

type rawHeader struct {
	Height           uint32 `json:"height"`
	ID               string `json:"id"`
	Bytes            string `json:"bytes"`
	HeaderWithoutPow string `json:"headerWithoutPow"`
}

func TestFixtureRawHeaders(t *testing.T) {
	jsonHeaders := headerFixtures(t)
	var n, pow, crossChecked int
	for _, f := range fixtures.Glob(t, "headers/bytes_*.json") {
		var hs []rawHeader
		fixtures.JSON(t, &hs, "headers", filepath.Base(f))
		for _, rh := range hs {
			b := unhex(t, rh.Bytes)
			h, err := ParseHeader(b)
			if err != nil {
				t.Fatalf("%s height %d: %v", filepath.Base(f), rh.Height, err)
			}
			if h.ID.String() != rh.ID || h.ComputeID().String() != rh.ID {
				t.Fatalf("height %d: id %s / recomputed %s, want %s", rh.Height, h.ID, h.ComputeID(), rh.ID)
			}
			if h.Height != rh.Height {
				t.Fatalf("height %d parsed as %d", rh.Height, h.Height)
			}
			if !bytes.Equal(h.Bytes(), b) {
				t.Fatalf("height %d: re-serialization differs", rh.Height)
			}
			if rh.HeaderWithoutPow != "" && hex.EncodeToString(h.BytesWithoutPoW()) != rh.HeaderWithoutPow {
				t.Fatalf("height %d: bytes without PoW differ", rh.Height)
			}
			if st, err := h.CheckPoW(); err != nil || (h.Version > 1) != (st == PoWOK) {
				t.Fatalf("height %d v%d: pow %s, %v", rh.Height, h.Version, st, err)
			} else if st == PoWOK {
				pow++
			}
			if jh, ok := jsonHeaders[h.ID]; ok {
				if !bytes.Equal(jh.Bytes(), b) {
					t.Fatalf("height %d: JSON header serializes differently from the raw bytes", rh.Height)
				}
				crossChecked++
			}
			n++
		}
	}
	// SOURCES.md: 535 raw header byte strings, and the 2,000 of
	// bytes_mainnet_1_2000_v1.json.
	if n != 2535 {
		t.Errorf("checked %d raw headers, want 2535", n)
	}
	t.Logf("%d raw headers, %d v2+ PoW ok, %d equal to their JSON form", n, pow, crossChecked)
}

// TestFixtureHeaderChains checks the runs of serialized headers from
// genesis, heights 1-500 and 1-2000 (the data of the difficulty-adjustment
// tests): each id is blake2b256 of the bytes, the heights run 1, 2, ...
// with no gap, each header's parent is the header before it (genesis's is
// 32 zero bytes) and its timestamp is later, and the shorter run is the
// start of the longer.
func TestFixtureHeaderChains(t *testing.T) {
	runs := map[string][]rawHeader{}
	for name, want := range map[string]int{"bytes_mainnet_1_500_v1.json": 500, "bytes_mainnet_1_2000_v1.json": 2000} {
		var hs []rawHeader
		fixtures.JSON(t, &hs, "headers", name)
		if len(hs) != want {
			t.Fatalf("%s: %d headers, want %d", name, len(hs), want)
		}
		var parent Digest
		var parentTime uint64
		for i, rh := range hs {
			b := unhex(t, rh.Bytes)
			if id := blake2b.Sum256(b); hex.EncodeToString(id[:]) != rh.ID {
				t.Fatalf("%s[%d]: blake2b256(bytes) = %x, id %s", name, i, id, rh.ID)
			}
			h, err := ParseHeader(b)
			if err != nil {
				t.Fatalf("%s[%d]: %v", name, i, err)
			}
			if rh.Height != uint32(i+1) || h.Height != rh.Height {
				t.Fatalf("%s[%d]: height %d (%d in the bytes), want %d", name, i, rh.Height, h.Height, i+1)
			}
			if h.ParentID != parent {
				t.Fatalf("%s height %d: parent %s, want %s", name, h.Height, h.ParentID, parent)
			}
			if i > 0 && h.Timestamp <= parentTime {
				t.Fatalf("%s height %d: timestamp %d, not after its parent's %d", name, h.Height, h.Timestamp, parentTime)
			}
			parent, parentTime = h.ID, h.Timestamp
		}
		runs[name] = hs
	}
	short, long := runs["bytes_mainnet_1_500_v1.json"], runs["bytes_mainnet_1_2000_v1.json"]
	for i := range short {
		if short[i] != long[i] {
			t.Fatalf("height %d differs between the 1-500 and the 1-2000 files", i+1)
		}
	}
}

func TestParseHeaderRejects(t *testing.T) {
	b := unhex(t, mustFirstRawHeader(t))
	for _, c := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"truncated", b[:len(b)-1]},
		{"trailing byte", append(append([]byte{}, b...), 0)},
		{"version 0", append([]byte{0}, b[1:]...)},
	} {
		if _, err := ParseHeader(c.in); !errors.Is(err, ErrBytes) {
			t.Errorf("%s: got %v, want ErrBytes", c.name, err)
		}
	}
}

func mustFirstRawHeader(t *testing.T) string {
	var hs []rawHeader
	fixtures.JSON(t, &hs, "headers", "bytes_mainnet_v2_curated.json")
	return hs[0].Bytes
}

func TestPoWVectors(t *testing.T) {
	var v struct {
		Valid struct {
			Header   Header
			Expected struct {
				Msg string `json:"msg_blake2b256_of_header_without_pow"`
			}
		} `json:"valid_synthetic_614400"`
		Invalid struct {
			Header Header
		} `json:"invalid_testnet_2870"`
	}
	fixtures.JSON(t, &v, "headers", "pow_vectors_from_ergo_tests.json")
	if got := Hash(v.Valid.Header.BytesWithoutPoW()).String(); got != v.Valid.Expected.Msg {
		t.Fatalf("msg %s, want %s", got, v.Valid.Expected.Msg)
	}
	if st, err := v.Valid.Header.CheckPoW(); st != PoWOK || err != nil {
		t.Fatalf("valid vector: %s, %v", st, err)
	}
	if st, err := v.Invalid.Header.CheckPoW(); st != PoWBad || !errors.Is(err, ErrPoW) {
		t.Fatalf("invalid vector: %s, %v", st, err)
	}
}

type txWithBytes struct {
	Height      int             `json:"height"`
	ID          string          `json:"id"`
	TxID        string          `json:"txId"`
	Bytes       string          `json:"bytes"`
	BytesToSign string          `json:"bytesToSign"`
	ScalaJSON   json.RawMessage `json:"scalaJson"`
	Hex         string          `json:"hex"`
	JSON        json.RawMessage `json:"json"`
}

func TestFixtureTransactions(t *testing.T) {
	var fromJSON, fromBytes int
	for _, f := range fixtures.Glob(t, "transactions/*.json") {
		var txs []txWithBytes
		fixtures.JSON(t, &txs, "transactions", filepath.Base(f))
		for i, c := range txs {
			signed := unhex(t, c.Bytes+c.Hex)
			parsed, err := ParseTransaction(signed)
			if err != nil {
				t.Fatalf("%s[%d]: parse bytes: %v", filepath.Base(f), i, err)
			}
			wantID := c.ID + c.TxID
			if c.BytesToSign != "" {
				if got := hex.EncodeToString(parsed.BytesToSign()); got != c.BytesToSign {
					t.Fatalf("%s[%d]: bytes to sign differ", filepath.Base(f), i)
				}
			}
			if !bytes.Equal(parsed.Bytes(), signed) {
				t.Fatalf("%s[%d]: parsed transaction re-serializes differently", filepath.Base(f), i)
			}
			doc := c.ScalaJSON
			if doc == nil {
				doc = c.JSON
			}
			if doc != nil {
				var tx Transaction
				if err := json.Unmarshal(doc, &tx); err != nil {
					t.Fatalf("%s[%d]: decode JSON: %v", filepath.Base(f), i, err)
				}
				if err := tx.CheckIDs(); err != nil {
					t.Fatalf("%s[%d]: %v", filepath.Base(f), i, err)
				}
				if !bytes.Equal(tx.Bytes(), signed) {
					t.Fatalf("%s[%d]: JSON serializes differently from the given bytes", filepath.Base(f), i)
				}
				if wantID == "" {
					wantID = tx.ID.String()
				}
				fromJSON++
			}
			if parsed.ID.String() != wantID {
				t.Fatalf("%s[%d]: id %s, want %s", filepath.Base(f), i, parsed.ID, wantID)
			}
			fromBytes++
		}
	}
	t.Logf("%d transactions from bytes, %d of them also from JSON", fromBytes, fromJSON)
	if fromBytes != 578 || fromJSON != 230 {
		t.Errorf("checked %d transactions from bytes and %d from JSON, want 578 and 230", fromBytes, fromJSON)
	}
}

// TestFixtureBlockSections checks blocks given as transaction bytes and
// extension fields: transaction ids, extension digests, and the
// transactions root wherever the fixtures also hold the header.
func TestFixtureBlockSections(t *testing.T) {
	headers := headerFixtures(t)
	for _, f := range fixtures.Glob(t, "headers/bytes_*.json") {
		var hs []rawHeader
		fixtures.JSON(t, &hs, "headers", filepath.Base(f))
		for _, rh := range hs {
			h, err := ParseHeader(unhex(t, rh.Bytes))
			if err != nil {
				t.Fatal(err)
			}
			headers[h.ID] = h
		}
	}
	var blocks, roots, exts int
	for _, f := range fixtures.Glob(t, "blocks/sections/*.json") {
		var secs []struct {
			HeaderID     string `json:"headerId"`
			Height       uint32 `json:"height"`
			Digest       string `json:"digest"`
			Fields       [][2]string
			Transactions []struct{ ID, Bytes string }
			Extension    *struct {
				Digest string
				Fields [][2]string
			}
		}
		fixtures.JSON(t, &secs, "blocks", "sections", filepath.Base(f))
		for _, s := range secs {
			headerID, err := ParseDigest(s.HeaderID)
			if err != nil {
				t.Fatal(err)
			}
			fields, digest := s.Fields, s.Digest
			if s.Extension != nil {
				fields, digest = s.Extension.Fields, s.Extension.Digest
			}
			ext := make([]ExtensionField, len(fields))
			for i, kv := range fields {
				copy(ext[i].Key[:], unhex(t, kv[0]))
				ext[i].Value = unhex(t, kv[1])
			}
			if got := ExtensionRoot(ext).String(); got != digest {
				t.Fatalf("height %d: extension root %s, want %s", s.Height, got, digest)
			}
			exts++
			if len(s.Transactions) == 0 {
				continue
			}
			txs := make([]Transaction, len(s.Transactions))
			for i, tb := range s.Transactions {
				tx, err := ParseTransaction(unhex(t, tb.Bytes))
				if err != nil {
					t.Fatalf("height %d tx %d: %v", s.Height, i, err)
				}
				if tx.ID.String() != tb.ID {
					t.Fatalf("height %d tx %d: id %s, want %s", s.Height, i, tx.ID, tb.ID)
				}
				txs[i] = *tx
			}
			blocks++
			if h, ok := headers[headerID]; ok {
				if got := TransactionsRoot(h.Version, txs); got != h.TransactionsRoot {
					t.Fatalf("height %d: transactions root %s, header states %s", s.Height, got, h.TransactionsRoot)
				}
				if got := ExtensionRoot(ext); got != h.ExtensionRoot {
					t.Fatalf("height %d: extension root differs from the header's", s.Height)
				}
				roots++
			}
		}
	}
	t.Logf("%d blocks from sections, %d extension roots, %d transactions roots against their headers", blocks, exts, roots)
	// With the 12 full blocks: the 38 transactions roots and 45 extension
	// digests that SOURCES.md counts.
	if blocks != 32 || exts != 33 || roots != 26 {
		t.Errorf("checked %d section blocks, %d extension roots, %d transactions roots; want 32, 33, 26", blocks, exts, roots)
	}
}

// boxFixtures collects every node-JSON box in the positive box fixtures.
func boxFixtures(t *testing.T) []json.RawMessage {
	var out []json.RawMessage
	for _, name := range []string{"input_boxes_mainnet_700000_700010.json", "genesis_boxes_mainnet.json", "appkit_boxes_mainnet.json"} {
		var bs []json.RawMessage
		fixtures.JSON(t, &bs, "boxes", name)
		out = append(out, bs...)
	}
	var fleet map[string]json.RawMessage
	fixtures.JSON(t, &fleet, "boxes", "fleet_boxes_mainnet.json")
	for _, v := range fleet {
		if v[0] == '[' {
			var bs []json.RawMessage
			if err := json.Unmarshal(v, &bs); err != nil {
				t.Fatal(err)
			}
			out = append(out, bs...)
		} else {
			out = append(out, v)
		}
	}
	return out
}

func TestFixtureBoxes(t *testing.T) {
	raws := boxFixtures(t)
	for i, raw := range raws {
		var b Box
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatalf("box %d: %v", i, err)
		}
		if !b.HasBoxID {
			t.Fatalf("box %d: no id", i)
		}
		if err := b.CheckID(); err != nil {
			t.Fatalf("box %d: %v", i, err)
		}
	}
	var pairs []struct {
		JSON json.RawMessage
		Hex  string
	}
	fixtures.JSON(t, &pairs, "boxes", "fleet_box_json_and_hex_mainnet.json")
	for i, p := range pairs {
		var b Box
		if err := json.Unmarshal(p.JSON, &b); err != nil {
			t.Fatalf("pair %d: %v", i, err)
		}
		w := wire.NewWriter(nil)
		b.Box.Write(w)
		if hex.EncodeToString(w.Bytes()) != p.Hex {
			t.Fatalf("pair %d: serialization differs from the given hex", i)
		}
		if err := b.CheckID(); err != nil {
			t.Fatalf("pair %d: %v", i, err)
		}
	}
	var byteBoxes int
	for _, name := range []string{"bytes_mainnet_1759500.json", "bytes_mainnet_recent.json"} {
		var bs []struct{ BoxID, Bytes, ErgoTree string }
		fixtures.JSON(t, &bs, "boxes", name)
		for _, c := range bs {
			sb, err := sigma.ReadBox(wire.NewReader(unhex(t, c.Bytes)))
			if err != nil {
				t.Fatalf("%s: %v", c.BoxID, err)
			}
			if got := Digest(sb.ID()).String(); got != c.BoxID {
				t.Fatalf("box id %s, want %s", got, c.BoxID)
			}
			byteBoxes++
		}
	}
	t.Logf("%d JSON boxes, %d JSON/hex pairs, %d boxes from bytes verified", len(raws), len(pairs), byteBoxes)
}

func TestNegativeFixtureBoxesRejected(t *testing.T) {
	var bs []json.RawMessage
	fixtures.JSON(t, &bs, "boxes", "NEGATIVE_fleet_invalid_boxes.json")
	if len(bs) == 0 {
		t.Fatal("no negative boxes")
	}
	for i, raw := range bs {
		var b Box
		err := json.Unmarshal(raw, &b)
		if err == nil {
			err = b.CheckID()
		}
		if err == nil {
			t.Errorf("negative box %d verified", i)
			continue
		}
		if !errors.Is(err, ErrIDMismatch) && !errors.Is(err, ErrAmount) && !errors.Is(err, ErrErgoTree) {
			t.Errorf("negative box %d: unexpected error %v", i, err)
		}
	}
}

func TestFixtureNodeInfo(t *testing.T) {
	var v6 NodeInfo
	fixtures.JSON(t, &v6, "api", "info_mainnet_node6.0.x.json")
	if v6.FullHeight != 1772597 || v6.Network != "mainnet" {
		t.Fatalf("decoded %+v", v6)
	}
	// 2740276953253305909248 exceeds 64 bits: it must come through exactly.
	if v6.HeadersScore.String() != "2740276953253305909248" || v6.FullBlocksScore.String() != "2740276953253305909248" {
		t.Fatalf("scores %s / %s", v6.HeadersScore, v6.FullBlocksScore)
	}
	if v6.BestFullHeaderID.String() != "183b43b32e7fa87fb5d5572f3e29c659474f923f5d23764d039b3a6c34b8269a" {
		t.Fatalf("best full header %s", v6.BestFullHeaderID)
	}
	var v3 NodeInfo
	fixtures.JSON(t, &v3, "api", "info_mainnet_node3.1.4.json")
	if v3.FullHeight == 0 || v3.HeadersScore == nil {
		t.Fatalf("node 3.1.4 info decoded as %+v", v3)
	}
	var at []Digest
	fixtures.JSON(t, &at, "api", "blocks_at_700000.json")
	if len(at) != 1 || at[0].String() != "54dd49ffbb32d35d8d6c41f3b427c68ac3cec91f6718fb7a50ec0d18d36e982a" {
		t.Fatalf("blocks at 700000: %v", at)
	}
	var none []Digest
	fixtures.JSON(t, &none, "api", "blocks_at_99999999_empty.json")
	if none == nil || len(none) != 0 {
		t.Fatalf("blocks above the tip: %v", none)
	}
}

// TestJSONRoundTrip renders every fixture block in the node's format and
// decodes it again: the result verifies and renders identically.
func TestJSONRoundTrip(t *testing.T) {
	for _, f := range fixtures.Glob(t, "blocks/*.json") {
		b, err := DecodeBlock(fixtures.Read(t, "blocks", filepath.Base(f)))
		if err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeBlock(out)
		if err != nil {
			t.Fatalf("%s: decoding the rendering: %v", filepath.Base(f), err)
		}
		if err := again.Verify(); err != nil {
			t.Fatalf("%s: rendering does not verify: %v", filepath.Base(f), err)
		}
		if !again.Header.HasSectionIDs || again.Header.Difficulty == nil {
			t.Fatalf("%s: rendering lacks section ids or difficulty", filepath.Base(f))
		}
		if out2, _ := json.Marshal(again); !bytes.Equal(out, out2) {
			t.Fatalf("%s: rendering is not stable", filepath.Base(f))
		}
		// Derived ids are rendered where none were given.
		b.Header.HasID = false
		for i := range b.Transactions {
			b.Transactions[i].HasID = false
			for j := range b.Transactions[i].Outputs {
				b.Transactions[i].Outputs[j].HasBoxID = false
			}
		}
		if out3, _ := json.Marshal(b); !bytes.Equal(out, out3) {
			t.Fatalf("%s: derived ids render differently from the given ones", filepath.Base(f))
		}
	}
}
