package publish

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
)

// The CloudEvents attributes every event carries (doc.go lists the schema).
const (
	SpecVersion     = "1.0"
	DataContentType = "application/json"
	// DefaultSource is the CloudEvents source when the Encoder has none.
	DefaultSource = "urn:async-emission-auditor"
	// TimeLayout renders event times: RFC 3339, UTC, to the millisecond
	// (block header timestamps are milliseconds).
	TimeLayout = "2006-01-02T15:04:05.000Z07:00"
)

// The CloudEvents types of the four events.
const (
	TypeVerdict     = "org.ergoplatform.auditor.verdict.v1"
	TypeRetracted   = "org.ergoplatform.auditor.retracted.v1"
	TypeRollback    = "org.ergoplatform.auditor.chain.rollback.v1"
	TypeReportReady = "org.ergoplatform.auditor.report.ready.v1"
)

// Event is the envelope of every event: CloudEvents 1.0 in its JSON
// format, with the event's own fields in Data.
type Event struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"`
	Subject         string `json:"subject,omitempty"`
	Time            string `json:"time"`
	DataContentType string `json:"datacontenttype"`
	// Publisher and LeaseEpoch are extension attributes that only an
	// auditor running with HA sets (Stamp): its id and the epoch of the
	// lease under which it published the event. Absent without HA.
	Publisher  string          `json:"publisher,omitempty"`
	LeaseEpoch uint64          `json:"leaseepoch,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// VerdictData is the data of a verdict event: the verdict, the box it is
// about and where the chain holds it.
type VerdictData struct {
	Protocol         string       `json:"protocol"`
	Kind             string       `json:"kind"`    // "created", or "spent" for emission.escaped
	Class            string       `json:"class"`   // state, funnel, emission, emitted or participant
	Verdict          string       `json:"verdict"` // "verified" or "invalid"
	Reasons          []ReasonData `json:"reasons"` // empty when verified
	Box              BoxData      `json:"box"`
	TransactionID    ergo.Digest  `json:"transaction_id"` // created the box (created) or spent it (spent)
	TransactionIndex int          `json:"transaction_index"`
	BlockID          ergo.Digest  `json:"block_id"`
	Height           uint32       `json:"height"`
	LineageID        *ergo.Digest `json:"lineage_id"` // the async token id of the box's lineage, or null
	// Action is the kind of async action an emitted box is the result of
	// (its protocol's [[protocol.action]] whose emitted_template it has);
	// absent for a result of no action and for the other classes.
	Action string `json:"action,omitempty"`
}

// ReasonData is one reason code with its sentence.
type ReasonData struct {
	Code     string `json:"code"`
	Sentence string `json:"sentence"`
}

// BoxData is a box as events show it. Amounts are exact JSON integers.
type BoxData struct {
	ID             ergo.Digest                `json:"id"`
	Value          uint64                     `json:"value"`
	Tokens         []TokenData                `json:"tokens"`
	Registers      map[string]json.RawMessage `json:"registers"` // "R4"…: {"serializedValue","type","value"} or {"serializedValue","error"}
	ErgoTree       Hex                        `json:"ergo_tree"`
	Address        string                     `json:"address"` // "" when the tree has no address
	CreationHeight uint32                     `json:"creation_height"`
	TransactionID  ergo.Digest                `json:"transaction_id"` // the transaction that created the box
	Index          uint16                     `json:"index"`          // its output index there
	// TemplateHash is the tree's template hash in both conventions
	// (PROTOCOL.md §2), to compare with a protocol's template keys; absent
	// for a tree whose constants do not parse.
	TemplateHash *rules.TemplateHashes `json:"template_hash,omitempty"`
}

// TokenData is an amount of a token.
type TokenData struct {
	ID     ergo.Digest `json:"id"`
	Amount uint64      `json:"amount"`
}

// RetractionData is the data of a retracted event: the retracted verdict's
// data, the id of the event it retracts, and why: the block whose
// disconnection retracts it, or the rescan that judges its protocol again.
type RetractionData struct {
	VerdictData
	Retracts          string      `json:"retracts"`
	DisconnectedBlock *BlockData  `json:"disconnected_block,omitempty"`
	Rescan            *RescanData `json:"rescan,omitempty"`
}

// RescanData is the rescan that retracts a verdict (auditor rescan): its
// protocol is judged again from FromHeight, its new verdicts published
// under message ids of generation Generation.
type RescanData struct {
	Protocol   string `json:"protocol"`
	FromHeight uint32 `json:"from_height"`
	Generation int    `json:"generation"`
}

// BlockData names a block, with how many times it has been connected.
type BlockData struct {
	ID       ergo.Digest `json:"id"`
	Height   uint32      `json:"height"`
	Connects int         `json:"connects"`
}

// RollbackData is the data of a chain.rollback event, one for each block a
// fork disconnects.
type RollbackData struct {
	ForkID     ergo.Digest `json:"fork_id"` // the common ancestor: the last block both branches hold
	ForkHeight uint32      `json:"fork_height"`
	Depth      int         `json:"depth"` // blocks disconnected down to the fork point
	OldTip     ergo.Digest `json:"old_tip"`
	OldHeight  uint32      `json:"old_height"`
	NewTip     ergo.Digest `json:"new_tip"`
	NewHeight  uint32      `json:"new_height"`
	Block      BlockData   `json:"block"` // the disconnected block
}

// ReportData is the data of a report.ready event.
type ReportData struct {
	Name    string          `json:"name"`
	Time    string          `json:"time"`
	Summary json.RawMessage `json:"summary"`
	Files   []string        `json:"files"`
}

// DecodeEvent decodes and checks an event's envelope: CloudEvents 1.0,
// an id, a source, a type and a time in RFC 3339, and a JSON object as
// data. It does not decode Data: see the Verdict, Retraction, Rollback
// and Report methods. Errors wrap ErrDecode.
func DecodeEvent(b []byte) (*Event, error) {
	var ev Event
	if err := strictUnmarshal(b, &ev); err != nil {
		return nil, newError(ErrDecode, "decode event", err)
	}
	bad := func(format string, args ...any) (*Event, error) {
		return nil, errorf(ErrDecode, "decode event", format, args...)
	}
	switch {
	case ev.SpecVersion != SpecVersion:
		return bad("specversion %q, want %q", ev.SpecVersion, SpecVersion)
	case ev.ID == "":
		return bad("no id")
	case ev.Source == "":
		return bad("no source")
	case ev.Type == "":
		return bad("no type")
	case ev.DataContentType != DataContentType:
		return bad("datacontenttype %q, want %q", ev.DataContentType, DataContentType)
	}
	if _, err := time.Parse(time.RFC3339Nano, ev.Time); err != nil {
		return bad("time %q is not RFC 3339", ev.Time)
	}
	if d := bytes.TrimLeft(ev.Data, " \t\r\n"); len(d) == 0 || d[0] != '{' {
		return bad("data is not a JSON object")
	}
	return &ev, nil
}

// At is the event's time.
func (e *Event) At() (time.Time, error) { return time.Parse(time.RFC3339Nano, e.Time) }

// Verdict decodes the data of a verdict event.
func (e *Event) Verdict() (*VerdictData, error) {
	var d VerdictData
	return &d, e.decodeData(TypeVerdict, &d)
}

// Retraction decodes the data of a retracted event.
func (e *Event) Retraction() (*RetractionData, error) {
	var d RetractionData
	return &d, e.decodeData(TypeRetracted, &d)
}

// Rollback decodes the data of a chain.rollback event.
func (e *Event) Rollback() (*RollbackData, error) {
	var d RollbackData
	return &d, e.decodeData(TypeRollback, &d)
}

// Report decodes the data of a report.ready event.
func (e *Event) Report() (*ReportData, error) {
	var d ReportData
	return &d, e.decodeData(TypeReportReady, &d)
}

func (e *Event) decodeData(typ string, v any) error {
	if e.Type != typ {
		return errorf(ErrDecode, "decode "+typ, "event %s is of type %q", e.ID, e.Type)
	}
	if err := strictUnmarshal(e.Data, v); err != nil {
		return newError(ErrDecode, "decode "+typ+" "+e.ID, err)
	}
	return nil
}

// strictUnmarshal decodes one JSON value, numbers as they are (a uint64
// field refuses a fraction or an exponent), and refuses trailing data.
// Unknown fields are allowed: a later minor version may add some.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) > 0 {
		return fmt.Errorf("data after the JSON value at offset %d", dec.InputOffset())
	}
	return nil
}

// Hex is a byte string that renders as lowercase hex in JSON.
type Hex []byte

// MarshalText renders the bytes as hex.
func (h Hex) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(out, h)
	return out, nil
}

// UnmarshalText parses hex.
func (h *Hex) UnmarshalText(b []byte) error {
	out := make([]byte, hex.DecodedLen(len(b)))
	if _, err := hex.Decode(out, b); err != nil {
		return err
	}
	*h = out
	return nil
}
