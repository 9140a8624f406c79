package flightlive_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// livePolicy steps down with recovery_delay 0: the live engine reads the
// real clock a few microseconds after the Snapshot is built, so with a
// non-zero delay a step-down falling on that boundary could differ by one
// tick between the live run and the replay. The delay's arithmetic is
// covered with a fake clock in TestReplayHysteresisAndRecoveryDelay.
const livePolicy = `
circuit_breaker {
  failure_threshold   = 2
  recovery_threshold  = 2
  open_timeout        = "100ms"
  half_open_max_calls = 1
  monitoring_period   = "10s"
  max_open_timeout    = "300ms"
}
degradation {
  recovery_delay = "0s"
  level "minimal" {
    when    = "!gateway.connected"
    actions = ["disable_analytics"]
  }
  level "severe" {
    when    = "errors.consecutive >= 2"
    actions = ["enable_read_only_mode"]
  }
  recover {
    when = "gateway.connected && errors.consecutive == 0"
  }
}
`

type liveTick struct {
	time     time.Time
	decision policy.Decision
	level    policy.Level
}

func TestReplayOfALiveRunMakesTheSameDecisions(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a system against the fake Discord")
	}
	p, err := policy.LoadSource("live.hcl", []byte(livePolicy), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 200, Guilds: 2, SessionExpiry: 30 * time.Second, HeartbeatTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	path := filepath.Join(t.TempDir(), "live.jsonl")
	rec, err := flight.Open(flight.Settings{Path: path, MaxFileBytes: 64 << 10, MaxTotalBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var live []liveTick
	o, err := orchestrator.New(orchestrator.Config{
		Token:          srv.Token(),
		Policy:         p,
		RESTTransport:  srv.Transport(),
		GatewayDialer:  srv.Dialer(),
		IdentifyWindow: srv.IdentifyWindow(),
		TickInterval:   20 * time.Millisecond,
		Tune: func(c *conn.Config) {
			c.HandshakeTimeout = 2 * time.Second
			c.ReconnectDelay = 20 * time.Millisecond
			c.MaxReconnectDelay = 200 * time.Millisecond
			c.CallTimeout = 5 * time.Second
		},
		OnTick: func(s metrics.Snapshot, d policy.Decision, l policy.Level) {
			if err := rec.Tick(s, d, l); err != nil {
				t.Errorf("record: %v", err)
			}
			mu.Lock()
			live = append(live, liveTick{s.Time, d, l})
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	o.AddEventListener(events.All, rec.Event)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := o.Stop(ctx); err != nil {
				t.Errorf("Stop: %v", err)
			}
		}
	}
	defer stop()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for i := 0; i < 1500; i++ {
			if cond() {
				return
			}
			time.Sleep(10 * time.Millisecond) // polling a live system, bounded
		}
		mu.Lock()
		last := live[len(live)-1]
		mu.Unlock()
		t.Fatalf("timed out waiting for %s: state %s, level %v, last decision %+v", what, o.Diagnostics().State, o.Degradation().Level(), last.decision)
	}
	ticks := func() int { mu.Lock(); defer mu.Unlock(); return len(live) }
	waitFor("READY and a few ticks", func() bool { return o.Diagnostics().State == conn.Ready.String() && ticks() >= 5 })
	rec.Mark("fault")
	if err := srv.Outage(discordtest.OutageRefuse, 600*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	waitFor("a degradation", func() bool { return o.Degradation().Level() > policy.None })
	waitFor("READY again and back to NONE", func() bool {
		return o.Diagnostics().State == conn.Ready.String() && o.Degradation().Level() == policy.None
	})
	n := ticks()
	waitFor("a few quiet ticks", func() bool { return ticks() >= n+5 })
	stop()
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}

	got, err := flight.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := flight.Replay(got, p)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tl.Ticks) != len(live) {
		t.Fatalf("replay has %d ticks, live run %d", len(tl.Ticks), len(live))
	}
	var maxLevel policy.Level
	for i, lt := range live {
		rt := tl.Ticks[i]
		if !rt.Line.Snapshot.Time.Equal(lt.time) || rt.Target != lt.decision.Level || rt.Recover != lt.decision.Recover || rt.Level != lt.level {
			t.Errorf("tick %d at %v: live target %v recover %v level %v; replay target %v recover %v level %v",
				i, lt.time, lt.decision.Level, lt.decision.Recover, lt.level, rt.Target, rt.Recover, rt.Level)
		}
		maxLevel = max(maxLevel, lt.level)
	}
	if maxLevel == policy.None || tl.Summary.Transitions < 2 || tl.Ticks[len(tl.Ticks)-1].Level != policy.None {
		t.Fatalf("the run did not degrade and recover: max %v, summary %+v", maxLevel, tl.Summary)
	}
	marked := false
	for _, l := range got.Lines {
		marked = marked || len(l.Marks) > 0
	}
	if !marked || len(tl.Recoveries) == 0 {
		t.Errorf("marks recorded %v, recoveries %d", marked, len(tl.Recoveries))
	}
	t.Logf("%d ticks, %d transitions, max %v, %d recoveries planned", len(live), tl.Summary.Transitions, maxLevel, len(tl.Recoveries))
}
