// Package rules classifies the boxes of protocols built on the User Async
// Emission pattern and checks the invariants of the protocol specification
// (docs/protocol.md), giving each relevant box a verdict. It depends on the
// chain model (package ergo), never on the scanner's internals.
package rules
