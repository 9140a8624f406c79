package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/shard"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// The outage row: a shard.Manager (through its public API only) runs
// outageShards shards against a fake Discord on a Scale 100 clock, with the
// default policy's connection and circuit-breaker settings (what
// policies/default.hcl gives a bot) divided by 100, like every Discord
// timing of the fake: the backoff (5 s first step doubling to 5 min), the
// breaker (5 failures in 5 min open it for 60 s), and the reconnect gate's
// spacing (50 ms). Each iteration refuses every new gateway connection for
// 10 s of Discord time (100 ms), cuts every connection at once, and waits
// until every shard is READY again.
//
// The target is "within one backoff step + 100 ms of the fake coming
// back". A shard is waiting out a backoff step when the fake comes back (or
// starts one right after, when its last refused attempt was under way); the
// step it waits before its successful attempt is the one the target allows.
// So for each shard s, with back the instant the outage ends:
//
//	late(s)   = READY(s) − back                    how long after the return
//	step(s)   = the backoff wait before its successful attempt
//	excess(s) = late(s) − step(s)                  lifeline's own time beyond the step
//
// and the target holds when every shard's excess is at most 100 ms. The
// benchmark reports, as medians over the iterations, the last shard's late
// ("all-ready-ms"), the longest step ("step-ms") and the worst excess
// ("excess-ms"); the worst excess of any iteration ("worst-excess-ms"), how
// many iterations had a shard over the target ("runs-over" of "runs"), the
// IDENTIFYs the recoveries needed ("identifies", 0 when every shard
// RESUMEd) and how often a shard's breaker opened ("breaker-opens").

const (
	outageScale  = 100
	outageShards = 32
	outageMC     = 16
	// outageLength is 10 s of Discord time.
	outageLength = 10 * time.Second / outageScale
	// outageSlack is the target's allowance beyond the backoff step.
	outageSlack = 100 * time.Millisecond
)

// stateLog keeps every shard's STATE_CHANGED events and counts breaker
// trips.
type stateLog struct {
	mu    sync.Mutex
	evs   []events.Event
	opens int
}

func (l *stateLog) Publish(e events.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e.Type {
	case events.StateChanged:
		l.evs = append(l.evs, e)
	case events.CircuitBreakerTriggered:
		if e.Data.(events.BreakerTransition).To == "OPEN" {
			l.opens++
		}
	}
}

func (l *stateLog) breakerOpens() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.opens
}

// since returns the state changes at or after t.
func (l *stateLog) since(t time.Time) []events.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []events.Event
	for _, e := range l.evs {
		if !e.Time.Before(t) {
			out = append(out, e)
		}
	}
	return out
}

// readyAfter returns, per shard, the first READY at or after t.
func readyAfter(evs []events.Event, t time.Time) map[int]time.Time {
	out := map[int]time.Time{}
	for _, e := range evs {
		if e.Data.(events.StateChange).To != conn.Ready.String() || e.Time.Before(t) {
			continue
		}
		if _, seen := out[e.Shard]; !seen {
			out[e.Shard] = e.Time
		}
	}
	return out
}

// backoffWait reads the wait conn announces when it backs off ("waiting
// 37ms before attempt 4", or "circuit breaker: ...; next try in 50ms" while
// the breaker is open). The benchmark fails when the wording changes,
// rather than measuring against a wrong step.
func backoffWait(cause string) (time.Duration, error) {
	if rest, ok := strings.CutPrefix(cause, "waiting "); ok {
		if d, _, ok := strings.Cut(rest, " "); ok {
			return time.ParseDuration(d)
		}
	}
	if i := strings.LastIndex(cause, "next try in "); i >= 0 {
		return time.ParseDuration(cause[i+len("next try in "):])
	}
	return 0, fmt.Errorf("backoff cause %q names no wait (\"waiting D before ...\" or \"... next try in D\")", cause)
}

// lastStep is the backoff wait of shard's last BACKING_OFF before ready.
func lastStep(evs []events.Event, shardID int, ready time.Time) (time.Duration, error) {
	var step time.Duration
	found := false
	for _, e := range evs {
		sc := e.Data.(events.StateChange)
		if e.Shard != shardID || e.Time.After(ready) || sc.To != conn.BackingOff.String() {
			continue
		}
		d, err := backoffWait(sc.Cause)
		if err != nil {
			return 0, err
		}
		step, found = d, true
	}
	if !found {
		return 0, nil // reconnected at once: its first attempt after the cut was after the return
	}
	return step, nil
}

// outageRun is one iteration's figures.
type outageRun struct {
	lastLate, longestStep, worstExcess time.Duration
	identifies, breakerOpens           int
}

// startOutageShards starts a fresh fake and a Manager of outageShards
// shards with the default policy's settings, scaled.
func startOutageShards(b *testing.B) (*discordtest.Server, *shard.Manager, *stateLog) {
	b.Helper()
	srv, err := discordtest.NewServer(discordtest.Options{
		Scale: outageScale, Guilds: outageShards, RecommendedShards: outageShards, MaxConcurrency: outageMC,
		SessionStartTotal: 1 << 20,
	})
	if err != nil {
		b.Fatal(err)
	}
	log := &stateLog{}
	p := policy.Default()
	pc, pb := p.Connection, p.CircuitBreaker
	m, err := shard.New(shard.Config{
		Token: srv.Token(), RESTTransport: srv.Transport(), IdentifyWindow: srv.IdentifyWindow(),
		Gate: shard.GateSettings{Interval: shard.DefaultGateInterval / outageScale},
		Conn: conn.Config{
			GatewayDialer:        srv.Dialer(),
			ReconnectDelay:       pc.ReconnectDelay / outageScale,
			BackoffMultiplier:    pc.BackoffMultiplier,
			MaxReconnectDelay:    pc.MaxReconnectDelay / outageScale,
			MaxReconnectAttempts: pc.MaxReconnectAttempts,
			ZombieFactor:         pc.ZombieAfter,
			InvalidSessionDelay:  [2]time.Duration{time.Second / outageScale, 5 * time.Second / outageScale},
		},
		Breaker: breaker.Settings{
			Name: "gateway", FailureThreshold: pb.FailureThreshold, MonitoringPeriod: pb.MonitoringPeriod / outageScale,
			OpenTimeout: pb.OpenTimeout / outageScale, HalfOpenMaxCalls: pb.HalfOpenMaxCalls,
			RecoveryThreshold: pb.RecoveryThreshold, ResetTimeout: pb.ResetTimeout / outageScale,
			Backoff: breaker.Backoff{Multiplier: pb.BackoffMultiplier, Max: pb.MaxOpenTimeout / outageScale},
		},
		Events: log,
	})
	if err != nil {
		srv.Close()
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		srv.Close()
		b.Fatal(err)
	}
	return srv, m, log
}

// outageOnce runs one outage against a fresh fake and Manager.
func outageOnce(b *testing.B) outageRun {
	srv, m, log := startOutageShards(b)
	defer srv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
		defer cancel()
		if err := m.Stop(ctx); err != nil {
			b.Error(err)
		}
	}()
	before := len(srv.Ledger().Identifies())
	t0 := time.Now()
	if err := srv.Outage(discordtest.OutageRefuse, outageLength); err != nil {
		b.Fatal(err)
	}
	if err := srv.MassDisconnect(0); err != nil {
		b.Fatal(err)
	}
	// The fault reads the fake's clock after t0, so the fake is back no
	// earlier than this: measuring from it can only overstate.
	back := t0.Add(outageLength)
	var ready map[int]time.Time
	waitUntil(b, "every shard READY after the outage", func() bool {
		ready = readyAfter(log.since(t0), back)
		return len(ready) == outageShards
	})
	evs := log.since(t0)
	run := outageRun{worstExcess: -time.Hour}
	for id, at := range ready {
		step, err := lastStep(evs, id, at)
		if err != nil {
			b.Fatalf("shard %d: %v", id, err)
		}
		late := at.Sub(back)
		run.lastLate, run.longestStep = max(run.lastLate, late), max(run.longestStep, step)
		run.worstExcess = max(run.worstExcess, late-step)
	}
	run.identifies = len(srv.Ledger().Identifies()) - before
	run.breakerOpens = log.breakerOpens()
	return run
}

// BenchmarkOutageAllReady: see the comment at the top of this file. Each
// iteration starts from a fresh fake and Manager, so the breakers' windows
// start empty and one outage does not carry failures into the next.
func BenchmarkOutageAllReady(b *testing.B) {
	var allReady, steps, excesses []time.Duration
	worst := time.Duration(-time.Hour)
	identifies, opens, late := 0, 0, 0
	for range b.N {
		r := outageOnce(b)
		if r.worstExcess > outageSlack {
			late++
		}
		allReady, steps, excesses = append(allReady, r.lastLate), append(steps, r.longestStep), append(excesses, r.worstExcess)
		worst = max(worst, r.worstExcess)
		identifies += r.identifies
		opens += r.breakerOpens
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(median(allReady)), "all-ready-ms")
	b.ReportMetric(ms(median(steps)), "step-ms")
	b.ReportMetric(ms(median(excesses)), "excess-ms")
	b.ReportMetric(ms(worst), "worst-excess-ms")
	b.ReportMetric(float64(identifies), "identifies")
	b.ReportMetric(float64(opens), "breaker-opens")
	b.ReportMetric(float64(late), "runs-over")
	b.ReportMetric(float64(outageShards), "shards")
	b.ReportMetric(float64(b.N), "runs")
}
