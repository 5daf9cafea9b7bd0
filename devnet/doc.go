// Package devnet simulates an Ergo node: it serves the node's REST API over a
// deterministic generated chain whose ids, roots and PoW all verify.
package devnet
