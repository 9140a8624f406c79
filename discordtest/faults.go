package discordtest

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// FaultKind names a fault. The string is the label of a scenario step.
type FaultKind string

// The faults the fake can inject. Shards (nil for all) applies to the
// kinds marked "per shard"; the others act on the whole server.
const (
	// FaultStallACKs: heartbeats are read but never ACKed for Duration (a
	// zombie connection). Per shard.
	FaultStallACKs FaultKind = "stall_acks"
	// FaultDelayACKs: each ACK is sent Delay late, for Duration. Per shard.
	FaultDelayACKs FaultKind = "delay_acks"
	// FaultDrop: cut the TCP connections without a close frame. Per shard.
	FaultDrop FaultKind = "drop"
	// FaultClose: close the connections with Code. Per shard.
	FaultClose FaultKind = "close"
	// FaultReconnect: send op 7 RECONNECT. Per shard.
	FaultReconnect FaultKind = "reconnect"
	// FaultInvalidSession: send op 9 with d=Resumable. With d=false the
	// session ends. Per shard.
	FaultInvalidSession FaultKind = "invalid_session"
	// FaultHeartbeatRequest: send op 1, asking for a heartbeat now. Per
	// shard.
	FaultHeartbeatRequest FaultKind = "heartbeat_request"
	// FaultOutage: new gateway connections are refused (Mode "refuse": the
	// TCP connection is reset) or black-holed (Mode "blackhole": accepted,
	// never answered, closed when the outage ends) for Duration.
	FaultOutage FaultKind = "outage"
	// FaultWithholdHello: new gateway connections get no HELLO for
	// Duration.
	FaultWithholdHello FaultKind = "withhold_hello"
	// FaultStallDispatches: ACKs go on but dispatches stop for Duration;
	// they are queued and sent (or replayed on RESUME) afterwards. Per
	// shard.
	FaultStallDispatches FaultKind = "stall_dispatches"
	// FaultInvalidateSessions: every session ends: op 9 d=false on live
	// connections; disconnected sessions can no longer resume.
	FaultInvalidateSessions FaultKind = "invalidate_sessions"
	// FaultShedIdentify: every IDENTIFY is answered with op 9 d=false for
	// Duration (load shedding).
	FaultShedIdentify FaultKind = "shed_identify"
	// FaultRESTLatency: every REST response is Delay late, for Duration.
	FaultRESTLatency FaultKind = "rest_latency"
	// FaultRESTErrors: a Rate share of REST requests fail with Status
	// (default 500), for Duration.
	FaultRESTErrors FaultKind = "rest_errors"
	// FaultRESTRateLimit: every REST request gets a 429 (scope "shared",
	// or "global" with Global) with retry_after RetryAfter (default: the
	// time left in the storm), for Duration.
	FaultRESTRateLimit FaultKind = "rest_rate_limit"
	// FaultCloudflareBan: every REST request gets Cloudflare's 429 HTML
	// page ("error code: 1015") with no rate-limit headers, for Duration.
	FaultCloudflareBan FaultKind = "cloudflare_ban"
	// FaultLatencySpike: every gateway frame the fake sends and every REST
	// response is Delay late, for Duration.
	FaultLatencySpike FaultKind = "latency_spike"
	// FaultMassDisconnect: every gateway connection ends at once: dropped
	// without a close frame, or closed with Code when Code is set.
	FaultMassDisconnect FaultKind = "mass_disconnect"
	// FaultGuildOutage: each guild of the shards goes unavailable
	// (GUILD_DELETE unavailable=true) and comes back (GUILD_CREATE) after
	// Duration. Per shard.
	FaultGuildOutage FaultKind = "guild_outage"
	// FaultDispatch: send Count (default 1) MESSAGE_CREATE dispatches to
	// each session of the shards. Per shard.
	FaultDispatch FaultKind = "dispatch"
)

// OutageMode says how an outage treats new connections.
type OutageMode string

// Outage modes.
const (
	OutageRefuse    OutageMode = "refuse"
	OutageBlackhole OutageMode = "blackhole"
)

// Fault is one fault to inject. Which fields matter depends on Kind (see
// the FaultKind constants); Validate rejects a field set for a kind that
// does not use it.
type Fault struct {
	Kind FaultKind
	// Shards limits a per-shard fault to these shard IDs; nil means every
	// shard, including connections that have not identified yet.
	Shards []int
	// Duration is how long a lasting fault lasts; 0 means until
	// ClearFaults.
	Duration time.Duration
	// Delay is the added latency of delay_acks, rest_latency and
	// latency_spike.
	Delay time.Duration
	// Code is the close code of close and mass_disconnect.
	Code int
	// Resumable is op 9's d for invalid_session.
	Resumable bool
	// Rate is the share of requests rest_errors fails, in (0, 1].
	Rate float64
	// Status is rest_errors' HTTP status, 500-599 (default 500).
	Status int
	// Global makes a rest_rate_limit storm global.
	Global bool
	// RetryAfter is the retry_after a rest_rate_limit storm reports.
	RetryAfter time.Duration
	// Mode is an outage's mode (default refuse).
	Mode OutageMode
	// Count is how many dispatches dispatch sends (default 1).
	Count int
}

// faultParams lists, per kind, the parameters it uses and those it
// requires (besides Kind).
var faultParams = map[FaultKind]struct{ uses, requires []string }{
	FaultStallACKs:          {uses: []string{"shards", "duration"}},
	FaultDelayACKs:          {uses: []string{"shards", "duration", "delay"}, requires: []string{"delay"}},
	FaultDrop:               {uses: []string{"shards"}},
	FaultClose:              {uses: []string{"shards", "code"}, requires: []string{"code"}},
	FaultReconnect:          {uses: []string{"shards"}},
	FaultInvalidSession:     {uses: []string{"shards", "resumable"}},
	FaultHeartbeatRequest:   {uses: []string{"shards"}},
	FaultOutage:             {uses: []string{"duration", "mode"}},
	FaultWithholdHello:      {uses: []string{"duration"}},
	FaultStallDispatches:    {uses: []string{"shards", "duration"}},
	FaultInvalidateSessions: {},
	FaultShedIdentify:       {uses: []string{"duration"}},
	FaultRESTLatency:        {uses: []string{"duration", "delay"}, requires: []string{"delay"}},
	FaultRESTErrors:         {uses: []string{"duration", "rate", "status"}, requires: []string{"rate"}},
	FaultRESTRateLimit:      {uses: []string{"duration", "global", "retry_after"}},
	FaultCloudflareBan:      {uses: []string{"duration"}},
	FaultLatencySpike:       {uses: []string{"duration", "delay"}, requires: []string{"delay"}},
	FaultMassDisconnect:     {uses: []string{"code"}},
	FaultGuildOutage:        {uses: []string{"shards", "duration"}},
	FaultDispatch:           {uses: []string{"shards", "count"}},
}

// FaultKinds returns every fault kind, sorted.
func FaultKinds() []FaultKind {
	out := make([]FaultKind, 0, len(faultParams))
	for k := range faultParams {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// setParams lists the parameters f sets (non-zero).
func (f Fault) setParams() []string {
	var out []string
	add := func(set bool, name string) {
		if set {
			out = append(out, name)
		}
	}
	add(f.Shards != nil, "shards")
	add(f.Duration != 0, "duration")
	add(f.Delay != 0, "delay")
	add(f.Code != 0, "code")
	add(f.Resumable, "resumable")
	add(f.Rate != 0, "rate")
	add(f.Status != 0, "status")
	add(f.Global, "global")
	add(f.RetryAfter != 0, "retry_after")
	add(f.Mode != "", "mode")
	add(f.Count != 0, "count")
	return out
}

func validCloseCode(c int) bool {
	switch {
	case c == 1004 || c == 1005 || c == 1006 || c == 1015:
		return false
	case c >= 1000 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// Validate reports whether f is well formed for its kind.
func (f Fault) Validate() error {
	p, ok := faultParams[f.Kind]
	if !ok {
		kinds := make([]string, 0, len(faultParams))
		for _, k := range FaultKinds() {
			kinds = append(kinds, string(k))
		}
		return fmt.Errorf("unknown fault kind %q (known: %s): %w", f.Kind, strings.Join(kinds, ", "), ErrInvalidFault)
	}
	uses := map[string]bool{}
	for _, u := range p.uses {
		uses[u] = true
	}
	for _, s := range f.setParams() {
		if !uses[s] {
			return fmt.Errorf("fault %s does not use %q: %w", f.Kind, s, ErrInvalidFault)
		}
	}
	set := map[string]bool{}
	for _, s := range f.setParams() {
		set[s] = true
	}
	for _, r := range p.requires {
		if !set[r] {
			return fmt.Errorf("fault %s needs %q: %w", f.Kind, r, ErrInvalidFault)
		}
	}
	for _, s := range f.Shards {
		if s < 0 {
			return fmt.Errorf("fault %s: shard %d is negative: %w", f.Kind, s, ErrInvalidFault)
		}
	}
	switch {
	case f.Duration < 0:
		return fmt.Errorf("fault %s: negative duration %v: %w", f.Kind, f.Duration, ErrInvalidFault)
	case f.Delay < 0:
		return fmt.Errorf("fault %s: negative delay %v: %w", f.Kind, f.Delay, ErrInvalidFault)
	case f.RetryAfter < 0:
		return fmt.Errorf("fault %s: negative retry_after %v: %w", f.Kind, f.RetryAfter, ErrInvalidFault)
	case f.Count < 0 || f.Count > 10000:
		return fmt.Errorf("fault %s: count %d is outside 0-10000: %w", f.Kind, f.Count, ErrInvalidFault)
	case f.Rate < 0 || f.Rate > 1:
		return fmt.Errorf("fault %s: rate %v is outside (0, 1]: %w", f.Kind, f.Rate, ErrInvalidFault)
	case f.Status != 0 && (f.Status < 500 || f.Status > 599):
		return fmt.Errorf("fault %s: status %d is not a 5xx: %w", f.Kind, f.Status, ErrInvalidFault)
	case f.Mode != "" && f.Mode != OutageRefuse && f.Mode != OutageBlackhole:
		return fmt.Errorf("fault %s: mode %q is neither %q nor %q: %w", f.Kind, f.Mode, OutageRefuse, OutageBlackhole, ErrInvalidFault)
	}
	if f.Kind == FaultClose || (f.Kind == FaultMassDisconnect && f.Code != 0) {
		if !validCloseCode(f.Code) {
			return fmt.Errorf("fault %s: %d is not a close code a server may send: %w", f.Kind, f.Code, ErrInvalidFault)
		}
	}
	return nil
}

// activeFault is a lasting fault and when it ends (zero: never).
type activeFault struct {
	Fault
	id    uint64
	until time.Time
}

func (a activeFault) appliesTo(shard int) bool {
	if a.Shards == nil {
		return true
	}
	for _, s := range a.Shards {
		if s == shard {
			return true
		}
	}
	return false
}

// faultSet holds the lasting faults in force.
type faultSet struct {
	mu     sync.Mutex
	nextID uint64
	active []activeFault
	// blackhole is closed when the current black-hole outage ends.
	blackhole chan struct{}
}

func (fs *faultSet) add(f Fault, until time.Time) uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.nextID++
	fs.active = append(fs.active, activeFault{Fault: f, id: fs.nextID, until: until})
	if f.Kind == FaultOutage && f.Mode == OutageBlackhole && fs.blackhole == nil {
		fs.blackhole = make(chan struct{})
	}
	return fs.nextID
}

// remove ends one fault; it reports whether it was still active.
func (fs *faultSet) remove(id uint64) (activeFault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, a := range fs.active {
		if a.id == id {
			fs.active = append(fs.active[:i], fs.active[i+1:]...)
			fs.releaseBlackholeLocked()
			return a, true
		}
	}
	return activeFault{}, false
}

func (fs *faultSet) clear() []activeFault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	old := fs.active
	fs.active = nil
	fs.releaseBlackholeLocked()
	return old
}

// releaseBlackholeLocked lets held connections go once no black-hole
// outage remains.
func (fs *faultSet) releaseBlackholeLocked() {
	if fs.blackhole == nil {
		return
	}
	for _, a := range fs.active {
		if a.Kind == FaultOutage && a.Mode == OutageBlackhole {
			return
		}
	}
	close(fs.blackhole)
	fs.blackhole = nil
}

// find returns the first active fault of kind that applies to shard and
// has not ended at now.
func (fs *faultSet) find(kind FaultKind, shard int, now time.Time) (activeFault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, a := range fs.active {
		if a.Kind != kind || (!a.until.IsZero() && !now.Before(a.until)) {
			continue
		}
		if shard == allShards || a.appliesTo(shard) {
			return a, true
		}
	}
	return activeFault{}, false
}

// sum adds the Delay of every active fault of the given kinds.
func (fs *faultSet) delay(now time.Time, kinds ...FaultKind) time.Duration {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var d time.Duration
	for _, a := range fs.active {
		if !a.until.IsZero() && !now.Before(a.until) {
			continue
		}
		for _, k := range kinds {
			if a.Kind == k {
				d += a.Delay
			}
		}
	}
	return d
}

func (fs *faultSet) blackholeChan() chan struct{} {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.blackhole
}

// allShards in a query matches a fault whatever its Shards.
const allShards = -2

// noShard is the shard of a connection that has not identified.
const noShard = -1
