package ergo

import (
	"encoding/json"
	"errors"
	"fmt"

	segjson "github.com/segmentio/encoding/json"
)

// decodeJSON is the JSON decoder: segmentio/encoding's, a drop-in for
// encoding/json (same semantics and error types) that decodes and verifies
// node blocks about twice as fast; BenchmarkDecoders measures the two. It is
// a variable only so that benchmark can swap it.
var decodeJSON = segjson.Unmarshal

// unmarshal is the JSON decoder behind every UnmarshalJSON of this package.
// It reports syntax and shape
// errors as *Error of kind ErrJSON, with the byte offset where the decoder
// gives one.
func unmarshal(data []byte, v any) error {
	err := decodeJSON(data, v)
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &Error{Kind: ErrJSON, Detail: fmt.Sprintf("at byte %d", syn.Offset), Err: err}
	case errors.As(err, &typ):
		return &Error{Kind: ErrJSON, Field: typ.Field, Detail: fmt.Sprintf("at byte %d: expected %s, got JSON %s", typ.Offset, typ.Type, typ.Value)}
	}
	return &Error{Kind: ErrJSON, Err: err}
}
