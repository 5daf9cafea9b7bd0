package ergo

import (
	"encoding/json"
	"testing"

	segjson "github.com/segmentio/encoding/json"

	"github.com/async-emission/auditor/internal/fixtures"
)

// BenchmarkDecoders compares JSON decoders on the largest fixture block,
// decoding and verifying it. goccy/go-json, json-iterator and sonic were
// measured too when the decoder was chosen (README, Performance); only the
// standard library and the chosen decoder are kept here.
//
//	go test -run '^$' -bench Decoders -benchmem -count 5 ./ergo/
func BenchmarkDecoders(b *testing.B) {
	data := fixtures.Read(b, "blocks", "mainnet_1000001.json")
	for _, d := range []struct {
		name string
		fn   func([]byte, any) error
	}{
		{"encoding-json", json.Unmarshal},
		{"segmentio", segjson.Unmarshal},
	} {
		b.Run(d.name, func(b *testing.B) {
			decodeJSON = d.fn
			defer func() { decodeJSON = json.Unmarshal }()
			benchDecodeVerify(b, data)
		})
	}
}
