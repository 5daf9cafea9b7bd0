package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Message is one event ready to publish: its JetStream message id (sent
// as the Nats-Msg-Id header, so that JetStream drops a republished copy),
// its subject and its payload, the CloudEvents JSON.
type Message struct {
	ID      string
	Subject string
	Payload []byte
}

// Pending is an outbox row not yet acknowledged by JetStream. Seq orders
// the rows: the relay publishes them in Seq order.
type Pending struct {
	Seq int64
	Message
	// Written is when the row was written, in its block's transaction
	// (zero when the source does not know): RelayConfig.OnAck gets it.
	Written time.Time
}

// Source is the outbox the relay publishes from. The database implements
// it; rows are written in the same transaction as the block that makes
// them, so the relay never sees an event of a block that did not commit.
type Source interface {
	// Pending returns up to limit unpublished rows with seq > after, in
	// seq order.
	Pending(ctx context.Context, after int64, limit int) ([]Pending, error)
	// Published marks rows as acknowledged by JetStream.
	Published(ctx context.Context, seqs []int64) error
}

// DefaultPrefix is the first token of every subject when none is
// configured.
const DefaultPrefix = "auditor"

// CheckPrefix reports whether p can begin subjects: one or more
// dot-separated tokens, none empty, with no wildcard ('*', '>') and no
// whitespace.
func CheckPrefix(p string) error {
	if p == "" {
		return errorf(ErrConfig, "subject prefix", "empty")
	}
	for tok := range strings.SplitSeq(p, ".") {
		if err := checkToken(tok); err != nil {
			return errorf(ErrConfig, "subject prefix", "%q: %v", p, err)
		}
	}
	return nil
}

// checkToken checks one subject token.
func checkToken(tok string) error {
	if tok == "" {
		return errors.New("empty subject token")
	}
	if i := strings.IndexAny(tok, "*> \t\r\n\f\v\x00"); i >= 0 {
		return fmt.Errorf("subject token %q holds %q", tok, tok[i])
	}
	return nil
}
