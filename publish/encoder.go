package publish

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/address"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/rules"
)

// BlockRef is the block an event comes from.
type BlockRef struct {
	ID        ergo.Digest
	Height    uint32
	Timestamp uint64 // the header's timestamp, Unix milliseconds: the event's time
	// Connects is how many times this block has been connected (1 the
	// first time). It is part of every message id the block makes, so that
	// a block connected again after a disconnect publishes anew while a
	// republish of the same connection is a duplicate JetStream drops.
	Connects int
	// Generation, for a verdict, is its protocol's generation: how many
	// times its history was begun again (auditor rescan). A verdict of a
	// generation above 0 has it in its message id, so that a verdict
	// judged again publishes anew.
	Generation int
}

// Rollback describes one block disconnected by a fork.
type Rollback struct {
	ForkID     ergo.Digest // the common ancestor of both branches
	ForkHeight uint32
	Depth      int // blocks disconnected down to the fork point
	OldTip     ergo.Digest
	NewTip     ergo.Digest
	OldHeight  uint32
	NewHeight  uint32
	Block      BlockRef // the disconnected block
}

// Report is a finished scheduled report.
type Report struct {
	Name    string    // the report's kind, e.g. "conservation": [a-z0-9_-]*, may be empty
	Time    time.Time // when it was made: the event's time and part of its id
	Summary any       // any value encoding/json marshals: a json.RawMessage, a map…
	Files   []string  // the files written, as paths readers can open
}

// Encoder builds the events (doc.go has the schema). Every payload is a
// pure function of the arguments, so that an event rebuilt after a crash
// is byte for byte the one the database first wrote. The zero Encoder uses
// DefaultPrefix, DefaultSource and mainnet addresses.
type Encoder struct {
	Prefix  string          // first subject tokens; default "auditor"
	Source  string          // the CloudEvents source; default DefaultSource
	Network address.Network // for box addresses; zero is mainnet
}

// Verdict builds the event of a verdict made by block b about box, which
// must be the verdict's box: published on
// <prefix>.<protocol>.<verified|invalid>.<class>, with message id
// <block>-<box>-<protocol>-<kind>-<connects>, followed by -g<generation>
// for a generation above 0.
func (e *Encoder) Verdict(v *rules.Verdict, box *ergo.Box, b BlockRef) (Message, error) {
	const op = "encode verdict"
	if v == nil || box == nil {
		return Message{}, errorf(ErrEncode, op, "nil verdict or box")
	}
	if err := checkVerdictNames(v.Protocol, string(v.Kind), string(v.Class)); err != nil {
		return Message{}, newError(ErrEncode, op, err)
	}
	boxID := box.ComputeID()
	if boxID != v.BoxID {
		return Message{}, errorf(ErrEncode, op, "box %s is not the verdict's box %s", boxID, v.BoxID)
	}
	boxData, err := e.boxData(box, boxID)
	if err != nil {
		return Message{}, newError(ErrEncode, op+" for box "+v.BoxID.String(), err)
	}
	data := VerdictData{
		Protocol:         v.Protocol,
		Kind:             string(v.Kind),
		Class:            string(v.Class),
		Verdict:          v.Status(),
		Reasons:          make([]ReasonData, 0, len(v.Reasons)),
		Box:              boxData,
		TransactionID:    v.TxID,
		TransactionIndex: v.TxIndex,
		BlockID:          b.ID,
		Height:           b.Height,
		LineageID:        v.Lineage,
		Action:           v.Action,
	}
	for _, r := range v.Reasons {
		data.Reasons = append(data.Reasons, ReasonData{Code: string(r), Sentence: r.Sentence()})
	}
	if b.Generation < 0 {
		return Message{}, errorf(ErrEncode, op, "generation %d is negative", b.Generation)
	}
	id := VerdictID(b.ID, v.BoxID, v.Protocol, string(v.Kind), b.Connects, b.Generation)
	subject := e.prefix() + "." + v.Protocol + "." + v.Status() + "." + string(v.Class)
	return e.message(op, b, id, subject, TypeVerdict, v.BoxID.String(), data)
}

// Retraction builds the retracted event for original, a verdict event that
// block b wrote, now disconnected: published on
// <prefix>.<protocol>.retracted.<class>, with message id
// <block>-<box>-<protocol>-<kind>-retracted-<connects> (and the original's
// -g<generation>, if it has one). Its data is the original's with
// "retracts" (the original's id) and "disconnected_block".
func (e *Encoder) Retraction(original Message, b BlockRef) (Message, error) {
	return e.retraction("encode retraction", original, b, nil)
}

// Rescinded builds the retracted event for original, a verdict event that
// block b wrote, retracted by rescan r: as Retraction's, with "rescan" in
// place of "disconnected_block".
func (e *Encoder) Rescinded(original Message, b BlockRef, r RescanData) (Message, error) {
	if !validName(r.Protocol) {
		return Message{}, errorf(ErrEncode, "encode rescan retraction", "protocol name %q is not [a-z0-9_-]+", r.Protocol)
	}
	return e.retraction("encode rescan retraction", original, b, &r)
}

// retraction builds the retraction of original by a disconnect of b (a nil
// r) or by rescan r.
func (e *Encoder) retraction(op string, original Message, b BlockRef, r *RescanData) (Message, error) {
	ev, err := DecodeEvent(original.Payload)
	if err != nil {
		return Message{}, newError(ErrEncode, op+" of "+original.ID, err)
	}
	if ev.ID != original.ID {
		return Message{}, errorf(ErrEncode, op+" of "+original.ID, "the payload is event %s", ev.ID)
	}
	vd, err := ev.Verdict()
	if err != nil {
		return Message{}, newError(ErrEncode, op+" of "+original.ID, err)
	}
	if vd.BlockID != b.ID || vd.Height != b.Height {
		return Message{}, errorf(ErrEncode, op+" of "+original.ID,
			"the verdict is from block %s at %d, not the disconnected block %s at %d", vd.BlockID, vd.Height, b.ID, b.Height)
	}
	if err := checkVerdictNames(vd.Protocol, vd.Kind, vd.Class); err != nil {
		return Message{}, newError(ErrEncode, op+" of "+original.ID, err)
	}
	data := RetractionData{VerdictData: *vd, Retracts: ev.ID, Rescan: r}
	if r == nil {
		data.DisconnectedBlock = &BlockData{ID: b.ID, Height: b.Height, Connects: b.Connects}
	} else if r.Protocol != vd.Protocol {
		return Message{}, errorf(ErrEncode, op+" of "+original.ID, "the verdict is of protocol %s, the rescan of %s", vd.Protocol, r.Protocol)
	}
	// An event is retracted once (by a disconnect or a rescan), so its
	// retraction's id follows from its own: it keeps its generation.
	id := RetractionID(b.ID, vd.Box.ID, vd.Protocol, vd.Kind, b.Connects, IDGeneration(original.ID))
	subject := e.prefix() + "." + vd.Protocol + ".retracted." + vd.Class
	return e.message(op, b, id, subject, TypeRetracted, vd.Box.ID.String(), data)
}

// Rollback builds the chain.rollback event for one disconnected block:
// published on <prefix>.chain.rollback, with message id
// <block>-rollback-<connects>.
func (e *Encoder) Rollback(r Rollback) (Message, error) {
	const op = "encode rollback"
	data := RollbackData{
		ForkID: r.ForkID, ForkHeight: r.ForkHeight, Depth: r.Depth,
		OldTip: r.OldTip, OldHeight: r.OldHeight, NewTip: r.NewTip, NewHeight: r.NewHeight,
		Block: BlockData{ID: r.Block.ID, Height: r.Block.Height, Connects: r.Block.Connects},
	}
	id := RollbackID(r.Block.ID, r.Block.Connects)
	return e.message(op, r.Block, id, e.prefix()+".chain.rollback", TypeRollback, r.Block.ID.String(), data)
}

// ReportReady builds the report.ready event of a finished report:
// published on <prefix>.report.ready, with message id
// report-<name>-<unix ms> (report-<unix ms> without a name).
func (e *Encoder) ReportReady(r Report) (Message, error) {
	const op = "encode report.ready"
	if r.Time.IsZero() {
		return Message{}, errorf(ErrEncode, op, "no report time")
	}
	if r.Name != "" && !validName(r.Name) {
		return Message{}, errorf(ErrEncode, op, "report name %q may hold only a-z, 0-9, '_' and '-'", r.Name)
	}
	summary, err := json.Marshal(r.Summary)
	if err != nil {
		return Message{}, newError(ErrEncode, op, err)
	}
	t := r.Time.UTC().Format(TimeLayout)
	data := ReportData{Name: r.Name, Time: t, Summary: summary, Files: r.Files}
	if data.Files == nil {
		data.Files = []string{}
	}
	id := fmt.Sprintf("report-%d", r.Time.UnixMilli())
	if r.Name != "" {
		id = fmt.Sprintf("report-%s-%d", r.Name, r.Time.UnixMilli())
	}
	return e.envelope(op, id, e.prefix()+".report.ready", TypeReportReady, r.Name, t, data)
}

func (e *Encoder) prefix() string {
	if e.Prefix == "" {
		return DefaultPrefix
	}
	return e.Prefix
}

// message checks the block reference and wraps data in the envelope, timed
// by the block's header.
func (e *Encoder) message(op string, b BlockRef, id, subject, typ, ceSubject string, data any) (Message, error) {
	if b.Connects < 1 {
		return Message{}, errorf(ErrEncode, op, "block %s: connects is %d; a connected block has 1 or more", b.ID, b.Connects)
	}
	if b.Timestamp > math.MaxInt64 {
		return Message{}, errorf(ErrEncode, op, "block %s: timestamp %d out of range", b.ID, b.Timestamp)
	}
	t := time.UnixMilli(int64(b.Timestamp)).UTC().Format(TimeLayout)
	return e.envelope(op, id, subject, typ, ceSubject, t, data)
}

func (e *Encoder) envelope(op, id, subject, typ, ceSubject, t string, data any) (Message, error) {
	if err := CheckPrefix(e.prefix()); err != nil {
		return Message{}, newError(ErrEncode, op, err)
	}
	src := e.Source
	if src == "" {
		src = DefaultSource
	}
	payload, err := json.Marshal(outgoing{Event: Event{
		SpecVersion:     SpecVersion,
		ID:              id,
		Source:          src,
		Type:            typ,
		Subject:         ceSubject,
		Time:            t,
		DataContentType: DataContentType,
	}, Data: data})
	if err != nil {
		return Message{}, newError(ErrEncode, op+" "+id, err)
	}
	return Message{ID: id, Subject: subject, Payload: payload}, nil
}

// outgoing is an Event whose data is marshalled with it, in one pass: an
// Event's json.RawMessage would be marshalled first, then scanned again
// to be compacted (a third of the encoder's time). Its Data hides
// Event.Data, and comes last as there: the bytes are json.Marshal's of
// the Event holding the marshalled data (TestOutgoingIsTheEvent).
type outgoing struct {
	Event
	Data any `json:"data"`
}

// boxData renders a box, whose id is id: registers decoded where they decode, the address
// on e.Network ("" for a tree no address can carry).
func (e *Encoder) boxData(box *ergo.Box, id ergo.Digest) (BoxData, error) {
	d := BoxData{
		ID:             id,
		Value:          box.Value,
		Tokens:         make([]TokenData, 0, len(box.Tokens)),
		Registers:      make(map[string]json.RawMessage, len(box.Registers)),
		ErgoTree:       Hex(box.ErgoTree),
		CreationHeight: box.CreationHeight,
		TransactionID:  box.TxID,
		Index:          box.Index,
	}
	for _, t := range box.Tokens {
		d.Tokens = append(d.Tokens, TokenData{ID: t.ID, Amount: t.Amount})
	}
	if len(box.Registers) > sigma.MaxRegisters {
		return d, fmt.Errorf("%d registers; a box has at most %d", len(box.Registers), sigma.MaxRegisters)
	}
	for i, raw := range box.Registers {
		r, err := registerJSON(raw)
		if err != nil {
			return d, fmt.Errorf("%s: %w", ergo.RegisterName(4+i), err)
		}
		d.Registers[ergo.RegisterName(4+i)] = r
	}
	if a := address.FromErgoTree(box.ErgoTree, e.Network); a.Validate() == nil {
		d.Address = a.String()
	}
	if h, err := rules.HashTemplate(box.ErgoTree); err == nil {
		d.TemplateHash = &h
	}
	return d, nil
}

// registerJSON renders a register as {"serializedValue": hex, "type": T,
// "value": V} with sigma's constant rendering, or {"serializedValue": hex,
// "error": message} when it does not decode.
func registerJSON(raw []byte) (json.RawMessage, error) {
	type failed struct {
		SerializedValue Hex    `json:"serializedValue"`
		Error           string `json:"error"`
	}
	c, err := sigma.DecodeRegisterValue(raw)
	var rendered []byte
	if err == nil {
		rendered, err = c.MarshalJSON()
	}
	if err != nil {
		return json.Marshal(failed{SerializedValue: raw, Error: err.Error()})
	}
	// rendered is {"type":…,"value":…}: put the serialized value first.
	hexJSON, _ := json.Marshal(Hex(raw))
	out := make([]byte, 0, len(rendered)+len(hexJSON)+20)
	out = append(out, `{"serializedValue":`...)
	out = append(out, hexJSON...)
	out = append(out, ',')
	out = append(out, rendered[1:]...)
	return out, nil
}

// checkVerdictNames checks the parts of a verdict that go into subjects
// and message ids.
func checkVerdictNames(protocol, kind, class string) error {
	if !validName(protocol) {
		return fmt.Errorf("protocol name %q is not [a-z0-9_-]+", protocol)
	}
	switch rules.Kind(kind) {
	case rules.KindCreated, rules.KindSpent:
	default:
		return fmt.Errorf("verdict kind %q is not %q or %q", kind, rules.KindCreated, rules.KindSpent)
	}
	for _, c := range rules.Classes() {
		if string(c) == class {
			return nil
		}
	}
	return fmt.Errorf("box class %q is not one of PROTOCOL.md §3", class)
}

// validName reports whether s is [a-z0-9_-]+, the protocol-name alphabet.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
