package orchestrator_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	dto "github.com/prometheus/client_model/go"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/telemetry"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// newShardedSystem is an Orchestrator running every shard the fake
// recommends (ShardCount left to auto), Discord's timings scaled by 200,
// all shards in their own identify bucket.
func newShardedSystem(t *testing.T, shards int, mutate func(*orchestrator.Config)) *system {
	t.Helper()
	srv, err := discordtest.NewServer(discordtest.Options{
		Scale:             200,
		Guilds:            4 * shards,
		RecommendedShards: shards,
		MaxConcurrency:    shards,
		SessionExpiry:     30 * time.Second,
		HeartbeatTimeout:  5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := fakeConfig(srv)
	if mutate != nil {
		mutate(&cfg)
	}
	return newSystemFrom(t, srv, cfg)
}

// shardPolicy degrades the process when more than 30% of its shards are
// unhealthy, and recovers once none is. A shard is unhealthy when its
// gateway check fails: no HEARTBEAT_ACK for 500ms (two heartbeat
// intervals at this scale; the zombie factor is raised so a stalled shard
// stays READY and shows it).
const shardPolicy = `
health {
  interval = "1s"
  timeout  = "500ms"
  retries  = 0
  check "gateway" {
    type      = "gateway"
    threshold = "500ms"
    critical  = true
  }
}
degradation {
  recovery_delay = "200ms"
  level "moderate" {
    when    = "shards.unhealthy_ratio > 0.3"
    actions = ["disable_analytics"]
  }
  recover {
    when = "shards.unhealthy == 0 && shards.ready == shards.total"
  }
}
`

// A policy conditioned on the share of unhealthy shards: one stalled shard
// of four (25%) leaves the process alone, three (75%) degrade it, and it
// recovers once they are answered again. Start reports each shard READY
// in turn, the shard count comes from /gateway/bot, and the shards' own
// health changes carry their shard.
func TestShareOfUnhealthyShardsDegradesTheProcess(t *testing.T) {
	const shards = 4
	p, err := policy.LoadSource("shards.hcl", []byte(shardPolicy), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var progress []orchestrator.ShardProgress
	type tickSeen struct {
		unhealthy int
		level     policy.Level
	}
	ticks := make(chan tickSeen, 1<<16)
	s := newShardedSystem(t, shards, func(c *orchestrator.Config) {
		c.Policy = p
		c.OnShardProgress = func(pr orchestrator.ShardProgress) {
			mu.Lock()
			progress = append(progress, pr)
			mu.Unlock()
		}
		c.Tune = func(c *conn.Config) {
			c.HandshakeTimeout = 2 * time.Second
			c.ReconnectDelay = 20 * time.Millisecond
			c.ZombieFactor = 40
		}
		c.OnTick = func(snap metrics.Snapshot, _ policy.Decision, l policy.Level) {
			select {
			case ticks <- tickSeen{snap.Shards.Unhealthy, l}:
			default:
			}
		}
	})
	s.start()
	defer s.stop()

	mu.Lock()
	if len(progress) != shards {
		t.Fatalf("progress reported %d times, want %d: %+v", len(progress), shards, progress)
	}
	for i, pr := range progress {
		if pr.Ready != i+1 || pr.Total != shards || pr.String() != strconv.Itoa(i+1)+" of 4 shards READY" {
			t.Fatalf("progress %d = %+v (%q)", i, pr, pr.String())
		}
	}
	mu.Unlock()
	if got := len(s.o.Shards()); got != shards {
		t.Fatalf("%d shards running, want the %d /gateway/bot recommends", got, shards)
	}
	drain := func() {
		for {
			select {
			case <-ticks:
			default:
				return
			}
		}
	}
	// waitTicks reads ticks until one satisfies cond; it fails when any
	// tick before it shows a level above maxLevel.
	waitTicks := func(what string, maxLevel policy.Level, cond func(tickSeen) bool) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case tk := <-ticks:
				if tk.level > maxLevel {
					t.Fatalf("%s: level %s, above %s", what, tk.level, maxLevel)
				}
				if cond(tk) {
					return
				}
			case <-deadline:
				t.Fatalf("%s: not within 15s", what)
			}
		}
	}

	// One shard of four stalls: it is unhealthy, the process is not
	// degraded (25% is not more than 30%).
	drain()
	if err := s.srv.StallACKs(0, 3); err != nil {
		t.Fatal(err)
	}
	waitTicks("shard 3 unhealthy", policy.None, func(tk tickSeen) bool { return tk.unhealthy == 1 })
	for i := 0; i < 10; i++ { // ten more ticks, still NONE
		waitTicks("one unhealthy shard", policy.None, func(tickSeen) bool { return true })
	}

	// Two more: 75% of the shards are unhealthy, the process degrades.
	if err := s.srv.StallACKs(0, 1, 2); err != nil {
		t.Fatal(err)
	}
	waitTicks("MODERATE", policy.Moderate, func(tk tickSeen) bool { return tk.level == policy.Moderate && tk.unhealthy >= 2 })
	if d := s.o.Decision(); d.Level != policy.Moderate || !strings.Contains(d.Reason, `level "moderate"`) {
		t.Fatalf("decision %+v", d)
	}

	// Discord answers again: every shard healthy, the process recovers.
	s.srv.ClearFaults()
	waitTicks("back to NONE", policy.Moderate, func(tk tickSeen) bool { return tk.level == policy.None && tk.unhealthy == 0 })
	snap := s.o.Snapshot()
	if snap.Shards.Total != shards || snap.Shards.Ready != shards || !snap.Gateway.Connected || snap.Gateway.Identifies != shards {
		t.Fatalf("after recovery: shards %+v gateway %+v", snap.Shards, snap.Gateway)
	}
	if v := s.srv.Ledger().Violations(); len(v) > 0 {
		t.Fatalf("ledger violations: %+v", v)
	}
	// The bus delivers asynchronously: wait for the deactivation to reach
	// the listener before reading what it saw.
	s.eventually("DEGRADATION_DEACTIVATED delivered", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.evs {
			if d, ok := e.Data.(events.Degradation); ok && !d.Activated && d.To == "NONE" {
				return true
			}
		}
		return false
	})

	s.mu.Lock()
	defer s.mu.Unlock()
	unhealthy := map[int]bool{}
	var degraded, recovered bool
	for _, e := range s.evs {
		switch d := e.Data.(type) {
		case events.HealthChange:
			if d.To == "UNHEALTHY" || d.To == "CRITICAL" {
				unhealthy[e.Shard] = true
			}
		case events.Degradation:
			if e.Shard != events.NoShard {
				t.Errorf("a process-wide degradation event carries shard %d", e.Shard)
			}
			degraded = degraded || (d.Activated && d.To == "MODERATE")
			recovered = recovered || (!d.Activated && d.To == "NONE")
		}
	}
	for _, id := range []int{1, 2, 3} {
		if !unhealthy[id] {
			t.Errorf("no HEALTH_CHANGED to unhealthy from shard %d (seen %v)", id, unhealthy)
		}
	}
	if unhealthy[0] {
		t.Error("shard 0 was never stalled but reported unhealthy")
	}
	if !degraded || !recovered {
		t.Errorf("degradation events: activated MODERATE %v, back to NONE %v", degraded, recovered)
	}
}

// Three shards: /debug/lifeline and /metrics show each one (state,
// latency, last close code, resumes, identifies) with its shard, after
// shard 1 was closed with 4000 and resumed.
func TestPerShardDiagnosticsAndMetrics(t *testing.T) {
	const shards = 3
	s := newShardedSystem(t, shards, nil)
	var got sync.Map
	s.o.AddHandler(func(sess *discordgo.Session, m *discordgo.MessageCreate) { got.Store(m.Content, sess.ShardID) })
	s.start()
	defer s.stop()
	h := s.o.Handler(telemetry.HandlerOptions{})
	web := httptest.NewServer(h)
	defer func() { h.Close(); web.Close() }()

	if err := s.srv.CloseConnections(4000, 1); err != nil {
		t.Fatal(err)
	}
	s.eventually("shard 1 resumed", func() bool {
		v := s.o.ShardView()
		return v.Aggregate.Ready == shards && v.Shards[1].Snapshot.Gateway.Resumes == 1
	})
	// Every guild's messages reach the handler, on the guild's shard.
	for _, g := range s.srv.Guilds() {
		if _, err := s.srv.EmitMessage(g.ChannelID, "to-"+g.ID); err != nil {
			t.Fatal(err)
		}
	}
	s.eventually("a message from every guild", func() bool {
		for _, g := range s.srv.Guilds() {
			if _, ok := got.Load("to-" + g.ID); !ok {
				return false
			}
		}
		return true
	})
	for _, g := range s.srv.Guilds() {
		sh, _ := got.Load("to-" + g.ID)
		if want := s.o.ShardForGuild(g.ID); want == nil || want.ID() != sh.(int) {
			t.Errorf("guild %s: message on shard %v, ShardForGuild says %v", g.ID, sh, want)
		}
	}

	resp, err := http.Get(web.URL + "/debug/lifeline")
	if err != nil {
		t.Fatal(err)
	}
	var debug struct {
		Diagnostics struct {
			State  string `json:"state"`
			Shards struct {
				Shards []struct {
					ID        int    `json:"id"`
					State     string `json:"state"`
					Condition string `json:"condition"`
					Snapshot  struct {
						Latency struct {
							Heartbeat time.Duration `json:"heartbeat"`
						} `json:"latency"`
						Gateway struct {
							LastCloseCode int    `json:"last_close_code"`
							Resumes       uint64 `json:"resumes"`
							Identifies    uint64 `json:"identifies"`
						} `json:"gateway"`
					} `json:"snapshot"`
				} `json:"shards"`
				Aggregate struct {
					Total int `json:"total"`
					Count int `json:"count"`
					Ready int `json:"ready"`
				} `json:"aggregate"`
			} `json:"shards"`
		} `json:"diagnostics"`
	}
	err = json.NewDecoder(resp.Body).Decode(&debug)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	d := debug.Diagnostics
	if d.State != "READY" || d.Shards.Aggregate.Total != shards || d.Shards.Aggregate.Count != shards || d.Shards.Aggregate.Ready != shards || len(d.Shards.Shards) != shards {
		t.Fatalf("/debug/lifeline: %+v", d)
	}
	for i, sh := range d.Shards.Shards {
		wantResumes, wantClose := uint64(0), 0
		if i == 1 {
			wantResumes, wantClose = 1, 4000
		}
		g := sh.Snapshot.Gateway
		if sh.ID != i || sh.State != "READY" || sh.Condition != "HEALTHY" || g.Identifies != 1 || g.Resumes != wantResumes || g.LastCloseCode != wantClose {
			t.Errorf("/debug/lifeline shard %d: %+v", i, sh)
		}
	}

	s.eventually("every shard has a heartbeat latency", func() bool {
		for _, sh := range s.o.ShardView().Shards {
			if sh.Snapshot.Latency.Heartbeat == 0 {
				return false
			}
		}
		return true
	})
	fams := families(t, web.URL)
	for i := 0; i < shards; i++ {
		id := strconv.Itoa(i)
		wantResumes, wantClose := 0.0, 0.0
		if i == 1 {
			wantResumes, wantClose = 1, 4000
		}
		for _, c := range []struct {
			family string
			labels lbl
			ok     func(float64) bool
			want   string
		}{
			{"lifeline_shard_state", lbl{"shard": id, "state": "READY"}, eq(1), "1"},
			{"lifeline_shard_condition", lbl{"shard": id, "condition": "HEALTHY"}, eq(1), "1"},
			{"lifeline_shard_connected", lbl{"shard": id}, eq(1), "1"},
			{"lifeline_shard_heartbeat_latency_seconds", lbl{"shard": id}, func(v float64) bool { return v > 0 }, "> 0"},
			{"lifeline_shard_last_close_code", lbl{"shard": id}, eq(wantClose), strconv.Itoa(int(wantClose))},
			{"lifeline_shard_resumes_total", lbl{"shard": id}, eq(wantResumes), strconv.Itoa(int(wantResumes))},
			{"lifeline_shard_identifies_total", lbl{"shard": id}, eq(1), "1"},
			{"lifeline_shard_breaker_state", lbl{"shard": id, "state": "CLOSED"}, eq(1), "1"},
		} {
			if n := countSeries(fams, c.family, c.labels); n != 1 {
				t.Errorf("%s%v: %d series, want 1", c.family, c.labels, n)
				continue
			}
			if v := sum(fams, c.family, c.labels); !c.ok(v) {
				t.Errorf("%s%v = %v, want %s", c.family, c.labels, v, c.want)
			}
		}
	}
	// The process families add the shards up under the process's label.
	if v := sum(fams, "lifeline_gateway_identifies_total", lbl{"shard": "0", "cause": "start"}); v != shards {
		t.Errorf("lifeline_gateway_identifies_total{cause=start} = %v, want %d (one per shard, none a reconnect)", v, shards)
	}
	if v := sum(fams, "lifeline_gateway_reconnects_total", lbl{"shard": "0"}); v != 1 {
		t.Errorf("lifeline_gateway_reconnects_total = %v, want 1 (shard 1's)", v)
	}
}

func countSeries(fams map[string]*dto.MetricFamily, name string, want map[string]string) int {
	n := 0
	for _, m := range fams[name].GetMetric() {
		if hasLabels(m, want) {
			n++
		}
	}
	return n
}

// A process running shards 1 to 2 of 4 starts only those, and refuses a
// range past the count.
func TestShardRange(t *testing.T) {
	s := newShardedSystem(t, 4, func(c *orchestrator.Config) {
		c.ShardCount = 4
		c.ShardRange = &orchestrator.ShardRange{First: 1, Last: 2}
	})
	s.start()
	defer s.stop()
	var ids []int
	for _, sh := range s.o.Shards() {
		ids = append(ids, sh.ID())
	}
	if len(ids) != 2 || ids[0] != 1 || ids[1] != 2 || s.o.Shard(0) != nil {
		t.Fatalf("shards running %v, want [1 2]", ids)
	}
	if s.o.Session() != s.o.Shard(1).Session() || s.o.Connection() != s.o.Shard(1).Connection() {
		t.Fatal("Session and Connection are not the first shard's of the range")
	}
	if snap := s.o.Snapshot(); snap.Shard.ID != 1 || snap.Shard.Count != 4 || snap.Shards.Total != 2 {
		t.Fatalf("snapshot shard %+v shards %+v", snap.Shard, snap.Shards)
	}
	for _, cfg := range []orchestrator.Config{
		{Token: "t", ShardCount: 4, ShardRange: &orchestrator.ShardRange{First: 3, Last: 4}},
		{Token: "t", ShardRange: &orchestrator.ShardRange{First: 2, Last: 1}},
		{Token: "t", ShardCount: -1},
	} {
		if _, err := orchestrator.New(cfg); err == nil {
			t.Errorf("New accepted %+v", cfg)
		}
	}
}

// The default count is auto: when Discord closes the one shard with 4011
// (sharding required), Start re-shards to two and both come up; a handler
// given to AddHandler before Start hears every guild, on the new shards.
func TestAutoReshardsAtStart(t *testing.T) {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 200, Guilds: 6, MaxGuildsPerShard: 4, MaxConcurrency: 2,
		SessionExpiry: 30 * time.Second, HeartbeatTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	s := &system{t: t, srv: srv, evCh: make(chan events.Event, 8192)}
	o, err := orchestrator.New(orchestrator.Config{Token: srv.Token(), RESTTransport: srv.Transport(), GatewayDialer: srv.Dialer(),
		IdentifyWindow: srv.IdentifyWindow(), TickInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.o = o
	var got sync.Map
	o.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) { got.Store(m.Content, true) })
	s.start()
	defer s.stop()
	if n := len(o.Shards()); n != 2 || o.ShardManager().Count() != 2 {
		t.Fatalf("%d shards of %d after 4011, want 2", n, o.ShardManager().Count())
	}
	if o.Session() != o.Shard(0).Session() {
		t.Fatal("Session() is not the new first shard's")
	}
	for _, g := range srv.Guilds() {
		if _, err := srv.EmitMessage(g.ChannelID, "to-"+g.ID); err != nil {
			t.Fatal(err)
		}
	}
	s.eventually("a message from every guild", func() bool {
		for _, g := range srv.Guilds() {
			if _, ok := got.Load("to-" + g.ID); !ok {
				return false
			}
		}
		return true
	})
	if snap := o.Snapshot(); snap.Shards.Total != 2 || snap.Shards.Ready != 2 || snap.Shard.Count != 2 {
		t.Fatalf("snapshot shards %+v shard %+v", snap.Shards, snap.Shard)
	}
	// One shard had the built-in checks on the process monitor; two have
	// them on their own monitors, and the process monitor none.
	if names := checkNames(o.HealthMonitor()); len(names) != 0 {
		t.Errorf("process monitor after the re-shard to 2 shards: checks %v, want none (no plugin)", names)
	}
	for _, sh := range o.Shards() {
		if names := checkNames(sh.Monitor()); !slices.Equal(names, []string{"error_rate", "gateway", "latency"}) {
			t.Errorf("shard %d monitor: checks %v, want the built-in ones", sh.ID(), names)
		}
	}
	if v := srv.Ledger().Violations(); len(v) > 0 {
		t.Fatalf("ledger violations: %+v", v)
	}
}

// checkNames lists mon's checks, sorted (nil for a nil monitor).
func checkNames(mon *health.Monitor) []string {
	if mon == nil {
		return nil
	}
	var out []string
	for _, c := range mon.Diagnostics().Checks {
		out = append(out, c.Name)
	}
	return out
}

// healthPolicy is shardPolicy as a user might write it on the process's
// health.* instead of shards.*: the same checks (each shard's gateway
// check fails after 500ms without a HEARTBEAT_ACK), MODERATE when the
// health is CRITICAL or scores below 60.
var healthPolicy = strings.NewReplacer(
	`"shards.unhealthy_ratio > 0.3"`, `"health.status == 'CRITICAL' || health.score < 60"`,
	`"shards.unhealthy == 0 && shards.ready == shards.total"`, `"health.score >= 60"`,
).Replace(shardPolicy)

// With several shards the process monitor holds only what is process-wide
// (plugin checks): the built-in checks run on each shard's monitor, so one
// shard of four that stops getting HEARTBEAT_ACKs is unhealthy in
// shards.* while health.* (and a policy reading it) stays calm. Before
// the fix the process's gateway check judged the merged Snapshot (the
// worst shard's ACK age), failed, and made the process CRITICAL (score
// 50): MODERATE for one shard of four.
func TestOneShardDownDoesNotFailTheProcessHealth(t *testing.T) {
	const shards = 4
	p, err := policy.LoadSource("health.hcl", []byte(healthPolicy), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if lv := p.Degradation.Levels; len(lv) != 1 || !strings.Contains(lv[0].When.Expr, "health.status") {
		t.Fatalf("healthPolicy's level does not read health.*: %+v", lv)
	}
	type tickSeen struct {
		unhealthy int
		status    string
		level     policy.Level
	}
	ticks := make(chan tickSeen, 1<<16)
	s := newShardedSystem(t, shards, func(c *orchestrator.Config) {
		c.Policy = p
		c.Tune = func(c *conn.Config) {
			c.HandshakeTimeout = 2 * time.Second
			c.ReconnectDelay = 20 * time.Millisecond
			c.ZombieFactor = 40 // a stalled shard stays READY and its check shows it
		}
		c.OnTick = func(snap metrics.Snapshot, _ policy.Decision, l policy.Level) {
			select {
			case ticks <- tickSeen{snap.Shards.Unhealthy, snap.Health.Status, l}:
			default:
			}
		}
	})
	s.start()
	defer s.stop()

	if names := checkNames(s.o.HealthMonitor()); len(names) != 0 {
		t.Fatalf("process monitor of %d shards: checks %v, want none (no plugin)", shards, names)
	}
	for _, sh := range s.o.Shards() {
		if names := checkNames(sh.Monitor()); !slices.Equal(names, []string{"gateway"}) {
			t.Fatalf("shard %d monitor: checks %v, want [gateway]", sh.ID(), names)
		}
	}

	if err := s.srv.StallACKs(0, 3); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(15 * time.Second)
	var seen time.Time // when shard 3 was first seen unhealthy
	for seen.IsZero() || time.Since(seen) < 3*time.Second {
		// Three seconds of ticks after that: three of the process
		// monitor's rounds, were it judging the gateway.
		select {
		case tk := <-ticks:
			if tk.level != policy.None || tk.status == "CRITICAL" || tk.status == "UNHEALTHY" {
				t.Fatalf("one stalled shard of %d: process health %s, level %s (%d unhealthy shards)", shards, tk.status, tk.level, tk.unhealthy)
			}
			if tk.unhealthy == 1 && seen.IsZero() {
				seen = time.Now()
			}
		case <-deadline:
			t.Fatalf("shard 3 never unhealthy, or the ticks stopped")
		}
	}
	if st := s.o.Shard(3).Monitor().Status(); st != health.Critical {
		t.Fatalf("the stalled shard's own health is %s, want CRITICAL", st)
	}
	s.srv.ClearFaults()
}
