package orchestrator_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// readyHold stops one shard's connection at the moment its state has
// become READY and its Recorder does not know yet: the connection logs the
// state change between the two, and holdLogger blocks that line until the
// test releases it.
type readyHold struct {
	shard   int
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

// holdLogger is a null logger that holds hold.shard's first "state ... to
// READY" debug line (the connection's loggers are Named and With'd from
// the one in Config, so they stay holdLoggers and learn their shard).
type holdLogger struct {
	hclog.Logger
	shard int
	hold  *readyHold
}

func (l holdLogger) Named(name string) hclog.Logger {
	return holdLogger{l.Logger.Named(name), l.shard, l.hold}
}

func (l holdLogger) ResetNamed(name string) hclog.Logger {
	return holdLogger{l.Logger.ResetNamed(name), l.shard, l.hold}
}

func (l holdLogger) With(args ...any) hclog.Logger {
	sh := l.shard
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == "shard" {
			if n, ok := args[i+1].(int); ok {
				sh = n
			}
		}
	}
	return holdLogger{l.Logger.With(args...), sh, l.hold}
}

func (l holdLogger) Debug(msg string, args ...any) {
	if msg == "state" && l.shard == l.hold.shard {
		for i := 0; i+1 < len(args); i += 2 {
			if args[i] == "to" && fmt.Sprint(args[i+1]) == "READY" {
				l.hold.once.Do(func() {
					close(l.hold.reached)
					<-l.hold.release
				})
			}
		}
	}
	l.Logger.Debug(msg, args...)
}

// TestNoCheckJudgesTheHandshake: no health check fails a connection for
// still doing its first handshake, with one shard or several. The last
// shard is held where its state already says READY while its metrics
// still say IDENTIFYING, with the tick running meanwhile (the manager's
// Tick judges a shard whose state is READY): the gateway check must report
// pending there, not failing, or the shard would stay CRITICAL for a whole
// interval (30s). Once everything is up, every verdict is HEALTHY (the
// process monitor's has none with several shards: it holds only plugin
// checks) and no HEALTH_CHANGED ever said otherwise.
func TestNoCheckJudgesTheHandshake(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d shards", n), func(t *testing.T) {
			hold := &readyHold{shard: n - 1, reached: make(chan struct{}), release: make(chan struct{})}
			s := newSystemWith(t, discordtest.Options{RecommendedShards: n}, func(c *orchestrator.Config) {
				c.Policy = policy.Default()
				c.ShardCount = n
				c.Logger = holdLogger{Logger: hclog.NewNullLogger(), shard: -1, hold: hold}
			})
			started := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				started <- s.o.Start(ctx)
			}()
			released := false
			release := func() {
				if !released {
					released = true
					close(hold.release)
				}
			}
			defer release()
			select {
			case <-hold.reached:
			case <-time.After(30 * time.Second):
				t.Fatalf("shard %d never reached READY", hold.shard)
			}

			// Held: the tick goes on and runs what is due.
			ticks := s.o.Diagnostics().Ticks
			var held *health.Result
			s.eventually("three ticks while the shard is held, its checks run if it has a monitor", func() bool {
				if s.o.Diagnostics().Ticks < ticks+3 {
					return false
				}
				if n == 1 {
					return true // the process monitor starts after Start: nothing runs
				}
				for _, c := range s.o.Shard(hold.shard).Monitor().Diagnostics().Checks {
					if c.Name == health.GatewayName && (c.Last != nil || c.Pending != nil) {
						held = c.Last // a verdict on the handshake
						if held == nil {
							held = c.Pending
						}
						return true
					}
				}
				return false
			})
			if n > 1 && (!held.Pending || !strings.Contains(held.Message, "waiting for the first READY")) {
				t.Errorf("shard %d's gateway check judged the handshake: %+v", hold.shard, *held)
			}
			release()
			if err := <-started; err != nil {
				t.Fatalf("Start: %v", err)
			}
			defer s.stop()

			s.eventually("every verdict HEALTHY", func() bool {
				// With several shards the process monitor has the plugin
				// checks only (none here): no verdict.
				want := health.Healthy
				if n > 1 {
					want = health.Unknown
				}
				if s.o.HealthMonitor().Status() != want {
					return false
				}
				for _, sh := range s.o.Shards() {
					if mon := sh.Monitor(); mon != nil && mon.Status() != health.Healthy {
						return false
					}
				}
				return true
			})
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, e := range s.evs {
				if h, ok := e.Data.(events.HealthChange); ok && h.To != health.Healthy.String() {
					t.Errorf("shard %d: health %s -> %s (failing %v): a check judged the handshake", e.Shard, h.From, h.To, h.Failing)
				}
			}
		})
	}
}
