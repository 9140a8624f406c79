package degrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/discordtest"
)

const api = "https://discord.com/api/v10" // sent to the fake by its Transport

// newFakeDiscord starts the fake Discord on clk (the wall clock when nil),
// with rate limits out of the way.
func newFakeDiscord(t *testing.T, clk clock.Clock) *discordtest.Server {
	t.Helper()
	srv, err := discordtest.NewServer(discordtest.Options{Clock: clk, RESTBucketLimit: 1 << 20, GlobalLimit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// counting sits between the Transport and the fake: it records every
// request that got past the Transport and the most in flight at once.
type counting struct {
	next http.RoundTripper

	mu     sync.Mutex
	seen   []string // "METHOD path?query"
	inside int
	max    int
}

func (c *counting) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	uri := strings.TrimPrefix(strings.TrimPrefix(req.URL.RequestURI(), "/api/v10"), "/api/v9")
	c.seen = append(c.seen, req.Method+" "+uri)
	c.inside++
	c.max = max(c.max, c.inside)
	c.mu.Unlock()
	resp, err := c.next.RoundTrip(req)
	c.mu.Lock()
	c.inside--
	c.mu.Unlock()
	return resp, err
}

func (c *counting) requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.seen)
}

func (c *counting) maxInFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max
}

// restClient talks to the fake through a degrade Transport with a real
// http.Client, as discordgo does.
type restClient struct {
	t     *testing.T
	srv   *discordtest.Server
	c     *http.Client
	count *counting
}

func newRESTClient(t *testing.T, srv *discordtest.Server, s TransportSettings) (*restClient, *Transport) {
	t.Helper()
	cnt := &counting{next: srv.Transport()}
	s.Next = cnt
	tr := NewTransport(s)
	return &restClient{t: t, srv: srv, c: &http.Client{Transport: tr}, count: cnt}, tr
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (rc *restClient) do(ctx context.Context, method, path, body string) (reply, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, api+path, r)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Authorization", "Bot "+rc.srv.Token())
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := rc.c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}, err
}

// must is do for requests that must succeed with 200.
func (rc *restClient) must(ctx context.Context, method, path, body string) reply {
	rc.t.Helper()
	r, err := rc.do(ctx, method, path, body)
	if err != nil || r.status != http.StatusOK {
		rc.t.Fatalf("%s %s: %v %d %s", method, path, err, r.status, r.body)
	}
	return r
}

func (rc *restClient) post(ctx context.Context, channel, content string) (reply, error) {
	return rc.do(ctx, http.MethodPost, "/channels/"+channel+"/messages", fmt.Sprintf(`{"content":%q}`, content))
}

func messageOf(t *testing.T, r reply) discordtest.Message {
	t.Helper()
	var m discordtest.Message
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("decoding %q: %v", r.body, err)
	}
	return m
}

func TestEnableReadOnlyMode(t *testing.T) {
	ctx := context.Background()
	srv := newFakeDiscord(t, nil)
	rc, tr := newRESTClient(t, srv, TransportSettings{})
	ch := srv.Guilds()[0].ChannelID
	m := messageOf(t, rc.must(ctx, http.MethodPost, "/channels/"+ch+"/messages", `{"content":"before"}`))

	d := newDriver(t, EnableReadOnlyMode(tr))
	d.on()
	if !tr.ReadOnly() {
		t.Fatal("read-only mode not on")
	}
	tests := []struct{ method, path, body string }{
		{http.MethodPost, "/channels/" + ch + "/messages", `{"content":"refused"}`},
		{http.MethodPatch, "/channels/" + ch + "/messages/" + m.ID, `{"content":"refused"}`},
		{http.MethodPut, "/channels/" + ch + "/pins/" + m.ID, ""},
		{http.MethodDelete, "/channels/" + ch + "/messages/" + m.ID, ""},
	}
	before := len(rc.count.requests())
	for _, tc := range tests {
		_, err := rc.do(ctx, tc.method, tc.path, tc.body)
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s while read-only: error %v, want ErrReadOnly", tc.method, err)
		}
		var ue *url.Error // what net/http wraps it in
		if !errors.As(err, &ue) {
			t.Errorf("%s: error %T is not a *url.Error", tc.method, err)
		}
	}
	if got := rc.count.requests()[before:]; len(got) != 0 {
		t.Fatalf("refused requests reached Discord: %q", got)
	}
	// Reads go through; an essential write goes through.
	rc.must(ctx, http.MethodGet, "/users/@me", "")
	if r, err := rc.post(Essential(ctx), ch, "essential"); err != nil || r.status != http.StatusOK {
		t.Fatalf("essential POST: %v %+v", err, r)
	}
	if st := tr.Stats(); st.Refused != uint64(len(tests)) || !st.ReadOnly {
		t.Fatalf("stats = %+v", st)
	}

	d.off()
	if r, err := rc.post(ctx, ch, "after"); err != nil || r.status != http.StatusOK {
		t.Fatalf("POST after rollback: %v %+v", err, r)
	}
	// The fake saw exactly the writes that were let through.
	waitFor(t, "the ledger", func() bool { return len(srv.Ledger().REST()) == len(rc.count.requests()) })
	var posts int
	for _, r := range srv.Ledger().REST() {
		if r.Method == http.MethodPost {
			posts++
		}
	}
	if posts != 3 {
		t.Fatalf("the fake got %d POSTs, want 3 (before, essential, after)", posts)
	}
}

func TestReadOnlyIsEssentialHook(t *testing.T) {
	srv := newFakeDiscord(t, nil)
	rc, tr := newRESTClient(t, srv, TransportSettings{IsEssential: func(r *http.Request) bool {
		return strings.HasSuffix(r.URL.Path, "/callback") || strings.Contains(r.URL.Path, "/channels/"+srv.Guilds()[1].ChannelID+"/")
	}})
	tr.SetReadOnly(true)
	ctx := context.Background()
	if _, err := rc.post(ctx, srv.Guilds()[0].ChannelID, "x"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("ordinary write: %v", err)
	}
	if r, err := rc.post(ctx, srv.Guilds()[1].ChannelID, "x"); err != nil || r.status != http.StatusOK {
		t.Fatalf("write the hook marks essential: %v %+v", err, r)
	}
}

func TestEnableAggressiveCaching(t *testing.T) {
	ctx := context.Background()
	srv := newFakeDiscord(t, nil)
	clk := clock.NewFake(time.Time{})
	rc, tr := newRESTClient(t, srv, TransportSettings{Clock: clk, CacheTTL: 30 * time.Second, CacheEntries: 2})
	ch := srv.Guilds()[0].ChannelID
	m := messageOf(t, rc.must(ctx, http.MethodPost, "/channels/"+ch+"/messages", `{"content":"v1"}`))
	path := "/channels/" + ch + "/messages/" + m.ID
	sent := func() int { // GETs of the message that reached Discord
		n := 0
		for _, r := range rc.count.requests() {
			if r == "GET "+path {
				n++
			}
		}
		return n
	}
	get := func(ctx context.Context, wantContent string, wantHit bool) reply {
		t.Helper()
		r := rc.must(ctx, http.MethodGet, path, "")
		if got := messageOf(t, r).Content; got != wantContent {
			t.Fatalf("content %q, want %q", got, wantContent)
		}
		if hit := r.header.Get(CacheHeader) == "hit"; hit != wantHit {
			t.Fatalf("cache hit = %v, want %v", hit, wantHit)
		}
		return r
	}

	d := newDriver(t, EnableAggressiveCaching(tr))
	d.on()
	miss := get(ctx, "v1", false)
	hit := get(ctx, "v1", true)
	get(ctx, "v1", true)
	if sent() != 1 {
		t.Fatalf("%d GETs reached Discord, want 1", sent())
	}
	if miss.header.Get("X-RateLimit-Remaining") == "" || hit.header.Get("X-RateLimit-Remaining") != "" {
		t.Fatal("a cached answer must not replay rate-limit headers")
	}
	// A successful write to the resource invalidates it.
	rc.must(ctx, http.MethodPatch, path, `{"content":"v2"}`)
	get(ctx, "v2", false)
	get(ctx, "v2", true)
	// Entries expire after the TTL (the Transport's clock).
	clk.Advance(29 * time.Second)
	get(ctx, "v2", true)
	clk.Advance(time.Second)
	get(ctx, "v2", false)
	// Fresh skips the cache.
	get(Fresh(ctx), "v2", false)
	if sent() != 4 {
		t.Fatalf("%d GETs reached Discord, want 4", sent())
	}
	// Bounded: the least recently used entry goes.
	rc.must(ctx, http.MethodGet, "/users/@me", "")
	rc.must(ctx, http.MethodGet, "/gateway/bot", "")
	if st := tr.Stats(); st.CacheEntries != 2 || !st.Caching || st.CacheHits != 4 {
		t.Fatalf("stats = %+v", st)
	}
	get(ctx, "v2", false) // evicted

	d.off()
	if st := tr.Stats(); st.CacheEntries != 0 || st.Caching {
		t.Fatalf("after rollback: %+v", st)
	}
	before := sent()
	get(ctx, "v2", false)
	get(ctx, "v2", false)
	if sent() != before+2 {
		t.Fatalf("after rollback every GET must reach Discord")
	}
}

func TestCacheKeepsCredentialsApart(t *testing.T) {
	srv := newFakeDiscord(t, nil)
	rc, tr := newRESTClient(t, srv, TransportSettings{})
	tr.SetCaching(true)
	ctx := context.Background()
	rc.must(ctx, http.MethodGet, "/users/@me", "")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api+"/users/@me", nil)
	req.Header.Set("Authorization", "Bot another-token")
	resp, err := rc.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(CacheHeader) != "" {
		t.Fatalf("another token got %d (cache %q): answers must not be shared", resp.StatusCode, resp.Header.Get(CacheHeader))
	}
}

func TestReduceConcurrentRequests(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Time{})
	srv := newFakeDiscord(t, clk)
	// No deadline: requests wait on the fake's clock, which only this test moves.
	rc, tr := newRESTClient(t, srv, TransportSettings{Timeout: -1})
	if err := srv.RESTLatency(time.Second, time.Hour); err != nil {
		t.Fatal(err)
	}
	base := clk.Waiters()

	var finished atomic.Int32
	var wg sync.WaitGroup
	launch := func(ctx context.Context, name string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := rc.do(ctx, http.MethodGet, "/users/@me?n="+name, ""); err != nil {
				t.Errorf("request %s: %v", name, err)
			}
			finished.Add(1)
		}()
	}
	// drain moves the fake's time until n requests have finished, each
	// round once the fake holds k of them.
	drain := func(n int32, k int) {
		t.Helper()
		for round := 0; finished.Load() < n; round++ {
			if round > 20 {
				t.Fatal("requests do not finish")
			}
			left := int(n - finished.Load())
			hold := min(k, left)
			if !clk.BlockUntil(base+hold, ioTimeout) {
				t.Fatalf("the fake never held %d requests", hold)
			}
			if got := clk.Waiters() - base; got > k {
				t.Fatalf("the fake holds %d requests, limit %d", got, k)
			}
			was := finished.Load()
			clk.Advance(time.Second)
			waitFor(t, "a round of requests", func() bool { return finished.Load() >= was+int32(hold) })
		}
	}

	d := newDriver(t, ReduceConcurrentRequests(tr, 2))
	d.on()
	for i := range 5 {
		launch(ctx, fmt.Sprint(i))
	}
	waitFor(t, "2 in flight and 3 waiting", func() bool {
		st := tr.Stats()
		return st.InFlight == 2 && st.Waiting == 3 && clk.Waiters() == base+2
	})
	// Low priority fails fast.
	if _, err := rc.do(WithPriority(ctx, PriorityLow), http.MethodGet, "/users/@me?n=low", ""); !errors.Is(err, ErrShed) {
		t.Fatalf("low-priority request: %v, want ErrShed", err)
	}
	// A waiting request gives up with its context.
	gone, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { _, err := rc.do(gone, http.MethodGet, "/users/@me?n=gone", ""); errc <- err }()
	waitFor(t, "4 waiting", func() bool { return tr.Stats().Waiting == 4 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	// High priority (and essential) requests jump the queue.
	launch(WithPriority(ctx, PriorityHigh), "high")
	waitFor(t, "4 waiting", func() bool { return tr.Stats().Waiting == 4 })
	launch(Essential(ctx), "essential")
	waitFor(t, "5 waiting", func() bool { return tr.Stats().Waiting == 5 })

	drain(7, 2)
	wg.Wait()
	if got := rc.count.maxInFlight(); got != 2 {
		t.Fatalf("at most %d requests were in flight, want 2", got)
	}
	// The two slots freed first went to the high-priority requests (which
	// of the two enters first is up to the scheduler).
	order := rc.count.requests()
	if len(order) != 7 || !slices.Equal(slices.Sorted(slices.Values(order[2:4])), []string{"GET /users/@me?n=essential", "GET /users/@me?n=high"}) {
		t.Fatalf("admission order = %q", order)
	}
	for _, r := range order {
		if strings.Contains(r, "n=low") || strings.Contains(r, "n=gone") {
			t.Fatalf("%s reached Discord", r)
		}
	}
	if st := tr.Stats(); st.Shed != 1 || st.InFlight != 0 || st.Waiting != 0 {
		t.Fatalf("stats = %+v", st)
	}

	// Rolled back: no limit.
	d.off()
	for i := range 5 {
		launch(ctx, fmt.Sprint("free", i))
	}
	if !clk.BlockUntil(base+5, ioTimeout) {
		t.Fatal("after rollback the 5 requests were not all in flight")
	}
	drain(12, 5)
	wg.Wait()
	if got := rc.count.maxInFlight(); got != 5 {
		t.Fatalf("max in flight after rollback = %d, want 5", got)
	}
}

func TestQueueBound(t *testing.T) {
	block := make(chan struct{})
	next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		<-block
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	tr := NewTransport(TransportSettings{Next: next, MaxWaiting: 1})
	tr.SetConcurrencyLimit(1)
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get("http://127.0.0.1:1/x")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	waitFor(t, "one in flight, one waiting", func() bool { st := tr.Stats(); return st.InFlight == 1 && st.Waiting == 1 })
	if _, err := c.Get("http://127.0.0.1:1/x"); !errors.Is(err, ErrShed) {
		t.Fatalf("request beyond the queue bound: %v", err)
	}
	close(block)
	wg.Wait()
}

func TestIncreaseTimeoutsLengthensRESTDeadlines(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Time{})
	srv := newFakeDiscord(t, clk)
	tm := NewTimeouts()
	rc, _ := newRESTClient(t, srv, TransportSettings{Timeouts: tm, Timeout: 100 * time.Millisecond})
	// Every REST answer waits one second of the fake's time, which only
	// this test moves: without the action, the 100ms deadline passes.
	if err := srv.RESTLatency(time.Second, time.Hour); err != nil {
		t.Fatal(err)
	}
	base := clk.Waiters()
	if _, err := rc.do(ctx, http.MethodGet, "/users/@me", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("before: %v, want a deadline error", err)
	}
	waitFor(t, "the fake to drop the abandoned request", func() bool { return clk.Waiters() == base })

	d := newDriver(t, IncreaseTimeouts(tm, 1000)) // 100s: the fake's second can pass
	d.on()
	done := make(chan error, 1)
	go func() {
		r, err := rc.do(ctx, http.MethodGet, "/users/@me", "")
		if err == nil && r.status != http.StatusOK {
			err = fmt.Errorf("status %d", r.status)
		}
		done <- err
	}()
	if !clk.BlockUntil(base+1, ioTimeout) {
		t.Fatal("the request never reached the fake")
	}
	clk.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("while active: %v", err)
	}

	d.off()
	if _, err := rc.do(ctx, http.MethodGet, "/users/@me", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after rollback: %v, want a deadline error", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransportReleasesSlotsAndClosesBodies(t *testing.T) {
	var closed atomic.Int32
	next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		if r.URL.Path == "/fail" {
			return nil, errBoom
		}
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
	})
	tr := NewTransport(TransportSettings{Next: next})
	tr.SetConcurrencyLimit(1)
	c := &http.Client{Transport: tr}
	for range 3 { // would block on the second if a slot leaked
		resp, err := c.Get("http://127.0.0.1:1/ok")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if _, err := c.Get("http://127.0.0.1:1/fail"); !errors.Is(err, errBoom) {
			t.Fatalf("transport error: %v", err)
		}
	}
	if st := tr.Stats(); st.InFlight != 0 {
		t.Fatalf("in flight = %d after every body closed", st.InFlight)
	}
	// A refused request's body is closed, as RoundTripper requires.
	tr.SetReadOnly(true)
	body := &trackedBody{Reader: strings.NewReader("x"), closed: &closed}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/x", body)
	if _, err := tr.RoundTrip(req); !errors.Is(err, ErrReadOnly) || closed.Load() != 1 {
		t.Fatalf("refusal: %v, body closed %d times", err, closed.Load())
	}
}

type trackedBody struct {
	io.Reader
	closed *atomic.Int32
}

func (b *trackedBody) Close() error { b.closed.Add(1); return nil }

func TestPriorityOf(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		ctx  context.Context
		want Priority
	}{
		{ctx, PriorityNormal},
		{WithPriority(ctx, PriorityLow), PriorityLow},
		{WithPriority(ctx, PriorityHigh), PriorityHigh},
		{Essential(ctx), PriorityHigh},
		{Essential(WithPriority(ctx, PriorityLow)), PriorityHigh},
	}
	for i, tc := range tests {
		if got := PriorityOf(tc.ctx); got != tc.want {
			t.Errorf("%d: PriorityOf = %s, want %s", i, got, tc.want)
		}
	}
	if PriorityLow.String() != "low" || PriorityNormal.String() != "normal" || PriorityHigh.String() != "high" {
		t.Error("Priority.String")
	}
}

// TestCacheIgnoresResponsesFetchedBeforeItWasTurnedOff: a GET that was in
// flight when caching was rolled back leaves no entry to serve later.
func TestCacheIgnoresResponsesFetchedBeforeItWasTurnedOff(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		close(arrived)
		<-release
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("old")), Request: r}, nil
	})
	tr := NewTransport(TransportSettings{Next: next})
	tr.SetCaching(true)
	done := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Get("http://127.0.0.1:1/x")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-arrived
	tr.SetCaching(false)
	tr.SetCaching(true)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := tr.Stats().CacheEntries; n != 0 {
		t.Fatalf("%d entries from a response fetched before the clear", n)
	}
}
