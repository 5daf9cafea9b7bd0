// Package db is the scanner's SQLite store: every header it has seen, the
// tip, and the relevant part of the main chain's state (the boxes a Judge
// keeps, their tokens, the transactions that create, spend or read them,
// data-input reads), and what the rules concluded (verdicts and the
// lineage journal).
//
// The store follows the chain the way a UTXO indexer does. ConnectBlock
// applies one block on top of the tip and DisconnectBlock undoes the tip,
// each in a single SQLite transaction that also moves the tip, so the store
// is always at a block boundary: after a crash it holds exactly the blocks
// it committed. ConnectBlock checks that the block is the tip's child,
// DisconnectBlock that the block is the tip. A spent box keeps the id of the
// block that spent it (the spend journal), which is how DisconnectBlock
// restores exactly what the block spent; what the block created is deleted,
// and its header stays, off the main chain, so that reconnecting it after a
// fork only flips it back.
//
// Status reports counts and a digest of the main-chain state that is equal
// for equal chains however they were reached; tests compare stores with it.
//
// The schema is a series of numbered migrations (migrations/NNNN_name.sql,
// embedded), applied in order by Open, one transaction each; the schema
// version is PRAGMA user_version. Open refuses a database newer than the
// build (ErrSchema) rather than downgrade it.
package db
