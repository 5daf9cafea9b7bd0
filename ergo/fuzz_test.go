package ergo

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/ergo/wire"
	"github.com/async-emission/auditor/internal/fixtures"
)

// The fuzz targets of the node-JSON and byte decoders. Each is seeded at run
// time from the fixtures and from testdata/fuzz; each asserts no panic, and
// that what decodes renders and decodes again to the same thing.
//
//	go test -run '^$' -fuzz FuzzDecodeBlock -fuzztime 60s ./ergo/

func seedJSON(f *testing.F, pattern string, pick func(raw json.RawMessage) []json.RawMessage) {
	for _, name := range fixtures.Glob(f, pattern) {
		var raw json.RawMessage
		fixtures.JSON(f, &raw, name)
		for _, v := range pick(raw) {
			f.Add([]byte(v))
		}
	}
}

func elements(raw json.RawMessage) []json.RawMessage {
	var vs []json.RawMessage
	if json.Unmarshal(raw, &vs) != nil {
		return []json.RawMessage{raw}
	}
	return vs
}

// bytesFields decodes the hex "bytes" field of each element of an array.
func bytesFields(r json.RawMessage) []json.RawMessage {
	var vs []struct{ Bytes string }
	json.Unmarshal(r, &vs)
	var out []json.RawMessage
	for _, v := range vs {
		b, _ := hex.DecodeString(v.Bytes)
		out = append(out, b)
	}
	return out
}

func FuzzDecodeBlock(f *testing.F) {
	seedJSON(f, "blocks/mainnet_70000[0-2].json", func(r json.RawMessage) []json.RawMessage { return []json.RawMessage{r} })
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBlock(data)
		if err != nil {
			return
		}
		_ = b.Verify()
		out := b.AppendJSON(nil)
		again, err := DecodeBlock(out)
		if err != nil {
			t.Fatalf("rendering of a decoded block does not decode: %v\n%s", err, out)
		}
		if !bytes.Equal(again.AppendJSON(nil), out) {
			t.Fatal("rendering is not stable")
		}
	})
}

func FuzzDecodeTransaction(f *testing.F) {
	seedJSON(f, "transactions/fleet_json_and_hex_mainnet_1507633.json", func(r json.RawMessage) []json.RawMessage {
		var vs []struct{ JSON json.RawMessage }
		json.Unmarshal(r, &vs)
		var out []json.RawMessage
		for _, v := range vs {
			out = append(out, v.JSON)
		}
		return out
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		var tx Transaction
		if tx.UnmarshalJSON(data) != nil {
			return
		}
		_ = tx.CheckIDs()
		signed := tx.Bytes()
		if signed == nil {
			return // beyond the format's limits: no serialization, documented
		}
		// Decoding checks that each ErgoTree is the tree a parser of the
		// serialization reads, so the serialization reads back whole.
		parsed, err := ParseTransaction(signed)
		if err != nil {
			t.Fatalf("serialization of a decoded transaction does not parse: %v", err)
		}
		if parsed.ComputeID() != tx.ComputeID() || !bytes.Equal(parsed.Bytes(), signed) {
			t.Fatal("bytes round trip changed the transaction")
		}
	})
}

func FuzzDecodeBox(f *testing.F) {
	seedJSON(f, "boxes/*_mainnet*.json", elements)
	f.Fuzz(func(t *testing.T, data []byte) {
		var b Box
		if b.UnmarshalJSON(data) != nil {
			return
		}
		_ = b.CheckID()
		var again Box
		if err := again.UnmarshalJSON(b.AppendJSON(nil)); err != nil {
			t.Fatalf("rendering of a decoded box does not decode: %v", err)
		}
		if again.ComputeID() != b.ComputeID() {
			t.Fatal("render and decode changed the box")
		}
		// Its serialization parses back to the same box, as in
		// FuzzDecodeTransaction: only a tree that parses can be delimited.
		if _, err := sigma.ParseErgoTree(b.ErgoTree); err != nil {
			return
		}
		w := wire.NewWriter(nil)
		if b.Box.Write(w) != nil {
			return // beyond the format's limits
		}
		parsed, err := sigma.ParseBox(w.Bytes())
		if err != nil {
			t.Fatalf("serialization of a decoded box does not parse: %v", err)
		}
		if parsed.ID() != b.Box.ID() {
			t.Fatal("bytes round trip changed the box")
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	seedJSON(f, "headers/chainslice_mainnet_417692_417791_v1.json", func(r json.RawMessage) []json.RawMessage { return elements(r)[:3] })
	seedJSON(f, "headers/chainslice_mainnet_1750000_1750049_v4.json", func(r json.RawMessage) []json.RawMessage { return elements(r)[:3] })
	f.Fuzz(func(t *testing.T, data []byte) {
		var h Header
		if h.UnmarshalJSON(data) != nil {
			return
		}
		_ = h.CheckIDs()
		_, _ = h.CheckPoW()
		b := h.Bytes()
		parsed, err := ParseHeader(b)
		if err != nil {
			t.Fatalf("serialization of a decoded header does not parse: %v", err)
		}
		if !bytes.Equal(parsed.Bytes(), b) {
			t.Fatal("bytes round trip changed the header")
		}
	})
}

func FuzzParseTransaction(f *testing.F) {
	seedJSON(f, "transactions/bytes_bytesToSign_mainnet_700000.json", bytesFields)
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, err := ParseTransaction(data)
		if err != nil {
			return
		}
		// A sized tree whose body fails once past its declared size is
		// delimited by the fields after it, as in the reference: whether
		// it parses then depends on how they are written. Only trees that
		// are one tree alone are delimited the same in any bytes.
		for i := range tx.Outputs {
			if sigma.CheckErgoTree(tx.Outputs[i].ErgoTree) != nil {
				return
			}
		}
		// Reading is lenient (redundant VLQ groups), so compare what the
		// canonical bytes parse to, not the input itself.
		again, err := ParseTransaction(tx.Bytes())
		if err != nil || again.ComputeID() != tx.ComputeID() {
			t.Fatalf("canonical bytes: %v", err)
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	seedJSON(f, "headers/bytes_mainnet_v2_curated.json", bytesFields)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeader(data)
		if err != nil {
			return
		}
		_, _ = h.CheckPoW()
		if again, err := ParseHeader(h.Bytes()); err != nil || again.ComputeID() != h.ComputeID() {
			t.Fatalf("canonical bytes: %v", err)
		}
	})
}
