package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lifeline-bot/lifeline/core/telemetry"
)

func init() {
	register(command{
		Name:    "status",
		Summary: "print a running instance's state, health, breaker, degradation, latency and recent events",
		Usage: `[--addr 127.0.0.1:8484] [--events N] [--json]

Reads /debug/lifeline from a running lifeline (lifeline run, or a bot serving
lifeline's handler) and prints a summary. --addr takes HOST:PORT or a URL (with
a path prefix when the handler is mounted under one). Sends LIFELINE_HTTP_TOKEN
as a bearer token when it is set. --json prints the document as served. Exits 0
when the instance answered, 1 when it could not be reached or refused.`,
		Run: runStatus,
	})
}

// statusDocument is the part of /debug/lifeline status prints.
type statusDocument struct {
	Summary      telemetry.Summary       `json:"summary"`
	RecentEvents []telemetry.EventRecord `json:"recent_events"`
}

// runStatus is `lifeline status`.
func runStatus(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "status")
	addr := fs.String("addr", telemetry.DefaultAddr, "`address` of the instance: HOST:PORT or a URL")
	n := fs.Int("events", 10, "how many recent events to print (0: none)")
	asJSON := fs.Bool("json", false, "print /debug/lifeline as served")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, fs, "unexpected argument %q", fs.Arg(0))
	}
	if *n < 0 {
		return usageError(env, fs, "--events %d: want 0 or more", *n)
	}
	token := env.Getenv("LIFELINE_HTTP_TOKEN")
	stdout, stderr := newRedactor(env.Stdout, token), newRedactor(env.Stderr, token)
	base := *addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	url := strings.TrimSuffix(base, "/") + "/debug/lifeline"

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return usageError(env, fs, "--addr %q: %v", *addr, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "lifeline status: %s: %v\n", url, err)
		return 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		fmt.Fprintf(stderr, "lifeline status: %s: %v\n", url, err)
		return 1
	}
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized {
			hint = " (set LIFELINE_HTTP_TOKEN to the instance's bearer token)"
		}
		fmt.Fprintf(stderr, "lifeline status: %s answered %s%s\n", url, resp.Status, hint)
		return 1
	}
	if *asJSON {
		stdout.Write(body)
		return 0
	}
	var doc statusDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		fmt.Fprintf(stderr, "lifeline status: %s: not a lifeline diagnostics document: %v\n", url, err)
		return 1
	}
	writeStatus(stdout, base, doc, *n)
	var fleet statusFleet // which process owns which shards (fleet.go)
	if json.Unmarshal(body, &fleet) == nil {
		writeFleetStatus(stdout, fleet)
	}
	return 0
}

// writeStatus prints doc as the terminal summary.
func writeStatus(w io.Writer, base string, doc statusDocument, events int) {
	s := doc.Summary
	fmt.Fprintf(w, "lifeline at %s: shard %d of %d, up %s\n", base, s.Shard, s.ShardCount, seconds(s.UptimeSeconds).Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "  %s\t%s\n", k, fmt.Sprintf(format, args...)) }
	state := s.State
	if s.Error != "" {
		state += ": " + s.Error
	}
	row("connection", "%s", state)
	verdict := string(s.Verdict)
	if s.VerdictOutput != "" {
		verdict += " (" + s.VerdictOutput + ")"
	}
	row("verdict", "%s", verdict)
	health := fmt.Sprintf("%s, score %.0f, %s", s.Health, s.Score, s.Trend)
	if len(s.Failing) > 0 {
		health += "; failing: " + strings.Join(s.Failing, ", ")
	}
	row("health", "%s", health)
	row("breaker", "%s, %d rejected", s.Breaker, s.BreakerRejections)
	deg := s.Degradation
	if s.DegradationReason != "" {
		deg += " (" + s.DegradationReason + ")"
	}
	if len(s.ActiveActions) > 0 {
		deg += "; active: " + strings.Join(s.ActiveActions, ", ")
	}
	row("degradation", "%s", deg)
	row("latency", "heartbeat %s, REST p95 %s", seconds(s.HeartbeatSeconds), seconds(s.RESTP95Seconds))
	row("errors", "%.1f%% of operations over %s", 100*s.ErrorRatio, seconds(s.ErrorWindowSeconds))
	starts := "unknown"
	if s.SessionStartsRemaining >= 0 {
		starts = fmt.Sprint(s.SessionStartsRemaining)
	}
	row("gateway", "%d reconnects, %d resumes, %d identifies; %s session starts left", s.Reconnects, s.Resumes, s.Identifies, starts)
	p := s.Policy
	if p.Path == "" {
		row("policy", "built in (no file)")
	} else {
		pol := fmt.Sprintf("%s, generation %d (%d reloads, %d failed)", p.Path, p.Generation, p.Reloads, p.Failures)
		if p.LastError != "" {
			pol += "; last error: " + p.LastError
		}
		row("policy", "%s", pol)
	}
	if s.EventsDropped > 0 {
		row("events", "%d dropped by slow listeners", s.EventsDropped)
	}
	for _, pl := range s.Plugins {
		desc := pl.State
		if pl.PID != 0 {
			desc += fmt.Sprintf(", pid %d", pl.PID)
		}
		if pl.Restarts > 0 {
			desc += fmt.Sprintf(", %d restarts in a row", pl.Restarts)
		}
		if !pl.Retry.IsZero() {
			desc += ", retried at " + pl.Retry.UTC().Format(time.RFC3339)
		}
		if pl.LastExit != "" {
			desc += "; last exit: " + pl.LastExit
		}
		if pl.LastError != "" {
			desc += "; last error: " + pl.LastError
		}
		row("plugin "+pl.Name, "%s", desc)
	}
	tw.Flush()
	if events == 0 || len(doc.RecentEvents) == 0 {
		return
	}
	evs := doc.RecentEvents
	if len(evs) > events {
		evs = evs[len(evs)-events:]
	}
	fmt.Fprintf(w, "recent events (last %d of %d kept):\n", len(evs), len(doc.RecentEvents))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, e := range evs {
		where := ""
		if e.Shard >= 0 {
			where = fmt.Sprintf("shard %d: ", e.Shard)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s%s\n", e.Time.UTC().Format("15:04:05.000"), e.Type, where, e.Summary)
	}
	tw.Flush()
}

// seconds turns a JSON seconds figure into a rounded Duration for display.
func seconds(s float64) time.Duration {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond / 10)
}
