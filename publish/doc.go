// Package publish relays verdict events from the database outbox to NATS
// JetStream, exactly once, and defines the event schema.
//
// # Pieces
//
//   - Encoder builds each event (a Message: JetStream message id, subject,
//     CloudEvents JSON payload). The database calls it inside the block's
//     transaction and writes the result to the outbox, so an event exists
//     exactly when its block committed.
//   - Relay publishes the outbox (a Source) in order with async publishes,
//     a bounded number in flight, and marks rows published as JetStream
//     acknowledges them. NATS down or slow: it backs off and keeps every
//     row; after a restart it resumes from the first row not marked.
//     Republished rows carry the same Nats-Msg-Id, so JetStream drops the
//     copies it already holds (within the stream's duplicate window; at
//     start the relay also marks, without republishing, pending rows it
//     finds at the stream's end).
//   - StartEmbedded runs a NATS server with JetStream in-process (the
//     default, when no external NATS is configured); Connect reaches an
//     external server or cluster; EnsureStream creates or updates the
//     stream.
//
// # Subjects and message ids
//
// With prefix P (default "auditor"), per PROTOCOL.md §6:
//
//	event           subject                                  Nats-Msg-Id
//	verdict         P.<protocol>.<verified|invalid>.<class>  <block>-<box>-<protocol>-<kind>-<connects>
//	retracted       P.<protocol>.retracted.<class>           <block>-<box>-<protocol>-<kind>-retracted-<connects>
//	chain rollback  P.chain.rollback                         <block>-rollback-<connects>
//	report ready    P.report.ready                           report-<name>-<unix ms> (report-<unix ms> unnamed)
//
// <block> and <box> are 64-hex ids, <kind> is "created" (the verdict every
// classified box gets from the block creating it) or "spent" (the
// emission.escaped verdict on an emission box, from the block spending it,
// published as P.<protocol>.invalid.emission), and <connects> is how many
// times the block has been connected: a block connected again after a
// disconnect publishes anew, while a republish of one connection after a
// crash is a duplicate JetStream drops (package ha counts the stream's
// connections instead, which comes to the same for one auditor). The
// protocol name is part of the id because one box can be judged by
// several protocols in one block. A verdict of a protocol whose history
// was begun again (auditor rescan: its generation, BlockRef.Generation,
// above 0) has -g<generation> at the end of its id, and so has its
// retraction: a verdict judged again publishes anew.
//
// # Envelope
//
// Every payload is a CloudEvents 1.0 event in its JSON format:
//
//	specversion      "1.0"
//	id               the message id (above)
//	source           "urn:async-emission-auditor" unless configured
//	type             org.ergoplatform.auditor.verdict.v1, .retracted.v1,
//	                 .chain.rollback.v1 or .report.ready.v1
//	subject          the box id (verdict, retracted), the disconnected block's
//	                 id (rollback) or the report name (report; omitted if none)
//	time             RFC 3339, UTC, milliseconds: the block header's timestamp,
//	                 or the report's time. A payload is a pure function of
//	                 the chain, never of the clock.
//	datacontenttype  "application/json"
//	publisher        extension attributes an HA leader sets (Stamp): its id
//	leaseepoch       and its lease's epoch; absent without HA
//	data             the event's fields, below
//
// Amounts (box value, token amounts) are exact JSON integers up to
// 9223372036854775807: decode them as 64-bit integers, not as doubles.
// Ids and bytes are lowercase hex. Later minor versions may add fields.
//
// # Verdict data
//
//	protocol           the [[protocol]] name
//	kind               "created" or "spent"
//	class              state, funnel, emission, emitted or participant
//	verdict            "verified" or "invalid"
//	reasons            [{"code", "sentence"}], PROTOCOL.md §4's codes; [] when verified
//	box                id, value, tokens [{id, amount}], registers, ergo_tree,
//	                   address (mainnet; "" when the tree has none),
//	                   creation_height, transaction_id and index (where the box
//	                   was created), template_hash {sha256, blake2b256} (the
//	                   tree's template hash in both conventions; absent when
//	                   its constants do not parse)
//	transaction_id     the transaction that created (kind created) or spent
//	                   (kind spent) the box; transaction_index its place in the block
//	block_id, height   the block that made the verdict
//	lineage_id         the async token id of the box's emission lineage, or null
//
// Registers map "R4"… to {"serializedValue": hex, "type": ErgoScript type,
// "value": value} (the sigma package's rendering: Long and BigInt as
// decimal strings, Coll[Byte] as hex, SigmaProp as a tree), or
// {"serializedValue": hex, "error": message} for a register that does not
// decode.
//
// Example (on auditor.demo.invalid.emitted; 64-hex ids shortened):
//
//	{
//	  "specversion": "1.0",
//	  "id": "b1b1…b1b1-91a8…92e1-demo-created-1",
//	  "source": "urn:async-emission-auditor",
//	  "type": "org.ergoplatform.auditor.verdict.v1",
//	  "subject": "91a8…92e1",
//	  "time": "2023-11-14T22:13:20.123Z",
//	  "datacontenttype": "application/json",
//	  "data": {
//	    "protocol": "demo",
//	    "kind": "created",
//	    "class": "emitted",
//	    "verdict": "invalid",
//	    "reasons": [
//	      {"code": "emitted.stale_state",
//	       "sentence": "a required data-input is present but its register does not match (a stale state)"}
//	    ],
//	    "box": {
//	      "id": "91a8…92e1",
//	      "value": 1000000,
//	      "tokens": [{"id": "aaaa…aaaa", "amount": 9223372036854775806}],
//	      "registers": {
//	        "R4": {"serializedValue": "040a", "type": "Int", "value": 5},
//	        "R5": {"serializedValue": "0e03010203", "type": "Coll[Byte]", "value": "010203"}
//	      },
//	      "ergo_tree": "0008cd0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
//	      "address": "9fSgJ7BmUxBQJ454prQDQ7fQMBkXPLaAmDnimgTtjym6FYPHjAV",
//	      "creation_height": 1000000,
//	      "transaction_id": "1111…1111",
//	      "index": 2,
//	      "template_hash": {
//	        "sha256": "1c645d14204aa3fdf225ac63372be88e1e907ff5c54c3be203940de5ed379e5a",
//	        "blake2b256": "516e29a942fd05ed9bb83e739dad977cc44f9f5a59f25f2574372998700e9b06"
//	      }
//	    },
//	    "transaction_id": "1111…1111",
//	    "transaction_index": 3,
//	    "block_id": "b1b1…b1b1",
//	    "height": 1000001,
//	    "lineage_id": "aaaa…aaaa"
//	  }
//	}
//
// # Retracted data
//
// When a block is disconnected, each verdict event it wrote is retracted,
// and so is each verdict event of a protocol from the height a rescan
// judges it again from (Rescinded): the retracted event's data is the
// verdict's data, unchanged, plus
//
//	retracts            the id of the verdict event retracted
//	disconnected_block  {id, height, connects}: the block disconnected
//	                    (absent for a rescan's)
//	rescan              {protocol, from_height, generation}: the rescan that
//	                    retracts it (absent for a disconnect's)
//
// Example (on auditor.demo.retracted.emitted, type
// org.ergoplatform.auditor.retracted.v1, id
// "b1b1…b1b1-91a8…92e1-demo-created-retracted-1", subject and time as the
// verdict's; data as above, then):
//
//	"retracts": "b1b1…b1b1-91a8…92e1-demo-created-1",
//	"disconnected_block": {"id": "b1b1…b1b1", "height": 1000001, "connects": 1}
//
// # Chain rollback data
//
// One event for each block a fork disconnects (the // notes are not part of
// the payload):
//
//	{
//	  "specversion": "1.0",
//	  "id": "b1b1…b1b1-rollback-1",
//	  "source": "urn:async-emission-auditor",
//	  "type": "org.ergoplatform.auditor.chain.rollback.v1",
//	  "subject": "b1b1…b1b1",
//	  "time": "2023-11-14T22:13:20.123Z",
//	  "datacontenttype": "application/json",
//	  "data": {
//	    "fork_id": "f0f0…f0f0",        // the last block both branches hold
//	    "fork_height": 999999,
//	    "depth": 2,                     // blocks disconnected down to the fork
//	    "old_tip": "b1b1…b1b1",
//	    "old_height": 1000001,
//	    "new_tip": "c2c2…c2c2",
//	    "new_height": 1000002,
//	    "block": {"id": "b1b1…b1b1", "height": 1000001, "connects": 1}
//	  }
//	}
//
// # Report ready data
//
// The auditor names its reports "audit"; summary is the report's summary
// object (report.Summary: period, tip, conservation and verdict counts),
// and files are the paths the report was written to.
//
//	{
//	  "specversion": "1.0",
//	  "id": "report-audit-1700003600000",
//	  "source": "urn:async-emission-auditor",
//	  "type": "org.ergoplatform.auditor.report.ready.v1",
//	  "subject": "audit",
//	  "time": "2023-11-14T23:13:20.000Z",
//	  "datacontenttype": "application/json",
//	  "data": {
//	    "name": "audit",
//	    "time": "2023-11-14T23:13:20.000Z",
//	    "summary": {"time": "2023-11-14T23:13:20Z", "tip_height": 1000002, "conserved": true, …},
//	    "files": ["/var/lib/auditor/reports/report-20231114T231320Z.json",
//	              "/var/lib/auditor/reports/report-20231114T231320Z.html"]
//	  }
//	}
//
// DecodeEvent checks an envelope; Event's Verdict, Retraction, Rollback
// and Report methods decode the data.
package publish
