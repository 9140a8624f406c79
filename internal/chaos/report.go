package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Report is what a run did and found. Failures lists every broken
// invariant; a run passes when it is empty.
type Report struct {
	Seed   int64 `json:"seed"`
	Shards int   `json:"shards"`
	// Mode says how the shards ran: "orchestrator" (one system running
	// every shard) or "per-shard" (one system per shard, as separate
	// processes would).
	Mode  string  `json:"mode"`
	Scale float64 `json:"scale"`
	// Chaos is the chaos phase's planned length; Elapsed the whole run's
	// wall time; MeanGap the mean time between steps.
	Chaos   time.Duration `json:"chaos"`
	MeanGap time.Duration `json:"mean_gap"`
	Elapsed time.Duration `json:"elapsed"`
	// Steps is the schedule as executed.
	Steps []Step `json:"steps"`
	// Injected counts the steps carried out, by kind.
	Injected map[Kind]int `json:"injected"`

	// Recoveries counts successful RECOVERY_COMPLETED events by strategy;
	// RecoveryFailures the unsuccessful ones (attempts that failed and
	// were retried).
	Recoveries       map[string]int `json:"recoveries"`
	RecoveryFailures int            `json:"recovery_failures"`
	// RecoveryCapSkips counts the recovery engine's skips of a strategy at
	// one of its caps (which count failed attempts); RecoverySessionKept
	// its skips of reidentify or restart_client that would have ended a
	// resumable session after such a cap (core/recovery's ErrSessionKept).
	// Both read from its "recovery strategy skipped" log lines.
	RecoveryCapSkips    int `json:"recovery_cap_skips"`
	RecoverySessionKept int `json:"recovery_session_kept"`
	// Identifies and Resumes are what the fake Discord accepted.
	Identifies int `json:"identifies"`
	Resumes    int `json:"resumes"`
	// Connections is the number of gateway connections the fake saw.
	Connections int `json:"connections"`
	// Dispatches is every dispatch the fake generated for the bot's
	// sessions; MessagesEmitted the messages the harness posted as users,
	// MessagesHandled the MESSAGE_CREATEs the bot's handlers got.
	Dispatches      int `json:"dispatches"`
	MessagesEmitted int `json:"messages_emitted"`
	MessagesHandled int `json:"messages_handled"`
	// AckedMessages is the number of MESSAGE_CREATEs the client
	// acknowledged; every one reached a handler (else a failure).
	AckedMessages int `json:"acked_messages"`
	// Loss is the ledger's verdict on unacknowledged dispatches.
	Loss LossFigures `json:"loss"`
	// Duplicates lists messages a handler got more than once.
	Duplicates []string `json:"duplicates,omitempty"`
	// Violations counts the fake's ledger violations by kind (REST
	// bucket limits included; see hardViolation).
	Violations map[string]int `json:"violations,omitempty"`
	// REST counts the bot's own REST calls by outcome.
	REST map[string]int `json:"rest"`
	// Envelope is the backoff check.
	Envelope EnvelopeFigures `json:"envelope"`

	// MaxLevel is the most severe degradation level reached; Levels
	// counts DEGRADATION_ACTIVATED events by level.
	MaxLevel string         `json:"max_level"`
	Levels   map[string]int `json:"levels"`
	// RecoveryTime is how long after the last fault every shard was READY,
	// the level NONE and the plugins running; RecoveryBound the most the
	// policy allows (plus grace).
	RecoveryTime  time.Duration `json:"recovery_time"`
	RecoveryBound time.Duration `json:"recovery_bound"`

	// PolicyReloads and PolicyReloadFailures count the reload events.
	PolicyReloads        int `json:"policy_reloads"`
	PolicyReloadFailures int `json:"policy_reload_failures"`
	// PluginCrashes is the plugin processes killed; PluginStarts every
	// PLUGIN_STARTED (the first start included).
	PluginCrashes int `json:"plugin_crashes"`
	PluginStarts  int `json:"plugin_starts"`

	// Events counts every event the listeners got, by type;
	// EventsDropped what the buses dropped.
	Events        map[string]int `json:"events"`
	EventsDropped uint64         `json:"events_dropped"`
	// LogLines is how many log lines lifeline wrote.
	LogLines int64 `json:"log_lines"`
	// Scanned is the bytes searched for the token, by source;
	// SecretHits where it was found (must be empty).
	Scanned    map[string]int64 `json:"scanned"`
	SecretHits []string         `json:"secret_hits,omitempty"`

	// Heap is the memory and goroutine figures of the chaos phase.
	Heap HeapFigures `json:"heap"`
	// FDsBefore and FDsAfter are the process's open files before the run
	// and after Stop.
	FDsBefore int `json:"fds_before"`
	FDsAfter  int `json:"fds_after"`

	// Failures lists every invariant the run broke.
	Failures []string `json:"failures,omitempty"`
	// GoroutineDump is set when the watchdog fired or Stop hung.
	GoroutineDump string `json:"-"`
	// LogTail is lifeline's last log lines, for a failure report.
	LogTail string `json:"-"`
	// Ledger summarises the fake's sessions and connections, for a
	// failure report.
	Ledger string `json:"-"`
}

// OK reports whether the run broke no invariant.
func (r *Report) OK() bool { return len(r.Failures) == 0 }

// Rerun is the command that plays the same schedule again.
func (r *Report) Rerun() string {
	if r.Chaos == 20*time.Second {
		return fmt.Sprintf("go test -race ./internal/chaos -run TestChaosShort -count=1 -v -chaos.seed=%d -chaos.shards=%d -chaos.pershard=%t",
			r.Seed, r.Shards, r.Mode == "per-shard")
	}
	return fmt.Sprintf("go test -race ./internal/chaos -run TestSoak -count=1 -v -chaos.seed=%d -chaos.shards=%d -chaos.pershard=%t -chaos.duration=%v -chaos.meangap=%v",
		r.Seed, r.Shards, r.Mode == "per-shard", r.Chaos, r.MeanGap)
}

func sortedKeys[M ~map[K]V, K ~string, V any](m M) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// String is the report for a test log: figures, then failures.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos run: seed %d, %d shard(s) (%s), scale %v, chaos %v, elapsed %v\n",
		r.Seed, r.Shards, r.Mode, r.Scale, r.Chaos, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "  steps %d:", len(r.Steps))
	for _, k := range sortedKeys(r.Injected) {
		fmt.Fprintf(&b, " %s=%d", k, r.Injected[k])
	}
	fmt.Fprintf(&b, "\n  connections %d, identifies %d, resumes %d; recoveries", r.Connections, r.Identifies, r.Resumes)
	for _, k := range sortedKeys(r.Recoveries) {
		fmt.Fprintf(&b, " %s=%d", k, r.Recoveries[k])
	}
	fmt.Fprintf(&b, " (failed attempts %d; strategies skipped at a cap %d, held back to keep a resumable session %d)\n",
		r.RecoveryFailures, r.RecoveryCapSkips, r.RecoverySessionKept)
	fmt.Fprintf(&b, "  dispatches %d, messages emitted %d, handled %d, acked %d; lost %d, after recovery caps %d, excused %d %v, duplicates %d\n",
		r.Dispatches, r.MessagesEmitted, r.MessagesHandled, r.AckedMessages, r.Loss.Lost, r.Loss.Capped, r.Loss.Excused, r.Loss.ExcusedBy, len(r.Duplicates))
	fmt.Fprintf(&b, "  violations %v; REST %v\n", r.Violations, r.REST)
	fmt.Fprintf(&b, "  backoff waits checked %d (latest attempt %v after its wait)\n", r.Envelope.Waits, r.Envelope.MaxLate.Round(time.Millisecond))
	fmt.Fprintf(&b, "  max level %s, activations %v; recovered in %v (bound %v)\n",
		r.MaxLevel, r.Levels, r.RecoveryTime.Round(time.Millisecond), r.RecoveryBound.Round(time.Millisecond))
	fmt.Fprintf(&b, "  policy reloads %d, refused %d; plugin crashes %d, starts %d\n",
		r.PolicyReloads, r.PolicyReloadFailures, r.PluginCrashes, r.PluginStarts)
	var scanned int64
	for _, v := range r.Scanned {
		scanned += v
	}
	fmt.Fprintf(&b, "  events %d (dropped %d), log lines %d, %d bytes from %d sources searched for the token\n",
		sum(r.Events), r.EventsDropped, r.LogLines, scanned, len(r.Scanned))
	fmt.Fprintf(&b, "  heap (lifeline side) %.1f -> %.1f MB (max %.1f; fake+harness %.1f MB), goroutines %d -> %d (max %d), fds %d -> %d\n",
		r.Heap.FirstMB, r.Heap.LastMB, r.Heap.MaxMB, r.Heap.HarnessLastMB,
		r.Heap.GoroutinesFirst, r.Heap.GoroutinesLast, r.Heap.GoroutinesMax, r.FDsBefore, r.FDsAfter)
	if len(r.Heap.Growth) > 0 {
		fmt.Fprintf(&b, "  heap growth by site: %s\n", strings.Join(r.Heap.Growth[:min(5, len(r.Heap.Growth))], "; "))
	}
	if len(r.Failures) > 0 {
		fmt.Fprintf(&b, "FAILED (%d):\n", len(r.Failures))
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "  - %s\n", f)
		}
		fmt.Fprintf(&b, "rerun the same schedule: %s\n", r.Rerun())
	}
	return b.String()
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Markdown renders the figures as the tables docs/reliability.md shows.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Seed %d, %d shard(s) (%s), fake Discord at scale %v, %v of chaos, a step every %v on average (%v in all).\n\n",
		r.Seed, r.Shards, r.Mode, r.Scale, r.Chaos, r.MeanGap, r.Elapsed.Round(time.Second))
	b.WriteString("| fault or action | injected |\n|---|---:|\n")
	for _, k := range sortedKeys(r.Injected) {
		fmt.Fprintf(&b, "| %s | %d |\n", k, r.Injected[k])
	}
	fmt.Fprintf(&b, "| **total** | **%d** |\n\n", len(r.Steps))
	b.WriteString("| figure | value |\n|---|---:|\n")
	row := func(name string, v any) { fmt.Fprintf(&b, "| %s | %v |\n", name, v) }
	row("gateway connections", r.Connections)
	row("IDENTIFYs accepted / RESUMEs accepted", fmt.Sprintf("%d / %d", r.Identifies, r.Resumes))
	for _, k := range sortedKeys(r.Recoveries) {
		row("recoveries completed: "+k, r.Recoveries[k])
	}
	row("recovery attempts that failed (then retried)", r.RecoveryFailures)
	row("strategies skipped at a recovery cap / held back to keep a resumable session", fmt.Sprintf("%d / %d", r.RecoveryCapSkips, r.RecoverySessionKept))
	row("dispatches generated", r.Dispatches)
	row("messages posted / handled by the bot", fmt.Sprintf("%d / %d", r.MessagesEmitted, r.MessagesHandled))
	row("MESSAGE_CREATEs acknowledged, all handled", r.AckedMessages)
	row("**lost on a resumable path**", fmt.Sprintf("**%d**", r.Loss.Lost))
	row("**lost on a resumable path after a recovery cap**", fmt.Sprintf("**%d**", r.Loss.Capped))
	row("unacknowledged when Discord ended the session", r.Loss.Excused)
	row("duplicate deliveries", len(r.Duplicates))
	row("identify / send-limit violations", r.Violations["identify_concurrency"]+r.Violations["session_start_budget"]+r.Violations["gateway_send_limit"])
	row("backoff waits checked / outside the envelope", fmt.Sprintf("%d / %d", r.Envelope.Waits, len(r.Envelope.Violations)))
	row("most severe level reached", r.MaxLevel)
	row("after the last fault: READY, NONE, plugins up in", fmt.Sprintf("%v (bound %v)", r.RecoveryTime.Round(time.Millisecond), r.RecoveryBound.Round(time.Millisecond)))
	row("policy reloads / invalid edits refused", fmt.Sprintf("%d / %d", r.PolicyReloads, r.PolicyReloadFailures))
	row("plugin crashes / plugin starts", fmt.Sprintf("%d / %d", r.PluginCrashes, r.PluginStarts))
	row("events delivered / dropped", fmt.Sprintf("%d / %d", sum(r.Events), r.EventsDropped))
	var scanned int64
	for _, v := range r.Scanned {
		scanned += v
	}
	row("bytes searched for the token / hits", fmt.Sprintf("%d / %d", scanned, len(r.SecretHits)))
	row("heap, lifeline side (first → last third, median)", fmt.Sprintf("%.1f → %.1f MB (max %.1f)", r.Heap.FirstMB, r.Heap.LastMB, r.Heap.MaxMB))
	row("goroutines (first → last third, median)", fmt.Sprintf("%d → %d", r.Heap.GoroutinesFirst, r.Heap.GoroutinesLast))
	row("open files before / after Stop", fmt.Sprintf("%d / %d", r.FDsBefore, r.FDsAfter))
	row("invariant failures", len(r.Failures))
	return b.String()
}
