package coord

import (
	"context"
	"errors"
	"strings"
	"time"
)

// ErrNotFound is returned by KV.Get, KV.Update and KV.Delete when the key
// has no live value (never written, deleted, or expired by the bucket's TTL).
var ErrNotFound = errors.New("coord: key not found")

// ErrExists is returned by KV.Create when the key already has a live value.
var ErrExists = errors.New("coord: key exists")

// ErrConflict is returned by KV.Update and KV.Delete when the key's current
// revision is not the one the caller read: someone else wrote it in between.
var ErrConflict = errors.New("coord: revision mismatch")

// ErrUnavailable is returned (wrapped, with the backend's own error) when
// the store cannot be reached or did not answer in time. Callers that must
// not act without the store (the identify queue) wait and retry; callers
// that only report (the health view) return it.
var ErrUnavailable = errors.New("coord: store unavailable")

// ErrBucketConfig is returned by Store.Bucket when the bucket exists with
// another TTL than the one asked for: two processes of one fleet disagree
// on LeaseTTL or the identify window, which would break the fleet's rules.
var ErrBucketConfig = errors.New("coord: bucket exists with another configuration")

// ErrClosed is returned by every method of a closed coordinator or store.
var ErrClosed = errors.New("coord: closed")

// Entry is one key's live value.
type Entry struct {
	// Key is the key, without the bucket.
	Key string
	// Value is the stored bytes; callers must not modify them.
	Value []byte
	// Revision identifies this write: Update and Delete take it to make
	// sure nobody wrote in between (compare-and-swap). Revisions grow
	// within a bucket.
	Revision uint64
}

// KV is one bucket of a key-value store shared by the fleet: the small
// subset of NATS JetStream KV that coordination needs. Keys are made of
// letters, digits, '-', '_', '=' and '.'; values are small (a few KB).
// Every method is safe for concurrent use. Errors are ErrNotFound,
// ErrExists, ErrConflict, or wrap ErrUnavailable (or ctx's error).
//
// A bucket may have a TTL (Store.Bucket): a value then disappears TTL
// after its last write unless it is written again (Update refreshes it).
type KV interface {
	// Get returns the key's live value.
	Get(ctx context.Context, key string) (Entry, error)
	// Create writes the key only if it has no live value; it returns the
	// new revision.
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	// Update writes the key only if its live value has revision rev; it
	// returns the new revision.
	Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	// Put writes the key unconditionally and returns the new revision.
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	// Delete removes the key; with rev > 0 only if its live value has
	// that revision. Deleting a missing key with rev == 0 is not an error.
	Delete(ctx context.Context, key string, rev uint64) error
	// List returns the live entries whose key starts with prefix ("" for
	// all), sorted by key.
	List(ctx context.Context, prefix string) ([]Entry, error)
}

// Store opens the buckets of one fleet. The in-memory MemoryStore serves
// tests and one-machine simulations; core/coord/natscoord serves real
// fleets with NATS JetStream.
type Store interface {
	// Bucket opens (creating it if needed) the bucket name with the given
	// TTL (0: values never expire). It returns an error wrapping
	// ErrBucketConfig when the bucket exists with another TTL.
	Bucket(ctx context.Context, name string, ttl time.Duration) (KV, error)
}

// validKey reports whether key is a valid KV key: non-empty, made of
// letters, digits and "-_=.", not starting or ending with '.' and without
// empty segments (NATS subject rules).
func validKey(key string) bool {
	if key == "" || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") || strings.Contains(key, "..") {
		return false
	}
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '-', r == '_', r == '=', r == '.':
		default:
			return false
		}
	}
	return true
}

// ValidKey reports whether key may be used as a KV key (letters, digits,
// "-_=." and no empty dot-separated segment). Process IDs become part of
// keys, so they follow the same rule.
func ValidKey(key string) bool { return validKey(key) }

// ValidBucketName reports whether name may name a bucket: letters,
// digits, '-' and '_' (NATS bucket names).
func ValidBucketName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}
