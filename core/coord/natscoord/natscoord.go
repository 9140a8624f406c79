package natscoord

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lifeline-bot/lifeline/core/coord"
)

// MinTTL is the shortest bucket TTL NATS JetStream accepts (a stream's
// MaxAge): Bucket refuses shorter ones with coord.ErrBucketConfig.
const MinTTL = 100 * time.Millisecond

// Options configures a Store. The zero value is valid.
type Options struct {
	// BucketPrefix starts every bucket's name: "<prefix>_members". Two
	// bots sharing one NATS server need two prefixes. Default:
	// "lifeline".
	BucketPrefix string
	// Replicas is each bucket's replica count when this process creates
	// it: 3 on a 3-node cluster survives the loss of one node. Default: 1.
	Replicas int
	// Memory keeps the buckets in the servers' memory instead of on disk:
	// faster, but a full cluster restart forgets resume states and the
	// budget. Default: false (file storage).
	Memory bool
	// Timeout bounds the JetStream calls that open a bucket. Default: 5s.
	Timeout time.Duration
}

// Store is a coord.Store on NATS JetStream. It does not own the
// connection: the caller closes it after the coordinators are done.
type Store struct {
	js   jetstream.JetStream
	opts Options
}

// New returns a Store using nc.
func New(nc *nats.Conn, opts Options) (*Store, error) {
	if nc == nil {
		return nil, errors.New("natscoord: no NATS connection")
	}
	if opts.BucketPrefix == "" {
		opts.BucketPrefix = "lifeline"
	}
	if !coord.ValidBucketName(opts.BucketPrefix) {
		return nil, fmt.Errorf("natscoord: bucket prefix %q: only letters, digits, '-' and '_'", opts.BucketPrefix)
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natscoord: JetStream context: %w", err)
	}
	return &Store{js: js, opts: opts}, nil
}

// Dial connects to url (a comma-separated list of servers is allowed)
// for a fleet member: it reconnects forever, and a first connect that
// fails is retried in the background, so Dial succeeds while NATS is still
// down. name names the connection in the server's monitoring.
func Dial(url, name string, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("natscoord: connect to %s: %w", url, err)
	}
	return nc, nil
}

// BucketName returns the JetStream bucket name of coord bucket name.
func (s *Store) BucketName(name string) string { return s.opts.BucketPrefix + "_" + name }

// Bucket implements coord.Store: it binds to the bucket, creating it when
// missing, and checks its TTL.
func (s *Store) Bucket(ctx context.Context, name string, ttl time.Duration) (coord.KV, error) {
	if !coord.ValidBucketName(name) {
		return nil, fmt.Errorf("natscoord: bucket name %q: only letters, digits, '-' and '_'", name)
	}
	if ttl < 0 {
		return nil, fmt.Errorf("natscoord: bucket %q: negative TTL %v", name, ttl)
	}
	if ttl > 0 && ttl < MinTTL {
		return nil, fmt.Errorf("natscoord: bucket %q: TTL %v is below %v, the shortest NATS expires values after (raise the lease TTL or the identify window): %w",
			name, ttl, MinTTL, coord.ErrBucketConfig)
	}
	full := s.BucketName(name)
	kv, err := s.open(ctx, full, name, ttl)
	if err != nil {
		return nil, err
	}
	return &bucket{s: s, kv: kv, name: full, short: name, ttl: ttl}, nil
}

// open binds to the bucket full, creating it when missing, and checks its
// TTL.
func (s *Store) open(ctx context.Context, full, name string, ttl time.Duration) (jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	kv, err := s.js.KeyValue(ctx, full)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		storage := jetstream.FileStorage
		if s.opts.Memory {
			storage = jetstream.MemoryStorage
		}
		kv, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      full,
			Description: "lifeline fleet coordination: " + name,
			History:     1,
			TTL:         ttl,
			Storage:     storage,
			Replicas:    s.opts.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Another process created it in between.
			kv, err = s.js.KeyValue(ctx, full)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natscoord: open bucket %s: %w", full, unavailable(err))
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("natscoord: bucket %s status: %w", full, unavailable(err))
	}
	if st.TTL() != ttl {
		return nil, fmt.Errorf("natscoord: bucket %s has TTL %v, this process wants %v (check LeaseTTL and the identify window across the fleet): %w",
			full, st.TTL(), ttl, coord.ErrBucketConfig)
	}
	return kv, nil
}

// unavailable wraps err with coord.ErrUnavailable unless it is a caller's
// mistake JetStream reported.
func unavailable(err error) error {
	if errors.Is(err, jetstream.ErrInvalidKey) || errors.Is(err, jetstream.ErrInvalidBucketName) {
		return err
	}
	// The server answered and refused: a configuration it will refuse
	// again, not an outage (503 is JetStream not ready yet).
	if apiErr, ok := errors.AsType[*jetstream.APIError](err); ok && apiErr.Code != 503 {
		return err
	}
	return fmt.Errorf("%w: %w", coord.ErrUnavailable, err)
}

// bucket is one coord.KV. When a call fails while the connection is up,
// the bucket may be gone (a server restarted with memory storage, a new
// cluster): revive then binds to it again, creating it if needed, at most
// once per reviveEvery, so the fleet recovers without a restart.
type bucket struct {
	s     *Store
	name  string // full JetStream name
	short string
	ttl   time.Duration

	mu         sync.Mutex
	kv         jetstream.KeyValue
	stream     jetstream.Stream // the bucket's stream, once complete needed it
	lastRevive time.Time
}

const reviveEvery = time.Second

func (b *bucket) current() jetstream.KeyValue {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.kv
}

func (b *bucket) revive(ctx context.Context) {
	b.mu.Lock()
	if time.Since(b.lastRevive) < reviveEvery {
		b.mu.Unlock()
		return
	}
	b.lastRevive = time.Now()
	b.mu.Unlock()
	if nc := b.s.js.Conn(); nc == nil || !nc.IsConnected() {
		return
	}
	kv, err := b.s.open(context.WithoutCancel(ctx), b.name, b.short, b.ttl)
	if err != nil {
		return
	}
	b.mu.Lock()
	b.kv, b.stream = kv, nil
	b.mu.Unlock()
}

func (b *bucket) check(key string) error {
	if !coord.ValidKey(key) {
		return fmt.Errorf("natscoord: bucket %s: invalid key %q", b.name, key)
	}
	return nil
}

func (b *bucket) fail(ctx context.Context, op, key string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return fmt.Errorf("natscoord: %s %s/%s: %w", op, b.name, key, coord.ErrNotFound)
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongLastSeq(err):
		if op == "create" {
			return fmt.Errorf("natscoord: %s %s/%s: %w", op, b.name, key, coord.ErrExists)
		}
		return fmt.Errorf("natscoord: %s %s/%s: %w", op, b.name, key, coord.ErrConflict)
	case errors.Is(err, jetstream.ErrKeyExists):
		return fmt.Errorf("natscoord: %s %s/%s: %w", op, b.name, key, coord.ErrExists)
	}
	err = unavailable(err)
	if errors.Is(err, coord.ErrUnavailable) {
		b.revive(ctx)
	}
	return fmt.Errorf("natscoord: %s %s/%s: %w", op, b.name, key, err)
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

func (b *bucket) Get(ctx context.Context, key string) (coord.Entry, error) {
	if err := b.check(key); err != nil {
		return coord.Entry{}, err
	}
	e, err := b.current().Get(ctx, key)
	if err != nil {
		return coord.Entry{}, b.fail(ctx, "get", key, err)
	}
	return coord.Entry{Key: key, Value: e.Value(), Revision: e.Revision()}, nil
}

func (b *bucket) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := b.check(key); err != nil {
		return 0, err
	}
	rev, err := b.current().Create(ctx, key, value)
	if err != nil {
		return 0, b.fail(ctx, "create", key, err)
	}
	return rev, nil
}

func (b *bucket) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if err := b.check(key); err != nil {
		return 0, err
	}
	nrev, err := b.current().Update(ctx, key, value, rev)
	if err != nil {
		return 0, b.fail(ctx, "update", key, err)
	}
	return nrev, nil
}

func (b *bucket) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := b.check(key); err != nil {
		return 0, err
	}
	rev, err := b.current().Put(ctx, key, value)
	if err != nil {
		return 0, b.fail(ctx, "put", key, err)
	}
	return rev, nil
}

func (b *bucket) Delete(ctx context.Context, key string, rev uint64) error {
	if err := b.check(key); err != nil {
		return err
	}
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	if err := b.current().Delete(ctx, key, opts...); err != nil {
		return b.fail(ctx, "delete", key, err)
	}
	return nil
}

// List reads the bucket's current values through a watcher, which
// delivers every live key and then a nil entry, and then completes them
// from the stream's subjects (complete).
//
// The watcher's nil is not always the end of the current values: while
// the listed keys are being written, the consumer may report nothing
// pending, or the watcher may count as many entries as were pending at
// its start, before every key was delivered (six keys each written every
// millisecond: about one listing in ten missed keys, one of them five of
// the six). A fleet's heartbeats are such writes, and a process missing
// from a listing looks dead to its leader.
func (b *bucket) List(ctx context.Context, prefix string) ([]coord.Entry, error) {
	filter := ">"
	if prefix != "" && strings.HasSuffix(prefix, ".") && coord.ValidKey(strings.TrimSuffix(prefix, ".")) {
		filter = prefix + ">"
	}
	kv := b.current()
	// Deletes are delivered too: a key deleted after its value was
	// delivered is left out.
	w, err := kv.Watch(ctx, filter)
	if err != nil {
		return nil, b.fail(ctx, "list", prefix+"*", err)
	}
	defer func() { _ = w.Stop() }()
	got := map[string]coord.Entry{}
read:
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("natscoord: list %s/%s*: watcher closed: %w", b.name, prefix, coord.ErrUnavailable)
			}
			if e == nil {
				break read
			}
			if !strings.HasPrefix(e.Key(), prefix) {
				continue
			}
			if e.Operation() == jetstream.KeyValuePut {
				got[e.Key()] = coord.Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision()}
			} else {
				delete(got, e.Key())
			}
		case <-ctx.Done():
			return nil, b.fail(ctx, "list", prefix+"*", ctx.Err())
		}
	}
	if err := b.complete(ctx, kv, filter, prefix, got); err != nil {
		return nil, err
	}
	out := make([]coord.Entry, 0, len(got))
	for _, e := range got {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b coord.Entry) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// complete adds to got every key under prefix that has a value in the
// bucket's stream now and that the watcher did not deliver: the stream's
// subjects (one request) list every key with a message, a value or a
// delete marker, and each missing one is read. A key deleted or expired
// meanwhile is left out. So a key that has a value from before List began
// until it returns is always in the result.
func (b *bucket) complete(ctx context.Context, kv jetstream.KeyValue, filter, prefix string, got map[string]coord.Entry) error {
	pre := "$KV." + b.name + "."
	b.mu.Lock()
	st := b.stream
	b.mu.Unlock()
	if st == nil {
		var err error
		if st, err = b.s.js.Stream(ctx, "KV_"+b.name); err != nil {
			return b.fail(ctx, "list", prefix+"*", err)
		}
		b.mu.Lock()
		b.stream = st
		b.mu.Unlock()
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(pre+filter))
	if err != nil {
		return b.fail(ctx, "list", prefix+"*", err)
	}
	for subj := range info.State.Subjects {
		key := strings.TrimPrefix(subj, pre)
		if _, ok := got[key]; ok || !strings.HasPrefix(key, prefix) {
			continue
		}
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			continue
		case err != nil:
			return b.fail(ctx, "list", prefix+"*", err)
		}
		got[key] = coord.Entry{Key: key, Value: e.Value(), Revision: e.Revision()}
	}
	return nil
}
