package chaos

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// Kind names one thing the schedule does: a fault of the fake Discord (the
// discordtest.FaultKind strings) or one of the actions below.
type Kind string

// The actions beside the fake Discord's faults.
const (
	// KindPluginCrash kills the plugin process with SIGKILL; the plugin
	// host must restart it.
	KindPluginCrash Kind = "plugin_crash"
	// KindPolicyEdit writes a valid variant of the policy file; the system
	// must put it in force (POLICY_RELOADED).
	KindPolicyEdit Kind = "policy_edit"
	// KindPolicyInvalid writes an invalid policy file; the system must
	// refuse it (POLICY_RELOAD_FAILED) and keep the policy it runs.
	KindPolicyInvalid Kind = "policy_invalid"
	// KindPolicyRemove deletes the watched policy file and writes it back
	// a little later; the running policy must stay in force meanwhile.
	KindPolicyRemove Kind = "policy_remove"
)

// Kinds returns every kind the schedule injects: each fault kind of the
// fake Discord, then the actions, sorted.
func Kinds() []Kind {
	var out []Kind
	for _, k := range discordtest.FaultKinds() {
		out = append(out, Kind(k))
	}
	out = append(out, KindPluginCrash, KindPolicyEdit, KindPolicyInvalid, KindPolicyRemove)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Step is one entry of a schedule: what happens At after the chaos phase
// began.
type Step struct {
	// At is the offset from the start of the chaos phase (wall time).
	At time.Duration `json:"at"`
	// Kind says what happens.
	Kind Kind `json:"kind"`
	// Fault is the fault injected, for the fake Discord's kinds.
	Fault *discordtest.Fault `json:"fault,omitempty"`
	// Edit is the policy edit's index in the edit table (policy kinds).
	Edit int `json:"edit,omitempty"`
	// Lasts is how long the step's effect lasts (0 for one-shot steps).
	Lasts time.Duration `json:"lasts,omitempty"`
}

// String describes the step on one line.
func (s Step) String() string {
	switch {
	case s.Fault != nil:
		f := s.Fault
		out := fmt.Sprintf("%8s %s", s.At.Round(time.Millisecond), f.Kind)
		if f.Shards != nil {
			out += fmt.Sprintf(" shards=%v", f.Shards)
		}
		if f.Duration > 0 {
			out += " for " + f.Duration.Round(time.Millisecond).String()
		}
		if f.Delay > 0 {
			out += " delay=" + f.Delay.Round(time.Millisecond).String()
		}
		if f.Code != 0 {
			out += fmt.Sprintf(" code=%d", f.Code)
		}
		if f.Kind == discordtest.FaultInvalidSession {
			out += fmt.Sprintf(" resumable=%t", f.Resumable)
		}
		if f.Rate > 0 {
			out += fmt.Sprintf(" rate=%.2f status=%d", f.Rate, f.Status)
		}
		if f.Mode != "" {
			out += " mode=" + string(f.Mode)
		}
		if f.Count > 0 {
			out += fmt.Sprintf(" count=%d", f.Count)
		}
		if f.Global {
			out += " global"
		}
		return out
	case s.Kind == KindPolicyEdit || s.Kind == KindPolicyInvalid:
		return fmt.Sprintf("%8s %s %q", s.At.Round(time.Millisecond), s.Kind, policyEdits[s.Edit].Name)
	default:
		return fmt.Sprintf("%8s %s", s.At.Round(time.Millisecond), s.Kind)
	}
}

// ScheduleOptions shape a schedule. Schedule fills zero fields with the
// defaults named.
type ScheduleOptions struct {
	// Seed makes the schedule: the same options give the same steps.
	Seed int64
	// Shards is the bot's shard count (per-shard faults pick among them).
	// Default 1.
	Shards int
	// Length is how long the chaos phase lasts; no step starts later and
	// every lasting fault ends by Length. Default 20s.
	Length time.Duration
	// MaxSteps bounds the number of steps. Default: no bound beyond
	// Length.
	MaxSteps int
	// MeanGap is the mean time between two steps. Default 600ms.
	MeanGap time.Duration
	// Heartbeat is the fake Discord's heartbeat interval; fault durations
	// are drawn in multiples of it. Default 825ms (Discord's / 50).
	Heartbeat time.Duration
	// PluginCrashSpacing is the least time between two plugin crashes, so
	// that the plugin host's restart limit (5 in a row, reset after a
	// minute of running) is a rhythm the run respects. Default 10s.
	PluginCrashSpacing time.Duration
	// BlockingQuiet is the least time between the end of a fault that
	// blocks every new connection (outage, withheld HELLO, shed
	// IDENTIFYs) and the start of the next one, so that the connection's
	// max_reconnect_attempts (10 in the default policy) is never spent by
	// the schedule alone. Default 4 heartbeats.
	BlockingQuiet time.Duration
}

func (o ScheduleOptions) withDefaults() ScheduleOptions {
	if o.Shards < 1 {
		o.Shards = 1
	}
	if o.Length <= 0 {
		o.Length = 20 * time.Second
	}
	if o.MeanGap <= 0 {
		o.MeanGap = 600 * time.Millisecond
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 825 * time.Millisecond
	}
	if o.PluginCrashSpacing <= 0 {
		o.PluginCrashSpacing = 10 * time.Second
	}
	if o.BlockingQuiet <= 0 {
		o.BlockingQuiet = 4 * o.Heartbeat
	}
	return o
}

// blocking reports whether a fault kind stops every new connection while
// it lasts.
func blocking(k Kind) bool {
	switch discordtest.FaultKind(k) {
	case discordtest.FaultOutage, discordtest.FaultWithholdHello, discordtest.FaultShedIdentify:
		return true
	}
	return false
}

// Schedule draws a chaos schedule from o.Seed. The first steps go through
// every kind once, twice as densely, in an order drawn from the seed with
// the blocking kinds first (a kind the spacing rules hold back waits for its
// turn), so that even a short run injects each kind; later steps pick kinds
// uniformly. Steps are sorted
// by At.
func Schedule(o ScheduleOptions) []Step {
	o = o.withDefaults()
	rng := rand.New(rand.NewPCG(uint64(o.Seed), uint64(o.Seed)^0x9e3779b97f4a7c15))
	kinds := Kinds()
	first := append([]Kind(nil), kinds...)
	rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	// The blocking kinds first: each must wait for the previous one's
	// quiet time, so they go as early as they can.
	sort.SliceStable(first, func(i, j int) bool { return blocking(first[i]) && !blocking(first[j]) })

	var steps []Step
	var blockedUntil time.Duration // no blocking fault before this
	lastCrash := -o.PluginCrashSpacing
	at := o.MeanGap / 2
	for o.MaxSteps == 0 || len(steps) < o.MaxSteps {
		if at >= o.Length {
			break
		}
		fits := func(k Kind) bool {
			if blocking(k) && at < blockedUntil {
				return false
			}
			return k != KindPluginCrash || at >= lastCrash+o.PluginCrashSpacing
		}
		// The first pass takes the first kind not yet injected that fits
		// the spacing rules; later steps (or when none fits) draw until
		// one fits; a dispatch burst always does.
		var kind Kind
		for i, k := range first {
			if fits(k) {
				kind = k
				first = append(first[:i:i], first[i+1:]...)
				break
			}
		}
		for try := 0; kind == "" && try < 16; try++ {
			if k := kinds[rng.IntN(len(kinds))]; fits(k) {
				kind = k
			}
		}
		if kind == "" {
			kind = Kind(discordtest.FaultDispatch)
		}
		st := makeStep(rng, o, at, kind)
		if st.At+st.Lasts > o.Length {
			// Keep every effect inside the chaos phase.
			st.Lasts = o.Length - st.At
			if st.Fault != nil && st.Fault.Duration > 0 {
				st.Fault.Duration = max(st.Lasts, time.Millisecond)
			}
		}
		if blocking(kind) {
			blockedUntil = st.At + st.Lasts + o.BlockingQuiet
		}
		if kind == KindPluginCrash {
			lastCrash = at
		}
		steps = append(steps, st)
		// Exponential gaps, clamped so that the run neither bunches nor
		// idles; twice as dense during the first pass.
		mean := o.MeanGap
		if len(first) > 0 {
			mean /= 2
		}
		gap := time.Duration(rng.ExpFloat64() * float64(mean))
		gap = min(max(gap, mean/4), 3*mean)
		at += gap
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	return steps
}

// between draws a duration uniformly from [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// beats draws a duration between lo and hi heartbeat intervals.
func beats(rng *rand.Rand, o ScheduleOptions, lo, hi float64) time.Duration {
	return between(rng, time.Duration(lo*float64(o.Heartbeat)), time.Duration(hi*float64(o.Heartbeat)))
}

// someShards picks every shard (nil) half of the time, else one shard.
func someShards(rng *rand.Rand, o ScheduleOptions) []int {
	if o.Shards == 1 || rng.IntN(2) == 0 {
		return nil
	}
	return []int{rng.IntN(o.Shards)}
}

// Close codes a server may send without making lifeline stop for good:
// resumable ones, ones that start a new session, and the WebSocket codes a
// proxy in between might send. The fatal codes (4004, 4010-4014) end a
// bot by design; tests of their own cover them.
var chaosCloseCodes = []int{4000, 4001, 4002, 4003, 4005, 4007, 4008, 4009, 1000, 1001, 1011, 1012}

func makeStep(rng *rand.Rand, o ScheduleOptions, at time.Duration, kind Kind) Step {
	st := Step{At: at, Kind: kind}
	switch kind {
	case KindPluginCrash:
		return st
	case KindPolicyEdit, KindPolicyInvalid:
		var idx []int
		for i, e := range policyEdits {
			if e.Valid == (kind == KindPolicyEdit) {
				idx = append(idx, i)
			}
		}
		st.Edit = idx[rng.IntN(len(idx))]
		return st
	case KindPolicyRemove:
		st.Lasts = beats(rng, o, 1, 3)
		return st
	}
	f := discordtest.Fault{Kind: discordtest.FaultKind(kind)}
	switch f.Kind {
	case discordtest.FaultStallACKs:
		f.Shards, f.Duration = someShards(rng, o), beats(rng, o, 1, 4)
	case discordtest.FaultDelayACKs:
		f.Shards, f.Delay, f.Duration = someShards(rng, o), beats(rng, o, 0.1, 2), beats(rng, o, 2, 5)
	case discordtest.FaultDrop, discordtest.FaultReconnect, discordtest.FaultHeartbeatRequest:
		f.Shards = someShards(rng, o)
	case discordtest.FaultClose:
		f.Shards, f.Code = someShards(rng, o), chaosCloseCodes[rng.IntN(len(chaosCloseCodes))]
	case discordtest.FaultInvalidSession:
		f.Shards, f.Resumable = someShards(rng, o), rng.IntN(2) == 0
	case discordtest.FaultOutage:
		f.Mode = []discordtest.OutageMode{discordtest.OutageRefuse, discordtest.OutageBlackhole}[rng.IntN(2)]
		f.Duration = beats(rng, o, 0.5, 4)
	case discordtest.FaultWithholdHello:
		f.Duration = beats(rng, o, 0.5, 3)
	case discordtest.FaultStallDispatches:
		f.Shards, f.Duration = someShards(rng, o), beats(rng, o, 1, 4)
	case discordtest.FaultInvalidateSessions:
	case discordtest.FaultShedIdentify:
		f.Duration = beats(rng, o, 0.5, 2.5)
	case discordtest.FaultRESTLatency:
		f.Delay, f.Duration = between(rng, 50*time.Millisecond, 1500*time.Millisecond), beats(rng, o, 1, 4)
	case discordtest.FaultRESTErrors:
		f.Rate = 0.2 + 0.8*rng.Float64()
		f.Status = []int{500, 502, 503, 504}[rng.IntN(4)]
		f.Duration = beats(rng, o, 1, 4)
	case discordtest.FaultRESTRateLimit:
		f.Global = rng.IntN(2) == 0
		f.RetryAfter = between(rng, 20*time.Millisecond, 300*time.Millisecond)
		f.Duration = beats(rng, o, 1, 3)
	case discordtest.FaultCloudflareBan:
		f.Duration = beats(rng, o, 1, 3)
	case discordtest.FaultLatencySpike:
		f.Delay, f.Duration = between(rng, 50*time.Millisecond, 1200*time.Millisecond), beats(rng, o, 1, 3)
	case discordtest.FaultMassDisconnect:
		f.Code = []int{0, 4000, 1001, 1011, 4009}[rng.IntN(5)]
	case discordtest.FaultGuildOutage:
		f.Shards, f.Duration = someShards(rng, o), beats(rng, o, 1, 4)
	case discordtest.FaultDispatch:
		f.Shards, f.Count = someShards(rng, o), 1+rng.IntN(20)
	}
	st.Fault = &f
	st.Lasts = f.Duration
	return st
}
