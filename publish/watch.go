package publish

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// DefaultWatchInterval is how often a StreamWatch looks the stream up.
const DefaultWatchInterval = 5 * time.Second

// StreamWatch looks the relay's stream up every interval and keeps what it
// found, for readiness: whether the stream exists, and whether it is the
// stream it found first (by its creation time) or one created since, after
// someone deleted it, which lacks every event published before.
type StreamWatch struct {
	js       jetstream.JetStream
	name     string
	interval time.Duration
	log      zerolog.Logger

	mu        sync.Mutex
	created   time.Time // of the stream first found; zero before
	missing   bool      // the last look found no stream
	recreated time.Time // when a stream created after the first was found; zero if never
}

// NewStreamWatch watches the stream cfg names on js. Run it; Problem reads
// what it found.
func NewStreamWatch(js jetstream.JetStream, cfg StreamConfig, interval time.Duration, log zerolog.Logger) *StreamWatch {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	return &StreamWatch{js: js, name: cfg.WithDefaults().Name, interval: interval, log: log}
}

// Run looks the stream up at once and then every interval, until ctx is
// done; it returns ctx's error. A look that gets no answer (NATS down,
// JetStream failing) changes nothing: other checks say so.
func (w *StreamWatch) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		w.look(ctx)
		t.Reset(w.interval)
	}
}

func (w *StreamWatch) look(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, w.interval)
	defer cancel()
	s, err := w.js.Stream(lctx, w.name)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if !w.missing && !w.created.IsZero() {
			w.log.Warn().Str("stream", w.name).Msg("the stream is gone: someone deleted it; the relay creates it again, without the events published before")
		}
		w.missing = true
	case err != nil:
		return
	default:
		w.missing = false
		created := s.CachedInfo().Created
		switch {
		case w.created.IsZero():
			w.created = created
		case !created.Equal(w.created) && !created.Equal(w.recreated):
			w.recreated = created
			w.log.Warn().Str("stream", w.name).Time("created", created).Time("first_created", w.created).
				Msg("the stream was deleted and created again: the events published before are not in it")
		}
	}
}

// Problem is what is wrong with the stream, "" when nothing is: it is
// missing, or it was created again since the watch first found it (which
// stays a problem until the auditor restarts: the events published
// before are not in it).
func (w *StreamWatch) Problem() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.missing:
		return fmt.Sprintf("stream %s does not exist", w.name)
	case !w.recreated.IsZero():
		return fmt.Sprintf("stream %s was deleted and created again (created %s, first found created %s): the events published before are not in it; restart the auditor once this is understood",
			w.name, w.recreated.UTC().Format(time.RFC3339), w.created.UTC().Format(time.RFC3339))
	}
	return ""
}
