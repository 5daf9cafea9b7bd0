package devnet

import "slices"

// The forgeries planted along the action tree (scenario_asyncemission_tree.go).
// Each is an action of a user's lineage, valid but for what it reads in one
// slot (its state box, the result of its round it builds on, or the result
// of any round); its emission box is verified, and its result, at the rogue
// key's contract of its kind, gets the one code PROTOCOL.md §2 gives the
// requirement it does not meet:
//
//   - a result read that is invalid (one these plants made), with its
//     emission box: emitted.unverified_reference;
//   - a valid result read without its emission box (alone, or with another
//     lineage's): emitted.unverified_reference;
//   - a result of a closed lineage read, whose emission box is spent:
//     emitted.unverified_reference;
//   - another protocol's (the demo's) result read with its emission box, or
//     its state box, in place of the tree's: emitted.missing_data_input;
//   - a result of the wrong kind read, proved, of the round:
//     emitted.missing_data_input;
//   - a result of another round read, proved, where the round's is needed,
//     or a leaf's result at another round than the state's:
//     emitted.stale_state.
//
// A plant lists the ways it can be planted now (none: it cannot be); the
// scenario draws a plant among those that can, then one of its ways.
type treePlant struct {
	name    string
	reason  string // the code its result gets
	options func(x *aeBlock, l aeLineage) []treeOption
}

var treePlants = []treePlant{
	{"tree-invalid-result", ReasonEmittedUnverifiedReference, (*aeBlock).treeInvalidResult},
	{"tree-unproved-result", ReasonEmittedUnverifiedReference, (*aeBlock).treeUnprovedResult},
	{"tree-closed-lineage-result", ReasonEmittedUnverifiedReference, (*aeBlock).treeClosedResult},
	{"tree-another-protocols-result", ReasonMissingDataInput, (*aeBlock).treeOtherProtocol},
	{"tree-wrong-action-kind", ReasonMissingDataInput, (*aeBlock).treeWrongKind},
	{"tree-wrong-round", ReasonStaleState, (*aeBlock).treeWrongRound},
}

// plantTree plants, as lineage l's action, a case drawn among the plants
// that can be planted; false when none can.
func (x *aeBlock) plantTree(l aeLineage) (bool, error) {
	opts := make([][]treeOption, len(treePlants))
	var can []int
	for i, p := range treePlants {
		if opts[i] = p.options(x, l); len(opts[i]) > 0 {
			can = append(can, i)
		}
	}
	for len(can) > 0 {
		k := x.rng.IntN(len(can))
		p := treePlants[can[k]]
		x.act = "plant:" + p.name
		if planted, err := x.treePlanted(l, opts[can[k]], p.reason); planted || err != nil {
			return planted, err
		}
		can = slices.Delete(can, k, k+1)
	}
	return false, nil
}

// treeOption is a way to plant: an action of kind k reading replace in
// slot (the other slots reading no result of lineage avoid's, which could
// prove what replace does not), its result at round.
type treeOption struct {
	k       int
	slot    treeSlot
	replace []*Box
	avoid   [32]byte
	round   int64
}

// treeBuilt lists, for each result slot of the actions that build on
// results, the results that keep says can stand there: an option per
// result, reading what read gives for it.
func (x *aeBlock) treeBuilt(l aeLineage, keep func(r treeResult, k int, ofRound bool) bool, read func(treeResult) []*Box) []treeOption {
	var opts []treeOption
	for _, k := range []int{tAggregate, tSettle} {
		a := treeActions[k]
		for _, s := range []struct {
			slot    treeSlot
			k       int
			ofRound bool
		}{{slotSame, a.same, true}, {slotAny, a.any, false}} {
			if s.k < 0 {
				continue
			}
			for _, r := range x.t.results {
				if r.token != l.token && keep(r, s.k, s.ofRound) {
					opts = append(opts, treeOption{k: k, slot: s.slot, replace: read(r), avoid: r.token, round: x.t.epoch})
				}
			}
		}
	}
	return opts
}

// treePlanted plants one of opts, drawn among those whose other slots can
// be read; its result gets reason. False when none can be.
func (x *aeBlock) treePlanted(l aeLineage, opts []treeOption, reason string) (bool, error) {
	for _, i := range x.rng.Perm(len(opts)) {
		o := opts[i]
		if data, ok := x.treeReads(o.k, nil, map[treeSlot][]*Box{o.slot: o.replace}, l.token, o.avoid); ok {
			return x.treeAct(l, o.k, o.round, aeRogue, data, reason)
		}
	}
	return false, nil
}

// ofKind: r is of kind k, and of the round when it must be.
func (x *aeBlock) ofKind(r treeResult, k int, ofRound bool) bool {
	return r.action == k && (!ofRound || r.round == x.t.epoch)
}

// treeInvalidResult: the action builds on a planted (invalid) result of
// the right kind and round, read with its emission box.
func (x *aeBlock) treeInvalidResult(l aeLineage) []treeOption {
	return x.treeBuilt(l, func(r treeResult, k int, ofRound bool) bool {
		return r.forged() && x.t.open(r) && x.ofKind(r, k, ofRound)
	}, x.t.proof)
}

// treeUnprovedResult: the action builds on a valid result of the right
// kind and round, read without its emission box: alone, or, one time in
// two, with another open lineage's emission box.
func (x *aeBlock) treeUnprovedResult(l aeLineage) []treeOption {
	return x.treeBuilt(l, func(r treeResult, k int, ofRound bool) bool {
		return !r.forged() && x.t.open(r) && x.ofKind(r, k, ofRound)
	}, func(r treeResult) []*Box {
		read := []*Box{r.box}
		if other := x.t.lineages.tokens(func(o aeLineage) bool { return o.token != r.token && o.token != l.token }); len(other) > 0 && x.chance(2) {
			o, _ := x.t.lineages.lineage(pick(x, other))
			read = append(read, o.box)
		}
		return read
	})
}

// treeClosedResult: the action builds on a valid result of the right kind
// and round whose lineage was closed: its emission box is spent.
func (x *aeBlock) treeClosedResult(l aeLineage) []treeOption {
	return x.treeBuilt(l, func(r treeResult, k int, ofRound bool) bool {
		return !r.forged() && !x.t.open(r) && x.ofKind(r, k, ofRound)
	}, func(r treeResult) []*Box { return []*Box{r.box} })
}

// treeWrongKind: the action builds on a valid result, proved, of the
// round, but of another kind than the one it needs there.
func (x *aeBlock) treeWrongKind(l aeLineage) []treeOption {
	return x.treeBuilt(l, func(r treeResult, k int, _ bool) bool {
		return !r.forged() && x.t.open(r) && r.action != k && r.round == x.t.epoch
	}, x.t.proof)
}

// treeWrongRound: the action builds on a valid result of the right kind,
// proved, of another round than its own; or, for a leaf, its result is at
// another round than the state box it reads.
func (x *aeBlock) treeWrongRound(l aeLineage) []treeOption {
	opts := x.treeBuilt(l, func(r treeResult, k int, ofRound bool) bool {
		return !r.forged() && x.t.open(r) && ofRound && r.action == k && r.round != x.t.epoch
	}, x.t.proof)
	other := x.t.epoch - 1
	if other < 0 {
		other = x.t.epoch + 1
	}
	for _, k := range []int{tObserve, tQuote} {
		opts = append(opts, treeOption{k: k, slot: slotState, replace: []*Box{x.t.state}, round: other})
	}
	return opts
}

// treeOtherProtocol: the action reads, where it needs the tree's state box
// or a result, the demo protocol's state box, or one of its users' results
// (of an open lineage) with its emission box.
func (x *aeBlock) treeOtherProtocol(l aeLineage) []treeOption {
	var opts []treeOption
	for k, a := range treeActions {
		if a.state {
			opts = append(opts, treeOption{k: k, slot: slotState, replace: []*Box{x.v.state}, round: x.t.epoch})
		}
		for _, s := range []struct {
			slot treeSlot
			k    int
		}{{slotSame, a.same}, {slotAny, a.any}} {
			if s.k < 0 {
				continue
			}
			for _, r := range x.v.userResults(true) {
				dl, _ := x.v.lineage(r.token)
				opts = append(opts, treeOption{k: k, slot: s.slot, replace: []*Box{r.box, dl.box}, round: x.t.epoch})
			}
		}
	}
	return opts
}
