package pluginhost_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
)

// reportQuantiles adds the median and p99 of d to the benchmark's output.
func reportQuantiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	q := func(p float64) time.Duration { return d[int(p*float64(len(d)-1))] }
	b.ReportMetric(float64(q(0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(q(0.99).Microseconds()), "p99-µs")
}

func benchHost(b *testing.B, specs []pluginhost.Spec) *pluginhost.Host {
	h := pluginhost.New(pluginhost.Options{})
	b.Cleanup(h.Stop)
	if err := h.Reconcile(context.Background(), specs); err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkPluginCheck is one plugin health-check call through the whole
// host path (adapter, breaker, deadline, gRPC over mTLS, the plugin's sdk
// server and back), against a real plugin process.
func BenchmarkPluginCheck(b *testing.B) {
	h := benchHost(b, []pluginhost.Spec{{Name: "p", Path: testPlugin, Checks: []pluginhost.CheckUse{{Name: "probe"}}}})
	c := h.Checker("p", pluginhost.CheckUse{Name: "probe", Config: map[string]any{"mode": "ok"}})
	ctx := context.Background()
	snap := metrics.Snapshot{Time: time.Now()}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if res := c.Check(ctx, snap); !res.Passed {
			b.Fatalf("check failed: %+v", res)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportQuantiles(b, lat)
}

// BenchmarkTenPluginChecksOneTick is one health-monitor run of ten plugin
// checks, each served by its own plugin process, run concurrently as the
// monitor runs a tick's due checks.
func BenchmarkTenPluginChecksOneTick(b *testing.B) {
	var specs []pluginhost.Spec
	for i := range 10 {
		specs = append(specs, pluginhost.Spec{Name: fmt.Sprintf("p%d", i), Path: testPlugin, Checks: []pluginhost.CheckUse{{Name: "probe"}}})
	}
	h := benchHost(b, specs)
	mon := health.NewMonitor(health.Options{Retries: -1})
	for _, s := range specs {
		if err := mon.Add(s.Name, h.Checker(s.Name, pluginhost.CheckUse{Name: "probe", Config: map[string]any{"mode": "ok"}}), health.CheckConfig{}); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		ev, err := mon.RunOnce(ctx)
		if err != nil || len(ev.Results) != 10 || ev.Score != 100 {
			b.Fatalf("tick: %v, %d results, score %v", err, len(ev.Results), ev.Score)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportQuantiles(b, lat)
}

// BenchmarkTenChecksOnePluginOneTick is one health-monitor run of ten
// checks served by one plugin process (a plugin serving the checks of
// several check blocks): the ten calls share one connection.
func BenchmarkTenChecksOnePluginOneTick(b *testing.B) {
	use := pluginhost.CheckUse{Name: "probe", Config: map[string]any{"mode": "ok"}}
	h := benchHost(b, []pluginhost.Spec{{Name: "p", Path: testPlugin, Checks: []pluginhost.CheckUse{use}}})
	mon := health.NewMonitor(health.Options{Retries: -1})
	for i := range 10 {
		if err := mon.Add(fmt.Sprintf("probe%d", i), h.Checker("p", use), health.CheckConfig{}); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		ev, err := mon.RunOnce(ctx)
		if err != nil || len(ev.Results) != 10 || ev.Score != 100 {
			b.Fatalf("tick: %v, %d results, score %v", err, len(ev.Results), ev.Score)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportQuantiles(b, lat)
}
