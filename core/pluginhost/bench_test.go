package pluginhost_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
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

// cpuMeter reports the CPU time (user and system) the host process and the
// plugin processes use during a benchmark's timed loop, per operation, from
// /proc/PID/stat: on a shared machine CPU per call moves far less with the
// load than latency does. On systems without /proc it reports nothing.
type cpuMeter struct {
	pids        []int
	host, plugs time.Duration
	ok          bool
}

// startCPU notes the CPU time used so far by this process and by the
// processes of h's running plugins.
func startCPU(h *pluginhost.Host) *cpuMeter {
	c := &cpuMeter{ok: true}
	for _, s := range h.Status() {
		c.pids = append(c.pids, s.PID)
	}
	c.host, c.plugs = c.read()
	return c
}

func (c *cpuMeter) read() (host, plugs time.Duration) {
	host, ok := procCPU("self")
	c.ok = c.ok && ok
	for _, pid := range c.pids {
		d, ok := procCPU(strconv.Itoa(pid))
		c.ok = c.ok && ok
		plugs += d
	}
	return host, plugs
}

// report adds host-cpu-µs/op and plugin-cpu-µs/op (all plugin processes
// together) to b's output.
func (c *cpuMeter) report(b *testing.B) {
	host, plugs := c.read()
	if !c.ok || b.N == 0 {
		return
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(b.N) }
	b.ReportMetric(us(host-c.host), "host-cpu-µs/op")
	b.ReportMetric(us(plugs-c.plugs), "plugin-cpu-µs/op")
}

// procCPU returns utime+stime of /proc/WHO/stat. The kernel counts them in
// clock ticks of 1/100 s (USER_HZ, 100 on Linux's usual builds).
func procCPU(who string) (time.Duration, bool) {
	raw, err := os.ReadFile("/proc/" + who + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after its closing parenthesis, from field 3.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * (time.Second / 100), true
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
	cpu := startCPU(h)
	for range b.N {
		start := time.Now()
		if res := c.Check(ctx, snap); !res.Passed {
			b.Fatalf("check failed: %+v", res)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	cpu.report(b)
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
	b.Cleanup(mon.Stop)
	for _, s := range specs {
		if err := mon.Add(s.Name, h.Checker(s.Name, pluginhost.CheckUse{Name: "probe", Config: map[string]any{"mode": "ok"}}), health.CheckConfig{}); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	cpu := startCPU(h)
	for range b.N {
		start := time.Now()
		ev, err := mon.RunOnce(ctx)
		if err != nil || len(ev.Results) != 10 || ev.Score != 100 {
			b.Fatalf("tick: %v, %d results, score %v", err, len(ev.Results), ev.Score)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	cpu.report(b)
	reportQuantiles(b, lat)
}

// BenchmarkTenChecksOnePluginOneTick is one health-monitor run of ten
// checks served by one plugin process (a plugin serving the checks of
// several check blocks): the ten calls share one connection.
func BenchmarkTenChecksOnePluginOneTick(b *testing.B) {
	use := pluginhost.CheckUse{Name: "probe", Config: map[string]any{"mode": "ok"}}
	h := benchHost(b, []pluginhost.Spec{{Name: "p", Path: testPlugin, Checks: []pluginhost.CheckUse{use}}})
	mon := health.NewMonitor(health.Options{Retries: -1})
	b.Cleanup(mon.Stop)
	for i := range 10 {
		if err := mon.Add(fmt.Sprintf("probe%d", i), h.Checker("p", use), health.CheckConfig{}); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	cpu := startCPU(h)
	for range b.N {
		start := time.Now()
		ev, err := mon.RunOnce(ctx)
		if err != nil || len(ev.Results) != 10 || ev.Score != 100 {
			b.Fatalf("tick: %v, %d results, score %v", err, len(ev.Results), ev.Score)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	cpu.report(b)
	reportQuantiles(b, lat)
}
