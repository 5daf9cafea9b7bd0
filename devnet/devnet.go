package devnet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
)

// Devnet is a simulated Ergo node's chain: the final chain generated from
// the seed, the part of it (or of a competing branch) that is visible, and
// the blocks a node would serve. It is safe for concurrent use.
type Devnet struct {
	cfg      Config // defaults filled in
	log      zerolog.Logger
	gen      *generator
	cache    *blockCache
	launched time.Time

	// genMu serializes whatever extends the chain: generating final blocks
	// (frontier is the state after the last one), building a reorg's
	// alternates, and moving the view.
	genMu    sync.Mutex
	frontier *state

	// regenMu serializes rebuilding blocks for requests; cursor is the
	// final chain's state after the block last rebuilt, so that a scanner
	// reading block after block costs one block each.
	regenMu sync.Mutex
	cursor  *state

	mu          sync.RWMutex
	final       []headerRecord // final[h-1] is the final block at height h, generated so far
	alts        []*altBranch   // the competing branches shown, in order
	index       map[ergo.Digest]blockRef
	checkpoints [][]byte // checkpoints[k] is the state after final block k·CheckpointEvery
	view        view
	finalShown  uint32 // the highest final block ever visible: the final blocks served
}

// blockRef locates a block: its height and its branch (an index in alts,
// or -1 for the final chain).
type blockRef struct {
	height uint32
	alt    int
}

// altBranch is a competing branch: the one shown for the reorg at height
// event (alternates for heights fork+1 … event, built on final block fork),
// or one shown by ShowBranch (test is set).
type altBranch struct {
	event, fork uint32
	stream      uint32         // the branch its headers' random streams are seeded with
	bodyStream  uint32         // and its bodies': stream, or finalBranch when it re-includes the final chain's transactions
	headers     []headerRecord // headers[i] is at height fork+1+i
	test        bool           // shown by ShowBranch, not by a reorg
	withhold    bool           // its blocks are not served (ShowBranch's Withhold, until ServeBranch)
	forge       *forgery       // how its last block breaks a rule, if it does
}

// view is the visible best chain: final blocks up to height, or, while a
// reorg's competing branch is shown, final blocks up to that branch's fork
// and its alternates above (alt is the branch's index, -1 otherwise).
type view struct {
	height uint32
	alt    int
}

// ErrDiverged reports that a block rebuilt from a checkpoint is not the one
// generated first: the generator is not deterministic, a bug.
var ErrDiverged = errors.New("devnet: rebuilt block differs from the one generated first")

// New validates cfg and makes a devnet. With BlockTime 0 it generates the
// whole final chain first, which takes a while for a long chain (see
// NewContext); otherwise nothing is visible until Run or Step shows it.
func New(cfg Config, log zerolog.Logger) (*Devnet, error) {
	return NewContext(context.Background(), cfg, log)
}

// NewContext is New with a context that can abort the generation of the
// chain. It logs progress at info level when the chain is long.
func NewContext(ctx context.Context, cfg Config, log zerolog.Logger) (*Devnet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	gen, err := newGenerator(&cfg)
	if err != nil {
		return nil, err
	}
	d := &Devnet{
		cfg:      cfg,
		log:      log,
		gen:      gen,
		cache:    newBlockCache(cfg.CacheBytes),
		launched: time.Now(),
		frontier: gen.genesisState(),
		final:    make([]headerRecord, 0, cfg.Blocks),
		index:    make(map[ergo.Digest]blockRef, cfg.Blocks),
		view:     view{alt: -1},
	}
	d.checkpoints = [][]byte{d.frontier.snapshot()}
	if cfg.BlockTime == 0 {
		d.genMu.Lock()
		defer d.genMu.Unlock()
		if err := d.extend(ctx, uint32(cfg.Blocks)); err != nil {
			return nil, err
		}
		d.mu.Lock()
		d.view = view{height: uint32(cfg.Blocks), alt: -1}
		d.finalShown = uint32(cfg.Blocks)
		d.mu.Unlock()
	}
	return d, nil
}

// extend generates final blocks up to height to. The caller holds genMu.
func (d *Devnet) extend(ctx context.Context, to uint32) error {
	from := uint32(len(d.final))
	if to <= from {
		return nil
	}
	loud := to-from >= 2000
	start := time.Now()
	last := start
	every := uint32(d.cfg.CheckpointEvery)
	for h := from + 1; h <= to; h++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Built on a copy, kept only once sealed: a block abandoned part-way
		// (its context done during the proof of work) leaves no trace.
		st := d.frontier.clone()
		bd, err := d.gen.build(st, h, finalBranch, d.finalID, nil)
		if err != nil {
			return err
		}
		var parent *headerRecord
		if h > 1 {
			parent = &d.final[h-2]
		}
		rec, err := d.gen.seal(ctx, parent, h, finalBranch, bd, d.finalRecord, nil)
		if err != nil {
			return fmt.Errorf("devnet: sealing block %d: %w", h, err)
		}
		d.frontier = st
		var cp []byte
		if h%every == 0 {
			cp = st.snapshot()
		}
		d.mu.Lock()
		d.final = append(d.final, rec)
		d.index[rec.id] = blockRef{height: h, alt: -1}
		if cp != nil {
			d.checkpoints = append(d.checkpoints, cp)
		}
		d.mu.Unlock()
		if d.cfg.BlockTime > 0 {
			// Generated just before it is shown: a scanner asks for it next.
			d.cache.put(rec.id, render(&rec, bd))
		}
		if loud && h%256 == 0 && time.Since(last) >= 2*time.Second {
			last = time.Now()
			d.log.Info().Uint32("height", h).Uint32("of", to).Int("boxes", d.frontier.size()).
				Float64("blocksPerSecond", rate(h-from, last.Sub(start))).Msg("generating the chain")
		}
	}
	if loud {
		elapsed := time.Since(start)
		d.log.Info().Uint32("blocks", to-from).Str("elapsed", elapsed.Round(time.Millisecond).String()).
			Float64("blocksPerSecond", rate(to-from, elapsed)).Int("checkpoints", len(d.checkpoints)).Msg("chain generated")
	}
	return nil
}

func rate(n uint32, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// finalID is the id of final block h, which must have been generated.
func (d *Devnet) finalID(h uint32) ergo.Digest {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.final[h-1].id
}

// advance moves the view one event on (see the package documentation for
// the reorg timeline). It reports false, doing nothing, once the final
// chain is all visible.
func (d *Devnet) advance(ctx context.Context) (bool, error) {
	d.genMu.Lock()
	defer d.genMu.Unlock()
	d.mu.RLock()
	v := d.view
	d.mu.RUnlock()
	blocks := uint32(d.cfg.Blocks)
	switch {
	case v.alt >= 0 && d.alts[v.alt].test:
		d.showFinal()
		return true, nil
	case v.alt >= 0:
		// Back from the competing branch: the final chain, one block higher.
		a := d.alts[v.alt]
		next := min(a.event+1, blocks)
		if err := d.extend(ctx, next); err != nil {
			return false, err
		}
		d.show(view{height: next, alt: -1})
		d.log.Info().Uint32("height", next).Uint32("rolledBack", a.event-a.fork).Str("tip", d.finalID(next).String()).
			Msg("reorg: back to the final chain")
		return true, nil
	case v.height >= blocks:
		return false, nil
	}
	next := v.height + 1
	if !d.cfg.reorgAt(next) {
		if err := d.extend(ctx, next); err != nil {
			return false, err
		}
		d.show(view{height: next, alt: -1})
		d.log.Debug().Uint32("height", next).Str("tip", d.finalID(next).String()).Msg("new block")
		return true, nil
	}
	a, err := d.buildAlternates(ctx, next)
	if err != nil {
		return false, err
	}
	d.mu.Lock()
	d.alts = append(d.alts, a)
	for i := range a.headers {
		d.index[a.headers[i].id] = blockRef{height: a.fork + 1 + uint32(i), alt: len(d.alts) - 1}
	}
	d.mu.Unlock()
	d.show(view{height: next, alt: len(d.alts) - 1})
	d.log.Info().Uint32("height", next).Uint32("fork", a.fork).Str("tip", a.headers[len(a.headers)-1].id.String()).
		Msg("reorg: showing a competing branch")
	return true, nil
}

func (d *Devnet) show(v view) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.view = v
	if v.alt < 0 {
		d.finalShown = max(d.finalShown, v.height)
	}
}

// buildAlternates makes the competing branch of the reorg at height event:
// blocks fork+1 … event on final block fork, from the branch's own streams.
// The caller holds genMu; the final chain is generated up to event-1.
func (d *Devnet) buildAlternates(ctx context.Context, event uint32) (*altBranch, error) {
	a := &altBranch{event: event, fork: event - uint32(d.cfg.ReorgDepth), stream: event, bodyStream: event}
	if d.cfg.ReorgReinclude {
		a.bodyStream = finalBranch
	}
	return d.buildBranch(ctx, a)
}

// buildBranch builds the blocks of a, whose fork, event and streams are set:
// fork+1 … event on final block fork, from streams seeded with a.stream
// (headers) and a.bodyStream (bodies);
// the last one forged by a.forge, if not nil. The caller holds genMu; the
// final chain is generated up to fork.
func (d *Devnet) buildBranch(ctx context.Context, a *altBranch) (*altBranch, error) {
	st, err := d.checkpointBelow(a.fork)
	if err != nil {
		return nil, err
	}
	if _, err := d.replayFinal(st, a.fork, false); err != nil {
		return nil, err
	}
	d.mu.RLock()
	parent := d.final[a.fork-1]
	d.mu.RUnlock()
	for h := a.fork + 1; h <= a.event; h++ {
		bd, err := d.gen.build(st, h, a.bodyStream, d.altAncestor(a), nil)
		if err != nil {
			return nil, err
		}
		var forge *forgery
		if h == a.event {
			forge = a.forge
			forge.editBody(bd, h)
		}
		rec, err := d.gen.seal(ctx, &parent, h, a.stream, bd, d.altRecord(a), forge)
		if err != nil {
			return nil, fmt.Errorf("devnet: sealing alternate block %d: %w", h, err)
		}
		a.headers = append(a.headers, rec)
		d.cache.put(rec.id, render(&rec, bd))
		parent = rec
	}
	return a, nil
}

// finalRecord is the record of final block h, nil if it is not generated.
func (d *Devnet) finalRecord(h uint32) *headerRecord {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if h < 1 || int(h) > len(d.final) {
		return nil
	}
	r := d.final[h-1]
	return &r
}

// altRecord returns the records of a's branch: its own above its fork
// (those built so far), the final chain's at and below.
func (d *Devnet) altRecord(a *altBranch) recordChain {
	return func(h uint32) *headerRecord {
		if h <= a.fork {
			return d.finalRecord(h)
		}
		if i := int(h - a.fork - 1); i < len(a.headers) {
			return &a.headers[i]
		}
		return nil
	}
}

// altAncestor returns the ancestors of a's blocks: its own below the block
// being built, the final chain's at and below its fork.
func (d *Devnet) altAncestor(a *altBranch) func(uint32) ergo.Digest {
	return func(h uint32) ergo.Digest {
		if h <= a.fork {
			return d.finalID(h)
		}
		return a.headers[h-a.fork-1].id
	}
}

// checkpointBelow restores the latest checkpoint at or below height.
func (d *Devnet) checkpointBelow(height uint32) (*state, error) {
	d.mu.RLock()
	cp := d.checkpoints[height/uint32(d.cfg.CheckpointEvery)]
	d.mu.RUnlock()
	return restore(cp)
}

// replayFinal rebuilds final blocks st.height+1 … to over st, checking each
// against its header. With keep it renders and caches each, and returns the
// last one's JSON.
func (d *Devnet) replayFinal(st *state, to uint32, keep bool) ([]byte, error) {
	var last []byte
	for h := st.height + 1; h <= to; h++ {
		bd, err := d.gen.build(st, h, finalBranch, d.finalID, nil)
		if err != nil {
			return nil, err
		}
		d.mu.RLock()
		rec := d.final[h-1]
		d.mu.RUnlock()
		if err := sameBlock(&rec, bd); err != nil {
			return nil, err
		}
		if keep {
			last = render(&rec, bd)
			d.cache.put(rec.id, last)
		}
	}
	return last, nil
}

// sameBlock checks a rebuilt body against the header generated first.
func sameBlock(rec *headerRecord, bd *body) error {
	if ergo.TransactionsRoot(rec.version, bd.txs) != rec.txRoot || ergo.ExtensionRoot(bd.fields) != rec.extRoot {
		return fmt.Errorf("%w: block %s at height %d", ErrDiverged, rec.id, rec.height)
	}
	return nil
}

// blockJSON returns the JSON of a block the devnet serves; ok is false for
// one it does not (unknown, or not yet shown).
func (d *Devnet) blockJSON(id ergo.Digest) (json []byte, ok bool, err error) {
	ref, ok := d.served(id)
	if !ok {
		return nil, false, nil
	}
	if b, ok := d.cache.get(id); ok {
		return b, true, nil
	}
	d.regenMu.Lock()
	defer d.regenMu.Unlock()
	if b, ok := d.cache.get(id); ok { // rebuilt while this request waited
		return b, true, nil
	}
	if ref.alt < 0 {
		json, err = d.rebuildFinal(ref.height)
	} else {
		json, err = d.rebuildAlternate(ref)
	}
	if err != nil {
		d.log.Error().Err(err).Str("block", id.String()).Msg("cannot rebuild a block")
		return nil, false, err
	}
	return json, true, nil
}

// rebuildFinal rebuilds final block h from the cursor when it is on the
// way, from the checkpoint below otherwise. The caller holds regenMu.
func (d *Devnet) rebuildFinal(h uint32) ([]byte, error) {
	every := uint32(d.cfg.CheckpointEvery)
	st := d.cursor
	d.cursor = nil // replayed below; set again when that succeeds
	if st == nil || st.height >= h || st.height < (h-1)/every*every {
		var err error
		if st, err = d.checkpointBelow(h - 1); err != nil {
			return nil, err
		}
	}
	json, err := d.replayFinal(st, h, true)
	if err != nil {
		return nil, err
	}
	d.cursor = st
	return json, nil
}

// rebuildAlternate rebuilds the branch holding ref and returns ref's JSON.
// The caller holds regenMu.
func (d *Devnet) rebuildAlternate(ref blockRef) ([]byte, error) {
	d.mu.RLock()
	a := d.alts[ref.alt]
	d.mu.RUnlock()
	every := uint32(d.cfg.CheckpointEvery)
	st := d.cursor
	d.cursor = nil
	if st == nil || st.height > a.fork || st.height < a.fork/every*every {
		var err error
		if st, err = d.checkpointBelow(a.fork); err != nil {
			return nil, err
		}
	}
	if _, err := d.replayFinal(st, a.fork, false); err != nil {
		return nil, err
	}
	d.cursor = st.clone()
	var want []byte
	for h := a.fork + 1; h <= a.event; h++ {
		bd, err := d.gen.build(st, h, a.bodyStream, d.altAncestor(a), nil)
		if err != nil {
			return nil, err
		}
		if h == a.event {
			a.forge.editBody(bd, h)
		}
		rec := &a.headers[h-a.fork-1]
		if err := sameBlock(rec, bd); err != nil {
			return nil, err
		}
		json := render(rec, bd)
		d.cache.put(rec.id, json)
		if h == ref.height {
			want = json
		}
	}
	return want, nil
}

// served locates a block the devnet serves: a final block once shown, or
// an alternate (alternates exist only once shown; like a node, the devnet
// keeps serving them after the reorg back).
func (d *Devnet) served(id ergo.Digest) (blockRef, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	ref, ok := d.index[id]
	if !ok || ref.alt < 0 && ref.height > d.finalShown || ref.alt >= 0 && d.alts[ref.alt].withhold {
		return blockRef{}, false
	}
	return ref, true
}

// record returns the header of a block located by ref. The caller holds mu.
func (d *Devnet) record(ref blockRef) *headerRecord {
	if ref.alt < 0 {
		return &d.final[ref.height-1]
	}
	a := d.alts[ref.alt]
	return &a.headers[ref.height-a.fork-1]
}

// visible returns the visible best chain's header at height h, or nil. The
// caller holds mu.
func (d *Devnet) visible(h uint32) *headerRecord {
	if h < 1 || h > d.view.height {
		return nil
	}
	if d.view.alt >= 0 {
		if a := d.alts[d.view.alt]; h > a.fork {
			return &a.headers[h-a.fork-1]
		}
	}
	return &d.final[h-1]
}

// idsAt lists the ids of the blocks served at height h as a node does: the
// visible best chain's first, then the other branches'. The caller holds
// mu.
func (d *Devnet) idsAt(h uint32) []ergo.Digest {
	best := d.visible(h)
	if best == nil {
		return nil
	}
	ids := []ergo.Digest{best.id}
	if h <= d.finalShown && d.final[h-1].id != best.id {
		ids = append(ids, d.final[h-1].id)
	}
	for _, a := range d.alts {
		if h > a.fork && h <= a.event && a.headers[h-a.fork-1].id != best.id {
			ids = append(ids, a.headers[h-a.fork-1].id)
		}
	}
	return ids
}

// Step makes the visible chain advance by one event, as Run does every
// BlockTime: one more final block, or the two halves of a reorg. It
// reports false once the final chain is fully visible, and when it fails
// (which it logs), so that a loop of steps ends.
func (d *Devnet) Step() bool {
	more, err := d.advance(context.Background())
	if err != nil {
		d.log.Error().Err(err).Msg("cannot advance the chain")
		return false
	}
	return more
}

// Run advances the visible chain every BlockTime until ctx is done, and
// returns nil then; it returns early only when generating a block fails.
// With BlockTime 0 there is nothing to advance and it just waits.
func (d *Devnet) Run(ctx context.Context) error {
	if d.cfg.BlockTime == 0 {
		<-ctx.Done()
		return nil
	}
	tick := time.NewTicker(d.cfg.BlockTime)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		more, err := d.advance(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			return err
		case !more:
			d.log.Info().Int("height", d.cfg.Blocks).Msg("the final chain is fully visible")
			tick.Stop()
			<-ctx.Done()
			return nil
		}
	}
}

// Tip returns the visible best chain's height and tip id (0 and the zero id
// before the first block is shown).
func (d *Devnet) Tip() (height uint32, id ergo.Digest) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if r := d.visible(d.view.height); r != nil {
		return r.height, r.id
	}
	return 0, ergo.Digest{}
}

// FinalID returns the id of the final chain's block at height, generating
// the chain that far if needed; the zero id for a height outside 1 …
// Blocks.
func (d *Devnet) FinalID(height uint32) ergo.Digest {
	if height < 1 || height > uint32(d.cfg.Blocks) {
		return ergo.Digest{}
	}
	d.genMu.Lock()
	err := d.extend(context.Background(), height)
	d.genMu.Unlock()
	if err != nil {
		d.log.Error().Err(err).Msg("cannot generate the chain")
		return ergo.Digest{}
	}
	return d.finalID(height)
}

// Done reports whether the final chain is fully visible.
func (d *Devnet) Done() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.view.alt < 0 && d.view.height == uint32(d.cfg.Blocks)
}
