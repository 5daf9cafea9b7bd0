package devnet

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/autolykos"
	"github.com/async-emission/auditor/ergo/sigma"
)

// Parameters of the generated chain. Its consensus rules are
// consensus.Devnet's (params).
const (
	blockVersion = 3 // headers as mainnet wrote them from protocol 5.0 to 6.0

	numUsers       = 32
	numMiners      = 4 // users 0 … 3 mine
	oracleOperator = numMiners
	treasuryOwner  = numUsers - 1

	// genesisTime is mainnet's launch, 2019-07-01 11:00 UTC; a seed moves
	// its chain's start up to a year later.
	genesisTime = 1_561_978_800_000
	yearMillis  = 365 * 24 * 3600 * 1000
)

// A stream is one of the independent random sequences a block draws from.
// Each is seeded from (Seed, stream, branch, height) — branch 0 is the final
// chain, an alternate branch is named by its reorg's height — so that any
// block can be rebuilt alone, and the final chain is the same whichever
// alternates are made.
type stream uint8

const (
	streamKeys stream = iota + 1
	streamGenesis
	streamBody
	streamHeader
	streamScenario
	streamTime
)

// finalBranch names the final chain in stream seeds.
const finalBranch = 0

// generator builds the blocks of one devnet. It holds no mutable state: a
// block is a function of the state before it and its streams, which is what
// lets the devnet drop block bodies and rebuild them from checkpoints.
type generator struct {
	seed        int64
	txsPerBlock int
	scenario    Scenario
	users       [numUsers]user
	userOf      map[string]int // P2PK tree → user
	rewardTrees [numMiners][]byte
	start       uint64 // the timestamp block 1 follows
}

// user is a participant of the traffic. Only the public key exists.
type user struct {
	pk   sigma.GroupElement
	tree []byte // P2PK
}

func newGenerator(cfg *Config) (*generator, error) {
	g := &generator{seed: cfg.Seed, txsPerBlock: cfg.TxsPerBlock, scenario: cfg.Scenario, userOf: make(map[string]int, numUsers)}
	for i := range g.users {
		var seed [32]byte
		g.rand(streamKeys, finalBranch, uint32(i)).Read(seed[:])
		pk := derivePoint(seed)
		g.users[i] = user{pk: pk, tree: p2pkTree(pk)}
		g.userOf[string(g.users[i].tree)] = i
	}
	var enc encoder
	for i := range g.rewardTrees {
		g.rewardTrees[i] = enc.minerRewardTree(g.users[i].pk)
	}
	if enc.err != nil {
		return nil, fmt.Errorf("devnet: building the miner reward trees: %w", enc.err)
	}
	g.start = genesisTime + g.rand(streamGenesis, finalBranch, 0).Uint64N(yearMillis)
	return g, nil
}

// streamRand is a ChaCha8 source: its Read fills keys, its Uint64 feeds
// math/rand/v2.
type streamRand struct {
	*rand.Rand
	src *rand.ChaCha8
}

func (r streamRand) Read(p []byte) { _, _ = r.src.Read(p) }

// rand returns a fresh random stream.
func (g *generator) rand(s stream, branch, height uint32) streamRand {
	var buf [len("ergo-devnet/1") + 8 + 1 + 4 + 4]byte
	n := copy(buf[:], "ergo-devnet/1")
	binary.BigEndian.PutUint64(buf[n:], uint64(g.seed))
	buf[n+8] = byte(s)
	binary.BigEndian.PutUint32(buf[n+9:], branch)
	binary.BigEndian.PutUint32(buf[n+13:], height)
	src := rand.NewChaCha8(ergo.Hash(buf[:]))
	return streamRand{Rand: rand.New(src), src: src}
}

// genesisState is the state before block 1: mainnet's genesis emission box
// (byte for byte, so its id is mainnet's b69575e1…), and a treasury box that
// block 1 shares among the users. Like mainnet's genesis boxes, neither is
// in any block: the inputs spending them at height 1 name boxes a scanner
// has never seen.
func (g *generator) genesisState() *state {
	genesis := func(value uint64, tree []byte, kind boxKind, owner int) *Box {
		b := &Box{kind: kind, owner: owner}
		b.Value, b.ErgoTree = value, tree
		b.ID = b.ComputeID()
		return b
	}
	return &state{
		emission: genesis(genesisEmissionValue, emissionTree, kindEmission, -1),
		treasury: genesis(treasuryValue, g.users[treasuryOwner].tree, kindTreasury, treasuryOwner),
	}
}

// genesisBoxes are the boxes of the genesis state.
func (g *generator) genesisBoxes() []*Box {
	s := g.genesisState()
	return []*Box{s.emission, s.treasury}
}

// body is the content of a block: its transactions and extension, and the
// miner its rewards go to.
type body struct {
	miner  int
	txs    []ergo.Transaction
	fields []ergo.ExtensionField
}

// build generates the block at height on branch over st, which it advances
// to the state after the block. ancestor returns the id of the block's
// ancestor at a lower height. record, if not nil, receives the Scenario's
// expectations (BlockBuilder.Expect). On error st is left part-way and must
// be dropped.
func (g *generator) build(st *state, height, branch uint32, ancestor func(uint32) ergo.Digest, record func(Expectation)) (*body, error) {
	st.unlockMatured(height)
	st.height = height
	rng := g.rand(streamBody, branch, height)
	b := &builder{g: g, st: st, height: height, rng: rng.Rand, miner: rng.IntN(numMiners)}
	b.emit()
	if height == 1 {
		b.distribute()
	}
	if g.scenario != nil && b.enc.err == nil {
		sb := &BlockBuilder{b: b, rng: g.rand(streamScenario, branch, height).Rand, record: record}
		if err := g.scenario.Block(sb); err != nil {
			return nil, fmt.Errorf("devnet: scenario at height %d: %w", height, err)
		}
	}
	n := g.txsPerBlock/2 + rng.IntN(g.txsPerBlock+1) - 2 // about TxsPerBlock with the emission and fee transactions
	for i := 0; i < n && b.enc.err == nil; i++ {
		b.userTx()
	}
	b.collectFees()
	if b.enc.err != nil {
		return nil, fmt.Errorf("devnet: generating block %d: %w", height, b.enc.err)
	}
	return &body{miner: b.miner, txs: b.txs, fields: extension(height, ancestor)}, nil
}

// emissionAt is the block reward at height, by mainnet's schedule (before
// EIP-27): 75 ERG for 525,600 blocks, then 3 ERG less every 64,800 blocks.
func emissionAt(height uint32) uint64 {
	const (
		fixedRatePeriod = 525_600
		reductionPeriod = 64_800
		fixedRate       = 75_000_000_000
		reduction       = 3_000_000_000
	)
	if height < fixedRatePeriod {
		return fixedRate
	}
	cut := (1 + uint64(height-fixedRatePeriod)/reductionPeriod) * reduction
	if cut >= fixedRate {
		return 0
	}
	return fixedRate - cut
}

// emit adds the block's first transaction: it spends the emission box and
// recreates it with the block reward taken out, paid to the miner's reward
// contract.
func (b *builder) emit() {
	e := b.st.emission
	reward := emissionAt(b.height)
	if e == nil || reward == 0 || e.Value < reward+minBoxValue {
		return // emission is over
	}
	outs := []output{
		{BoxCandidate: sigma.BoxCandidate{Value: e.Value - reward, ErgoTree: emissionTree, CreationHeight: b.height}, kind: kindEmission, owner: -1},
		b.reward(reward),
	}
	if _, err := b.add([]spend{{box: e}}, nil, outs); err != nil {
		b.fail(fmt.Errorf("emission: %w", err))
	}
}

// reward is an output paying the block's miner, spendable after
// minerRewardDelay blocks.
func (b *builder) reward(value uint64) output {
	return output{
		BoxCandidate: sigma.BoxCandidate{Value: value, ErgoTree: b.g.rewardTrees[b.miner], CreationHeight: b.height},
		kind:         kindReward, owner: b.miner, unlock: b.height + minerRewardDelay,
	}
}

// collectFees adds the block's last transaction: the miner collects every
// fee output of the block.
func (b *builder) collectFees() {
	if len(b.fees) == 0 || b.enc.err != nil {
		return
	}
	ins := make([]spend, len(b.fees))
	var total uint64
	for i, f := range b.fees {
		ins[i] = spend{box: f}
		total += f.Value
	}
	if _, err := b.add(ins, nil, []output{b.reward(total)}); err != nil {
		b.fail(fmt.Errorf("fee collection: %w", err))
	}
}

// extension builds a block's extension as mainnet's are shaped: from height
// 2 NiPoPoW interlinks (key 01 nn, a repeat count and an ancestor id: the
// genesis block first), and at the start of each voting epoch the protocol
// parameters (key 00 nn, a 4-byte value).
func extension(height uint32, ancestor func(uint32) ergo.Digest) []ergo.ExtensionField {
	var fields []ergo.ExtensionField
	if height%params.VotingLength == 0 {
		for _, p := range []struct {
			id    byte
			value uint32
		}{
			{0x01, 1_250_000}, // storage fee factor
			{0x02, minValuePerByte},
			{0x03, 1_271_009}, // max block size
			{0x04, 8_001_091}, // max block cost
			{0x05, 100},       // token access cost
			{0x06, 2_407},     // input cost
			{0x07, 100},       // data input cost
			{0x08, 298},       // output cost
			{0x7b, blockVersion},
		} {
			v := binary.BigEndian.AppendUint32(nil, p.value)
			fields = append(fields, ergo.ExtensionField{Key: [2]byte{0x00, p.id}, Value: v})
		}
	}
	if height < 2 {
		return fields
	}
	link := func(i, count byte, at uint32) {
		id := ancestor(at)
		fields = append(fields, ergo.ExtensionField{Key: [2]byte{0x01, i}, Value: append([]byte{count}, id[:]...)})
	}
	link(0, 1, 1)
	for level := byte(1); level <= 5; level++ {
		span := uint32(1) << (2 * level)
		at := (height - 1) / span * span
		if at < 2 {
			break
		}
		link(level, 1+level%3, at)
	}
	return fields
}

// headerRecord is what the devnet keeps of a header: everything that varies
// between blocks, in a value without pointers (a chain of them costs the
// garbage collector nothing to scan).
type headerRecord struct {
	id, parent, adProofsRoot, txRoot, extRoot ergo.Digest
	timestamp                                 uint64
	work                                      uint64 // cumulative difficulty from block 1: the node's score
	stateRoot, minerPK                        [33]byte
	nonce                                     [8]byte
	height, nBits                             uint32
	votes                                     [3]byte
	version                                   uint8
}

func (r *headerRecord) header() ergo.Header {
	return ergo.Header{
		Version:          r.version,
		ParentID:         r.parent,
		ADProofsRoot:     r.adProofsRoot,
		TransactionsRoot: r.txRoot,
		StateRoot:        r.stateRoot,
		Timestamp:        r.timestamp,
		ExtensionRoot:    r.extRoot,
		NBits:            r.nBits,
		Height:           r.height,
		Votes:            r.votes,
		PoW:              ergo.PowSolution{PK: r.minerPK, Nonce: r.nonce},
	}
}

// votes occasionally carries a miner's vote, as mainnet headers do.
var voteChoices = [...][3]byte{{0x78, 0x00, 0x00}, {0x08, 0x00, 0x00}, {0x78, 0x06, 0x00}, {0x00, 0x00, 0x00}}

// seal makes the header of a block: fields drawn from the block's header
// stream, its timestamp (timestamp), the roots of its body, the difficulty
// the devnet's rules require on its branch (chain answers for the branch's
// blocks below it), and the proof of work. A non-nil forge plants a broken
// rule (see forgery).
func (g *generator) seal(ctx context.Context, parent *headerRecord, height, branch uint32, bd *body, chain recordChain, forge *forgery) (headerRecord, error) {
	rng := g.rand(streamHeader, branch, height)
	nBits, work, err := required(ctx, parent, chain)
	if err != nil {
		return headerRecord{}, err
	}
	h := ergo.Header{Version: blockVersion, NBits: nBits, Height: height, Timestamp: g.timestamp(height)}
	if parent != nil {
		h.ParentID = parent.id
	}
	rng.Read(h.StateRoot[:32])
	h.StateRoot[32] = byte(20 + rng.IntN(4)) // the AVL+ tree height
	rng.Read(h.ADProofsRoot[:])
	if rng.IntN(10) == 0 {
		h.Votes = voteChoices[rng.IntN(len(voteChoices))]
	}
	h.TransactionsRoot = ergo.TransactionsRoot(blockVersion, bd.txs)
	h.ExtensionRoot = ergo.ExtensionRoot(bd.fields)
	h.PoW.PK = g.users[bd.miner].pk
	start := rng.Uint64()
	if forge != nil && forge.edit != nil {
		forge.edit(&h)
		if d, err := autolykos.DecodeCompactBits(h.NBits); err == nil && parent != nil {
			work = parent.work + d.Uint64()
		}
	}
	msg := ergo.Hash(h.BytesWithoutPoW())
	nonce, err := solve(ctx, msg, h.Version, height, h.NBits, start)
	if err != nil {
		return headerRecord{}, err
	}
	if forge != nil && forge.spoilPoW {
		nonce = failingNonce(msg, h.Version, height, h.NBits, nonce)
	}
	h.PoW.Nonce = nonce
	return headerRecord{
		id: h.ComputeID(), parent: h.ParentID, adProofsRoot: h.ADProofsRoot, txRoot: h.TransactionsRoot, extRoot: h.ExtensionRoot,
		timestamp: h.Timestamp, work: work, stateRoot: h.StateRoot, minerPK: h.PoW.PK, nonce: nonce, height: height,
		nBits: h.NBits, votes: h.Votes, version: h.Version,
	}, nil
}

// forgery is how seal makes a block break a rule: body changes its
// transactions before the header is made (and again whenever the block is
// rebuilt); edit changes the header before it is mined; spoilPoW gives it
// a nonce that does not solve the puzzle.
type forgery struct {
	body     func(bd *body, height uint32)
	edit     func(*ergo.Header)
	spoilPoW bool
}

// editBody applies f's change to a block's transactions, if f has one.
func (f *forgery) editBody(bd *body, height uint32) {
	if f != nil && f.body != nil {
		f.body(bd, height)
	}
}

// failingNonce returns the first nonce after good that does not solve the
// puzzle.
func failingNonce(msg [32]byte, version uint8, height, nBits uint32, good [8]byte) [8]byte {
	n := binary.BigEndian.Uint64(good[:])
	for {
		n++
		var try [8]byte
		binary.BigEndian.PutUint64(try[:], n)
		if autolykos.Verify(msg, try, version, height, nBits) != nil {
			return try
		}
	}
}

// solve returns the nonce autolykos.Solve would: the first from start, in
// order, that solves the puzzle, so that the chain does not depend on the
// machine. It tries consecutive nonces in rounds of one per processor (up
// to 4: with difficulty 2, four tries all fail one time in 16).
func solve(ctx context.Context, msg [32]byte, version uint8, height, nBits uint32, start uint64) ([8]byte, error) {
	workers := min(runtime.GOMAXPROCS(0), 4)
	if workers == 1 {
		return autolykos.Solve(ctx, msg, version, height, nBits, start)
	}
	nonceAt := func(i int) (n [8]byte) {
		binary.BigEndian.PutUint64(n[:], start+uint64(i))
		return n
	}
	solved := make([]bool, workers)
	for round := 0; ; round += workers {
		if err := ctx.Err(); err != nil {
			return [8]byte{}, err
		}
		var wg sync.WaitGroup
		for i := range solved {
			wg.Go(func() { solved[i] = autolykos.Verify(msg, nonceAt(round+i), version, height, nBits) == nil })
		}
		wg.Wait()
		if i := slices.Index(solved, true); i >= 0 {
			return nonceAt(round + i), nil
		}
	}
}

// render is the block as GET /blocks/{id} serves it. Every id in it is
// derived by the ergo renderer from the contents. It renders into a pooled
// buffer and returns an exact-size copy: a cached block then costs what the
// cache counts for it.
func render(rec *headerRecord, bd *body) []byte {
	blk := ergo.FullBlock{Header: rec.header(), Transactions: bd.txs, Extension: ergo.Extension{Fields: bd.fields}}
	buf := renderBuffers.Get().(*[]byte)
	*buf = blk.AppendJSON((*buf)[:0])
	out := bytes.Clone(*buf)
	renderBuffers.Put(buf)
	return out
}

var renderBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
