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
//     retracted; for older blocks, the keys of those verdicts; for each
//     protocol and generation, the highest block it has a verdict of.
//     Every member reads the stream in order into one.
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
// # Protocols over time: backfills and rescans
//
// A protocol's history in a store (db.ProtocolHistory) is complete to its
// cursor: a protocol added to an auditor with blocks is backfilled from
// its start height beside the follower, and one judged again (auditor
// rescan) has its verdicts from a height retracted by the rescan — the
// block staying connected — and is backfilled again under its next
// generation. The members of a group backfill at their own pace, so at a
// takeover the new leader's history of a protocol may be less or more
// advanced than the one that published, and a backfill's verdicts are of
// old blocks, below the heights the members compare (the window). The
// rule a leader follows:
//
//   - A verdict the stream holds live that the leader's chain does not
//     hold with the same data is judged by its protocol's history in the
//     leader's store. A protocol the store has no history of (never
//     configured, or pruned): it is left. A generation before the store's:
//     it is retracted by the rescan that began the store's generation, if
//     the store has that retraction, or if the block is at or above the
//     height that rescan judges again from (a block the store had not
//     judged when it was rescanned, another member had); if the store
//     retracted the verdict by a disconnect the stream never saw, the
//     block is stale (the rescan could not retract it); else it is left
//     (auditor prune, then the protocol configured again, publishes
//     nothing about the old generation: as without HA). A block above the
//     protocol's cursor: it is left — the leader has not judged the block
//     for that protocol yet, and when it has, its verdict is published
//     only if the stream does not hold it. Only otherwise (the leader
//     judged the block and made other verdicts: another configuration or
//     version of the rules) is the block stale, retracted and rolled back.
//     So a standby whose backfill is less advanced than its predecessor's
//     never rolls back good blocks.
//   - Below the window, the leader publishes what its own backfill of a
//     protocol made that the stream lacks: from the highest block the
//     stream holds a verdict of the protocol's generation at, up to the
//     protocol's cursor, each verdict unless the ledger holds it live.
//     Every auditor publishes a protocol's verdicts in block order (the
//     follower's and a backfill's go up; a leader publishes below the
//     window before it publishes in it), so the stream holds those below
//     that block already. And while the stream holds no verdict of the
//     generation yet, the leader publishes, first, its rescan's
//     retractions of every verdict the stream holds, in and below the
//     window, before any verdict of its own: a generation's verdicts
//     follow all its rescan's retractions in every outbox and in every
//     takeover, so that once the stream holds one, it holds them all.
//   - From then on, each outbox row is published unless the stream holds
//     its event: a verdict another leader's backfill published is not
//     published again, a rescan's retraction of a verdict not live is not
//     published.
//
// Every member of a group must judge alike: the same protocols, and a
// rescan done in every member's store before any of them runs again
// (stop the group, rescan each, start them). While two members' histories
// of a protocol differ in generation, the leader's wins, with the churn of
// a mixed group (see README.md). The ledger keeps, below the window, about
// a hundred bytes for each verdict the stream holds live.
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
