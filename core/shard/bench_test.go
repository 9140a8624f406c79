package shard_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/shard"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// benchFake is a fake Discord for many shards: a 100ms identify window (a
// fiftieth of Discord's), heartbeats every 2s (so idle shards stay idle),
// and one guild per shard.
func benchFake(b *testing.B, shards, mc int) *discordtest.Server {
	return startFake(b, discordtest.Options{
		Scale:             100,
		IdentifyWindow:    benchWindow,
		HeartbeatInterval: 2 * time.Second,
		HeartbeatTimeout:  20 * time.Second,
		SessionExpiry:     time.Minute,
		Guilds:            shards,
		RecommendedShards: shards,
		MaxConcurrency:    mc,
		SessionStartTotal: 1 << 20,
	})
}

// benchWindow and benchMargin: the margin absorbs the delay between
// lifeline writing an IDENTIFY and the fake (in this process, on a shared
// machine) reading it, which does not shrink with the window: tens of
// milliseconds under load. Discord's 5s window has a 250ms margin by
// default.
const (
	benchWindow = 100 * time.Millisecond
	benchMargin = 50 * time.Millisecond
)

func benchConfig(srv *discordtest.Server) shard.Config {
	cfg := config(srv)
	cfg.IdentifyMargin = benchMargin
	cfg.Conn.HandshakeTimeout = 20 * time.Second
	return cfg
}

// BenchmarkStart brings N shards up against the fake and stops them. It
// reports the start time against the minimum the identify rules allow,
// (ceil(N/mc) - 1) × window, and against that plus the queue's margin, and
// the heap and goroutines per
// READY shard (lifeline, discordgo and the fake's side of the connection
// together, all in this process).
func BenchmarkStart(b *testing.B) {
	for _, tc := range []struct{ shards, mc int }{{100, 16}, {256, 16}} {
		b.Run(fmt.Sprintf("shards=%d/mc=%d", tc.shards, tc.mc), func(b *testing.B) {
			var startTotal time.Duration
			var heapPer, gorPer float64
			for i := 0; i < b.N; i++ {
				srv := benchFake(b, tc.shards, tc.mc)
				m, err := shard.New(benchConfig(srv))
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				g0 := runtime.NumGoroutine()
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				if err := m.Start(ctx); err != nil {
					cancel()
					b.Fatal(err)
				}
				startTotal += time.Since(t0)
				runtime.GC()
				runtime.ReadMemStats(&after)
				heapPer += float64(after.HeapInuse-before.HeapInuse) / float64(tc.shards)
				gorPer += float64(runtime.NumGoroutine()-g0) / float64(tc.shards)
				if v := srv.Ledger().Violations(); len(v) > 0 {
					b.Fatalf("violations: %v", v[0])
				}
				if err := m.Stop(ctx); err != nil {
					b.Fatal(err)
				}
				cancel()
				srv.Close()
			}
			rows := (tc.shards + tc.mc - 1) / tc.mc
			minimum := time.Duration(rows-1) * benchWindow
			withMargin := time.Duration(rows-1) * (benchWindow + benchMargin)
			avg := startTotal / time.Duration(b.N)
			b.ReportMetric(float64(avg.Milliseconds()), "start-ms")
			b.ReportMetric(float64(minimum.Milliseconds()), "min-start-ms")
			b.ReportMetric(float64(avg)/float64(minimum), "start/min")
			b.ReportMetric(float64(avg)/float64(withMargin), "start/(min+margins)")
			b.ReportMetric(heapPer/float64(b.N), "heap-B/shard")
			b.ReportMetric(gorPer/float64(b.N), "goroutines/shard")
		})
	}
}

// BenchmarkMassDisconnect drops every one of N shards at once and waits
// until all have RESUMEd through the reconnect gate.
func BenchmarkMassDisconnect(b *testing.B) {
	const shards, mc = 128, 16
	srv := benchFake(b, shards, mc)
	cfg := benchConfig(srv)
	cfg.Gate = shard.GateSettings{Interval: time.Millisecond, Burst: 8}
	cfg.Conn = conn.Config{GatewayDialer: srv.Dialer(), HandshakeTimeout: 20 * time.Second,
		ReconnectDelay: 20 * time.Millisecond, MaxReconnectDelay: 300 * time.Millisecond, CallTimeout: 10 * time.Second}
	m, err := shard.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	start(b, m)
	defer stop(b, m)
	identifies := len(srv.Ledger().Identifies())
	violations := len(srv.Ledger().Violations())
	resumes := uint64(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resumes += shards
		if err := srv.MassDisconnect(0); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			a := m.View().Aggregate
			if a.Ready == shards && a.Resumes >= resumes {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("not recovered: %+v", a)
			}
			time.Sleep(time.Millisecond)
		}
	}
	b.StopTimer()
	if n := len(srv.Ledger().Identifies()); n != identifies {
		b.Fatalf("%d IDENTIFYs after the disconnects, want none: every shard must RESUME", n-identifies)
	}
	if v := srv.Ledger().Violations(); len(v) > violations {
		b.Fatalf("violations: %v", v[violations])
	}
	b.ReportMetric(float64(m.Gate().Stats().LongestWait.Milliseconds()), "longest-gate-wait-ms")
}
