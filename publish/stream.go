package publish

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream defaults.
const (
	DefaultStream     = "AUDITOR"
	DefaultDuplicates = 10 * time.Minute
)

// StreamConfig is the JetStream stream the events go to: file storage,
// limits retention, subjects <Prefix>.>. Zero fields take the defaults.
type StreamConfig struct {
	Name     string        // default "AUDITOR"
	Prefix   string        // default "auditor"
	MaxAge   time.Duration // oldest events are dropped past it; 0: kept forever
	MaxBytes int64         // oldest events are dropped past it; 0: no limit
	Replicas int           // copies in a clustered JetStream; default 1
	// Duplicates is the window within which a message id seen before is
	// dropped as a duplicate; default 10m. It must not exceed MaxAge.
	Duplicates time.Duration
}

// WithDefaults returns c with every unset field at its default (the
// stream AUDITOR, the prefix auditor, one replica, a 10m duplicate window).
func (c StreamConfig) WithDefaults() StreamConfig {
	if c.Name == "" {
		c.Name = DefaultStream
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Duplicates == 0 {
		c.Duplicates = DefaultDuplicates
	}
	return c
}

// Check validates the configuration (with defaults filled in). Errors wrap
// ErrConfig.
func (c StreamConfig) Check() error {
	c = c.WithDefaults()
	const op = "stream config"
	if strings.ContainsAny(c.Name, ".*>/\\ \t\r\n") {
		return errorf(ErrConfig, op, "stream name %q holds one of . * > / \\ or whitespace", c.Name)
	}
	if err := CheckPrefix(c.Prefix); err != nil {
		return err
	}
	switch {
	case c.MaxAge < 0:
		return errorf(ErrConfig, op, "max age %s is negative", c.MaxAge)
	case c.MaxBytes < 0:
		return errorf(ErrConfig, op, "max bytes %d is negative", c.MaxBytes)
	case c.Replicas < 1 || c.Replicas > 5:
		return errorf(ErrConfig, op, "replicas %d is not 1 to 5", c.Replicas)
	case c.Duplicates < 0:
		return errorf(ErrConfig, op, "duplicate window %s is negative", c.Duplicates)
	case c.MaxAge > 0 && c.Duplicates > c.MaxAge:
		return errorf(ErrConfig, op, "duplicate window %s exceeds max age %s", c.Duplicates, c.MaxAge)
	}
	return nil
}

// jetstream returns the stream's JetStream configuration.
func (c StreamConfig) jetstream() jetstream.StreamConfig {
	c = c.WithDefaults()
	maxBytes := c.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        c.Name,
		Description: "async-emission auditor events (CloudEvents JSON)",
		Subjects:    []string{c.Prefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxAge:      c.MaxAge,
		MaxBytes:    maxBytes,
		MaxMsgs:     -1,
		Replicas:    c.Replicas,
		Duplicates:  c.Duplicates,
	}
}

// EnsureStream creates the stream, or updates it to cfg when it exists
// (JetStream refuses some changes, such as the storage type, and a
// replica count above the cluster's size). Errors wrap ErrConfig or
// ErrStream.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	sc := cfg.jetstream()
	s, err := js.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, newError(ErrStream, fmt.Sprintf("create or update stream %s (subjects %s)", sc.Name, sc.Subjects[0]), err)
	}
	return s, nil
}
