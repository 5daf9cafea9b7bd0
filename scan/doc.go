// Package scan follows an Ergo node block by block: the node client, the
// catch-up and tip-following loop, and fork handling. It depends on the
// chain model (package ergo), never on the rules' internals.
//
// Client is the scanner's only way to the node, and it takes the node's
// word for nothing it can check. Every block and header it returns has
// been decoded and re-derived (ids, Merkle roots, section ids, proof of
// work) and is the one that was asked for; slices of headers are linked
// parent to child. A node that answers anything else gets an *Error of kind
// ErrBadResponse naming the block, and its data goes no further. Failures
// that another attempt may cure (a dropped connection, a timeout, 429,
// 5xx, a corrupted body) are retried with jittered exponential backoff;
// the others (404, other 4xx, an oversized body) are returned at once.
package scan
