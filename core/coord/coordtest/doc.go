// Package coordtest checks that a coord.Store behaves as the fleet logic in
// core/coord expects: create-if-absent, compare-and-swap updates and
// deletes, prefix listing, bucket TTLs, and the sentinel errors. The
// in-memory store and the NATS JetStream store run the same suite, so the
// protocol tested on one with a fake clock holds on the other.
package coordtest
