package coord

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// MemoryStore is a Store held in this process's memory, with TTLs measured
// on an injected clock. Several Fleet coordinators sharing one MemoryStore
// behave like several processes sharing one NATS server, which is how the
// fleet logic is tested with a fake clock. SetAvailable(false) makes every
// call fail with ErrUnavailable, as if the server were unreachable.
type MemoryStore struct {
	clk clock.Clock

	mu          sync.Mutex
	buckets     map[string]*memBucket
	unavailable bool
}

// NewMemoryStore returns an empty store timed by clk (nil: clock.Real).
func NewMemoryStore(clk clock.Clock) *MemoryStore {
	return &MemoryStore{clk: clock.Or(clk), buckets: map[string]*memBucket{}}
}

// SetAvailable switches the store between reachable (true, the start)
// and unreachable (false): while unreachable, every KV call returns an
// error wrapping ErrUnavailable and changes nothing.
func (s *MemoryStore) SetAvailable(ok bool) {
	s.mu.Lock()
	s.unavailable = !ok
	s.mu.Unlock()
}

func (s *MemoryStore) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unavailable {
		return fmt.Errorf("coord: memory store switched off: %w", ErrUnavailable)
	}
	return nil
}

// Bucket implements Store.
func (s *MemoryStore) Bucket(ctx context.Context, name string, ttl time.Duration) (KV, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !ValidBucketName(name) {
		return nil, fmt.Errorf("coord: bucket name %q: only letters, digits, '-' and '_'", name)
	}
	if ttl < 0 {
		return nil, fmt.Errorf("coord: bucket %q: negative TTL %v", name, ttl)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[name]
	if !ok {
		b = &memBucket{store: s, name: name, ttl: ttl, entries: map[string]memEntry{}}
		s.buckets[name] = b
		return b, nil
	}
	if b.ttl != ttl {
		return nil, fmt.Errorf("coord: bucket %q has TTL %v, asked for %v: %w", name, b.ttl, ttl, ErrBucketConfig)
	}
	return b, nil
}

// listAll stands for "no key" in begin (List validates no key).
const listAll = "\x00list"

type memEntry struct {
	value   []byte
	rev     uint64
	written time.Time
}

type memBucket struct {
	store *MemoryStore
	name  string
	ttl   time.Duration

	mu      sync.Mutex
	seq     uint64
	entries map[string]memEntry
	// onWrite, when set (tests), sees every write with its time and
	// whether it created the key (it had no live value), under the
	// bucket's lock.
	onWrite func(key string, at time.Time, created bool)
}

// live returns key's entry if it exists and has not expired; it drops an
// expired one. b.mu must be held.
func (b *memBucket) live(key string) (memEntry, bool) {
	e, ok := b.entries[key]
	if !ok {
		return memEntry{}, false
	}
	if b.ttl > 0 && !b.store.clk.Now().Before(e.written.Add(b.ttl)) {
		delete(b.entries, key)
		return memEntry{}, false
	}
	return e, true
}

func (b *memBucket) write(key string, value []byte) uint64 {
	_, existed := b.live(key)
	b.seq++
	now := b.store.clk.Now()
	b.entries[key] = memEntry{value: slices.Clone(value), rev: b.seq, written: now}
	if b.onWrite != nil {
		b.onWrite(key, now, !existed)
	}
	return b.seq
}

func (b *memBucket) begin(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key != listAll && !validKey(key) {
		return fmt.Errorf("coord: bucket %s: invalid key %q", b.name, key)
	}
	return b.store.check()
}

func (b *memBucket) Get(ctx context.Context, key string) (Entry, error) {
	if err := b.begin(ctx, key); err != nil {
		return Entry{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.live(key)
	if !ok {
		return Entry{}, fmt.Errorf("coord: bucket %s key %s: %w", b.name, key, ErrNotFound)
	}
	return Entry{Key: key, Value: e.value, Revision: e.rev}, nil
}

func (b *memBucket) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := b.begin(ctx, key); err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.live(key); ok {
		return 0, fmt.Errorf("coord: bucket %s key %s: %w", b.name, key, ErrExists)
	}
	return b.write(key, value), nil
}

func (b *memBucket) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if err := b.begin(ctx, key); err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.live(key)
	if !ok {
		return 0, fmt.Errorf("coord: bucket %s key %s: %w", b.name, key, ErrNotFound)
	}
	if e.rev != rev {
		return 0, fmt.Errorf("coord: bucket %s key %s is at revision %d, not %d: %w", b.name, key, e.rev, rev, ErrConflict)
	}
	return b.write(key, value), nil
}

func (b *memBucket) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := b.begin(ctx, key); err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.write(key, value), nil
}

func (b *memBucket) Delete(ctx context.Context, key string, rev uint64) error {
	if err := b.begin(ctx, key); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.live(key)
	if rev == 0 {
		delete(b.entries, key)
		return nil
	}
	if !ok {
		return fmt.Errorf("coord: bucket %s key %s: %w", b.name, key, ErrNotFound)
	}
	if e.rev != rev {
		return fmt.Errorf("coord: bucket %s key %s is at revision %d, not %d: %w", b.name, key, e.rev, rev, ErrConflict)
	}
	delete(b.entries, key)
	return nil
}

func (b *memBucket) List(ctx context.Context, prefix string) ([]Entry, error) {
	if err := b.begin(ctx, listAll); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Entry
	for k := range b.entries {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if e, ok := b.live(k); ok {
			out = append(out, Entry{Key: k, Value: e.value, Revision: e.rev})
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
