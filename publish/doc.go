// Package publish relays verdict events from the database outbox to NATS
// JetStream, exactly once, and defines the event schema.
package publish
