package devnet

import (
	"fmt"
	"slices"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
)

// The background traffic: users paying each other, minting and moving
// tokens, placing, filling and cancelling sell orders, locking funds in
// vaults, and an operator republishing an oracle box that order fills read
// as a data input. Consolidations and splits keep the number of wallet
// boxes near walletTarget; the boxes the traffic makes carry at most
// maxTokensPerBox tokens, and a transaction's change at most two boxes'
// worth (a wallet burns the rest). So the state the generator tracks stays
// bounded.

// Parameters of the traffic.
const (
	minBoxValue     = 1_000_000 // 0.001 ERG, the wallets' customary minimum
	minFee          = 1_000_000 // mainnet's customary minimum fee
	maxTokensPerBox = 6
	maxOrders       = 12
	walletTarget    = numUsers * 6 // wallet boxes the traffic keeps close to
	maxInputs       = 16

	treasuryValue = 4_330_791_500_000_000 // mainnet's foundation box, for the users' funds
	oracleValue   = 1_000_000_000_000     // 1000 ERG, paying the oracle's fees
	oracleRate    = 1_000_000_000
)

// userTx adds one transaction of a kind drawn from the traffic's mix.
func (b *builder) userTx() {
	pool := len(b.st.wallets)
	consolidate, split := 5, 3
	switch {
	case pool > walletTarget*3/2:
		consolidate = 40
	case pool < walletTarget/2:
		split = 40
	}
	kinds := []struct {
		weight int
		add    func() bool
	}{
		{50, b.pay},
		{4, b.mint},
		{6, b.placeOrder},
		{5, b.fillOrder},
		{2, b.cancelOrder},
		{4, b.lockVault},
		{8, b.updateOracle},
		{consolidate, b.consolidate},
		{split, b.split},
	}
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	n := b.rng.IntN(total)
	for _, k := range kinds {
		if n -= k.weight; n < 0 {
			if !k.add() {
				b.pay() // the drawn kind had nothing to work on
			}
			return
		}
	}
}

// draft is a user transaction being composed: its inputs, the outputs
// assigned so far, and the input value and tokens not yet assigned, which
// commit returns to the sender as change.
type draft struct {
	b      *builder
	ins    []spend
	data   []*Box
	outs   []output
	value  uint64        // unassigned input value
	tokens []sigma.Token // unassigned input tokens, in order of appearance
}

func (b *builder) draft() *draft { return &draft{b: b} }

func (d *draft) spend(box *Box, proof proofKind, ext ...ergo.ContextVar) {
	d.ins = append(d.ins, spend{box: box, proof: proof, ext: ext})
	d.value += box.Value
	d.tokens, _ = addTokens(d.tokens, box.Tokens) // amounts of live boxes fit
}

func (d *draft) spends(box *Box) bool {
	return slices.ContainsFunc(d.ins, func(s spend) bool { return s.box == box })
}

// pay assigns an output, taking its value and tokens from what the inputs
// hold; it reports false, changing nothing, when they do not hold enough.
func (d *draft) pay(o output) bool {
	if o.Value > d.value {
		return false
	}
	for _, t := range o.Tokens {
		if tokenAmount(d.tokens, t.ID) < t.Amount {
			return false
		}
	}
	d.value -= o.Value
	for _, t := range o.Tokens {
		i := slices.IndexFunc(d.tokens, func(x sigma.Token) bool { return x.ID == t.ID })
		if d.tokens[i].Amount -= t.Amount; d.tokens[i].Amount == 0 {
			d.tokens = slices.Delete(d.tokens, i, i+1)
		}
	}
	d.outs = append(d.outs, o)
	return true
}

// commit adds the fee output and the change (to user owner), then the
// transaction. Change carries the unassigned tokens, at most
// maxTokensPerBox to a box and at most two boxes' worth: a wallet burns
// the rest, as wallets burn dust tokens. Change too small to be a box goes
// to the fee. commit reports false, adding nothing, when the value left
// cannot pay the fee and the change boxes.
func (d *draft) commit(owner int, fee uint64) bool {
	b := d.b
	d.tokens = keepWholeBurns(d.tokens, func(id [32]byte) bool {
		return slices.ContainsFunc(d.outs, func(o output) bool { return tokenAmount(o.Tokens, id) > 0 })
	})
	chunks := (len(d.tokens) + maxTokensPerBox - 1) / maxTokensPerBox
	if d.value < fee+uint64(chunks)*minBoxValue {
		return false
	}
	change := d.value - fee
	if chunks == 0 && change > 0 && change < minBoxValue {
		fee, change = fee+change, 0
	}
	if chunks == 0 && change > 0 {
		chunks = 1
	}
	creation := d.creationHeight()
	for i := range d.outs {
		if d.outs[i].kind != kindFee && d.outs[i].CreationHeight == 0 {
			d.outs[i].CreationHeight = creation
		}
	}
	tree := b.g.users[owner].tree
	for c := range chunks {
		value := uint64(minBoxValue)
		if c == 0 {
			value = change - uint64(chunks-1)*minBoxValue
		}
		lo, hi := c*maxTokensPerBox, min((c+1)*maxTokensPerBox, len(d.tokens))
		d.outs = append(d.outs, output{
			BoxCandidate: sigma.BoxCandidate{Value: value, ErgoTree: tree, CreationHeight: creation, Tokens: slices.Clone(d.tokens[lo:hi])},
			kind:         kindWallet, owner: owner,
		})
	}
	d.outs = append(d.outs, output{
		BoxCandidate: sigma.BoxCandidate{Value: fee, ErgoTree: feeTree, CreationHeight: creation},
		kind:         kindFee, owner: -1,
	})
	if _, err := b.add(d.ins, d.data, d.outs); err != nil {
		b.fail(fmt.Errorf("background traffic: %w", err))
		return false
	}
	return true
}

// keepWholeBurns returns the change tokens a wallet keeps: at most two
// boxes' worth, dropping (burning) the last ones. A wallet burns only whole
// tokens, so a token the outputs took part of (paid) is kept ahead of the
// others when some must go.
func keepWholeBurns(change []sigma.Token, paid func(id [32]byte) bool) []sigma.Token {
	const most = 2 * maxTokensPerBox
	if len(change) <= most {
		return change
	}
	if slices.ContainsFunc(change[most:], func(t sigma.Token) bool { return paid(t.ID) }) {
		change = slices.Clone(change)
		slices.SortStableFunc(change, func(a, b sigma.Token) int {
			switch pa, pb := paid(a.ID), paid(b.ID); {
			case pa && !pb:
				return -1
			case pb && !pa:
				return 1
			}
			return 0
		})
	}
	return change[:most]
}

// creationHeight is what a wallet sets on the outputs: the height it saw
// when it built the transaction, a block or two before inclusion, but never
// below an input's (outputs may not be older than the boxes they spend).
func (d *draft) creationHeight() uint32 {
	h := d.b.height - min(uint32(d.b.rng.IntN(3)), d.b.height-1)
	for _, in := range d.ins {
		h = max(h, in.box.CreationHeight)
	}
	return h
}

// fee draws a fee of 0.001 to 0.002 ERG.
func (b *builder) fee() uint64 { return minFee + uint64(b.rng.IntN(11))*100_000 }

// walletBox returns a random spendable wallet box, or nil.
func (b *builder) walletBox() *Box {
	if len(b.st.wallets) == 0 {
		return nil
	}
	return b.st.wallets[b.rng.IntN(len(b.st.wallets))]
}

// walletOf returns user u's spendable boxes, in state order.
func (b *builder) walletOf(u int) []*Box {
	var w []*Box
	for _, box := range b.st.wallets {
		if box.owner == u {
			w = append(w, box)
		}
	}
	return w
}

// otherUser draws a user other than u.
func (b *builder) otherUser(u int) int {
	v := b.rng.IntN(numUsers - 1)
	if v >= u {
		v++
	}
	return v
}

func (b *builder) walletOutput(u int, value uint64, tokens ...sigma.Token) output {
	return output{
		BoxCandidate: sigma.BoxCandidate{Value: value, ErgoTree: b.g.users[u].tree, Tokens: tokens},
		kind:         kindWallet, owner: u,
	}
}

// share draws an amount from minBoxValue to about a third of budget.
func (b *builder) share(budget uint64) uint64 {
	if budget <= minBoxValue {
		return minBoxValue
	}
	return minBoxValue + b.rng.Uint64N(budget/3+1)
}

// pay: a user pays one to three others from one to three of their boxes,
// sometimes passing on tokens, with a memo, or reading a box as a data
// input.
func (b *builder) pay() bool {
	first := b.walletBox()
	if first == nil {
		return false
	}
	u := first.owner
	d := b.draft()
	d.spend(first, proofSignature)
	for _, box := range b.pick(b.walletOf(u), b.rng.IntN(3), first) {
		d.spend(box, proofSignature)
	}
	fee := b.fee()
	reserve := fee + 3*minBoxValue // change chunks
	if d.value < reserve+minBoxValue {
		return false
	}
	budget := d.value - reserve
	for r := range 1 + b.rng.IntN(3) {
		if budget < minBoxValue {
			break
		}
		amount := min(b.share(budget), budget)
		budget -= amount
		o := b.walletOutput(b.otherUser(u), amount)
		if r == 0 && len(d.tokens) > 0 && b.rng.IntN(2) == 0 {
			t := d.tokens[b.rng.IntN(len(d.tokens))]
			o.Tokens = []sigma.Token{{ID: t.ID, Amount: 1 + b.rng.Uint64N(t.Amount)}}
		}
		if b.rng.IntN(8) == 0 {
			o.Registers = [][]byte{b.enc.bytes(fmt.Appendf(nil, "devnet payment %d/%d", b.height, len(b.txs)))}
		}
		if !d.pay(o) {
			return false
		}
	}
	if b.rng.IntN(10) == 0 {
		if box := b.walletBox(); box != nil && !d.spends(box) {
			d.data = append(d.data, box)
		}
	}
	return d.commit(u, fee)
}

// pick returns up to n boxes of list other than except, drawn at random.
func (b *builder) pick(list []*Box, n int, except ...*Box) []*Box {
	var out []*Box
	for _, i := range b.rng.Perm(len(list)) {
		if len(out) == n {
			break
		}
		if !slices.Contains(except, list[i]) {
			out = append(out, list[i])
		}
	}
	return out
}

// mint: a user mints a token, an NFT or a fungible one described by EIP-4
// registers (name, description and decimals, as Coll[Byte]).
func (b *builder) mint() bool {
	first := b.walletBox()
	if first == nil || first.Value < 4*minBoxValue {
		return false
	}
	u := first.owner
	d := b.draft()
	d.spend(first, proofSignature) // the first input: its id is the token's
	amount, decimals := uint64(1), 0
	if b.rng.IntN(4) != 0 {
		decimals = b.rng.IntN(10)
		amount = (1 + b.rng.Uint64N(999)) * pow10(uint64(b.rng.IntN(13)))
	}
	name := fmt.Appendf(nil, "DEV%04X", uint16(first.ID[0])<<8|uint16(first.ID[1]))
	o := b.walletOutput(u, minBoxValue, sigma.Token{ID: first.ID, Amount: amount})
	o.Registers = [][]byte{
		b.enc.bytes(name),
		b.enc.bytes(fmt.Appendf(nil, "minted by user %d at height %d", u, b.height)),
		b.enc.bytes(fmt.Appendf(nil, "%d", decimals)),
	}
	d.value -= o.Value // a minted token is not taken from the inputs
	d.outs = append(d.outs, o)
	return d.commit(u, b.fee())
}

func pow10(n uint64) uint64 {
	p := uint64(1)
	for range n {
		p *= 10
	}
	return p
}

// placeOrder: a user offers some of a token for sale at the order
// contract, with the terms in registers of several types.
func (b *builder) placeOrder() bool {
	if len(b.st.orders) >= maxOrders || len(b.st.wallets) == 0 {
		return false
	}
	var box *Box
	for _, i := range b.rng.Perm(len(b.st.wallets))[:min(8, len(b.st.wallets))] {
		if w := b.st.wallets[i]; len(w.Tokens) > 0 && w.Value >= 4*minBoxValue {
			box = w
			break
		}
	}
	if box == nil {
		return false
	}
	u := box.owner
	d := b.draft()
	d.spend(box, proofSignature)
	t := box.Tokens[b.rng.IntN(len(box.Tokens))]
	amount := 1 + b.rng.Uint64N(t.Amount)
	price := minBoxValue * (1 + b.rng.Uint64N(1000))
	pk := b.g.users[u].pk
	o := output{
		BoxCandidate: sigma.BoxCandidate{
			Value:    2 * minBoxValue,
			ErgoTree: b.enc.orderTree(pk, price),
			Tokens:   []sigma.Token{{ID: t.ID, Amount: amount}},
			Registers: [][]byte{
				b.enc.group(pk),
				b.enc.bytes(t.ID[:]),
				b.enc.long(int64(price)),
				b.enc.int(int32(b.height)),
				b.enc.bytesLong(t.ID[:], int64(amount)),
				b.enc.longs(int64(price), int64(amount), int64(b.height)),
			},
		},
		kind: kindOrder, owner: u, price: price,
	}
	return d.pay(o) && d.commit(u, b.fee())
}

// fillOrder: a user buys an order's tokens, paying the seller in output 0
// as the contract demands, with context variables for the contract and the
// oracle box as a data input.
func (b *builder) fillOrder() bool {
	if len(b.st.orders) == 0 {
		return false
	}
	order := b.st.orders[b.rng.IntN(len(b.st.orders))]
	first := b.walletBox()
	if first == nil || first.owner == order.owner {
		return false
	}
	buyer := first.owner
	d := b.draft()
	d.spend(order, proofNone,
		ergo.ContextVar{Key: 0, Value: b.enc.int(0)},
		ergo.ContextVar{Key: 1, Value: b.enc.bytes(b.g.users[buyer].tree)},
	)
	fee := b.fee()
	need := order.price + fee + 2*minBoxValue
	d.spend(first, proofSignature)
	for _, box := range b.pick(b.walletOf(buyer), 4, first) {
		if d.value >= need {
			break
		}
		d.spend(box, proofSignature)
	}
	if b.st.oracle != nil {
		d.data = append(d.data, b.st.oracle)
	}
	return d.pay(b.walletOutput(order.owner, order.price)) &&
		d.pay(b.walletOutput(buyer, minBoxValue, order.Tokens...)) &&
		d.commit(buyer, fee)
}

// cancelOrder: a seller takes an order back.
func (b *builder) cancelOrder() bool {
	if len(b.st.orders) == 0 {
		return false
	}
	order := b.st.orders[b.rng.IntN(len(b.st.orders))]
	d := b.draft()
	d.spend(order, proofSignature)
	return d.commit(order.owner, minFee)
}

// lockVault: a user locks funds in a vault until a later height.
func (b *builder) lockVault() bool {
	first := b.walletBox()
	if first == nil || first.Value < 20*minBoxValue {
		return false
	}
	u := first.owner
	d := b.draft()
	d.spend(first, proofSignature)
	fee := b.fee()
	amount := b.share(d.value - fee - 2*minBoxValue)
	unlock := b.height + 10 + uint32(b.rng.IntN(90))
	pk := b.g.users[u].pk
	o := output{
		BoxCandidate: sigma.BoxCandidate{
			Value:     amount,
			ErgoTree:  b.enc.vaultTree(pk, unlock),
			Registers: [][]byte{b.enc.long(int64(amount)), b.enc.prop(pk)},
		},
		kind: kindVault, owner: u, unlock: unlock,
	}
	return d.pay(o) && d.commit(u, fee)
}

// updateOracle: the operator republishes the oracle box with a new rate,
// passing it to the contract as a context variable too.
func (b *builder) updateOracle() bool {
	o := b.st.oracle
	if o == nil || b.oracleUpdated || o.Value < oracleValue/2 {
		return false
	}
	b.oracleUpdated = true
	prev := int64(o.price)
	rate := max(1, prev+b.rng.Int64N(prev/20+1)-prev/40) // a walk of up to ±2.5%
	d := b.draft()
	d.spend(o, proofSignature, ergo.ContextVar{Key: 0, Value: b.enc.long(rate)})
	fee := uint64(minFee)
	return d.pay(b.oracleOutput(o.owner, o.Value-fee, rate, prev)) && d.commit(o.owner, fee)
}

func (b *builder) oracleOutput(operator int, value uint64, rate, previous int64) output {
	pk := b.g.users[operator].pk
	return output{
		BoxCandidate: sigma.BoxCandidate{
			Value:    value,
			ErgoTree: b.enc.oracleTree(pk),
			Registers: [][]byte{
				b.enc.long(rate),
				b.enc.int(int32(b.height)),
				b.enc.prop(pk),
				b.enc.longs(rate, previous),
			},
		},
		kind: kindOracle, owner: operator, price: uint64(rate),
	}
}

// consolidate: a user with many boxes merges some of them.
func (b *builder) consolidate() bool {
	first := b.walletBox()
	if first == nil {
		return false
	}
	u := first.owner
	wallet := b.walletOf(u)
	if len(wallet) < 4 {
		return false
	}
	d := b.draft()
	d.spend(first, proofSignature)
	for _, box := range b.pick(wallet, 3+b.rng.IntN(min(len(wallet), maxInputs)-3), first) {
		d.spend(box, proofSignature)
	}
	return d.commit(u, b.fee())
}

// split: a user breaks a large box into several, some for others.
func (b *builder) split() bool {
	var box *Box
	for range 4 {
		if w := b.walletBox(); w != nil && (box == nil || w.Value > box.Value) {
			box = w
		}
	}
	if box == nil || box.Value < 40*minBoxValue {
		return false
	}
	u := box.owner
	d := b.draft()
	d.spend(box, proofSignature)
	fee := b.fee()
	budget := d.value - fee - 3*minBoxValue
	for range 3 + b.rng.IntN(6) {
		to := u
		if b.rng.IntN(3) == 0 {
			to = b.otherUser(u)
		}
		amount := min(b.share(budget), budget)
		if amount < minBoxValue || !d.pay(b.walletOutput(to, amount)) {
			break
		}
		budget -= amount
	}
	return d.commit(u, fee)
}

// distribute is block 1's second transaction: the genesis treasury funds
// every user with two boxes and creates the oracle box.
func (b *builder) distribute() {
	t := b.st.treasury
	if t == nil {
		return
	}
	d := b.draft()
	d.spend(t, proofSignature)
	fee := uint64(minFee)
	if !d.pay(b.oracleOutput(oracleOperator, oracleValue, oracleRate, oracleRate)) {
		b.fail(fmt.Errorf("treasury distribution: cannot fund the oracle"))
		return
	}
	per := (d.value - fee) / (2 * numUsers)
	for u := range numUsers {
		for range 2 {
			if !d.pay(b.walletOutput(u, per/2+b.rng.Uint64N(per/2))) {
				b.fail(fmt.Errorf("treasury distribution: out of funds"))
				return
			}
		}
	}
	if !d.commit(treasuryOwner, fee) && b.enc.err == nil {
		b.fail(fmt.Errorf("treasury distribution: cannot pay the fee and change"))
	}
}
