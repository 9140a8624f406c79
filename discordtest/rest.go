package discordtest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// route is one REST endpoint the fake serves.
type route struct {
	name   string // bucket name, hashed into X-RateLimit-Bucket
	method string
	auth   bool
	// match reports whether the path parts (after /api/vN/) fit, and
	// returns the major parameter (the channel ID) and the other IDs.
	match   func(parts []string) (major string, ids []string, ok bool)
	handler func(s *Server, w http.ResponseWriter, r *http.Request, ids []string) int
}

var routes = []route{
	{name: "gateway", method: http.MethodGet, match: exact("gateway"), handler: (*Server).restGateway},
	{name: "gateway_bot", method: http.MethodGet, auth: true, match: exact("gateway", "bot"), handler: (*Server).restGatewayBot},
	{name: "users_me", method: http.MethodGet, auth: true, match: exact("users", "@me"), handler: (*Server).restUsersMe},
	{name: "messages_create", method: http.MethodPost, auth: true, match: channelPath(false), handler: (*Server).restCreateMessage},
	{name: "messages_get", method: http.MethodGet, auth: true, match: channelPath(true), handler: (*Server).restGetMessage},
	{name: "messages_edit", method: http.MethodPatch, auth: true, match: channelPath(true), handler: (*Server).restEditMessage},
}

func exact(want ...string) func([]string) (string, []string, bool) {
	return func(parts []string) (string, []string, bool) {
		if len(parts) != len(want) {
			return "", nil, false
		}
		for i := range want {
			if parts[i] != want[i] {
				return "", nil, false
			}
		}
		return "", nil, true
	}
}

// channelPath matches channels/{channel}/messages and, with withID,
// channels/{channel}/messages/{message}.
func channelPath(withID bool) func([]string) (string, []string, bool) {
	return func(parts []string) (string, []string, bool) {
		n := 3
		if withID {
			n = 4
		}
		if len(parts) != n || parts[0] != "channels" || parts[2] != "messages" || parts[1] == "" {
			return "", nil, false
		}
		if withID {
			if parts[3] == "" {
				return "", nil, false
			}
			return parts[1], []string{parts[1], parts[3]}, true
		}
		return parts[1], []string{parts[1]}, true
	}
}

func bucketHash(name string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte("discordtest/" + name))
	return fmt.Sprintf("%016x", h.Sum64())
}

// apiError is Discord's JSON error body.
type apiError struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func secs(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	now := s.clk.Now()
	rec := RESTRecord{At: now, Method: r.Method, Path: r.URL.Path}
	status := s.restDispatch(w, r, &rec)
	rec.Status = status
	s.ledger.restRequest(rec)
}

// restDispatch handles one REST request and returns the status it sent.
func (s *Server) restDispatch(w http.ResponseWriter, r *http.Request, rec *RESTRecord) int {
	ctx := r.Context()
	now := s.clk.Now()
	// A ban (automatic or injected) answers before anything else, as
	// Cloudflare sits in front of the API.
	if _, ok := s.faults.find(FaultCloudflareBan, allShards, now); ok || s.rest.banned(now) {
		rec.Cause = "ban"
		if ok {
			rec.Cause = "fault:" + string(FaultCloudflareBan)
		}
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, "error code: 1015")
		return http.StatusTooManyRequests
	}
	if d := s.faults.delay(now, FaultRESTLatency, FaultLatencySpike); d > 0 {
		if !s.wait(ctx, d) {
			writeJSON(w, http.StatusServiceUnavailable, apiError{Message: "server shutting down"})
			return http.StatusServiceUnavailable
		}
		now = s.clk.Now()
	}

	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v")
	ver, tail, _ := strings.Cut(rest, "/")
	if !ok || (ver != "9" && ver != "10") {
		writeJSON(w, http.StatusNotFound, apiError{Message: "404: Not Found", Code: 0})
		return http.StatusNotFound
	}
	parts := strings.Split(strings.TrimSuffix(tail, "/"), "/")
	var rt *route
	var major string
	var ids []string
	pathKnown := false
	for i := range routes {
		m, id, ok := routes[i].match(parts)
		if !ok {
			continue
		}
		pathKnown = true
		if routes[i].method == r.Method {
			rt, major, ids = &routes[i], m, id
			break
		}
	}
	if rt == nil {
		if pathKnown {
			writeJSON(w, http.StatusMethodNotAllowed, apiError{Message: "405: Method Not Allowed", Code: 0})
			return http.StatusMethodNotAllowed
		}
		writeJSON(w, http.StatusNotFound, apiError{Message: "404: Not Found", Code: 0})
		return http.StatusNotFound
	}
	bucket := bucketHash(rt.name)
	rec.Bucket = bucket

	if a, ok := s.faults.find(FaultRESTRateLimit, allShards, now); ok {
		rec.Cause = "fault:" + string(FaultRESTRateLimit)
		retry := a.RetryAfter
		if retry == 0 {
			retry = time.Second
			if !a.until.IsZero() {
				retry = a.until.Sub(now)
			}
		}
		scope := "shared"
		if a.Global {
			scope = "global"
		}
		return s.write429(w, bucketState{limit: s.cfg.RESTBucketLimit, resetAfter: retry, resetAt: now.Add(retry)}, bucket, scope, a.Global, retry, now)
	}
	if a, ok := s.faults.find(FaultRESTErrors, allShards, now); ok {
		s.mu.Lock()
		hit := s.rng.Float64() < a.Rate
		s.mu.Unlock()
		if hit {
			st := a.Status
			if st == 0 {
				st = http.StatusInternalServerError
			}
			rec.Cause = "fault:" + string(FaultRESTErrors)
			writeJSON(w, st, apiError{Message: http.StatusText(st), Code: 0})
			return st
		}
	}
	if rt.auth && !s.restAuthOK(r.Header.Get("Authorization")) {
		rec.Cause = "auth"
		s.countInvalid(now)
		writeJSON(w, http.StatusUnauthorized, apiError{Message: "401: Unauthorized", Code: 0})
		return http.StatusUnauthorized
	}
	if g := s.rest.takeGlobal(s.cfg.GlobalLimit, s.cfg.GlobalWindow, now); g.limited {
		rec.Cause = "global"
		s.ledger.violation(Violation{At: now, Kind: ViolationRESTGlobal, Shard: -1,
			Detail: fmt.Sprintf("%s %s over %d requests per %v", r.Method, r.URL.Path, s.cfg.GlobalLimit, s.cfg.GlobalWindow)})
		s.countInvalid(now)
		return s.write429(w, g, "", "global", true, g.resetAfter, now)
	}
	st := s.rest.take(bucket+":"+major, s.cfg.RESTBucketLimit, s.cfg.RESTBucketWindow, now)
	if st.limited {
		rec.Cause = "bucket"
		s.ledger.violation(Violation{At: now, Kind: ViolationRESTBucket, Shard: -1,
			Detail: fmt.Sprintf("%s %s over %d requests per %v in bucket %s", r.Method, r.URL.Path, s.cfg.RESTBucketLimit, s.cfg.RESTBucketWindow, bucket)})
		s.countInvalid(now)
		return s.write429(w, st, bucket, "user", false, st.resetAfter, now)
	}
	setBucketHeaders(w.Header(), st, bucket)
	status := rt.handler(s, w, r, ids)
	if status == http.StatusForbidden {
		s.countInvalid(now)
	}
	return status
}

func (s *Server) restAuthOK(h string) bool {
	tok, ok := strings.CutPrefix(h, "Bot ")
	if !ok {
		return false
	}
	return s.tokenOK(tok)
}

// countInvalid counts an invalid request and starts a ban when too many
// pile up.
func (s *Server) countInvalid(now time.Time) {
	if s.rest.invalidRequest(s.cfg.InvalidRequestLimit, s.cfg.InvalidRequestWindow, s.cfg.BanDuration, now) {
		s.ledger.violation(Violation{At: now, Kind: ViolationInvalidRequests, Shard: -1,
			Detail: fmt.Sprintf("%d invalid requests within %v; banned for %v", s.cfg.InvalidRequestLimit, s.cfg.InvalidRequestWindow, s.cfg.BanDuration)})
	}
}

func setBucketHeaders(h http.Header, st bucketState, bucket string) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(st.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(st.remaining))
	reset := float64(st.resetAt.UnixMilli()) / 1000
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(reset, 'f', 3, 64))
	h.Set("X-RateLimit-Reset-After", secs(st.resetAfter))
	h.Set("X-RateLimit-Bucket", bucket)
}

// rateLimitBody is Discord's 429 body.
type rateLimitBody struct {
	Message    string  `json:"message"`
	RetryAfter float64 `json:"retry_after"`
	Global     bool    `json:"global"`
}

func (s *Server) write429(w http.ResponseWriter, st bucketState, bucket, scope string, global bool, retry time.Duration, now time.Time) int {
	h := w.Header()
	if !global {
		setBucketHeaders(h, st, bucket)
	}
	if global {
		h.Set("X-RateLimit-Global", "true")
	}
	h.Set("X-RateLimit-Scope", scope)
	h.Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
	writeJSON(w, http.StatusTooManyRequests, rateLimitBody{
		Message:    "You are being rate limited.",
		RetryAfter: math.Round(retry.Seconds()*1000) / 1000,
		Global:     global,
	})
	return http.StatusTooManyRequests
}

func (s *Server) restGateway(w http.ResponseWriter, _ *http.Request, _ []string) int {
	writeJSON(w, http.StatusOK, map[string]any{"url": s.GatewayURL()})
	return http.StatusOK
}

func (s *Server) restGatewayBot(w http.ResponseWriter, _ *http.Request, _ []string) int {
	total, remaining, resetAfter := s.sessionStartLimit()
	writeJSON(w, http.StatusOK, map[string]any{
		"url":    s.GatewayURL(),
		"shards": s.cfg.RecommendedShards,
		"session_start_limit": map[string]any{
			"total":           total,
			"remaining":       remaining,
			"reset_after":     resetAfter.Milliseconds(),
			"max_concurrency": s.cfg.MaxConcurrency,
		},
	})
	return http.StatusOK
}

func (s *Server) restUsersMe(w http.ResponseWriter, _ *http.Request, _ []string) int {
	writeJSON(w, http.StatusOK, s.botUser())
	return http.StatusOK
}

type messageBody struct {
	Content *string `json:"content"`
}

func readMessageBody(w http.ResponseWriter, r *http.Request) (messageBody, int) {
	var b messageBody
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeJSON(w, http.StatusBadRequest, apiError{Message: "Cannot send an empty message", Code: 50006})
		return b, http.StatusBadRequest
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Message: "The request body contains invalid JSON.", Code: 50109})
		return b, http.StatusBadRequest
	}
	return b, 0
}

func (s *Server) restCreateMessage(w http.ResponseWriter, r *http.Request, ids []string) int {
	s.mu.Lock()
	g, ok := s.channels[ids[0]]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{Message: "Unknown Channel", Code: 10003})
		return http.StatusNotFound
	}
	b, st := readMessageBody(w, r)
	if st != 0 {
		return st
	}
	if b.Content == nil || *b.Content == "" {
		writeJSON(w, http.StatusBadRequest, apiError{Message: "Cannot send an empty message", Code: 50006})
		return http.StatusBadRequest
	}
	m := s.newMessage(g, ids[0], *b.Content, s.botUser())
	s.mu.Lock()
	stored := m
	s.messages[ids[0]+"/"+m.ID] = &stored
	s.mu.Unlock()
	s.dispatchToGuild(g, "MESSAGE_CREATE", m)
	writeJSON(w, http.StatusOK, m)
	return http.StatusOK
}

func (s *Server) restGetMessage(w http.ResponseWriter, _ *http.Request, ids []string) int {
	s.mu.Lock()
	m, ok := s.messages[ids[0]+"/"+ids[1]]
	var out Message
	if ok {
		out = *m
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{Message: "Unknown Message", Code: 10008})
		return http.StatusNotFound
	}
	writeJSON(w, http.StatusOK, out)
	return http.StatusOK
}

func (s *Server) restEditMessage(w http.ResponseWriter, r *http.Request, ids []string) int {
	b, st := readMessageBody(w, r)
	if st != 0 {
		return st
	}
	s.mu.Lock()
	m, ok := s.messages[ids[0]+"/"+ids[1]]
	if !ok {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, apiError{Message: "Unknown Message", Code: 10008})
		return http.StatusNotFound
	}
	if m.Author.ID != s.cfg.BotUserID {
		s.mu.Unlock()
		writeJSON(w, http.StatusForbidden, apiError{Message: "Cannot edit a message authored by another user", Code: 50005})
		return http.StatusForbidden
	}
	if b.Content != nil {
		m.Content = *b.Content
	}
	ts := s.clk.Now().UTC().Format(time.RFC3339Nano)
	m.EditedTimestamp = &ts
	out := *m
	g := s.channels[ids[0]]
	s.mu.Unlock()
	s.dispatchToGuild(g, "MESSAGE_UPDATE", out)
	writeJSON(w, http.StatusOK, out)
	return http.StatusOK
}
