package policies_test

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/policies"
)

// A scenario is a situation a bot can be in, played into a real
// metrics.Recorder on a fake clock: the Snapshot it builds obeys the
// Recorder's rules (gateway.last_ack_age is 0 while disconnected, a 429 is
// no operation, rates are over the window...), so a condition that only an
// impossible Snapshot satisfies is reached by no scenario. The breaker,
// health and degradation views are set the way their owners set them, and
// shards (the summary a sharded process's Snapshot carries) the way the
// shard manager fills it.
type scenario struct {
	name        string
	play        func(r *metrics.Recorder, clk *clock.Fake)
	breaker     metrics.BreakerView
	health      metrics.HealthView
	degradation string         // "" is NONE
	shards      metrics.Shards // zero: a single connection's Snapshot
}

// someShardsDown is a process of total shards, down of them reconnecting.
func someShardsDown(total, down int) metrics.Shards {
	up := total - down
	return metrics.Shards{
		Total: total, Ready: up, Healthy: up, Unhealthy: down, Reconnecting: down,
		ReadyRatio: float64(up) / float64(total), UnhealthyRatio: float64(down) / float64(total), DegradedRatio: float64(down) / float64(total),
		WorstAckAge: 20 * time.Second, WorstLatency: 90 * time.Millisecond, MeanLatency: 80 * time.Millisecond,
		MinHealthScore: 50,
	}
}

const interval = 41250 * time.Millisecond // Discord's heartbeat interval

// connect brings a session up, as HELLO then READY do.
func connect(r *metrics.Recorder) {
	r.Hello(interval)
	r.SetGatewayState("READY", true)
}

// heartbeats sends n heartbeats, each acknowledged after rtt, one interval
// apart.
func heartbeats(r *metrics.Recorder, clk *clock.Fake, n int, rtt time.Duration) {
	for range n {
		r.HeartbeatSent()
		clk.Advance(rtt)
		r.HeartbeatAcked()
		clk.Advance(time.Second)
	}
}

// rest records ok successful requests and then one request per status in
// bad (a status of 0 is a transport error), spread over a few seconds.
func rest(r *metrics.Recorder, clk *clock.Fake, ok int, bad ...int) {
	for range ok {
		r.ObserveREST(80*time.Millisecond, 200, false)
		clk.Advance(10 * time.Millisecond)
	}
	for _, status := range bad {
		r.ObserveREST(80*time.Millisecond, status, status == 0)
		clk.Advance(10 * time.Millisecond)
	}
}

func repeat(status, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = status
	}
	return s
}

// disconnect drops the session and records failed connection attempts,
// as the connection loop does during an outage.
func disconnect(r *metrics.Recorder, clk *clock.Fake, failedAttempts int) {
	r.CloseCode(1006)
	r.SetGatewayState("BACKING_OFF", false)
	r.ReconnectStarted()
	for range failedAttempts {
		clk.Advance(3 * time.Second)
		r.OperationFailed()
	}
}

var (
	closed  = metrics.BreakerView{State: "CLOSED"}
	healthy = metrics.HealthView{Score: 100, Status: "HEALTHY", Trend: "stable"}
	// gatewayDown is the health of a failing critical gateway check
	// (weight 2 of 4 with the latency and error-rate checks passing).
	gatewayDown = metrics.HealthView{Score: 50, Status: "CRITICAL", Trend: "degrading"}
)

func slowHeartbeat(rtt time.Duration) func(*metrics.Recorder, *clock.Fake) {
	return func(r *metrics.Recorder, clk *clock.Fake) {
		connect(r)
		heartbeats(r, clk, 3, rtt)
		rest(r, clk, 50)
	}
}

func failingShare(ok, failed, status int) func(*metrics.Recorder, *clock.Fake) {
	return func(r *metrics.Recorder, clk *clock.Fake) {
		connect(r)
		heartbeats(r, clk, 2, 80*time.Millisecond)
		rest(r, clk, ok, repeat(status, failed)...)
	}
}

func outage(failedAttempts int) func(*metrics.Recorder, *clock.Fake) {
	return func(r *metrics.Recorder, clk *clock.Fake) {
		connect(r)
		heartbeats(r, clk, 2, 80*time.Millisecond)
		rest(r, clk, 100)
		disconnect(r, clk, failedAttempts)
		rest(r, clk, 50) // REST still works: it does not need the gateway
	}
}

// oneShardOfManyDown is a process whose one shard dropped ten minutes
// ago and keeps failing to reconnect (large.hcl's backoff: 1s growing
// 2.5x to 2m) while the other shards' heartbeats and the REST traffic
// succeed.
func oneShardOfManyDown(r *metrics.Recorder, clk *clock.Fake) {
	connect(r)
	heartbeats(r, clk, 2, 80*time.Millisecond)
	rest(r, clk, 100)
	disconnect(r, clk, 0)
	for _, gap := range []time.Duration{time.Second, 2500 * time.Millisecond, 6 * time.Second, 16 * time.Second,
		39 * time.Second, 98 * time.Second, 2 * time.Minute, 2 * time.Minute, 2 * time.Minute, 78 * time.Second} {
		clk.Advance(gap)
		r.OperationFailed()
	}
	heartbeats(r, clk, 13, 80*time.Millisecond)
	rest(r, clk, 200)
}

// oneShardFailed is a process one of whose shards ended for good ten
// minutes ago (a fatal close code: it makes no further attempt) while the
// other shards' heartbeats and the REST traffic succeed.
func oneShardFailed(r *metrics.Recorder, clk *clock.Fake) {
	connect(r)
	heartbeats(r, clk, 2, 80*time.Millisecond)
	rest(r, clk, 100)
	r.CloseCode(4010)
	r.SetGatewayState("FAILED", false)
	clk.Advance(10 * time.Minute)
	heartbeats(r, clk, 13, 80*time.Millisecond)
	rest(r, clk, 200)
}

// oneOfTenFailed is the shards summary of a process of ten shards, one
// FAILED.
func oneOfTenFailed() metrics.Shards {
	sh := someShardsDown(10, 1)
	sh.Reconnecting, sh.Failed = 0, 1
	return sh
}

// failedAndDown is the shards summary of a process of ten shards, failed
// of them FAILED for good and down more reconnecting.
func failedAndDown(failed, down int) metrics.Shards {
	sh := someShardsDown(10, failed+down)
	sh.Reconnecting, sh.Failed = down, failed
	return sh
}

// scenarios must, together, reach every level of every shipped policy and
// every way (disjunct) each level condition can hold, and satisfy every
// recover condition. A new policy or level that none reaches fails the
// tests below: add the situation it is meant for here, played through the
// Recorder, or fix the condition.
var scenarios = []scenario{
	{name: "healthy", play: slowHeartbeat(80 * time.Millisecond), breaker: closed, health: healthy},
	{name: "heartbeat 900ms", play: slowHeartbeat(900 * time.Millisecond), breaker: closed, health: healthy},
	{name: "heartbeat 1.2s", play: slowHeartbeat(1200 * time.Millisecond), breaker: closed, health: healthy},
	{name: "heartbeat 1.7s", play: slowHeartbeat(1700 * time.Millisecond), breaker: closed, health: healthy},
	{name: "heartbeat 2.5s", play: slowHeartbeat(2500 * time.Millisecond), breaker: closed, health: healthy},
	{name: "heartbeat 3.5s", play: slowHeartbeat(3500 * time.Millisecond), breaker: closed, health: healthy},
	{name: "heartbeat 5s", play: slowHeartbeat(5 * time.Second), breaker: closed, health: healthy},
	{name: "heartbeat 7s", play: slowHeartbeat(7 * time.Second), breaker: closed, health: healthy},
	{name: "heartbeat 13s", play: slowHeartbeat(13 * time.Second), breaker: closed, health: healthy},
	{name: "heartbeat 25s", play: slowHeartbeat(25 * time.Second), breaker: closed, health: healthy},
	{name: "4% of requests fail", play: failingShare(96, 4, 502), breaker: closed, health: healthy},
	{name: "12% of requests fail", play: failingShare(88, 12, 502), breaker: closed, health: healthy},
	{name: "22% of requests fail", play: failingShare(78, 22, 0), breaker: closed, health: healthy},
	{name: "30% of requests fail", play: failingShare(70, 30, 0), breaker: closed, health: healthy},
	{name: "45% of requests fail", play: failingShare(55, 45, 0), breaker: closed, health: healthy},
	{name: "55% of requests fail", play: failingShare(45, 55, 0), breaker: closed, health: healthy},
	{name: "70% of requests fail", play: failingShare(30, 70, 0), breaker: closed, health: healthy},
	{name: "90% of requests fail", play: failingShare(10, 90, 0), breaker: closed, health: healthy},
	{name: "every request fails", play: func(r *metrics.Recorder, clk *clock.Fake) {
		connect(r)
		rest(r, clk, 0, repeat(0, 50)...)
	}, breaker: closed, health: healthy},
	{name: "25 server errors in 500 requests", play: failingShare(475, 25, 503), breaker: closed, health: healthy},
	{name: "110 server errors in 1500 requests", play: failingShare(1390, 110, 500), breaker: closed, health: healthy},
	{name: "12 rate-limited requests", play: failingShare(100, 12, 429), breaker: closed, health: healthy},
	{name: "60 rate-limited requests", play: failingShare(300, 60, 429), breaker: closed, health: healthy},
	{name: "3 timeouts in a row", play: failingShare(50, 3, 0), breaker: closed, health: healthy},
	{name: "5 timeouts in a row", play: failingShare(200, 5, 0), breaker: closed, health: healthy},
	{name: "10 timeouts in a row", play: failingShare(200, 10, 0), breaker: closed, health: healthy},
	{name: "20 timeouts in a row", play: failingShare(200, 20, 0), breaker: closed, health: healthy},
	{name: "40 timeouts in a row", play: failingShare(200, 40, 0), breaker: closed, health: healthy},
	{name: "a drop, one failed reconnect", play: outage(1), breaker: metrics.BreakerView{State: "CLOSED", Failures: 1}, health: gatewayDown},
	{name: "gateway down, 6 failed reconnects", play: outage(6), breaker: metrics.BreakerView{State: "CLOSED", Failures: 6}, health: gatewayDown},
	{
		name: "gateway down for long, old failures left the window", play: outage(2),
		breaker: metrics.BreakerView{State: "CLOSED", Failures: 2}, health: gatewayDown, degradation: "CRITICAL",
	},
	{
		name: "reconnect storm opened the breaker", play: outage(30),
		breaker: metrics.BreakerView{State: "OPEN", Failures: 30, Rejections: 4}, health: gatewayDown,
	},
	{
		// A sharded process: gateway.connected holds only when every
		// shard is, the breakers' failures add up.
		name: "2 of 10 shards reconnecting", play: outage(2),
		breaker: metrics.BreakerView{State: "CLOSED", Failures: 2}, health: healthy, shards: someShardsDown(10, 2),
	},
	{
		name: "6 of 10 shards reconnecting", play: outage(6),
		breaker: metrics.BreakerView{State: "CLOSED", Failures: 6}, health: gatewayDown, shards: someShardsDown(10, 6),
	},
	{
		// gateway.down_for is the longest shard outage: two minutes.
		name: "6 of 10 shards down for 2 minutes", play: outage(40),
		breaker: metrics.BreakerView{State: "OPEN", Failures: 40, Rejections: 9}, health: gatewayDown, shards: someShardsDown(10, 6),
	},
	{
		// One shard of many down for long, its breaker open: the worst
		// breaker and the process's gateway check read that one shard.
		name: "1 of 20 shards down for 10 minutes", play: oneShardOfManyDown,
		breaker: metrics.BreakerView{State: "OPEN", Failures: 3, Rejections: 40}, health: gatewayDown, shards: someShardsDown(20, 1),
	},
	{
		// One shard of ten ended for good: a tenth of the shards
		// unhealthy, none of them recovering. With several shards the
		// process health has the plugins' checks only (none here).
		name: "1 of 10 shards failed for good", play: oneShardFailed,
		breaker: closed, health: metrics.HealthView{Score: 100, Status: "UNKNOWN", Trend: "stable"}, shards: oneOfTenFailed(),
	},
	{
		// Two shards of ten ended for good (say a wrong shard range:
		// 4010): a fifth of the shards unhealthy, none recovering.
		name: "2 of 10 shards failed for good", play: oneShardFailed,
		breaker: closed, health: metrics.HealthView{Score: 100, Status: "UNKNOWN", Trend: "stable"}, shards: failedAndDown(2, 0),
	},
	{
		// One ended for good, two reconnecting: the two are a fifth.
		name: "1 of 10 shards failed, 2 reconnecting", play: outage(2),
		breaker: metrics.BreakerView{State: "CLOSED", Failures: 2}, health: healthy, shards: failedAndDown(1, 2),
	},
	{
		// Connected again with the breaker still OPEN: only the probes
		// (READY and answered heartbeats) close it.
		name: "back, breaker still open", play: slowHeartbeat(80 * time.Millisecond),
		breaker: metrics.BreakerView{State: "OPEN", Failures: 12}, health: healthy, degradation: "SEVERE",
	},
}

// snapshot plays sc into a fresh Recorder and builds its Snapshot.
func (sc scenario) snapshot() metrics.Snapshot {
	clk := clock.NewFake(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	r := metrics.NewRecorder(metrics.Options{Clock: clk})
	clk.Advance(time.Minute)
	sc.play(r, clk)
	r.SetBreaker(sc.breaker)
	r.SetHealth(sc.health)
	level := sc.degradation
	if level == "" {
		level = "NONE"
	}
	r.SetDegradation(metrics.DegradationView{Level: level, Since: clk.Now().Add(-2 * time.Minute)})
	s := r.Build()
	s.Shards = sc.shards
	return s
}

// shipped loads every policy file of policies.FS.
func shipped(t *testing.T) map[string]*policy.Policy {
	t.Helper()
	names, err := fs.Glob(policies.FS, "*.hcl")
	if err != nil || len(names) == 0 {
		t.Fatalf("no shipped policies: %v", err)
	}
	out := map[string]*policy.Policy{}
	for _, n := range names {
		src, err := fs.ReadFile(policies.FS, n)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.LoadSource(path.Join("policies", n), src, policy.Options{})
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		out[n] = p
	}
	return out
}

// TestScenariosAreWhatTheyClaim: the scenarios' Snapshots are the
// Recorder's, with the figures the names promise (so the reachability
// tests below rest on real Snapshots).
func TestScenariosAreWhatTheyClaim(t *testing.T) {
	for _, sc := range scenarios {
		s := sc.snapshot()
		if !s.Gateway.Connected && s.Gateway.LastAckAge != 0 {
			t.Errorf("%s: disconnected with last_ack_age %v", sc.name, s.Gateway.LastAckAge)
		}
		if strings.HasPrefix(sc.name, "gateway down") && s.Gateway.Connected {
			t.Errorf("%s: connected", sc.name)
		}
		if strings.HasSuffix(sc.name, "of requests fail") {
			var pct float64
			if _, err := fmt.Sscanf(sc.name, "%g%%", &pct); err != nil {
				t.Fatal(err)
			}
			// Heartbeats count as operations too: the rate is within a
			// percentage point of the REST share.
			if d := s.Errors.Rate*100 - pct; d > 1 || d < -2 {
				t.Errorf("%s: errors.rate %.3f", sc.name, s.Errors.Rate)
			}
		}
	}
	for _, sc := range scenarios {
		sh := sc.shards
		if sh.Total == 0 {
			continue
		}
		if sh.Starting+sh.Healthy+sh.Degraded+sh.Unhealthy != sh.Total || sh.Ready > sh.Total ||
			sh.ReadyRatio != float64(sh.Ready)/float64(sh.Total) || sh.UnhealthyRatio != float64(sh.Unhealthy)/float64(sh.Total) {
			t.Errorf("%s: inconsistent shards %+v", sc.name, sh)
		}
		if s := sc.snapshot(); sh.Ready < sh.Total && s.Gateway.Connected {
			t.Errorf("%s: connected with shards down", sc.name)
		}
	}
	healthy := scenarios[0].snapshot()
	if !healthy.Gateway.Connected || healthy.Errors.Rate != 0 || healthy.Latency.Heartbeat != 80*time.Millisecond {
		t.Fatalf("healthy: %+v", healthy)
	}
}

// TestEveryShippedLevelIsReachable: for every level of every shipped
// policy, some scenario makes it the policy's target level.
func TestEveryShippedLevelIsReachable(t *testing.T) {
	snaps := make([]metrics.Snapshot, len(scenarios))
	for i, sc := range scenarios {
		snaps[i] = sc.snapshot()
	}
	for name, p := range shipped(t) {
		if len(p.Degradation.Levels) == 0 {
			t.Errorf("%s: no degradation levels", name)
		}
		for _, lv := range p.Degradation.Levels {
			reached := ""
			for i := range snaps {
				if p.Evaluate(&snaps[i]).Level == lv.Level {
					reached = scenarios[i].name
					break
				}
			}
			if reached == "" {
				t.Errorf("%s: level %v (%s) is the target of no scenario", name, lv.Level, lv.When.Expr)
				continue
			}
			t.Logf("%s: %v reached by %q", name, lv.Level, reached)
		}
		// Stepping down must be possible too.
		if rec := p.Degradation.Recover; rec.IsSet() && !p.Evaluate(&snaps[0]).Recover {
			t.Errorf("%s: recover (%s) does not hold when healthy", name, rec.Expr)
		}
	}
}

// TestOneShardDoesNotDegradeALargeBot: with the large preset, one shard of
// twenty down for ten minutes (its breaker OPEN, so the process's worst
// breaker is OPEN; the scenario also fails the process's health as the
// merged gateway check once did) leaves the process at NONE and lets it
// recover: the levels read shares of shards. Two of ten reconnecting is
// MODERATE, six of ten down for two minutes CRITICAL, and one of ten
// FAILED for good lets the bot recover (it used to need fewer than a
// tenth unhealthy, FAILED included: degraded for good), as do two of ten
// (the levels used to count them: MODERATE for good).
func TestOneShardDoesNotDegradeALargeBot(t *testing.T) {
	large := shipped(t)["large.hcl"]
	for _, tt := range []struct {
		scenario string
		level    policy.Level
		recover  bool
	}{
		{"1 of 20 shards down for 10 minutes", policy.None, true},
		{"2 of 10 shards reconnecting", policy.Moderate, false},
		{"6 of 10 shards down for 2 minutes", policy.Critical, false},
		// A shard that ended for good (fatal close) does not hold the
		// bot degraded: nothing recovers it but an operator.
		{"1 of 10 shards failed for good", policy.None, true},
		// Two of ten: still not trouble the levels can ease (they used to
		// count FAILED shards: MODERATE for good); an alert on
		// shards.failed is the operator's signal.
		{"2 of 10 shards failed for good", policy.None, true},
		// The shards still running count as before.
		{"1 of 10 shards failed, 2 reconnecting", policy.Moderate, false},
	} {
		i := slices.IndexFunc(scenarios, func(sc scenario) bool { return sc.name == tt.scenario })
		if i < 0 {
			t.Fatalf("no scenario %q", tt.scenario)
		}
		s := scenarios[i].snapshot()
		if d := large.Evaluate(&s); d.Level != tt.level || d.Recover != tt.recover {
			t.Errorf("%s: level %v recover %v (%s), want %v recover %v", tt.scenario, d.Level, d.Recover, d.Reason, tt.level, tt.recover)
		}
	}
}

// TestEveryWayToALevelIsReachable: each level condition, written as an OR
// of ANDs (its disjunctive normal form), has no dead alternative: every
// alternative holds in some scenario. An alternative no Snapshot can
// satisfy (`!gateway.connected && gateway.last_ack_age > 0`: the age is 0
// while disconnected) is a rule that reads as protection and never fires.
func TestEveryWayToALevelIsReachable(t *testing.T) {
	snaps := make([]metrics.Snapshot, len(scenarios))
	for i, sc := range scenarios {
		snaps[i] = sc.snapshot()
	}
	for name, p := range shipped(t) {
		conds := map[string]string{}
		for _, lv := range p.Degradation.Levels {
			conds[fmt.Sprintf("level %v", lv.Level)] = lv.When.Expr
		}
		if rec := p.Degradation.Recover; rec.IsSet() {
			conds["recover"] = rec.Expr
		}
		for what, cond := range conds {
			terms, err := alternatives(cond)
			if err != nil {
				t.Fatalf("%s %s: %v", name, what, err)
			}
			for _, term := range terms {
				holds, err := holdsSomewhere(term, snaps)
				if err != nil {
					t.Fatalf("%s %s: alternative %s: %v", name, what, term, err)
				}
				if holds == "" {
					t.Errorf("%s %s: alternative %q holds in no scenario (condition %q)", name, what, term, cond)
				}
			}
		}
	}
}

// TestADeadAlternativeIsFound: the check above catches the condition the
// medium and large presets once shipped.
func TestADeadAlternativeIsFound(t *testing.T) {
	snaps := make([]metrics.Snapshot, len(scenarios))
	for i, sc := range scenarios {
		snaps[i] = sc.snapshot()
	}
	terms, err := alternatives("errors.rate > 0.6 || (!gateway.connected && gateway.last_ack_age > 2 * gateway.heartbeat_interval)")
	if err != nil {
		t.Fatal(err)
	}
	var dead []string
	for _, term := range terms {
		holds, err := holdsSomewhere(term, snaps)
		if err != nil {
			t.Fatal(err)
		}
		if holds == "" {
			dead = append(dead, term)
		}
	}
	if len(dead) != 1 || !strings.Contains(dead[0], "last_ack_age") {
		t.Fatalf("dead alternatives %q, want the last_ack_age one", dead)
	}
}

// maxTerms bounds the expansion of one condition into alternatives.
const maxTerms = 64

// alternatives returns cond's disjunctive normal form, each alternative an
// expr source: `a || b && (c || d)` gives `a`, `b && c`, `b && d`.
// Negations and non-boolean nodes are kept whole.
func alternatives(cond string) ([]string, error) {
	tree, err := parser.Parse(cond)
	if err != nil {
		return nil, err
	}
	terms := dnf(tree.Node)
	if len(terms) > maxTerms {
		return nil, fmt.Errorf("%d alternatives, more than %d", len(terms), maxTerms)
	}
	out := make([]string, len(terms))
	for i, term := range terms {
		parts := make([]string, len(term))
		for j, n := range term {
			parts[j] = "(" + n.String() + ")"
		}
		out[i] = strings.Join(parts, " && ")
	}
	return out, nil
}

func dnf(n ast.Node) [][]ast.Node {
	if b, ok := n.(*ast.BinaryNode); ok {
		switch b.Operator {
		case "||", "or":
			return append(dnf(b.Left), dnf(b.Right)...)
		case "&&", "and":
			var out [][]ast.Node
			for _, l := range dnf(b.Left) {
				for _, r := range dnf(b.Right) {
					out = append(out, append(append([]ast.Node{}, l...), r...))
					if len(out) > maxTerms {
						return out
					}
				}
			}
			return out
		}
	}
	return [][]ast.Node{{n}}
}

// holdsSomewhere compiles term as a level condition of its own (the same
// compiler and environment as the shipped files) and returns the name of
// the first scenario it holds in, or "".
func holdsSomewhere(term string, snaps []metrics.Snapshot) (string, error) {
	src := fmt.Sprintf("degradation {\n  level \"minimal\" {\n    when = <<-EOT\n      %s\n    EOT\n  }\n  recover {\n    when = \"true\"\n  }\n}\n", term)
	p, err := policy.LoadSource("alternative.hcl", []byte(src), policy.Options{})
	if err != nil {
		return "", err
	}
	for i := range snaps {
		if p.Evaluate(&snaps[i]).Level == policy.Minimal {
			return scenarios[i].name, nil
		}
	}
	return "", nil
}
