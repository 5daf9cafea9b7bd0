package consensus

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/autolykos"
)

// Rule names a consensus rule. It is an error so that it can be the target
// of errors.Is: errors.Is(err, consensus.RuleDifficulty).
type Rule string

func (r Rule) Error() string { return "consensus rule " + string(r) }

// The header rules, and the fork-choice rule a branch is refused under.
const (
	RuleParent     Rule = "parent"           // the parent id is the previous header's id
	RuleHeight     Rule = "height"           // the height is the parent's plus one
	RuleTimestamp  Rule = "timestamp"        // the timestamp is after the parent's
	RuleFuture     Rule = "future_timestamp" // the timestamp is at most MaxTimeDrift ahead of the auditor's clock
	RuleVersion    Rule = "version"          // the block version allowed at that height
	RuleVotes      Rule = "votes"            // at most two parameter votes, no duplicate, no contradiction
	RuleDifficulty Rule = "difficulty"       // nBits encodes the difficulty the height requires
	RulePoW        Rule = "pow"              // the Autolykos v2 solution meets that difficulty's target
	RuleGenesis    Rule = "genesis"          // height 1 has no parent, the initial difficulty, the network's genesis id
	RuleCheckpoint Rule = "checkpoint"       // the chain passes through the configured checkpoint
	RuleWork       Rule = "work"             // a competing branch carries strictly more work than the followed one
)

// Rules lists every Rule, for metrics that show each (zero included).
var Rules = []Rule{RuleParent, RuleHeight, RuleTimestamp, RuleFuture, RuleVersion, RuleVotes,
	RuleDifficulty, RulePoW, RuleGenesis, RuleCheckpoint, RuleWork,
	RuleAmounts, RuleDoubleSpend, RuleCreationHeight}

// RuleError is a header, or the block of a header, that breaks a rule.
type RuleError struct {
	Rule   Rule
	Height uint32
	ID     ergo.Digest
	Detail string
	Err    error // the cause, when there is one (e.g. the proof-of-work check's)
}

func (e *RuleError) Error() string {
	what := "header"
	if bodyRules[e.Rule] {
		what = "block"
	}
	msg := fmt.Sprintf("%s %s at height %d breaks the %s rule: %s", what, e.ID, e.Height, string(e.Rule), e.Detail)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, rule) true for the rule broken.
func (e *RuleError) Is(target error) bool {
	r, ok := target.(Rule)
	return ok && r == e.Rule
}

func (e *RuleError) Unwrap() error { return e.Err }

// RuleOf returns the rule err reports broken, if it is (or wraps) a
// *RuleError.
func RuleOf(err error) (Rule, bool) {
	var re *RuleError
	if errors.As(err, &re) {
		return re.Rule, true
	}
	return "", false
}

// Checkpoint is a header the followed chain must pass through.
type Checkpoint struct {
	Height uint32
	ID     ergo.Digest
}

// IsZero reports whether no checkpoint is set.
func (c Checkpoint) IsZero() bool { return c.Height == 0 }

func (c Checkpoint) String() string { return fmt.Sprintf("%d:%s", c.Height, c.ID) }

// ParseCheckpoint reads "<height>:<header id>".
func ParseCheckpoint(s string) (Checkpoint, error) {
	var c Checkpoint
	var hexID string
	if _, err := fmt.Sscanf(s, "%d:%s", &c.Height, &hexID); err != nil || c.Height == 0 {
		return Checkpoint{}, fmt.Errorf("%q is not <height>:<header id> with a height of 1 or more", s)
	}
	id, err := ergo.ParseDigest(hexID)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%q: the header id: %w", s, err)
	}
	c.ID = id
	if c.String() != s {
		return Checkpoint{}, fmt.Errorf("%q is not <height>:<header id> (write the height in decimal and the id in 64 lower-case hex digits)", s)
	}
	return c, nil
}

// Validator checks headers against a network's rules. It is safe for
// concurrent use.
type Validator struct {
	params     Params
	checkpoint Checkpoint
	now        func() time.Time
}

// NewValidator returns a validator of params' rules; a non-zero checkpoint
// adds RuleCheckpoint; now is the auditor's clock (nil: time.Now).
func NewValidator(params Params, checkpoint Checkpoint, now func() time.Time) *Validator {
	if now == nil {
		now = time.Now
	}
	return &Validator{params: params, checkpoint: checkpoint, now: now}
}

// Params returns the validator's parameters.
func (v *Validator) Params() *Params { return &v.params }

// Checkpoint returns the configured checkpoint (zero when none).
func (v *Validator) Checkpoint() Checkpoint { return v.checkpoint }

// child is one header being checked against its parent.
type child struct {
	v      *Validator
	h      *ergo.Header
	id     ergo.Digest
	parent Summary
	pid    ergo.Digest
	chain  Chain
}

func (c *child) broken(rule Rule, format string, args ...any) *RuleError {
	return &RuleError{Rule: rule, Height: c.h.Height, ID: c.id, Detail: fmt.Sprintf(format, args...)}
}

// childRule is one rule of a header that has a parent.
type childRule func(ctx context.Context, c *child) error

// childRules are checked in this order; the first broken is reported. The
// cheap link checks come first, so that a header of another branch is
// named for what it is before its difficulty is computed.
var childRules = []childRule{
	checkLink,
	checkTimestamp,
	checkFuture,
	checkVersion,
	checkVotes,
	checkDifficulty,
	checkCheckpoint,
}

// CheckChild checks header h, whose id is id (derived from its contents by
// the caller), as the child of the header parentID summarized by parent,
// on the branch chain answers for. A broken rule is a *RuleError; when the
// required difficulty cannot be computed (chain fails to answer), the
// error wraps chain's and is no *RuleError. Its proof of work is not checked here
// (see CheckPoW): the node client checks it when it decodes the header,
// once, and RuleDifficulty makes the target the required one.
func (v *Validator) CheckChild(ctx context.Context, h *ergo.Header, id ergo.Digest, parentID ergo.Digest, parent Summary, chain Chain) error {
	c := &child{v: v, h: h, id: id, parent: parent, pid: parentID, chain: chain}
	for _, rule := range childRules {
		if err := rule(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func checkLink(_ context.Context, c *child) error {
	switch {
	case c.h.ParentID != c.pid:
		return c.broken(RuleParent, "its parent is %s, the header before it is %s", c.h.ParentID, c.pid)
	case c.h.Height != c.parent.Height+1:
		return c.broken(RuleHeight, "its parent is at height %d", c.parent.Height)
	}
	return nil
}

func checkTimestamp(_ context.Context, c *child) error {
	if c.h.Timestamp <= c.parent.Timestamp {
		return c.broken(RuleTimestamp, "timestamp %d is not after its parent's, %d", c.h.Timestamp, c.parent.Timestamp)
	}
	return nil
}

func checkFuture(_ context.Context, c *child) error {
	return checkDrift(c.v, c.h, c.id)
}

func checkDrift(v *Validator, h *ergo.Header, id ergo.Digest) error {
	now := v.now().UnixMilli()
	drift := v.params.MaxTimeDrift().Milliseconds()
	if now >= 0 && h.Timestamp > uint64(now) && h.Timestamp-uint64(now) > uint64(drift) {
		return &RuleError{Rule: RuleFuture, Height: h.Height, ID: id,
			Detail: fmt.Sprintf("timestamp %d is %s ahead of the auditor's clock, more than the %s allowed",
				h.Timestamp, time.Duration(h.Timestamp-uint64(now))*time.Millisecond, v.params.MaxTimeDrift())}
	}
	return nil
}

func checkVersion(_ context.Context, c *child) error {
	p, h := &c.v.params, c.h
	switch {
	case h.Version > p.MaxVersion:
		return c.broken(RuleVersion, "block version %d is newer than this auditor knows (%d): upgrade the auditor", h.Version, p.MaxVersion)
	case p.Version2Height > 0 && h.Height < p.Version2Height && h.Version != 1:
		return c.broken(RuleVersion, "block version %d below height %d, where version 2 begins", h.Version, p.Version2Height)
	case p.Version2Height > 0 && h.Height >= p.Version2Height && h.Version < 2:
		return c.broken(RuleVersion, "block version %d at or above height %d, where version 2 begins", h.Version, p.Version2Height)
	case h.Version < c.parent.Version:
		return c.broken(RuleVersion, "block version %d is below its parent's, %d", h.Version, c.parent.Version)
	case h.Version != c.parent.Version && h.Height%p.VotingLength != 0:
		return c.broken(RuleVersion, "block version %d differs from its parent's (%d) inside a voting epoch: versions change only at a multiple of %d",
			h.Version, c.parent.Version, p.VotingLength)
	}
	return nil
}

// The vote values with a meaning of their own: no vote, and the soft-fork
// vote, which does not count against the two parameter votes.
const (
	noVote        int8 = 0
	softForkVote  int8 = 120
	maxParamVotes      = 2
)

func checkVotes(_ context.Context, c *child) error {
	return checkHeaderVotes(c.h, c.id)
}

// checkHeaderVotes is the node's validateVotes without the rule for
// unknown parameters (disabled since the 6.0 protocol): at most two
// parameter votes, none twice, none with its opposite.
func checkHeaderVotes(h *ergo.Header, id ergo.Digest) error {
	var votes []int8
	params := 0
	for _, b := range h.Votes {
		if v := int8(b); v != noVote {
			votes = append(votes, v)
			if v != softForkVote {
				params++
			}
		}
	}
	bad := func(format string, args ...any) error {
		return &RuleError{Rule: RuleVotes, Height: h.Height, ID: id, Detail: fmt.Sprintf(format, args...)}
	}
	if params > maxParamVotes {
		return bad("votes %x hold %d parameter votes, at most %d", h.Votes, params, maxParamVotes)
	}
	for i, v := range votes {
		for j, w := range votes {
			switch {
			case i != j && v == w:
				return bad("votes %x hold %d twice", h.Votes, v)
			case w == -v: // as bytes: -(-128) is -128, which the node counts as contradictory too
				return bad("votes %x hold %d and its opposite", h.Votes, v)
			}
		}
	}
	return nil
}

func checkDifficulty(ctx context.Context, c *child) error {
	want, err := RequiredDifficulty(ctx, &c.v.params, c.parent, c.chain)
	if err != nil {
		// Not a rule broken: the chain could not answer (the caller's
		// error is kept, wrapped), or it holds headers no valid chain has.
		return fmt.Errorf("header %s at height %d: the required difficulty: %w", c.id, c.h.Height, err)
	}
	return matchDifficulty(c.h, c.id, want)
}

// matchDifficulty compares the difficulty h states with the required one,
// as the node does: the decoded values, not the encodings.
func matchDifficulty(h *ergo.Header, id ergo.Digest, want *big.Int) error {
	got, err := autolykos.DecodeCompactBits(h.NBits)
	if err != nil {
		return &RuleError{Rule: RuleDifficulty, Height: h.Height, ID: id, Detail: fmt.Sprintf("nBits %#08x", h.NBits), Err: err}
	}
	if got.Cmp(want) != 0 {
		return &RuleError{Rule: RuleDifficulty, Height: h.Height, ID: id,
			Detail: fmt.Sprintf("nBits %#08x states difficulty %s, the height requires %s (nBits %#08x)",
				h.NBits, got, want, autolykos.EncodeCompactBits(want))}
	}
	return nil
}

func checkCheckpoint(_ context.Context, c *child) error {
	return c.v.checkCheckpoint(c.h, c.id)
}

func (v *Validator) checkCheckpoint(h *ergo.Header, id ergo.Digest) error {
	if cp := v.checkpoint; !cp.IsZero() && h.Height == cp.Height && id != cp.ID {
		return &RuleError{Rule: RuleCheckpoint, Height: h.Height, ID: id,
			Detail: fmt.Sprintf("the checkpoint (scan.checkpoint) at height %d is %s", cp.Height, cp.ID)}
	}
	return nil
}

// CheckGenesis checks the header of height 1, whose id is id: no parent,
// the initial difficulty, the network's genesis id when it has one, and
// the rules that need no parent.
func (v *Validator) CheckGenesis(h *ergo.Header, id ergo.Digest) error {
	bad := func(format string, args ...any) error {
		return &RuleError{Rule: RuleGenesis, Height: h.Height, ID: id, Detail: fmt.Sprintf(format, args...)}
	}
	p := &v.params
	switch {
	case h.Height != 1:
		return bad("the first block has height 1, not %d", h.Height)
	case !h.ParentID.IsZero():
		return bad("the first block's parent id is all zeros, not %s", h.ParentID)
	case !p.GenesisID.IsZero() && id != p.GenesisID:
		return bad("the %s genesis block is %s", p.Network, p.GenesisID)
	case h.Version > p.MaxVersion || p.Version2Height > 1 && h.Version != 1:
		return &RuleError{Rule: RuleVersion, Height: h.Height, ID: id, Detail: fmt.Sprintf("block version %d at height 1", h.Version)}
	}
	if err := checkDrift(v, h, id); err != nil {
		return err
	}
	if err := checkHeaderVotes(h, id); err != nil {
		return err
	}
	if err := matchDifficulty(h, id, p.InitialDifficulty); err != nil {
		return err
	}
	return v.checkCheckpoint(h, id)
}

// CheckPoW checks h's proof of work against the difficulty its nBits state
// (which CheckChild requires to be the required one): Autolykos v2 for
// version 2 and later. A version 1 header's Autolykos v1 solution is not
// checked; the result says so (ergo.PoWUnchecked) and callers must not
// claim it was.
func CheckPoW(h *ergo.Header, id ergo.Digest) (ergo.PoWStatus, error) {
	st, err := h.CheckPoW()
	if err != nil {
		return st, &RuleError{Rule: RulePoW, Height: h.Height, ID: id, Detail: "the solution does not meet the stated difficulty", Err: err}
	}
	return st, nil
}
