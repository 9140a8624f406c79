package chaos

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/discordtest"
)

func noEnv(string) (string, bool) { return "", false }

func TestScaledDefaultPolicy(t *testing.T) {
	def := policy.Default()
	for _, scale := range []float64{1, 50, 200} {
		src, err := ScaledDefaultPolicy(scale)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.LoadSource("scaled.hcl", src, policy.Options{LookupEnv: noEnv})
		if err != nil {
			t.Fatalf("scale %v: %v\n%s", scale, err, src)
		}
		div := func(d time.Duration, min time.Duration) time.Duration {
			return max(time.Duration(float64(d)/scale).Truncate(time.Millisecond), min)
		}
		tests := []struct {
			name      string
			got, want time.Duration
		}{
			{"reconnect_delay", p.Connection.ReconnectDelay, div(def.Connection.ReconnectDelay, 0)},
			{"max_reconnect_delay", p.Connection.MaxReconnectDelay, div(def.Connection.MaxReconnectDelay, 0)},
			{"health interval", p.Health.Interval, div(def.Health.Interval, time.Second)},
			{"health timeout", p.Health.Timeout, div(def.Health.Timeout, 10*time.Millisecond)},
			{"open_timeout", p.CircuitBreaker.OpenTimeout, div(def.CircuitBreaker.OpenTimeout, 100*time.Millisecond)},
			{"max_open_timeout", p.CircuitBreaker.MaxOpenTimeout, div(def.CircuitBreaker.MaxOpenTimeout, 100*time.Millisecond)},
			{"monitoring_period", p.CircuitBreaker.MonitoringPeriod, div(def.CircuitBreaker.MonitoringPeriod, time.Second)},
			{"reset_timeout", p.CircuitBreaker.ResetTimeout, div(def.CircuitBreaker.ResetTimeout, time.Second)},
			{"recovery_delay", p.Degradation.RecoveryDelay, div(def.Degradation.RecoveryDelay, 0)},
		}
		for _, tt := range tests {
			if tt.got != tt.want {
				t.Errorf("scale %v: %s = %v, want %v", scale, tt.name, tt.got, tt.want)
			}
		}
		// Latency thresholds compare measured latencies: not scaled.
		for i, c := range p.Health.Checks {
			if c.Name == "latency" && c.Threshold != def.Health.Checks[i].Threshold {
				t.Errorf("scale %v: latency threshold %v, want %v", scale, c.Threshold, def.Health.Checks[i].Threshold)
			}
		}
		if got, want := p.Degradation.Levels[0].When.Expr, def.Degradation.Levels[0].When.Expr; got != want {
			t.Errorf("scale %v: condition %q, want %q", scale, got, want)
		}
	}
	if _, err := ScaledDefaultPolicy(0.5); err == nil {
		t.Error("scale 0.5 accepted")
	}
}

// Every policy edit applies to the chaos policy; the valid ones load and
// change it, the invalid ones are refused with a diagnostic.
func TestPolicyEdits(t *testing.T) {
	src, err := ScaledDefaultPolicy(50)
	if err != nil {
		t.Fatal(err)
	}
	base := string(pluginBlock(src, "/opt/lifeline/bin/tcpprobe", "127.0.0.1:5432"))
	if _, err := policy.LoadSource("base.hcl", []byte(base), policy.Options{LookupEnv: noEnv}); err != nil {
		t.Fatalf("the chaos policy does not load: %v", err)
	}
	valid, invalid := 0, 0
	for _, e := range policyEdits {
		t.Run(e.Name, func(t *testing.T) {
			out := e.apply(base)
			if out == base {
				t.Fatal("the edit changes nothing")
			}
			_, err := policy.LoadSource("edit.hcl", []byte(out), policy.Options{LookupEnv: noEnv})
			if e.Valid && err != nil {
				t.Fatalf("a valid edit is refused: %v", err)
			}
			if !e.Valid && err == nil {
				t.Fatal("an invalid edit loads")
			}
		})
		if e.Valid {
			valid++
		} else {
			invalid++
		}
	}
	if valid < 2 || invalid < 5 {
		t.Fatalf("%d valid and %d invalid edits", valid, invalid)
	}
}

func TestScheduleIsDeterministic(t *testing.T) {
	o := ScheduleOptions{Seed: 42, Shards: 3, Length: 30 * time.Second}
	a, b := Schedule(o), Schedule(o)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two schedules")
	}
	o.Seed = 43
	if reflect.DeepEqual(a, Schedule(o)) {
		t.Fatal("two seeds gave the same schedule")
	}
}

func TestScheduleCoversEveryKindAndKeepsItsRules(t *testing.T) {
	for seed := int64(1); seed <= 50; seed++ {
		o := ScheduleOptions{Seed: seed, Shards: 1 + int(seed%3), Length: 20 * time.Second}
		steps := Schedule(o)
		o = o.withDefaults()
		seen := map[Kind]bool{}
		var lastBlockEnd, lastCrash time.Duration = -time.Hour, -time.Hour
		for i, st := range steps {
			seen[st.Kind] = true
			if i > 0 && st.At < steps[i-1].At {
				t.Fatalf("seed %d: steps out of order at %d", seed, i)
			}
			if st.At+st.Lasts > o.Length {
				t.Errorf("seed %d: %s lasts past the chaos phase", seed, st)
			}
			if st.Fault != nil {
				if err := st.Fault.Validate(); err != nil {
					t.Errorf("seed %d: %s: %v", seed, st, err)
				}
				for _, s := range st.Fault.Shards {
					if s < 0 || s >= o.Shards {
						t.Errorf("seed %d: %s: shard out of range", seed, st)
					}
				}
				if st.Fault.Kind == discordtest.FaultClose || st.Fault.Kind == discordtest.FaultMassDisconnect {
					for _, fatal := range []int{4004, 4010, 4011, 4012, 4013, 4014} {
						if st.Fault.Code == fatal {
							t.Errorf("seed %d: %s: a fatal close code", seed, st)
						}
					}
				}
			}
			if blocking(st.Kind) {
				if st.At < lastBlockEnd+o.BlockingQuiet {
					t.Errorf("seed %d: %s starts %v after the last blocking fault ended", seed, st, st.At-lastBlockEnd)
				}
				lastBlockEnd = st.At + st.Lasts
			}
			if st.Kind == KindPluginCrash {
				if st.At < lastCrash+o.PluginCrashSpacing {
					t.Errorf("seed %d: plugin crashes %v apart", seed, st.At-lastCrash)
				}
				lastCrash = st.At
			}
			if !strings.Contains(st.String(), string(st.Kind)) {
				t.Errorf("seed %d: %q does not name its kind", seed, st)
			}
		}
		for _, k := range Kinds() {
			if !seen[k] {
				t.Errorf("seed %d: kind %s never scheduled in 20s", seed, k)
			}
		}
	}
}

func TestScheduleBounds(t *testing.T) {
	steps := Schedule(ScheduleOptions{Seed: 7, Length: time.Hour, MaxSteps: 30})
	if len(steps) != 30 {
		t.Fatalf("MaxSteps 30 gave %d steps", len(steps))
	}
	steps = Schedule(ScheduleOptions{Seed: 7, Length: 2 * time.Second})
	if len(steps) == 0 || len(steps) > int(2*time.Second/(600*time.Millisecond/4))+1 {
		t.Fatalf("a 2s schedule has %d steps", len(steps))
	}
}

func TestKindsAreEveryFaultAndTheActions(t *testing.T) {
	kinds := Kinds()
	if want := len(discordtest.FaultKinds()) + 4; len(kinds) != want {
		t.Fatalf("%d kinds, want %d", len(kinds), want)
	}
}
