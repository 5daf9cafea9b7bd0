package publish

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/async-emission/auditor/ergo"
)

// The message ids of the chain's events, made and read in one place.
//
// connects is how many times the block has been connected (1 the first
// time): a block connected again after a disconnect publishes anew. A
// single auditor counts its own connections of the block; a leader of a
// group (package ha) counts the stream's (1 + the stream's rollbacks of
// the block), so that two auditors publishing the same verdict make the
// same id. For one auditor publishing everything the two counts are the
// same.
//
// generation is the verdict's protocol's: how many times its history was
// begun again (auditor rescan, a changed start_height, a return after a
// prune). Above 0 it ends the id as -g<generation>, so that a verdict
// judged again publishes anew; a verdict's retraction ends as the
// verdict does. A rollback has none.

// VerdictID is the id of a verdict event:
// <block>-<box>-<protocol>-<kind>-<connects>, then -g<generation> above 0.
func VerdictID(block, box ergo.Digest, protocol, kind string, connects, generation int) string {
	return fmt.Sprintf("%s-%s-%s-%s-%d%s", block, box, protocol, kind, connects, generationSuffix(generation))
}

// RetractionID is the id of a retracted event:
// <block>-<box>-<protocol>-<kind>-retracted-<connects>, then the retracted
// verdict's -g<generation> above 0.
func RetractionID(block, box ergo.Digest, protocol, kind string, connects, generation int) string {
	return fmt.Sprintf("%s-%s-%s-%s-retracted-%d%s", block, box, protocol, kind, connects, generationSuffix(generation))
}

// RollbackID is the id of a chain.rollback event: <block>-rollback-<connects>.
func RollbackID(block ergo.Digest, connects int) string {
	return fmt.Sprintf("%s-rollback-%d", block, connects)
}

// generationSuffix is the end of an id that names a generation: none for
// 0.
func generationSuffix(g int) string {
	if g <= 0 {
		return ""
	}
	return "-g" + strconv.Itoa(g)
}

// IDConnects reads the end of a verdict, retracted or rollback id: the
// connection count and the generation (0 when the id has none). ok is
// false when the id does not end in -<connects> or
// -<connects>-g<generation>, each a positive decimal of at most 9 digits
// with no sign and no leading zero. The parts before are not read:
// compare the id with the one VerdictID, RetractionID or RollbackID makes
// of the event's data.
func IDConnects(id string) (connects, generation int, ok bool) {
	rest := id
	if i := strings.LastIndexByte(rest, '-'); i >= 0 && strings.HasPrefix(rest[i+1:], "g") {
		if generation, ok = positive(rest[i+2:]); !ok {
			return 0, 0, false
		}
		rest = rest[:i]
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		return 0, 0, false
	}
	if connects, ok = positive(rest[i+1:]); !ok {
		return 0, 0, false
	}
	return connects, generation, true
}

// IDGeneration is the generation an event id ends with: 0 when it has none
// (or is not an id of this schema).
func IDGeneration(id string) int {
	_, g, ok := IDConnects(id)
	if !ok {
		return 0
	}
	return g
}

// positive parses a positive decimal of at most 9 digits, with no sign
// and no leading zero.
func positive(s string) (int, bool) {
	if s == "" || len(s) > 9 || s[0] == '0' {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// WithConnects returns the chain event m — a verdict, a retraction or a
// rollback — as made by the connects-th connection of its block: the
// connection count in its id, and in the data where it is (a rollback's
// and a disconnect's block.connects, a retraction's retracts) set to
// connects. A verdict's or retraction's generation, which the ids alone
// carry, is kept. The rest of the payload is m's. An id that is not the
// one its data makes is refused. Errors wrap ErrEncode.
func WithConnects(m Message, connects int) (Message, error) {
	const op = "set the connection count"
	fail := func(err error) (Message, error) { return Message{}, newError(ErrEncode, op+" of "+m.ID, err) }
	if connects < 1 {
		return fail(fmt.Errorf("connection %d; a connected block has 1 or more", connects))
	}
	ev, err := DecodeEvent(m.Payload)
	if err != nil {
		return fail(err)
	}
	c, gen, ok := IDConnects(ev.ID)
	if !ok {
		return fail(fmt.Errorf("id %q does not end in a connection count", ev.ID))
	}
	var data any
	switch ev.Type {
	case TypeVerdict:
		vd, err := ev.Verdict()
		if err != nil {
			return fail(err)
		}
		if ev.ID != VerdictID(vd.BlockID, vd.Box.ID, vd.Protocol, vd.Kind, c, gen) {
			return fail(fmt.Errorf("id %q is not the verdict's", ev.ID))
		}
		ev.ID = VerdictID(vd.BlockID, vd.Box.ID, vd.Protocol, vd.Kind, connects, gen)
	case TypeRetracted:
		rd, err := ev.Retraction()
		if err != nil {
			return fail(err)
		}
		if ev.ID != RetractionID(rd.BlockID, rd.Box.ID, rd.Protocol, rd.Kind, c, gen) ||
			rd.Retracts != VerdictID(rd.BlockID, rd.Box.ID, rd.Protocol, rd.Kind, c, gen) {
			return fail(fmt.Errorf("id %q or retracts %q is not the retraction's", ev.ID, rd.Retracts))
		}
		ev.ID = RetractionID(rd.BlockID, rd.Box.ID, rd.Protocol, rd.Kind, connects, gen)
		rd.Retracts = VerdictID(rd.BlockID, rd.Box.ID, rd.Protocol, rd.Kind, connects, gen)
		if rd.DisconnectedBlock != nil {
			rd.DisconnectedBlock.Connects = connects
		}
		data = rd
	case TypeRollback:
		rd, err := ev.Rollback()
		if err != nil {
			return fail(err)
		}
		if gen != 0 || ev.ID != RollbackID(rd.Block.ID, c) {
			return fail(fmt.Errorf("id %q is not the rollback's", ev.ID))
		}
		rd.Block.Connects = connects
		ev.ID = RollbackID(rd.Block.ID, connects)
		data = rd
	default:
		return fail(fmt.Errorf("a %s event has no connection count", ev.Type))
	}
	if data != nil {
		if ev.Data, err = json.Marshal(data); err != nil {
			return fail(err)
		}
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
