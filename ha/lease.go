package ha

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Lease defaults.
const (
	DefaultBucket   = "auditor_ha"
	DefaultLeaseTTL = 5 * time.Second
	// MinLeaseTTL and MaxLeaseTTL bound the TTL: below a second a loaded
	// machine would lose leases to scheduling delays; above a minute a
	// dead leader is noticed too late.
	MinLeaseTTL = time.Second
	MaxLeaseTTL = time.Minute
)

// Role is an auditor's part in its group.
type Role string

// The roles.
const (
	Leader  Role = "leader"  // holds the lease and publishes
	Standby Role = "standby" // follows and judges, publishes nothing, takes the lease when it lapses
)

var (
	bucketName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	memberID   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._:-]{0,63}$`)
)

// CheckBucket reports whether name can name the lease's key-value bucket.
func CheckBucket(name string) error {
	if !bucketName.MatchString(name) {
		return errorf(ErrConfig, "lease bucket", "%q is not 1 to 64 of a-z, A-Z, 0-9, _ and -", name)
	}
	return nil
}

// CheckID reports whether id can name an auditor of a group: 1 to 64
// letters, digits, '.', '_', ':' and '-' (a host name fits), starting with a
// letter or a digit.
func CheckID(id string) error {
	if !memberID.MatchString(id) {
		return errorf(ErrConfig, "auditor id", "%q is not 1 to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or a digit", id)
	}
	return nil
}

// LeaseConfig configures a Lease.
type LeaseConfig struct {
	Bucket   string        // the key-value bucket; default DefaultBucket
	Key      string        // the lease's key in it; default "leader"
	ID       string        // this auditor's id; required
	TTL      time.Duration // default DefaultLeaseTTL
	Replicas int           // the bucket's replicas; default 1
	// Eligible tells whether this auditor is fit to lead now (caught up
	// with the chain and the stream); nil: always. An auditor that is not
	// takes a vacant lease only once it has been vacant for two TTLs, so
	// that one in sync takes it first if there is one.
	Eligible func() bool
}

func (c LeaseConfig) withDefaults() LeaseConfig {
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.Key == "" {
		c.Key = "leader"
	}
	if c.TTL == 0 {
		c.TTL = DefaultLeaseTTL
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	return c
}

// Check validates the configuration (with defaults filled in).
func (c LeaseConfig) Check() error {
	c = c.withDefaults()
	if err := CheckBucket(c.Bucket); err != nil {
		return err
	}
	if err := CheckID(c.ID); err != nil {
		return err
	}
	switch {
	case c.TTL < MinLeaseTTL || c.TTL > MaxLeaseTTL:
		return errorf(ErrConfig, "lease TTL", "%s is not %s to %s", c.TTL, MinLeaseTTL, MaxLeaseTTL)
	case c.Replicas < 1 || c.Replicas > 5:
		return errorf(ErrConfig, "lease bucket", "replicas %d is not 1 to 5", c.Replicas)
	}
	return nil
}

// LeaseState is what an auditor knows of the lease.
type LeaseState struct {
	Role Role
	// Holder is the id of the auditor that holds the lease as last seen
	// ("" when vacant or not known yet), and Epoch its epoch (0: none).
	Holder string
	Epoch  uint64
	// Since is when this auditor took the lease (zero unless Leader).
	Since time.Time
	// Seen is when the lease was last read or renewed (zero: never).
	Seen time.Time
	// VacantSince is since when the lease has been seen vacant (zero:
	// held, or not read yet).
	VacantSince time.Time
	// Takeovers counts the times this auditor took the lease; Losses the
	// times it lost it without giving it up.
	Takeovers, Losses uint64
	// Err is the last failure to read or write the lease, "" after a
	// success.
	Err string
}

// leaseValue is the lease entry's value.
type leaseValue struct {
	ID       string `json:"id"`
	Instance string `json:"instance"` // random, per process: an auditor restarted is another holder
	// Epoch is the revision of the write that took the lease; 0 in that
	// write itself (a reader takes the entry's revision then).
	Epoch uint64 `json:"epoch"`
}

// Lease is leadership of a group of auditors on a JetStream key-value
// entry: the holder writes its id under the key and renews it every TTL/4
// with a compare-and-set on the entry's revision (kv.Update); the bucket's
// TTL (its stream's max age, counted from each write) removes the entry of
// a holder that stopped renewing; a standby reads the key every TTL/10
// and, once it is gone, takes it with kv.Create, which only one can do.
// The epoch of a holding is the revision of the write that took it: it
// grows with every holding, and no two share one.
//
// The holder counts its lease valid until 4/5 of the TTL after it sent
// its last successful renewal, on its own monotonic clock, while the
// server removes the entry a TTL after it received it: so the lease has
// lapsed on the holder's side before anyone can take it, unless the
// holder's clock stood still (a suspended machine). Fencing that does not
// depend on clocks is the publisher's (the stream's expected last
// sequence; see Publisher).
type Lease struct {
	js       jetstream.JetStream
	cfg      LeaseConfig
	log      zerolog.Logger
	instance string

	kvMu       sync.Mutex // serializes the renewals
	kv         jetstream.KeyValue
	mu         sync.Mutex
	state      LeaseState
	rev        uint64    // of this auditor's last write, while it leads
	validUntil time.Time // while it leads
	changed    chan struct{}
}

// NewLease returns the lease of cfg on js. Run it.
func NewLease(js jetstream.JetStream, cfg LeaseConfig, log zerolog.Logger) (*Lease, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck // never fails
	return &Lease{js: js, cfg: cfg, log: log, instance: hex.EncodeToString(b[:]),
		state: LeaseState{Role: Standby}, changed: make(chan struct{})}, nil
}

// ID is this auditor's id.
func (l *Lease) ID() string { return l.cfg.ID }

// TTL is the lease's TTL.
func (l *Lease) TTL() time.Duration { return l.cfg.TTL }

// State returns what this auditor knows of the lease now.
func (l *Lease) State() LeaseState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Changed returns a channel closed at the next change of role or epoch.
func (l *Lease) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Valid reports whether this auditor holds the lease of epoch, valid now.
func (l *Lease) Valid(epoch uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state.Role == Leader && l.state.Epoch == epoch && time.Now().Before(l.validUntil)
}

// Term returns the epoch this auditor holds the lease under, when it does
// and the lease is valid.
func (l *Lease) Term() (epoch uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state.Role == Leader && time.Now().Before(l.validUntil) {
		return l.state.Epoch, true
	}
	return 0, false
}

// update changes the state under the lock and tells the waiters when the
// role or epoch changed.
func (l *Lease) update(f func(s *LeaseState)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	before := l.state
	f(&l.state)
	if before.Role != l.state.Role || before.Epoch != l.state.Epoch {
		close(l.changed)
		l.changed = make(chan struct{})
	}
}

// Run campaigns for the lease and, once it holds it, renews it, until ctx
// is done; then it gives the lease up (deletes the entry, if still its
// own), so that a standby takes over at once, and returns ctx's error.
// Failures are logged and retried, never returned.
func (l *Lease) Run(ctx context.Context) error {
	var kv jetstream.KeyValue
	poll := min(max(l.cfg.TTL/10, 50*time.Millisecond), time.Second)
	renewEvery := l.cfg.TTL / 4
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.release(ctx, kv)
			return ctx.Err()
		case <-t.C:
		}
		if kv == nil {
			var err error
			if kv, err = l.bucket(ctx); err != nil {
				l.failed(ctx, err)
				t.Reset(poll)
				continue
			}
			l.kvMu.Lock()
			l.kv = kv
			l.kvMu.Unlock()
		}
		if l.State().Role == Leader {
			l.renew(ctx, kv)
			t.Reset(renewEvery)
			if l.State().Role != Leader {
				t.Reset(poll)
			}
			continue
		}
		l.observe(ctx, kv)
		if l.State().Role == Leader {
			t.Reset(renewEvery)
		} else {
			t.Reset(poll)
		}
	}
}

// bucket creates the lease's bucket, or updates it to the configuration.
func (l *Lease) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	cctx, cancel := context.WithTimeout(ctx, max(l.cfg.TTL, 5*time.Second))
	defer cancel()
	kv, err := l.js.CreateOrUpdateKeyValue(cctx, jetstream.KeyValueConfig{
		Bucket:      l.cfg.Bucket,
		Description: "async-emission auditor: which auditor of the group publishes",
		History:     1,
		TTL:         l.cfg.TTL,
		Storage:     jetstream.FileStorage, // revisions, hence epochs, survive a restart of every server
		Replicas:    l.cfg.Replicas,
	})
	if err != nil {
		return nil, newError(ErrLease, "create or update bucket "+l.cfg.Bucket, err)
	}
	return kv, nil
}

func (l *Lease) failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	l.update(func(s *LeaseState) {
		if s.Err == "" {
			l.log.Warn().Err(err).Msg("lease: cannot reach the key-value bucket; retrying")
		}
		s.Err = err.Error()
	})
}

// observe reads the lease and takes it if it is vacant.
func (l *Lease) observe(ctx context.Context, kv jetstream.KeyValue) {
	rctx, cancel := context.WithTimeout(ctx, l.cfg.TTL/2)
	defer cancel()
	e, err := kv.Get(rctx, l.cfg.Key)
	now := time.Now()
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		var vacant time.Time
		l.update(func(s *LeaseState) {
			if s.VacantSince.IsZero() {
				s.VacantSince = now
			}
			s.Holder, s.Epoch, s.Seen, s.Err, vacant = "", 0, now, "", s.VacantSince
		})
		if l.cfg.Eligible == nil || l.cfg.Eligible() || now.Sub(vacant) >= 2*l.cfg.TTL {
			l.take(ctx, kv)
		}
	case err != nil:
		l.failed(ctx, newError(ErrLease, "read key "+l.cfg.Key, err))
	default:
		v, epoch := parseLease(e)
		l.update(func(s *LeaseState) {
			s.Holder, s.Epoch, s.Seen, s.VacantSince, s.Err = v.ID, epoch, now, time.Time{}, ""
		})
	}
}

// parseLease reads an entry's value; a value that does not parse is held
// by nobody known, with the entry's revision as epoch.
func parseLease(e jetstream.KeyValueEntry) (leaseValue, uint64) {
	var v leaseValue
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		v = leaseValue{ID: "?"}
	}
	if v.Epoch == 0 {
		return v, e.Revision()
	}
	return v, v.Epoch
}

// take creates the lease entry; only one of the auditors that try at once
// succeeds.
func (l *Lease) take(ctx context.Context, kv jetstream.KeyValue) {
	value, _ := json.Marshal(leaseValue{ID: l.cfg.ID, Instance: l.instance})
	sent := time.Now()
	cctx, cancel := context.WithTimeout(ctx, l.cfg.TTL/2)
	defer cancel()
	rev, err := kv.Create(cctx, l.cfg.Key, value)
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return // another took it: the next read says who
	case err != nil:
		// A Create that timed out may have been written all the same:
		// then the entry names this auditor's instance.
		e, gerr := kv.Get(cctx, l.cfg.Key)
		if gerr != nil {
			l.failed(ctx, newError(ErrLease, "take key "+l.cfg.Key, err))
			return
		}
		v, epoch := parseLease(e)
		if v.Instance != l.instance || epoch != e.Revision() {
			return
		}
		rev = e.Revision()
	}
	l.mu.Lock()
	l.rev, l.validUntil = rev, sent.Add(l.cfg.TTL*4/5)
	l.mu.Unlock()
	l.update(func(s *LeaseState) {
		s.Role, s.Holder, s.Epoch, s.Since, s.Seen, s.VacantSince, s.Err = Leader, l.cfg.ID, rev, sent, sent, time.Time{}, ""
		s.Takeovers++
	})
	l.log.Info().Uint64("epoch", rev).Dur("ttl", l.cfg.TTL).Msg("lease taken: this auditor leads and publishes")
}

// Confirm renews the lease now and reports whether this auditor holds it
// under epoch: the compare-and-set on the revision of its last write
// fails once another auditor took it, whatever this auditor's clock says.
func (l *Lease) Confirm(ctx context.Context, epoch uint64) error {
	l.kvMu.Lock()
	kv := l.kv
	l.kvMu.Unlock()
	if kv == nil || !l.Valid(epoch) {
		return newError(ErrLeaseLost, "confirm the lease", nil)
	}
	l.renew(ctx, kv)
	if !l.Valid(epoch) {
		return newError(ErrLeaseLost, "confirm the lease", nil)
	}
	return nil
}

// renew writes the lease again on the revision of the last write.
func (l *Lease) renew(ctx context.Context, kv jetstream.KeyValue) {
	l.kvMu.Lock()
	defer l.kvMu.Unlock()
	if l.State().Role != Leader {
		return
	}
	l.mu.Lock()
	rev, epoch, validUntil := l.rev, l.state.Epoch, l.validUntil
	l.mu.Unlock()
	value, _ := json.Marshal(leaseValue{ID: l.cfg.ID, Instance: l.instance, Epoch: epoch})
	sent := time.Now()
	cctx, cancel := context.WithTimeout(ctx, max(time.Until(validUntil), l.cfg.TTL/10))
	defer cancel()
	next, err := kv.Update(cctx, l.cfg.Key, value, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// A renewal that timed out may have been written all the same:
		// the entry is still this auditor's if it names its instance,
		// and then the renewal is made again on its revision.
		if e, gerr := kv.Get(cctx, l.cfg.Key); gerr == nil {
			if v, _ := parseLease(e); v.Instance == l.instance {
				next, err = kv.Update(cctx, l.cfg.Key, value, e.Revision())
			}
		}
	}
	switch {
	case err == nil:
		l.mu.Lock()
		l.rev, l.validUntil = next, sent.Add(l.cfg.TTL*4/5)
		l.mu.Unlock()
		l.update(func(s *LeaseState) { s.Seen, s.Err = sent, "" })
	case ctx.Err() != nil:
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists),
		errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		l.lose("another auditor holds the lease, or it lapsed", err)
	case time.Now().After(validUntil):
		l.lose("the lease could not be renewed within its TTL", err)
	default:
		l.failed(ctx, newError(ErrLease, "renew key "+l.cfg.Key, err))
	}
}

// lose steps down.
func (l *Lease) lose(why string, err error) {
	l.update(func(s *LeaseState) {
		l.log.Warn().Err(err).Uint64("epoch", s.Epoch).Msg("lease lost: " + why + "; this auditor publishes no more and stands by")
		s.Role, s.Holder, s.Epoch, s.Since, s.Err = Standby, "", 0, time.Time{}, err.Error()
		s.Losses++
	})
}

// release gives the lease up, if this auditor holds it, when Run stops:
// the entry is deleted on the revision of the last write, so that a
// standby takes it at once instead of after the TTL.
func (l *Lease) release(ctx context.Context, kv jetstream.KeyValue) {
	l.mu.Lock()
	rev, leading := l.rev, l.state.Role == Leader
	l.mu.Unlock()
	if !leading || kv == nil {
		return
	}
	l.update(func(s *LeaseState) { s.Role, s.Holder, s.Epoch, s.Since = Standby, "", 0, time.Time{} })
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	err := kv.Delete(dctx, l.cfg.Key, jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// A renewal cut short by the stop may have been written all the
		// same: the entry is still this auditor's if it names its
		// instance.
		if e, gerr := kv.Get(dctx, l.cfg.Key); gerr == nil {
			if v, _ := parseLease(e); v.Instance == l.instance {
				err = kv.Delete(dctx, l.cfg.Key, jetstream.LastRevision(e.Revision()))
			}
		}
	}
	if err != nil {
		l.log.Warn().Err(err).Msg("lease: could not give the lease up; a standby takes it once it lapses")
		return
	}
	l.log.Info().Msg("lease given up")
}

// ReadLease reads who holds the lease of bucket (key "leader") on js:
// holder "" when it is vacant.
func ReadLease(ctx context.Context, js jetstream.JetStream, bucket string) (holder string, epoch uint64, err error) {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, newError(ErrLease, "open bucket "+bucket, err)
	}
	e, err := kv.Get(ctx, "leader")
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return "", 0, nil
	case err != nil:
		return "", 0, newError(ErrLease, "read the lease in bucket "+bucket, err)
	}
	v, epoch := parseLease(e)
	return v.ID, epoch, nil
}
