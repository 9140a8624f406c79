package conn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// RESTObserver receives one RESTResult per request that went through a
// Transport. The metrics Recorder implements it. ObserveREST is called
// synchronously on the requesting goroutine: it must be quick and safe
// for concurrent use.
type RESTObserver interface {
	ObserveREST(RESTResult)
}

// RESTObserverFunc adapts a function to RESTObserver.
type RESTObserverFunc func(RESTResult)

// ObserveREST calls f(r).
func (f RESTObserverFunc) ObserveREST(r RESTResult) { f(r) }

// RESTResult describes one REST request. It holds no header values, no
// query string and no secret path segment (webhook and interaction tokens
// are replaced in Route), so it is safe to log or export.
type RESTResult struct {
	// Method is the HTTP method.
	Method string
	// Route is the request path with ids replaced by ":id" and tokens by
	// ":token", e.g. "/api/v9/channels/:id/messages".
	Route string
	// Rewritten is true when the request went to TransportSettings.BaseURL
	// instead of Discord.
	Rewritten bool
	// Status is the HTTP status; 0 when the request failed in transport.
	Status int
	// Latency is the time from sending the request to receiving the
	// response headers (or the error), from the Transport's clock.
	Latency time.Duration
	// Err is the transport error, nil when a response arrived (whatever
	// its status).
	Err error
	// RateLimit is set for 429 responses.
	RateLimit *RateLimit
}

// RateLimit is what a 429 response said.
type RateLimit struct {
	// RetryAfter is how long to wait: the body's retry_after when present,
	// else the Retry-After header; 0 when neither says.
	RetryAfter time.Duration
	// Global is true for the global (per-bot) limit.
	Global bool
	// Scope is X-RateLimit-Scope: "user", "global" or "shared".
	Scope string
	// Bucket is X-RateLimit-Bucket.
	Bucket string
	// Cloudflare is true when the 429 carried none of Discord's rate-limit
	// headers and no retry_after: the shape of a Cloudflare ban after too
	// many invalid requests, which lasts far longer than a rate limit.
	Cloudflare bool
}

// ErrInsecureBaseURL is returned by NewTransport when BaseURL is plain
// http:// to a host that is not loopback: the bot token in the
// Authorization header would cross the network in clear text.
var ErrInsecureBaseURL = errors.New("plain-http base URL to a non-loopback host")

// DefaultRewriteHosts are the hosts a Transport with a BaseURL redirects:
// Discord's API, CDN and status hosts, the ones discordgo v0.29.0's
// endpoints use.
var DefaultRewriteHosts = []string{
	"discord.com", "www.discord.com", "discordapp.com", "www.discordapp.com",
	"cdn.discordapp.com", "media.discordapp.net", "status.discord.com",
}

// TransportSettings configures a Transport. The zero value is valid: it
// observes nothing and sends requests where they were aimed.
type TransportSettings struct {
	// Base sends the requests. Default: a fresh clone of
	// http.DefaultTransport, so each Transport has its own connection pool
	// (http.DefaultTransport itself is never used or changed).
	Base http.RoundTripper
	// Observer receives a RESTResult per request. Default: none.
	Observer RESTObserver
	// Clock times requests. Default: clock.Real.
	Clock clock.Clock
	// BaseURL, when set, receives every request aimed at one of
	// RewriteHosts: scheme and host are replaced, BaseURL's path is put
	// in front of the request's path, and the query is kept. Plain http
	// is allowed only to loopback hosts (the fake Discord). Default: ""
	// (no rewriting).
	BaseURL string
	// RewriteHosts lists the host names (without port, matched without
	// regard to case) that BaseURL replaces. Default: DefaultRewriteHosts.
	RewriteHosts []string
	// MaxPeek bounds how much of a 429 body is read to find retry_after;
	// the caller still reads the whole body. Default: 64 KiB.
	MaxPeek int64
}

// Transport is an http.RoundTripper for a discordgo Session's Client. It
// records every request's latency, status, rate limit or error to a
// RESTObserver, and can send requests meant for Discord to another base
// URL (the fake Discord) without touching discordgo's package variables.
// It never reads, logs or reports the Authorization header. A Transport
// is safe for concurrent use.
type Transport struct {
	base    http.RoundTripper
	obs     RESTObserver
	clock   clock.Clock
	target  *url.URL
	hosts   map[string]bool
	maxPeek int64
}

// NewTransport returns a Transport, or an error when BaseURL is not an
// absolute http(s) URL or is plain http to a non-loopback host.
func NewTransport(s TransportSettings) (*Transport, error) {
	t := &Transport{base: s.Base, obs: s.Observer, clock: clock.Or(s.Clock), maxPeek: s.MaxPeek}
	if t.base == nil {
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			t.base = dt.Clone()
		} else {
			t.base = &http.Transport{Proxy: http.ProxyFromEnvironment}
		}
	}
	if t.maxPeek <= 0 {
		t.maxPeek = 64 << 10
	}
	if s.BaseURL != "" {
		u, err := url.Parse(s.BaseURL)
		if err != nil {
			return nil, fmt.Errorf("conn: REST base URL: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("conn: REST base URL %q must be absolute http:// or https://", s.BaseURL)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("conn: REST base URL %q must not have a query or fragment", s.BaseURL)
		}
		if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("conn: REST base URL %q: %w", s.BaseURL, ErrInsecureBaseURL)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		u.RawPath = strings.TrimSuffix(u.RawPath, "/")
		t.target = u
		hosts := s.RewriteHosts
		if hosts == nil {
			hosts = DefaultRewriteHosts
		}
		t.hosts = make(map[string]bool, len(hosts))
		for _, h := range hosts {
			t.hosts[strings.ToLower(h)] = true
		}
	}
	return t, nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Client returns a new *http.Client using the Transport, with the given
// timeout (0: none; discordgo's own default is 20s).
func (t *Transport) Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: t, Timeout: timeout}
}

// CloseIdleConnections closes the base transport's idle connections.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// RoundTrip sends req (rewritten when it is aimed at a rewritten host)
// and reports the result. It does not modify req.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	out, rewritten := t.rewrite(req)
	start := t.clock.Now()
	resp, err := t.base.RoundTrip(out)
	res := RESTResult{Method: req.Method, Route: SanitizeRoute(req.URL.Path), Rewritten: rewritten,
		Latency: t.clock.Since(start), Err: err}
	if err == nil {
		res.Status = resp.StatusCode
		if resp.StatusCode == http.StatusTooManyRequests {
			res.RateLimit = t.rateLimit(resp)
		}
	}
	if t.obs != nil {
		t.obs.ObserveREST(res)
	}
	return resp, err
}

// rewrite returns the request to send: req itself, or a clone aimed at
// the base URL.
func (t *Transport) rewrite(req *http.Request) (*http.Request, bool) {
	if t.target == nil || req.URL == nil || !t.hosts[strings.ToLower(req.URL.Hostname())] {
		return req, false
	}
	out := req.Clone(req.Context())
	u := *req.URL
	u.Scheme = t.target.Scheme
	u.Host = t.target.Host
	u.User = nil
	if t.target.Path != "" {
		if u.RawPath != "" {
			u.RawPath = t.target.EscapedPath() + u.RawPath
		}
		u.Path = t.target.Path + u.Path
	}
	out.URL = &u
	out.Host = ""
	return out, true
}

// rateLimit reads what a 429 says, peeking at its body and putting the
// peeked bytes back so the caller reads the body unchanged.
func (t *Transport) rateLimit(resp *http.Response) *RateLimit {
	h := resp.Header
	rl := &RateLimit{
		Global: strings.EqualFold(h.Get("X-RateLimit-Global"), "true"),
		Scope:  h.Get("X-RateLimit-Scope"),
		Bucket: h.Get("X-RateLimit-Bucket"),
	}
	if v := h.Get("Retry-After"); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
			rl.RetryAfter = time.Duration(secs * float64(time.Second))
		}
	}
	var body struct {
		RetryAfter *float64 `json:"retry_after"`
		Global     bool     `json:"global"`
	}
	bodyHasRetry := false
	if resp.Body != nil && resp.Body != http.NoBody {
		peek, readErr := io.ReadAll(io.LimitReader(resp.Body, t.maxPeek))
		orig := resp.Body
		var rest io.Reader = orig
		if readErr != nil {
			rest = errReader{readErr}
		}
		resp.Body = peekedBody{Reader: io.MultiReader(bytes.NewReader(peek), rest), Closer: orig}
		if json.Unmarshal(peek, &body) == nil && body.RetryAfter != nil && *body.RetryAfter >= 0 {
			bodyHasRetry = true
			rl.RetryAfter = time.Duration(*body.RetryAfter * float64(time.Second))
			rl.Global = rl.Global || body.Global
		}
	}
	discordHeaders := h.Get("X-RateLimit-Scope") != "" || h.Get("X-RateLimit-Global") != "" ||
		h.Get("X-RateLimit-Bucket") != "" || h.Get("X-RateLimit-Limit") != ""
	rl.Cloudflare = !discordHeaders && !bodyHasRetry
	return rl
}

// peekedBody replays the peeked bytes, then the rest, and closes the
// original body.
type peekedBody struct {
	io.Reader
	io.Closer
}

// errReader returns a read error again after the peeked bytes.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// SanitizeRoute turns a request path into a route safe to report: numeric
// segments (snowflakes) become ":id", the segment after webhooks/:id or
// interactions/:id becomes ":token", and any other segment that is not a
// short lower-case word becomes ":x" (so emoji, hashes with capitals and
// anything token-like never leave the process).
func SanitizeRoute(path string) string {
	if path == "" {
		return "/"
	}
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		switch {
		case seg == "":
		case isDigits(seg):
			segs[i] = ":id"
		case i >= 2 && segs[i-1] == ":id" && (segs[i-2] == "webhooks" || segs[i-2] == "interactions"):
			segs[i] = ":token"
		case !isRouteWord(seg):
			segs[i] = ":x"
		}
	}
	return strings.Join(segs, "/")
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isRouteWord accepts the words Discord's routes are made of, such as
// "api", "v9", "channels", "@me", "audit-logs", "gateway".
func isRouteWord(s string) bool {
	if len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '@' || c == '.') {
			return false
		}
	}
	return true
}
