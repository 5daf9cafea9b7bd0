// Package devnet simulates an Ergo node: it serves the node's REST API
// subset the auditor follows over a deterministic, generated, mainnet-shaped
// chain whose box ids, transaction ids, Merkle roots, section ids, header ids
// and (easy-difficulty) Autolykos v2 proofs of work all verify with package
// ergo. Nobody needs a real node to try the auditor against it.
//
//	d, err := devnet.New(devnet.Config{Seed: 1, Blocks: 1000}, log)
//	...
//	go d.Run(ctx)                                  // shows blocks every BlockTime
//	err = devnet.ListenAndServe(ctx, "127.0.0.1:9053", d.Handler(), log)
//
// # The chain
//
// The final chain, heights 1 to Config.Blocks, is a function of Seed,
// TxsPerBlock and Scenario alone. Height 1's parent is the all-zero id, as on
// mainnet. The chain obeys Ergo's header rules under consensus.Devnet's
// parameters (mainnet's difficulty adjustment, before and after EIP-37, with
// short epochs): headers are version 3 with nBits encoding the difficulty
// the rules require (2: a nonce solves the puzzle with probability ½, so a
// wrong one is caught half the time and solving takes two tries on
// average), a timestamp 1 to 3 minutes after the parent's that depends on
// the height alone (every 16th block exactly on the 2-minute grid from a
// start the seed places within a year of mainnet's launch, so that every
// difficulty epoch lasts exactly its length and the difficulty stays the
// initial one), an occasional miner vote, a random 33-byte state root and a
// random AD proofs root (blocks are served with "adProofs": null).
//
// A block's extension holds, from height 2, NiPoPoW-style interlinks (key
// 01 nn: a count and an ancestor id, the genesis block first) and, at every
// 1024th height, mainnet's protocol parameters (key 00 nn: 4-byte values).
//
// The genesis state, in no block (as on mainnet), holds mainnet's genesis
// emission box, byte for byte (id b69575e1…), and a treasury box. Each block
// holds, in order:
//
//   - the emission transaction: it spends the emission box and recreates it
//     at mainnet's emission contract with the block reward (mainnet's schedule
//     before EIP-27: 75 ERG at these heights) taken out, paid to the miner's
//     reward contract (mainnet's, spendable 720 blocks later);
//   - at height 1, the treasury sharing its funds among 32 users (two boxes
//     each) and creating an oracle box;
//   - the Scenario's transactions, if any;
//   - about TxsPerBlock-2 user transactions (uniformly between half and one
//     and a half times that), drawn from a mix: payments to one to three
//     users (some moving tokens, some with a Coll[Byte] memo in R4, some
//     reading a live box as a data input), token mints (the token id is the
//     first input's box id; EIP-4 name, description and decimals registers),
//     sell orders at an order contract (registers GroupElement, Coll[Byte],
//     Long, Int, (Coll[Byte], Long) and Coll[Long]), order fills (context
//     variables on the order input, the oracle box as a data input, the
//     seller paid in output 0) and cancellations, vault locks at a sized
//     contract (ErgoTree header 0x18; registers Long and SigmaProp), oracle
//     updates (registers Long, Int, SigmaProp, Coll[Long]; a context
//     variable), and consolidations and splits that keep about six wallet
//     boxes per user;
//   - the fee collection: the miner takes every fee output of the block (each
//     user transaction pays 0.001 to 0.002 ERG to mainnet's fee contract)
//     into a reward box.
//
// The users' keys are derived from the seed (valid compressed secp256k1
// points); users 0 to 3 mine. Spending proofs are random bytes of a Schnorr
// proof's size (56), or empty where the script reduces to true (emission,
// fee and filled-order boxes): the auditor does not check signatures. The
// contracts other than P2PK keep their parameters as segregated constants
// (header 0x10, one 0x18), so their boxes share template hashes.
//
// Every transaction obeys the rules a scanner can check: its inputs are
// unspent (earlier transactions of the same block may have created them) and
// spent once, its data inputs unspent, input and output values are equal,
// token amounts are conserved except for a mint (and for burns: a wallet
// drops whole tokens beyond twelve in one transaction, as wallets burn dust
// tokens), outputs carry at least 360 nanoERG per byte, and creation heights
// are at most the block's and at least the inputs'.
//
// # Determinism
//
// Each block draws from random streams of its own (math/rand/v2 ChaCha8),
// seeded from (Seed, stream, branch, height): the body, the header, the
// Scenario. So any block can be rebuilt alone from the state before it, and
// the final chain does not depend on which alternate branches were built,
// nor on BlockTime, the reorg settings, the cache or the checkpoint spacing.
// Nothing generated depends on the clock. The proof of work is searched in
// parallel but returns the first solving nonce in order, as a sequential
// search would.
//
// # What is visible, and reorgs
//
// With BlockTime 0 the whole final chain is visible once New returns.
// Otherwise the visible chain starts empty and each step (Run's, every
// BlockTime, or Step's) moves it on by one event. With ReorgEvery K and
// ReorgDepth D, when a step would make height h visible and h is a multiple
// of K above D and below the last height:
//
//  1. that step shows final blocks 1 … h-D followed by alternates h-D+1 … h,
//     built on final block h-D from streams of their own (valid in every
//     respect, other ids). A scanner at tip h-1 rolls back D-1 final blocks
//     and applies D alternates;
//  2. the next step shows the final chain up to h+1: it carries more work
//     than the alternates (every branch has the same timestamps, so the
//     same difficulty at each height, and it is one block longer), and the
//     scanner rolls back the D alternates and applies final blocks
//     h-D+1 … h+1.
//
// For K=7, D=3 the tips are 1, 2, …, 6, then 7′ (alternates 5′ 6′ 7′ on final
// 4), then 8 (final 5 … 8), 9, …, 13, 14′, 15, …
//
// Like a node, the devnet keeps serving every block it has shown: alternates
// stay fetchable by id after the reorg back, and GET /blocks/at/{h} lists
// the visible best chain's id first, then the other branches' ids it has
// shown at h. A final block not yet shown is not served (404).
//
// # The API
//
// Handler serves GET /info, GET /blocks/at/{height}, GET /blocks/{id}, GET
// /blocks/{id}/header, POST /blocks/headerIds and GET /blocks/chainSlice,
// rendered by package ergo in the node's JSON format (without the node's
// "size" fields). The node's semantics are kept where a scanner could rely on
// them:
//
//   - /info: node 6's fields; heights, ids, difficulty and scores are null
//     before the first block. fullBlocksScore and headersScore are the
//     cumulative difficulty, height × 2.
//   - POST /blocks/headerIds: the blocks of the ids given, in their order;
//     ids the devnet does not serve are left out (the answer is then shorter
//     than the request), an id given twice is answered twice, and one that is
//     not hex fails the request (400). More than MaxHeaderIDs ids is 400 (the
//     node has no limit).
//   - GET /blocks/chainSlice: the node starts the slice one above
//     fromHeight: it walks back from the best chain's header at toHeight (the
//     tip if toHeight is above it, 0 or negative) to the header at
//     fromHeight+1, or to height 1, keeping the highest MaxChainSlice
//     headers. Defaults fromHeight=1, toHeight=16384; toHeight < fromHeight
//     is 400.
//
// Errors are the node's JSON error body, {"error":404,"reason":"not-found",
// "detail":"…"}: 400 for a malformed id, height, parameter or body, 404 for
// an unknown block or path, 405 for a known path with another method, 413
// for a body over 1 MiB. Where the node itself answers oddly the devnet is
// plainer: an unknown path is 404 (the node says 400) and a non-integer
// chainSlice parameter is 400 (the node says 500).
//
// # Memory
//
// The devnet does not keep block bodies. It keeps every header (a pointer-free
// record of about 250 bytes), an id index, and generator checkpoints every
// CheckpointEvery blocks: the state the generator tracks (every box it may
// spend later: about 300 wallet boxes and 1,500 locked miner rewards and
// vaults), serialized compactly (about 190 kB). Rendered block JSON is kept
// in an LRU cache of CacheBytes. A block not cached is rebuilt from the
// checkpoint below it (checked root for root against its header), or from
// the state after the block last rebuilt, so a scanner reading block after
// block costs one block each. Generation and rebuilding are bounded by the
// chain's length, not its history: a 100,000-block devnet holds about 25 MB
// of headers and 19 MB of checkpoints besides its cache.
//
// # Scenarios
//
// A Scenario adds its own transactions to every block through a
// BlockBuilder, which hands it the block's height, a random stream, the
// users' keys and wallet boxes and its own kept boxes, and validates what it
// adds by the same rules as the background traffic. Its state lives in the
// boxes it keeps, so that blocks can be rebuilt in any order.
//
// A Scenario may declare, with BlockBuilder.Expect, the verdict an auditor
// must reach on each box it creates; Devnet.Expectations lists the
// declarations of the final chain (the manifest), replaying it rather than
// keeping them. AsyncEmission deploys two async-emission protocols (the
// demo protocol, and an action tree whose users build on each other's
// results), uses them, and plants forgeries and mistakes covering every
// reason code of PROTOCOL.md; Devnet.Protocols (or ProtocolConfigsOf,
// without generating the chain) gives the [[protocol]] configuration that
// watches them.
package devnet
