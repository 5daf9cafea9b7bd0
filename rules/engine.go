package rules

import (
	"context"
	"fmt"
	"slices"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
)

// State is what the rules read of the chain before the block they judge:
// the stored boxes and the lineages. The store implements it inside the
// transaction that connects the block.
type State interface {
	// Box returns the stored box an input of the block spends or a
	// data-input reads; false when the store does not hold it.
	Box(id ergo.Digest) (*Known, bool)
	// Lineages returns the lineages, of any protocol, whose async token is
	// one of tokens.
	Lineages(ctx context.Context, tokens []ergo.Digest) (map[LineageKey]Lineage, error)
}

// Watcher keeps the boxes the configuration's [watch] section names, on top
// of the protocols' own.
type Watcher interface {
	KeepBox(b *ergo.Box) bool
}

// Engine judges blocks for a set of protocols: it classifies each relevant
// box (PROTOCOL.md §3), follows the emission lineages and gives every
// classified box a verdict (§4). It holds no chain state of its own, so one
// Engine serves any number of stores; what it concludes depends only on
// the State and the block.
type Engine struct {
	protocols []*Protocol
	names     []string
	watch     Watcher
	log       zerolog.Logger

	// blake2b: some protocol names a template in the blake2b256
	// convention, so each output's blake2b256 template hash is computed
	// (and the store's boxes must carry theirs: UsesBlake2b).
	blake2b bool
	// owners, when the protocols name emission or emitted templates in
	// both conventions, holds each with the key that names it, so that a
	// box whose template two keys name, one by each convention, is found
	// (ParseProtocols cannot see it in the hashes).
	owners map[Template]templateUse
}

// NewEngine returns an Engine for the protocols; watch, which may be nil,
// keeps more boxes.
func NewEngine(protocols []Protocol, watch Watcher, log zerolog.Logger) *Engine {
	e := &Engine{watch: watch, log: log}
	for i := range protocols {
		p := protocols[i]
		e.protocols = append(e.protocols, &p)
		e.names = append(e.names, p.Name)
		e.blake2b = e.blake2b || p.UsesBlake2b()
	}
	if MixedConventions(protocols) {
		e.owners = map[Template]templateUse{}
		for i, p := range e.protocols {
			for _, t := range p.Templates() {
				if t.Key != "funnel_template" {
					e.owners[t.Template] = templateUse{index: i, protocol: p.Name, key: t.Key, template: t.Template}
				}
			}
		}
	}
	return e
}

// Names returns the names of the protocols the engine judges for, in the
// configuration's order. The caller must not change it.
func (e *Engine) Names() []string { return e.names }

// Subset returns an engine that judges for the named protocols alone
// (names must be a subset of Names), keeping the boxes the [watch] section
// names only when watch is true. It is e itself when that is all of e.
func (e *Engine) Subset(names []string, watch bool) *Engine {
	if len(names) == len(e.names) && (watch || e.watch == nil) {
		return e
	}
	sub := &Engine{log: e.log, blake2b: e.blake2b, owners: e.owners}
	if watch {
		sub.watch = e.watch
	}
	for _, p := range e.protocols {
		if slices.Contains(names, p.Name) {
			sub.protocols = append(sub.protocols, p)
			sub.names = append(sub.names, p.Name)
		}
	}
	return sub
}

// UsesBlake2b reports whether some protocol names a template in the
// blake2b256 convention: the State's boxes must then carry their
// blake2b256 template hash (Known.TemplateBlake2b), as outputs do.
func (e *Engine) UsesBlake2b() bool { return e.blake2b }

// Protocols returns the protocols the engine judges for.
func (e *Engine) Protocols() []Protocol {
	out := make([]Protocol, len(e.protocols))
	for i, p := range e.protocols {
		out[i] = *p
	}
	return out
}

// JudgeBlock judges block b on top of the state st: which outputs to keep
// (every output of a transaction relevant to a protocol: one that creates
// a box it classifies or spends one it classified; and those watch keeps),
// the verdicts of the boxes b creates (and of the emission boxes whose
// tokens it lets escape), and how it changes the lineages. Transactions are
// judged in block order, each seeing what the ones before it did.
//
// A data-input is resolved against the state before the block and the
// outputs of the transactions before it; the node also lets a data-input
// read an output of a later transaction of the same block, which the rules
// then see as an unknown box.
func (e *Engine) JudgeBlock(ctx context.Context, st State, b *ergo.FullBlock) (*Judgement, error) {
	j := &Judgement{Keep: make([][]bool, len(b.Transactions))}
	bs := &blockState{st: st, outputs: map[ergo.Digest]*Known{}, blake2b: e.blake2b}
	var active []*Protocol
	for _, p := range e.protocols {
		if b.Header.Height >= p.StartHeight {
			active = append(active, p)
		}
	}
	if len(active) > 0 {
		if err := bs.loadLineages(ctx, b); err != nil {
			return nil, fmt.Errorf("rules: block %d: read lineages: %w", b.Header.Height, err)
		}
	}
	for i := range b.Transactions {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		tx := &b.Transactions[i]
		t := bs.newTx(tx, i)
		if e.owners != nil {
			if err := e.checkShared(t); err != nil {
				return nil, err
			}
		}
		relevant := false
		for _, in := range t.ins {
			relevant = relevant || in != nil && e.judges(in.Roles)
		}
		for _, p := range active {
			v := t.judge(p)
			j.Verdicts = append(j.Verdicts, v.verdicts...)
			j.Steps = append(j.Steps, v.steps...)
			relevant = relevant || v.classified
		}
		for k, out := range t.outs {
			bs.outputs[out.ID] = out
			if relevant || e.watch != nil && e.watch.KeepBox(&tx.Outputs[k]) {
				if j.Keep[i] == nil {
					j.Keep[i] = make([]bool, len(t.outs))
				}
				j.Keep[i][k] = true
			}
		}
	}
	return j, nil
}

// judges reports whether one of roles is a protocol's the engine judges
// for: a transaction that spends a box one of them classified is
// relevant to it. (A role of another protocol, one no longer configured or
// judged apart, makes it relevant to that one's judgement only.)
func (e *Engine) judges(roles []Role) bool {
	for _, r := range roles {
		if slices.Contains(e.names, r.Protocol) {
			return true
		}
	}
	return false
}

// blockState is the state as the block's transactions change it: the
// lineages, and the outputs of the transactions judged so far.
type blockState struct {
	st       State
	outputs  map[ergo.Digest]*Known
	lineages map[LineageKey]*Lineage
	blake2b  bool // outputs get their blake2b256 template hash too
}

// loadLineages reads, in one call, every lineage the block can touch: those
// of the tokens its outputs hold and of the tokens the stored boxes it
// spends or reads hold. Lineages the block creates start within it.
func (bs *blockState) loadLineages(ctx context.Context, b *ergo.FullBlock) error {
	seen := map[ergo.Digest]bool{}
	var tokens []ergo.Digest
	add := func(ts []sigma.Token) {
		for _, t := range ts {
			if !seen[t.ID] {
				seen[t.ID] = true
				tokens = append(tokens, t.ID)
			}
		}
	}
	for i := range b.Transactions {
		tx := &b.Transactions[i]
		for k := range tx.Outputs {
			add(tx.Outputs[k].Tokens)
		}
		for _, in := range tx.Inputs {
			if k, ok := bs.st.Box(in.BoxID); ok {
				add(k.Tokens)
			}
		}
		for _, id := range tx.DataInputs {
			if k, ok := bs.st.Box(id); ok {
				add(k.Tokens)
			}
		}
	}
	bs.lineages = map[LineageKey]*Lineage{}
	if len(tokens) == 0 {
		return nil
	}
	found, err := bs.st.Lineages(ctx, tokens)
	if err != nil {
		return err
	}
	for k, l := range found {
		bs.lineages[k] = &l
	}
	return nil
}

// box returns a box created before the transaction being judged.
func (bs *blockState) box(id ergo.Digest) *Known {
	if k, ok := bs.outputs[id]; ok {
		return k
	}
	if k, ok := bs.st.Box(id); ok {
		return k
	}
	return nil
}

// newTx prepares transaction tx, at index in the block, for judging.
func (bs *blockState) newTx(tx *ergo.Transaction, index int) *txState {
	t := &txState{
		bs: bs, tx: tx, index: index, id: tx.TrustedID(),
		ins:  make([]*Known, len(tx.Inputs)),
		data: make([]*Known, len(tx.DataInputs)),
		outs: make([]*Known, len(tx.Outputs)),
	}
	for i, in := range tx.Inputs {
		t.ins[i] = bs.box(in.BoxID)
	}
	for i, id := range tx.DataInputs {
		t.data[i] = bs.box(id)
	}
	for i := range tx.Outputs {
		if bs.blake2b {
			t.outs[i] = KnownOutputBoth(&tx.Outputs[i])
		} else {
			t.outs[i] = KnownOutput(&tx.Outputs[i])
		}
	}
	return t
}

// KnownOutput is what the rules know of a transaction output before they
// judge it: its contents, no role yet, and its sha256 template hash.
func KnownOutput(b *ergo.Box) *Known {
	k := &Known{ID: b.TrustedID(), Tokens: b.Tokens, Registers: b.Registers}
	if h, err := sigma.TemplateHashOf(b.ErgoTree); err == nil {
		k.Template, k.HasTemplate = h, true
	}
	return k
}

// KnownOutputBoth is KnownOutput with the blake2b256 template hash too.
func KnownOutputBoth(b *ergo.Box) *Known {
	k := &Known{ID: b.TrustedID(), Tokens: b.Tokens, Registers: b.Registers}
	k.SetTemplates(b.ErgoTree)
	return k
}

// SetTemplates sets k's template hashes, in both conventions, from its
// tree (none when the tree has no template).
func (k *Known) SetTemplates(tree []byte) {
	if h, err := HashTemplate(tree); err == nil {
		k.Template, k.TemplateBlake2b, k.HasTemplate, k.HasBlake2b = h.SHA256, h.Blake2b256, true, true
	}
}

// SharedTemplateError is a box whose template two keys of the
// configuration name, one by its sha256 and the other by its blake2b256
// hash: the configuration is wrong (PROTOCOL.md §2 forbids a shared
// emission or emitted template), which only a box at that template shows.
type SharedTemplateError struct {
	Box       ergo.Digest
	Templates TemplateHashes
	// A names it by sha256, B by blake2b256: protocol and key.
	AProtocol, AKey, BProtocol, BKey string
}

func (e *SharedTemplateError) Error() string {
	return fmt.Sprintf("box %s has template %s, which is the %s of protocol %s and the %s of protocol %s: "+
		"two keys may not name one emission or emitted template, whichever convention each is written in; fix the configuration",
		e.Box, e.Templates, e.AKey, e.AProtocol, e.BKey, e.BProtocol)
}

// checkShared refuses an output of t whose template two keys name in
// different conventions.
func (e *Engine) checkShared(t *txState) error {
	for _, o := range t.outs {
		if !o.HasBlake2b {
			continue
		}
		a, okA := e.owners[Template{SHA256, o.Template}]
		b, okB := e.owners[Template{Blake2b256, o.TemplateBlake2b}]
		if okA && okB && (a.protocol != b.protocol || a.key != b.key) {
			return &SharedTemplateError{Box: o.ID, Templates: TemplateHashes{o.Template, o.TemplateBlake2b},
				AProtocol: a.protocol, AKey: a.key, BProtocol: b.protocol, BKey: b.key}
		}
	}
	return nil
}

// sortedTokens returns m's keys in byte order, so that what is derived from
// iterating a map does not depend on its order.
func sortedTokens[V any](m map[ergo.Digest]V) []ergo.Digest {
	out := make([]ergo.Digest, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b ergo.Digest) int { return slices.Compare(a[:], b[:]) })
	return out
}
