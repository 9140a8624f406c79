package degrade

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// Defaults used for zero fields of TransportSettings.
const (
	DefaultRequestTimeout = 20 * time.Second // discordgo's own client timeout
	DefaultCacheTTL       = 30 * time.Second
	DefaultCacheEntries   = 1000
	DefaultCacheMaxBody   = 1 << 20
	DefaultMaxWaiting     = 1000
)

// CacheHeader is set to "hit" on a response the aggressive cache served.
const CacheHeader = "X-Lifeline-Cache"

// ErrReadOnly is returned (wrapped; http.Client wraps it once more in a
// *url.Error, and discordgo returns that as is) when read-only mode refuses
// a POST, PUT, PATCH or DELETE that was not marked essential. Test for it
// with errors.Is.
var ErrReadOnly = errors.New("read-only mode: mutating request refused")

// ErrShed is returned (wrapped) when reduce_concurrent_requests is active,
// every slot is taken, and the request is PriorityLow or the wait queue is
// full. Test for it with errors.Is.
var ErrShed = errors.New("request shed: too many concurrent requests")

// TransportSettings configures a Transport. The zero value is valid.
type TransportSettings struct {
	// Next sends the requests the Transport lets through. Put lifeline's
	// observing REST transport (core/conn) here, so requests the
	// Transport refuses or serves from its cache never count as Discord's
	// answers. Default: a clone of http.DefaultTransport.
	Next http.RoundTripper
	// Clock ages cache entries. Default: clock.Real.
	Clock clock.Clock
	// Timeouts scales Timeout; increase_timeouts raises it. Default: none
	// (Timeout is used as is).
	Timeouts *Timeouts
	// Timeout bounds each request, from sending it to the end of its
	// response body, after scaling by Timeouts. An http.Client.Timeout
	// shorter than the scaled value still applies, so give the Client no
	// Timeout (or a longer one). Default: DefaultRequestTimeout (20s);
	// negative means no timeout.
	Timeout time.Duration
	// CacheTTL is how long a cached GET response is served. Default:
	// DefaultCacheTTL (30s).
	CacheTTL time.Duration
	// CacheEntries bounds the cache; the least recently used entry goes
	// first. Default: DefaultCacheEntries (1000).
	CacheEntries int
	// CacheMaxBody is the largest response body cached, in bytes.
	// Default: DefaultCacheMaxBody (1 MiB).
	CacheMaxBody int64
	// MaxWaiting bounds the requests waiting for a slot while the
	// concurrency limit is on; more are shed. Default: DefaultMaxWaiting
	// (1000).
	MaxWaiting int
	// IsEssential marks requests as essential by their shape (say,
	// interaction callbacks), in addition to the Essential context.
	// Default: none.
	IsEssential func(*http.Request) bool
}

// Transport is the http.RoundTripper through which the REST-side
// degradation actions act on a discordgo Session's requests:
//
//   - read-only mode (enable_read_only_mode) refuses POST, PUT, PATCH and
//     DELETE with ErrReadOnly, except requests marked Essential;
//   - the aggressive cache (enable_aggressive_caching) answers GETs from a
//     bounded TTL cache and fills it from the responses that pass;
//   - the concurrency limit (reduce_concurrent_requests) admits at most N
//     requests at once: the others wait in priority order (bounded by
//     their context) or, when PriorityLow, fail fast with ErrShed;
//   - every request gets a deadline of Timeout scaled by Timeouts
//     (increase_timeouts).
//
// With every switch off it only adds the deadline. A Transport is safe for
// concurrent use; its switches may flip while requests are in flight.
type Transport struct {
	next        http.RoundTripper
	timeouts    *Timeouts
	timeout     time.Duration
	isEssential func(*http.Request) bool

	readOnly atomic.Bool
	caching  atomic.Bool
	lim      limiter
	cache    *cache

	refused, hits, misses atomic.Uint64
}

// NewTransport returns a Transport with every switch off.
func NewTransport(s TransportSettings) *Transport {
	t := &Transport{next: s.Next, timeouts: s.Timeouts, timeout: s.Timeout, isEssential: s.IsEssential}
	if t.next == nil {
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			t.next = dt.Clone()
		} else {
			t.next = &http.Transport{Proxy: http.ProxyFromEnvironment}
		}
	}
	if t.timeout == 0 {
		t.timeout = DefaultRequestTimeout
	}
	t.lim.maxWaiting = s.MaxWaiting
	if t.lim.maxWaiting <= 0 {
		t.lim.maxWaiting = DefaultMaxWaiting
	}
	t.cache = newCache(clock.Or(s.Clock), s.CacheTTL, s.CacheEntries, s.CacheMaxBody)
	return t
}

// SetReadOnly turns read-only mode on or off.
func (t *Transport) SetReadOnly(on bool) { t.readOnly.Store(on) }

// ReadOnly reports whether read-only mode is on.
func (t *Transport) ReadOnly() bool { return t.readOnly.Load() }

// SetCaching turns the aggressive cache on or off; turning it off empties
// it, so nothing stale is served the next time it turns on.
func (t *Transport) SetCaching(on bool) {
	t.caching.Store(on)
	if !on {
		t.cache.clear()
	}
}

// Caching reports whether the aggressive cache is on.
func (t *Transport) Caching() bool { return t.caching.Load() }

// SetConcurrencyLimit admits at most n requests at once; n <= 0 removes the
// limit and lets every waiting request through. Lowering the limit does not
// cut requests in flight: new ones wait until fewer than n remain.
func (t *Transport) SetConcurrencyLimit(n int) { t.lim.setLimit(n) }

// ConcurrencyLimit returns the limit, 0 when there is none.
func (t *Transport) ConcurrencyLimit() int {
	t.lim.mu.Lock()
	defer t.lim.mu.Unlock()
	return t.lim.limit
}

// TransportStats are a Transport's switches and counters.
type TransportStats struct {
	ReadOnly         bool `json:"read_only"`
	Caching          bool `json:"caching"`
	ConcurrencyLimit int  `json:"concurrency_limit"`
	// InFlight counts requests holding a slot (sent and body not yet
	// closed); Waiting counts requests waiting for one.
	InFlight int `json:"in_flight"`
	Waiting  int `json:"waiting"`
	// Refused counts requests read-only mode refused; Shed those the
	// concurrency limit failed fast.
	Refused uint64 `json:"refused"`
	Shed    uint64 `json:"shed"`
	// CacheHits and CacheMisses count GETs while caching was on;
	// CacheEntries is the cache's size.
	CacheHits    uint64 `json:"cache_hits"`
	CacheMisses  uint64 `json:"cache_misses"`
	CacheEntries int    `json:"cache_entries"`
}

// Stats returns the switches and counters.
func (t *Transport) Stats() TransportStats {
	t.lim.mu.Lock()
	st := TransportStats{
		ConcurrencyLimit: t.lim.limit, InFlight: t.lim.inFlight,
		Waiting: len(t.lim.queues[0]) + len(t.lim.queues[1]), Shed: t.lim.shed,
	}
	t.lim.mu.Unlock()
	st.ReadOnly, st.Caching = t.readOnly.Load(), t.caching.Load()
	st.Refused, st.CacheHits, st.CacheMisses = t.refused.Load(), t.hits.Load(), t.misses.Load()
	st.CacheEntries = t.cache.len()
	return st
}

// CloseIdleConnections closes Next's idle connections, if it has any.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func mutating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// RoundTrip applies the active switches to req and sends it on to Next.
// It does not modify req.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	mut := mutating(req.Method)
	essential := IsEssential(ctx) || (t.isEssential != nil && t.isEssential(req))
	if mut && t.readOnly.Load() && !essential {
		closeRequestBody(req)
		t.refused.Add(1)
		return nil, fmt.Errorf("degrade: %s refused: %w", req.Method, ErrReadOnly)
	}
	cacheable := req.Method == http.MethodGet && t.caching.Load()
	var key string
	var gen uint64
	if cacheable {
		key, gen = cacheKey(req), t.cache.generation()
		if !isFresh(ctx) {
			if resp, ok := t.cache.get(key, req); ok {
				t.hits.Add(1)
				closeRequestBody(req)
				return resp, nil
			}
		}
		t.misses.Add(1)
	}
	prio := PriorityOf(ctx)
	if essential {
		prio = max(prio, PriorityHigh)
	}
	release, err := t.lim.acquire(ctx, prio)
	if err != nil {
		closeRequestBody(req)
		return nil, err
	}
	done := release
	out := req
	if t.timeout > 0 {
		tctx, cancel := context.WithTimeout(ctx, t.timeouts.Scale(t.timeout))
		out = req.WithContext(tctx)
		done = func() { cancel(); release() }
	}
	resp, err := t.next.RoundTrip(out)
	if err != nil {
		done()
		return nil, err
	}
	if mut && resp.StatusCode < 300 {
		t.cache.invalidate(req.URL.Path)
	}
	if cacheable && resp.StatusCode == http.StatusOK && resp.Body != nil {
		body, readErr := io.ReadAll(io.LimitReader(resp.Body, t.cache.maxBody+1))
		if readErr == nil && int64(len(body)) <= t.cache.maxBody {
			_ = resp.Body.Close()
			done()
			t.cache.put(gen, key, req.URL.Path, resp, body)
			resp.Body = io.NopCloser(bytes.NewReader(body))
			resp.ContentLength = int64(len(body))
			return resp, nil
		}
		// Too big to cache, or the read failed: hand back what was read
		// followed by the rest (or the error).
		var rest io.Reader = resp.Body
		if readErr != nil {
			rest = errorReader{readErr}
		}
		resp.Body = &slotBody{r: io.MultiReader(bytes.NewReader(body), rest), c: resp.Body, done: done}
		return resp, nil
	}
	if resp.Body == nil {
		done()
		return resp, nil
	}
	resp.Body = &slotBody{r: resp.Body, c: resp.Body, done: done}
	return resp, nil
}

// slotBody holds a request's slot and deadline until its body is read to
// the end or closed.
type slotBody struct {
	r    io.Reader
	c    io.Closer
	done func()
	once sync.Once
}

func (b *slotBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.once.Do(b.done)
	}
	return n, err
}

func (b *slotBody) Close() error {
	err := b.c.Close()
	b.once.Do(b.done)
	return err
}

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// Priority orders requests waiting for a slot under the concurrency limit.
type Priority int8

// The priorities. PriorityNormal is the zero value, the priority of a
// request whose context sets none.
const (
	// PriorityLow requests never wait: without a free slot they fail at
	// once with ErrShed. Use it for work that can be dropped.
	PriorityLow Priority = -1
	// PriorityNormal requests wait for a slot, after PriorityHigh ones.
	PriorityNormal Priority = 0
	// PriorityHigh requests wait for a slot and get the first free one.
	// Essential requests are at least PriorityHigh.
	PriorityHigh Priority = 1
)

// String returns "low", "normal" or "high".
func (p Priority) String() string {
	switch {
	case p < PriorityNormal:
		return "low"
	case p > PriorityNormal:
		return "high"
	}
	return "normal"
}

type ctxKey int

const (
	priorityKey ctxKey = iota
	essentialKey
	freshKey
)

// WithPriority returns a context whose requests have priority p. With
// discordgo, pass it per call: s.ChannelMessages(id, 50, "", "", "",
// discordgo.WithContext(degrade.WithPriority(ctx, degrade.PriorityLow))).
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey, p)
}

// PriorityOf returns the priority ctx sets: PriorityNormal when it sets
// none, and at least PriorityHigh when ctx is Essential.
func PriorityOf(ctx context.Context) Priority {
	p, _ := ctx.Value(priorityKey).(Priority)
	if IsEssential(ctx) {
		p = max(p, PriorityHigh)
	}
	return p
}

// Essential returns a context whose requests are essential: read-only mode
// lets them through, and they wait for a slot with PriorityHigh. With
// discordgo: s.ChannelMessageSend(id, "…",
// discordgo.WithContext(degrade.Essential(ctx))).
func Essential(ctx context.Context) context.Context {
	return context.WithValue(ctx, essentialKey, true)
}

// IsEssential reports whether ctx was marked with Essential.
func IsEssential(ctx context.Context) bool {
	v, _ := ctx.Value(essentialKey).(bool)
	return v
}

// Fresh returns a context whose GET requests skip the aggressive cache
// (their responses still refresh it).
func Fresh(ctx context.Context) context.Context {
	return context.WithValue(ctx, freshKey, true)
}

func isFresh(ctx context.Context) bool {
	v, _ := ctx.Value(freshKey).(bool)
	return v
}

// limiter admits at most limit holders at once (any number when limit is
// 0), granting freed slots to PriorityHigh waiters first, then
// PriorityNormal ones, each queue in arrival order.
type limiter struct {
	mu         sync.Mutex
	limit      int
	inFlight   int
	queues     [2][]*waiter // 0: high, 1: normal
	maxWaiting int
	shed       uint64
}

type waiter struct {
	ch      chan struct{}
	granted bool
}

func (l *limiter) acquire(ctx context.Context, p Priority) (release func(), err error) {
	l.mu.Lock()
	if l.limit <= 0 || l.inFlight < l.limit {
		l.inFlight++
		l.mu.Unlock()
		return l.releaser(), nil
	}
	limit, inFlight := l.limit, l.inFlight
	if p < PriorityNormal || len(l.queues[0])+len(l.queues[1]) >= l.maxWaiting {
		l.shed++
		l.mu.Unlock()
		return nil, fmt.Errorf("degrade: %s-priority request with %d in flight (limit %d): %w", p, inFlight, limit, ErrShed)
	}
	w := &waiter{ch: make(chan struct{})}
	q := 1
	if p > PriorityNormal {
		q = 0
	}
	l.queues[q] = append(l.queues[q], w)
	l.mu.Unlock()
	select {
	case <-w.ch:
		return l.releaser(), nil
	case <-ctx.Done():
		l.mu.Lock()
		if w.granted {
			l.mu.Unlock()
			l.release()
		} else {
			for i, x := range l.queues[q] {
				if x == w {
					l.queues[q] = append(l.queues[q][:i], l.queues[q][i+1:]...)
					break
				}
			}
			l.mu.Unlock()
		}
		return nil, fmt.Errorf("degrade: waiting for a request slot (limit %d): %w", limit, ctx.Err())
	}
}

// releaser returns a function that frees the slot once.
func (l *limiter) releaser() func() {
	var once sync.Once
	return func() { once.Do(l.release) }
}

func (l *limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	l.grantLocked()
}

func (l *limiter) setLimit(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limit = max(n, 0)
	l.grantLocked()
}

// grantLocked hands free slots to waiters. l.mu is held.
func (l *limiter) grantLocked() {
	for l.limit <= 0 || l.inFlight < l.limit {
		q := 0
		if len(l.queues[0]) == 0 {
			q = 1
		}
		if len(l.queues[q]) == 0 {
			return
		}
		w := l.queues[q][0]
		l.queues[q][0] = nil
		l.queues[q] = l.queues[q][1:]
		w.granted = true
		l.inFlight++
		close(w.ch)
	}
}
