package degrade

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// cache is the aggressive cache: GET responses (status 200) keyed by the
// credentials and the full URL, least recently used first out, each served
// for ttl after it was stored.
type cache struct {
	clock   clock.Clock
	ttl     time.Duration
	max     int
	maxBody int64

	mu    sync.Mutex
	items map[string]*list.Element
	lru   list.List // front: most recently used
	gen   uint64    // counts clears: a response fetched before one is not stored
}

type cacheEntry struct {
	key, path  string
	status     int
	proto      string
	major      int
	minor      int
	header     http.Header
	body       []byte
	storedTime time.Time
}

func newCache(c clock.Clock, ttl time.Duration, max int, maxBody int64) *cache {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	if max <= 0 {
		max = DefaultCacheEntries
	}
	if maxBody <= 0 {
		maxBody = DefaultCacheMaxBody
	}
	return &cache{clock: c, ttl: ttl, max: max, maxBody: maxBody, items: map[string]*list.Element{}}
}

// cacheKey identifies a GET: a digest of the Authorization header (so two
// tokens never share an entry, and the token itself is not kept as a key)
// and the full URL.
func cacheKey(req *http.Request) string {
	sum := sha256.Sum256([]byte(req.Header.Get("Authorization")))
	return hex.EncodeToString(sum[:8]) + " " + req.URL.String()
}

// get returns a copy of the fresh entry for key as a response to req.
func (c *cache) get(key string, req *http.Request) (*http.Response, bool) {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	age := now.Sub(e.storedTime)
	if age >= c.ttl || age < 0 {
		c.removeLocked(el)
		return nil, false
	}
	c.lru.MoveToFront(el)
	h := e.header.Clone()
	h.Set(CacheHeader, "hit")
	h.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	return &http.Response{
		Status:        strconv.Itoa(e.status) + " " + http.StatusText(e.status),
		StatusCode:    e.status,
		Proto:         e.proto,
		ProtoMajor:    e.major,
		ProtoMinor:    e.minor,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(e.body)),
		ContentLength: int64(len(e.body)),
		Request:       req,
	}, true
}

// generation returns the number of clears so far; put with an older
// generation stores nothing, so a request that began before the cache was
// turned off cannot leave an entry behind.
func (c *cache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put stores a response's body under key, unless the cache was cleared
// since generation gen. Rate-limit headers are left out: a cached answer
// spends none of Discord's budget, and replaying an old Remaining would
// mislead discordgo's rate limiter.
func (c *cache) put(gen uint64, key, path string, resp *http.Response, body []byte) {
	h := resp.Header.Clone()
	for k := range h {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), "X-Ratelimit-") {
			delete(h, k)
		}
	}
	h.Del("Retry-After")
	h.Del("Set-Cookie")
	h.Del("Content-Length")
	e := &cacheEntry{key: key, path: path, status: resp.StatusCode, proto: resp.Proto,
		major: resp.ProtoMajor, minor: resp.ProtoMinor, header: h, body: body, storedTime: c.clock.Now()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if el, ok := c.items[key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.items[key] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		c.removeLocked(c.lru.Back())
	}
}

// invalidate drops every entry for path (any query, any credentials):
// a successful write to a resource makes its cached reads stale.
func (c *cache) invalidate(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*cacheEntry).path == path {
			c.removeLocked(el)
		}
		el = next
	}
}

func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items = map[string]*list.Element{}
	c.lru.Init()
	c.gen++
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *cache) removeLocked(el *list.Element) {
	delete(c.items, el.Value.(*cacheEntry).key)
	c.lru.Remove(el)
}
