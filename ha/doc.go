// Package ha runs auditors as a group on a shared NATS cluster: every
// auditor of the group follows the chain and judges it (a hot standby:
// its store, verdicts and outbox are up to date), and the one holding a
// lease publishes. When the leader dies, a standby takes the lease and
// publishes exactly what subscribers have not seen.
//
// # Pieces
//
//   - Lease: leadership on a JetStream key-value entry with a TTL (the
//     bucket's max age), renewed by compare-and-set on its revision every
//     quarter TTL and taken by kv.Create once it has lapsed. The epoch of
//     a holding is the revision of the write that took it.
//   - Ledger: what the stream holds, as far as a leader needs to know it —
//     for each recent block, its connection and its verdict events not
//     retracted. Every member reads the stream in order into one.
//   - Member: the lease, the ledger's reader and the publisher of one
//     auditor. See Member for how a new leader brings the stream to its
//     chain and why no deposed leader can publish after its successor
//     started.
//
// # Connections, generations and message ids
//
// A message id holds its block's connection (publish.IDConnects): how
// many times the stream has connected the block (1 + its rollbacks in the
// stream), not how many times one auditor connected it. Two auditors
// publishing the same verdict of the same connection make the same id; a
// block connected again after a rollback makes new ids. A single auditor
// publishing everything counts the same as the stream, so without HA the
// ids are those of publish.Encoder. A verdict's id may end besides in
// -g<generation>, its protocol's generation (how many times its history
// was begun again, by auditor rescan): a leader keeps it as its store
// made it, and the ledger tells verdicts apart by box, protocol, kind and
// generation.
//
// # Fencing
//
// The lease alone cannot stop a leader that was paused (SIGSTOP, a long
// GC, a suspended machine) past its TTL: it checks its lease, then is
// paused, then publishes. Every message therefore expects the stream's
// last sequence to be the one its publisher read or published last
// (Nats-Expected-Last-Sequence, checked by the stream's leader as it
// orders messages): a message appended after another publisher's is
// refused, and its publisher reads the stream again, and finds that it
// lost the lease, before it publishes anything more. So every message the
// stream holds was planned from exactly what the stream held before it,
// and once a new leader's first message is stored, no message of an
// earlier epoch can follow it.
package ha
