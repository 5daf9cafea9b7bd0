package publish

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/async-emission/auditor/ergo"
)

// The message ids of the chain's events. gen is the block's generation:
// how many times the block has been connected, as the stream has seen it
// (1 the first time). A single auditor counts its own connections; a
// leader of several (package ha) counts the stream's rollbacks of the
// block, so that two auditors publishing the same verdict make the same
// id.

// VerdictID is the id of a verdict event: <block>-<box>-<protocol>-<kind>-<gen>.
func VerdictID(block, box ergo.Digest, protocol, kind string, gen int) string {
	return fmt.Sprintf("%s-%s-%s-%s-%d", block, box, protocol, kind, gen)
}

// RetractionID is the id of a retracted event:
// <block>-<box>-<protocol>-<kind>-retracted-<gen>.
func RetractionID(block, box ergo.Digest, protocol, kind string, gen int) string {
	return fmt.Sprintf("%s-%s-%s-%s-retracted-%d", block, box, protocol, kind, gen)
}

// RollbackID is the id of a chain.rollback event: <block>-rollback-<gen>.
func RollbackID(block ergo.Digest, gen int) string {
	return fmt.Sprintf("%s-rollback-%d", block, gen)
}

// Generation is the last part of a verdict, retracted or rollback id: the
// block's generation. ok is false when id does not end in one.
func Generation(id string) (gen int, ok bool) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(id[i+1:])
	if err != nil || n < 1 || id[i+1] == '+' || id[i+1] == '0' {
		return 0, false
	}
	return n, true
}

// WithGeneration returns the verdict or chain.rollback event m as made by
// generation gen of its block: the id's last part, and for a rollback
// block.connects, set to gen. The rest of the payload is m's. Errors wrap
// ErrEncode.
func WithGeneration(m Message, gen int) (Message, error) {
	const op = "set the generation"
	if gen < 1 {
		return Message{}, errorf(ErrEncode, op+" of "+m.ID, "generation %d; a connected block has 1 or more", gen)
	}
	ev, err := DecodeEvent(m.Payload)
	if err != nil {
		return Message{}, newError(ErrEncode, op+" of "+m.ID, err)
	}
	switch ev.Type {
	case TypeVerdict:
		vd, err := ev.Verdict()
		if err != nil {
			return Message{}, newError(ErrEncode, op+" of "+m.ID, err)
		}
		ev.ID = VerdictID(vd.BlockID, vd.Box.ID, vd.Protocol, vd.Kind, gen)
	case TypeRollback:
		rd, err := ev.Rollback()
		if err != nil {
			return Message{}, newError(ErrEncode, op+" of "+m.ID, err)
		}
		rd.Block.Connects = gen
		if ev.Data, err = json.Marshal(rd); err != nil {
			return Message{}, newError(ErrEncode, op+" of "+m.ID, err)
		}
		ev.ID = RollbackID(rd.Block.ID, gen)
	default:
		return Message{}, errorf(ErrEncode, op+" of "+m.ID, "a %s event has no generation", ev.Type)
	}
	return reencode(op, m.Subject, ev)
}

// Stamp returns m with the extension attributes of an HA leader set:
// publisher, the auditor's id, and leaseepoch, the epoch of its lease (any
// earlier stamp is replaced). Errors wrap ErrEncode.
func Stamp(m Message, publisher string, epoch uint64) (Message, error) {
	const op = "stamp"
	if publisher == "" || epoch == 0 {
		return Message{}, errorf(ErrEncode, op+" "+m.ID, "no publisher or no epoch")
	}
	ev, err := DecodeEvent(m.Payload)
	if err != nil {
		return Message{}, newError(ErrEncode, op+" "+m.ID, err)
	}
	ev.Publisher, ev.LeaseEpoch = publisher, epoch
	return reencode(op, m.Subject, ev)
}

// reencode marshals ev as the payload of a message on subject.
func reencode(op, subject string, ev *Event) (Message, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return Message{}, newError(ErrEncode, op+" "+ev.ID, err)
	}
	return Message{ID: ev.ID, Subject: subject, Payload: payload}, nil
}
