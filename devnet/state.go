package devnet

import (
	"errors"
	"fmt"
	"slices"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/ergo/wire"
)

// Box is an unspent box of the generated chain, as the generator and a
// Scenario see it. Boxes are shared by the generator's states, so they are
// read-only: a Scenario builds new outputs rather than changing a Box.
type Box struct {
	ergo.Box             // contents, with TxID and Index set
	ID       ergo.Digest // the box id, derived from the contents

	kind   boxKind
	owner  int    // the user whose key spends it, or -1
	unlock uint32 // the first height at which it may be spent
	price  uint64 // an order's price
}

// boxKind says what a box is to the generator, and so where its state
// keeps it and how it may be spent.
type boxKind uint8

const (
	kindWallet   boxKind = iota + 1 // a user's P2PK box
	kindReward                      // a miner reward: the miner's minerRewardDelay blocks after creation
	kindVault                       // a user's vault: the user's from its unlock height
	kindOrder                       // an open sell order
	kindOracle                      // the oracle box, republished by its operator
	kindEmission                    // the emission box
	kindTreasury                    // the genesis treasury, spent by block 1
	kindFee                         // a fee output, collected by its block's last transaction
	kindKept                        // a box a Scenario keeps
	kindForeign                     // an output nobody here will spend: not tracked
)

// state is the generator's view of the UTXO set after block height: every
// box the generator may spend later. Boxes it will never spend (such as a
// Scenario's outputs it did not keep) are not tracked, so the set stays
// bounded. The order of each list is part of the state: the generator
// picks boxes by position.
type state struct {
	height   uint32
	emission *Box
	treasury *Box   // nil once spent
	oracle   *Box   // nil until created
	wallets  []*Box // spendable by their owner now
	locked   []*Box // rewards and vaults before their unlock height
	orders   []*Box
	kept     []*Box // the Scenario's
}

// clone returns a copy that shares the (read-only) boxes.
func (s *state) clone() *state {
	c := *s
	c.wallets = slices.Clone(s.wallets)
	c.locked = slices.Clone(s.locked)
	c.orders = slices.Clone(s.orders)
	c.kept = slices.Clone(s.kept)
	return &c
}

// unlockMatured moves the locked boxes spendable at height to the wallets,
// keeping the order of both lists.
func (s *state) unlockMatured(height uint32) {
	n := 0
	for _, b := range s.locked {
		if b.unlock <= height {
			s.wallets = append(s.wallets, b)
		} else {
			s.locked[n] = b
			n++
		}
	}
	clear(s.locked[n:])
	s.locked = s.locked[:n]
}

// add records a new box where its kind belongs; it reports false for a box
// the state does not track.
func (s *state) add(b *Box) bool {
	switch b.kind {
	case kindWallet, kindReward, kindVault:
		if b.unlock > s.height {
			s.locked = append(s.locked, b)
		} else {
			s.wallets = append(s.wallets, b)
		}
	case kindOrder:
		s.orders = append(s.orders, b)
	case kindOracle:
		s.oracle = b
	case kindEmission:
		s.emission = b
	case kindKept:
		s.kept = append(s.kept, b)
	default:
		return false
	}
	return true
}

// remove takes b out of the state; it reports false when b is not live.
// Lists lose b by swapping the last element into its place.
func (s *state) remove(b *Box) bool {
	take := func(list *[]*Box) bool {
		i := slices.Index(*list, b)
		if i < 0 {
			return false
		}
		last := len(*list) - 1
		(*list)[i] = (*list)[last]
		(*list)[last] = nil
		*list = (*list)[:last]
		return true
	}
	single := func(p **Box) bool {
		if *p != b {
			return false
		}
		*p = nil
		return true
	}
	switch b.kind {
	case kindWallet, kindReward, kindVault:
		if b.unlock > s.height {
			return take(&s.locked)
		}
		return take(&s.wallets)
	case kindOrder:
		return take(&s.orders)
	case kindOracle:
		return single(&s.oracle)
	case kindEmission:
		return single(&s.emission)
	case kindTreasury:
		return single(&s.treasury)
	case kindKept:
		return take(&s.kept)
	}
	return false
}

// live reports whether b is in the state.
func (s *state) live(b *Box) bool {
	switch b.kind {
	case kindWallet, kindReward, kindVault:
		return slices.Contains(s.wallets, b) || slices.Contains(s.locked, b)
	case kindOrder:
		return slices.Contains(s.orders, b)
	case kindOracle:
		return s.oracle == b
	case kindEmission:
		return s.emission == b
	case kindTreasury:
		return s.treasury == b
	case kindKept:
		return slices.Contains(s.kept, b)
	}
	return false
}

// size is the number of boxes the state tracks.
func (s *state) size() int {
	n := len(s.wallets) + len(s.locked) + len(s.orders) + len(s.kept)
	for _, b := range []*Box{s.emission, s.treasury, s.oracle} {
		if b != nil {
			n++
		}
	}
	return n
}

// Checkpoints are states serialized compactly: a box is kept as its
// standalone serialization (about 100 bytes), not as Go values (about three
// times that, and pointers the garbage collector would scan).
//
//	u32 height
//	three optional boxes: emission, treasury, oracle (a 0/1 byte, then the box)
//	four lists: wallets, locked, orders, kept (u32 count, then the boxes)
//	box: kind byte, owner (i32), unlock (u32), price (u64), sigma box bytes

// snapshot serializes s.
func (s *state) snapshot() []byte {
	w := wire.NewWriter(make([]byte, 0, 128*s.size()+16))
	w.U32(s.height)
	for _, b := range []*Box{s.emission, s.treasury, s.oracle} {
		if b == nil {
			w.Byte(0)
			continue
		}
		w.Byte(1)
		writeBox(w, b)
	}
	for _, list := range [][]*Box{s.wallets, s.locked, s.orders, s.kept} {
		w.U32(uint32(len(list)))
		for _, b := range list {
			writeBox(w, b)
		}
	}
	return w.Bytes()
}

func writeBox(w *wire.Writer, b *Box) {
	w.Byte(byte(b.kind))
	w.I32(int32(b.owner))
	w.U32(b.unlock)
	w.U64(b.price)
	// A tracked box was serialized when its id was derived: this cannot fail.
	_ = b.Box.Box.Write(w)
}

// errSnapshot marks a checkpoint that does not decode: a bug, since the
// devnet only reads what it wrote.
var errSnapshot = errors.New("devnet: corrupt checkpoint")

// restore decodes a snapshot into a fresh state.
func restore(data []byte) (*state, error) {
	r := wire.NewReader(data)
	s := &state{}
	var err error
	if s.height, err = r.U32("height"); err != nil {
		return nil, fmt.Errorf("%w: %v", errSnapshot, err)
	}
	for _, p := range []**Box{&s.emission, &s.treasury, &s.oracle} {
		present, err := r.Byte("presence")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errSnapshot, err)
		}
		if present == 1 {
			if *p, err = readBox(r); err != nil {
				return nil, err
			}
		}
	}
	for _, list := range []*[]*Box{&s.wallets, &s.locked, &s.orders, &s.kept} {
		n, err := r.U32("count")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errSnapshot, err)
		}
		*list = make([]*Box, n)
		for i := range *list {
			if (*list)[i], err = readBox(r); err != nil {
				return nil, err
			}
		}
	}
	if err := r.Done("checkpoint"); err != nil {
		return nil, fmt.Errorf("%w: %v", errSnapshot, err)
	}
	return s, nil
}

func readBox(r *wire.Reader) (*Box, error) {
	kind, err := r.Byte("kind")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSnapshot, err)
	}
	owner, err := r.I32("owner")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSnapshot, err)
	}
	b := &Box{kind: boxKind(kind), owner: int(owner)}
	if b.unlock, err = r.U32("unlock"); err != nil {
		return nil, fmt.Errorf("%w: %v", errSnapshot, err)
	}
	if b.price, err = r.U64("price"); err != nil {
		return nil, fmt.Errorf("%w: %v", errSnapshot, err)
	}
	sb, err := sigma.ReadBox(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSnapshot, err)
	}
	b.Box = ergo.Box{Box: sb}
	b.ID = b.ComputeID()
	return b, nil
}
