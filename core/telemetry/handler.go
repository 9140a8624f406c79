package telemetry

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// DefaultKeepAlive is HandlerOptions.KeepAlive's default.
const DefaultKeepAlive = 15 * time.Second

// HandlerOptions configures a Handler. The zero value is valid: no token,
// only the Telemetry's own metrics.
type HandlerOptions struct {
	// BearerToken, when set, must come with every request as
	// "Authorization: Bearer TOKEN" (compared in constant time), except
	// for GET / (the dashboard page, which holds no data: its scripts send
	// the token they are given in the URL fragment) and, with OpenProbes,
	// /livez and /readyz. Listen refuses a non-loopback address without
	// one. Default: "" (no token asked).
	BearerToken string
	// OpenProbes serves /livez and /readyz without the token, for probes
	// that cannot send headers; they tell only "alive" and "ready".
	// Default: false.
	OpenProbes bool
	// Gatherers are served on /metrics after the Telemetry's own registry:
	// Go and process collectors, the bot's own metrics. Default: none.
	Gatherers []prometheus.Gatherer
	// KeepAlive is how often /events sends a comment line so that proxies
	// keep an idle stream open. Default: DefaultKeepAlive (15s).
	KeepAlive time.Duration
}

// Handler serves a Telemetry over HTTP:
//
//	GET  /                the live dashboard (one embedded page, no external fetch)
//	GET  /metrics         Prometheus exposition
//	GET  /health          application/health+json: pass/warn/fail with per-check details
//	GET  /livez           200 while the system ticks and has not FAILED, else 503
//	GET  /readyz          200 while the gateway session is READY, else 503
//	GET  /debug/lifeline  summary, diagnostics and recent events as JSON (?samples=N adds plot samples)
//	GET  /events          server-sent events: "event" and "sample" messages as they happen
//	POST /-/reload        reload the policy file: 200 with the generation, 422 with diagnostics
//
// Close ends the /events streams it serves (register it with
// http.Server.RegisterOnShutdown; Server does).
type Handler struct {
	t       *Telemetry
	opts    HandlerOptions
	mux     *http.ServeMux
	metrics http.Handler
	tokenH  [32]byte

	closeOnce sync.Once
	closing   chan struct{}
}

// Handler returns an http.Handler serving t; see Handler for the routes.
func (t *Telemetry) Handler(opts HandlerOptions) *Handler {
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	h := &Handler{t: t, opts: opts, mux: http.NewServeMux(), closing: make(chan struct{})}
	if opts.BearerToken != "" {
		h.tokenH = sha256.Sum256([]byte(opts.BearerToken))
	}
	g := prometheus.Gatherers{t.reg}
	g = append(g, opts.Gatherers...)
	h.metrics = promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})

	h.mux.HandleFunc("GET /{$}", h.dashboard)
	h.mux.Handle("GET /metrics", h.auth(h.metrics, false))
	h.mux.Handle("GET /health", h.auth(http.HandlerFunc(h.health), false))
	h.mux.Handle("GET /livez", h.auth(http.HandlerFunc(h.livez), true))
	h.mux.Handle("GET /readyz", h.auth(http.HandlerFunc(h.readyz), true))
	h.mux.Handle("GET /debug/lifeline", h.auth(http.HandlerFunc(h.debug), false))
	h.mux.Handle("GET /events", h.auth(http.HandlerFunc(h.events), false))
	// A browser's cross-site POST needs no CORS preflight, so without a
	// bearer token any web page the operator visits could trigger a
	// reload: cross-origin browser requests are refused (Sec-Fetch-Site,
	// or an Origin whose host is not the request's Host). curl and other
	// non-browser clients send neither header and are not affected.
	h.mux.Handle("POST /-/reload", h.auth(sameOrigin(http.HandlerFunc(h.reload)), false))
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close ends the /events streams this Handler serves, now and later. The
// other routes keep working.
func (h *Handler) Close() { h.closeOnce.Do(func() { close(h.closing) }) }

// sameOrigin refuses cross-origin browser requests with 403 and a JSON
// error (net/http's CrossOriginProtection decides).
func sameOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin request refused: POST /-/reload only from the same origin or a non-browser client"})
	}))
	return cop.Handler(next)
}

// auth requires the bearer token, if one is set.
func (h *Handler) auth(next http.Handler, probe bool) http.Handler {
	if h.opts.BearerToken == "" || (probe && h.opts.OpenProbes) {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], h.tokenH[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lifeline"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a bearer token is required: Authorization: Bearer TOKEN"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) health(w http.ResponseWriter, _ *http.Request) {
	rep := Assess(h.t.src.Status())
	w.Header().Set("Content-Type", "application/health+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(rep.Status.HTTPStatus())
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
}

// Liveness reports whether the system is alive, and why not: it fails when
// the connection is FAILED (a fatal error: nothing but a restart brings it
// back) or when no tick ran for Options.StaleAfter (the control loop is
// stuck or was stopped).
func (t *Telemetry) Liveness(s Status) error {
	if s.State == stateFailed {
		msg := "the connection FAILED"
		if s.Error != "" {
			msg += ": " + s.Error
		}
		return errors.New(msg)
	}
	if age := s.Time.Sub(s.Snapshot.Time); !s.Snapshot.Time.IsZero() && age > t.opts.StaleAfter {
		return fmt.Errorf("no tick for %s (more than %s)", age.Round(time.Millisecond), t.opts.StaleAfter)
	}
	return nil
}

func (h *Handler) livez(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := h.t.Liveness(h.t.src.Status()); err != nil {
		writeText(w, http.StatusServiceUnavailable, "not alive: "+err.Error())
		return
	}
	writeText(w, http.StatusOK, "ok")
}

func (h *Handler) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s := h.t.src.Status()
	if s.State != stateReady {
		writeText(w, http.StatusServiceUnavailable, "not ready: gateway "+s.State)
		return
	}
	writeText(w, http.StatusOK, "ready")
}

// Debug is the body of /debug/lifeline.
type Debug struct {
	// Summary is the state in a few fields (what `lifeline status` prints).
	Summary Summary `json:"summary"`
	// Diagnostics is the system's full diagnostics (Source.Diagnostics).
	Diagnostics any `json:"diagnostics"`
	// RecentEvents are the last events, oldest first.
	RecentEvents []EventRecord `json:"recent_events"`
	// Samples are the plots' points, oldest first, when asked for with
	// ?samples=N (N <= 0 or "all": every sample kept).
	Samples []Sample `json:"samples,omitempty"`
}

// Summary is the state of a shard in a few fields.
type Summary struct {
	Time                   time.Time  `json:"time"`
	UptimeSeconds          float64    `json:"uptime_seconds"`
	Shard                  int        `json:"shard"`
	ShardCount             int        `json:"shard_count"`
	State                  string     `json:"state"`
	Ready                  bool       `json:"ready"`
	Error                  string     `json:"error,omitempty"`
	Verdict                Verdict    `json:"verdict"`
	VerdictOutput          string     `json:"verdict_output,omitempty"`
	Health                 string     `json:"health"`
	Score                  float64    `json:"score"`
	Trend                  string     `json:"trend"`
	Failing                []string   `json:"failing,omitempty"`
	Breaker                string     `json:"breaker"`
	BreakerRejections      uint64     `json:"breaker_rejections"`
	Degradation            string     `json:"degradation"`
	DegradationReason      string     `json:"degradation_reason,omitempty"`
	ActiveActions          []string   `json:"active_actions,omitempty"`
	PolicyActions          []string   `json:"policy_actions,omitempty"`
	HeartbeatSeconds       float64    `json:"heartbeat_seconds"`
	RESTP95Seconds         float64    `json:"rest_p95_seconds"`
	ErrorRatio             float64    `json:"error_ratio"`
	ErrorWindowSeconds     float64    `json:"error_window_seconds"`
	Reconnects             uint64     `json:"reconnects"`
	Resumes                uint64     `json:"resumes"`
	Identifies             uint64     `json:"identifies"`
	SessionStartsRemaining int        `json:"session_starts_remaining"`
	EventsDropped          uint64     `json:"events_dropped"`
	Policy                 PolicyInfo `json:"policy"`
	// Plugins are the policy's plugins, by name; none without plugins.
	Plugins []PluginSummary `json:"plugins,omitempty"`
}

// PluginSummary is one plugin in a Summary: what an operator needs to see
// that it is down, why, and when the host tries it again.
type PluginSummary struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// PID is the running process's id; 0 when none runs.
	PID int `json:"pid,omitempty"`
	// Restarts counts consecutive restarts.
	Restarts int `json:"restarts"`
	// LastExit says how its last process ended; LastError is its last
	// start or refusal error.
	LastExit  string `json:"last_exit,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// Retry is when a FAILED plugin is started again; zero when no retry
	// is pending.
	Retry time.Time `json:"retry,omitzero"`
}

// Summary condenses the Source's Status now.
func (t *Telemetry) Summary() Summary { return t.Summarize(t.src.Status()) }

// Summarize condenses a Status.
func (t *Telemetry) Summarize(s Status) Summary {
	rep := Assess(s)
	return Summary{
		Time:                   s.Time,
		UptimeSeconds:          s.Uptime.Seconds(),
		Shard:                  s.Shard,
		ShardCount:             max(s.ShardCount, 1),
		State:                  s.State,
		Ready:                  s.State == stateReady,
		Error:                  s.Error,
		Verdict:                rep.Status,
		VerdictOutput:          rep.Output,
		Health:                 s.Health.Status.String(),
		Score:                  round2(s.Health.Score),
		Trend:                  s.Health.Trend.String(),
		Failing:                s.Health.Failing,
		Breaker:                s.Breaker.State.String(),
		BreakerRejections:      s.Breaker.Rejections,
		Degradation:            levelOrNone(s.Degradation.Level),
		DegradationReason:      s.Degradation.Reason,
		ActiveActions:          t.ActiveActions(),
		PolicyActions:          s.Degradation.PolicyActions,
		HeartbeatSeconds:       s.Snapshot.Latency.Heartbeat.Seconds(),
		RESTP95Seconds:         s.Snapshot.Latency.RESTP95.Seconds(),
		ErrorRatio:             s.Snapshot.Errors.Rate,
		ErrorWindowSeconds:     s.Snapshot.Errors.Window.Seconds(),
		Reconnects:             s.Snapshot.Gateway.Reconnects,
		Resumes:                s.Snapshot.Gateway.Resumes,
		Identifies:             s.Snapshot.Gateway.Identifies,
		SessionStartsRemaining: s.SessionStartsRemaining,
		EventsDropped:          s.Events.Dropped,
		Policy:                 s.Policy,
		Plugins:                summarizePlugins(s.Plugins),
	}
}

func summarizePlugins(ps []pluginhost.Status) []PluginSummary {
	if len(ps) == 0 {
		return nil
	}
	out := make([]PluginSummary, len(ps))
	for i, p := range ps {
		out[i] = PluginSummary{Name: p.Name, State: p.State.String(), PID: p.PID, Restarts: p.Restarts,
			LastExit: p.LastExit, LastError: p.LastError, Retry: p.Retry}
	}
	return out
}

func (h *Handler) debug(w http.ResponseWriter, r *http.Request) {
	samples := 0
	if q := r.URL.Query().Get("samples"); q != "" {
		n, err := strconv.Atoi(q)
		switch {
		case q == "all":
			samples = -1
		case err != nil:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("samples=%q: want a number or all", q)})
			return
		case n <= 0:
			samples = -1
		default:
			samples = n
		}
	}
	evs, ss := h.t.feeds.recent(-1, samples)
	d := Debug{Summary: h.t.Summarize(h.t.src.Status()), Diagnostics: h.t.src.Diagnostics(), RecentEvents: evs, Samples: ss}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, d)
}

// ReloadResponse is the body of POST /-/reload.
type ReloadResponse struct {
	// Status is "reloaded" (a new generation is in force), "unchanged"
	// (the file held the policy in force) or "failed".
	Status string `json:"status"`
	Reload
	// Diagnostics say why a reload failed, one "file:line:col: ..." line
	// each.
	Diagnostics []string `json:"diagnostics,omitempty"`
	// Error is the error of a reload that could not be attempted.
	Error string `json:"error,omitempty"`
}

func (h *Handler) reload(w http.ResponseWriter, _ *http.Request) {
	res, err := h.t.src.ReloadPolicy()
	resp := ReloadResponse{Status: "reloaded", Reload: res}
	if err == nil {
		if !res.Changed {
			resp.Status = "unchanged"
		}
		writeJSON(w, http.StatusOK, resp)
		return
	}
	resp.Status = "failed"
	var de *policy.DiagnosticsError
	switch {
	case errors.Is(err, ErrNoPolicyFile):
		resp.Error = err.Error()
		writeJSON(w, http.StatusConflict, resp)
	case errors.As(err, &de):
		resp.Diagnostics = policy.DiagnosticLines(de.Diagnostics)
		if len(resp.Diagnostics) == 0 {
			resp.Error = err.Error()
		}
		writeJSON(w, http.StatusUnprocessableEntity, resp)
	default:
		resp.Error = err.Error()
		writeJSON(w, http.StatusInternalServerError, resp)
	}
}

// events streams events and samples as server-sent events until the
// client leaves, the Handler closes or the Telemetry closes.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	s := h.t.feeds.subscribe()
	if s == nil {
		writeText(w, http.StatusServiceUnavailable, "the system has stopped")
		return
	}
	defer h.t.feeds.unsubscribe(s)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n: lifeline event stream\n\n"); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	keep := h.t.clk.NewTicker(h.opts.KeepAlive)
	defer keep.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-h.closing:
			return
		case <-s.done:
			return
		case <-keep.C():
			_, err = fmt.Fprint(w, ": keep-alive\n\n")
		case m := <-s.ch:
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", m.kind, m.data)
		}
		if err != nil || rc.Flush() != nil {
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeText(w, http.StatusInternalServerError, "encode: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, msg)
}
