// Package natscoord is the coord.Store of a lifeline fleet on NATS
// JetStream key-value buckets: several lifeline processes connected to one
// NATS server (or cluster) share the identify queue, shard ownership,
// resume states and health through it. Only a process that imports this
// package links the NATS client; the default single-process build does not.
//
// Each coord bucket is a JetStream KV bucket named
// "<BucketPrefix>_<name>" (lifeline_members, lifeline_slots,
// lifeline_state, lifeline_resume), History 1, with the bucket TTL as the
// stream's MaxAge: a value lives TTL after its last write, measured by the
// server, with millisecond precision (the server's minimum MaxAge is
// 100ms). Per-key TTLs (server 2.11+) are not used: they are whole
// seconds, and an Update without a TTL header makes a key permanent.
// Any JetStream-enabled server works; docs/fleet.md recommends 2.11 or
// later.
//
// Store calls map JetStream's answers to coord's sentinels:
//
//	jetstream.ErrKeyNotFound (and deleted keys)   coord.ErrNotFound
//	jetstream.ErrKeyExists                        coord.ErrExists
//	wrong last sequence (revision mismatch)       coord.ErrConflict
//	timeouts, no responders, connection closed    coord.ErrUnavailable (wrapped)
//
// An Update or a Delete at a revision of a key that has expired answers
// ErrConflict (JetStream sees last sequence 0), which coord's callers treat
// like ErrNotFound.
//
// Dial connects with the settings a fleet member wants: reconnect forever,
// retry a failed first connect in the background, so a process started
// before NATS simply waits for it (its identify queue waits too).
package natscoord
