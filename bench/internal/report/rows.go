package main

import (
	"fmt"
	"strings"
)

// Row is one line of the table in docs/benchmarks.md.
type Row struct {
	// What is measured.
	What string
	// Figure is lifeline's figure, formatted.
	Figure string
	// Compared is the comparison's figure (or "—" when the row has none).
	Compared string
	// Ratio is Figure / Compared, or the ratio the target is stated in.
	Ratio string
	// Target is the target for the row.
	Target string
	// Verdict is "met", "missed: ..." or "not measured yet: ...".
	Verdict string
}

// Benchmark keys of the figures the table reads.
const (
	keyClosedLL   = "core/breaker BenchmarkExecuteClosedSuccess/lifeline"
	keyClosedGB   = "core/breaker BenchmarkExecuteClosedSuccess/gobreaker"
	keyOpenLL     = "core/breaker BenchmarkExecuteOpenRejection/lifeline"
	keyOpenGB     = "core/breaker BenchmarkExecuteOpenRejection/gobreaker"
	keyParLL      = "core/breaker BenchmarkExecuteParallel/lifeline"
	keyParGB      = "core/breaker BenchmarkExecuteParallel/gobreaker"
	keyEval       = "core/policy BenchmarkEvaluateDefault/policy"
	keyEvalReuse  = "core/policy BenchmarkEvaluateDefault/evaluator"
	keyEvalGo     = "core/policy BenchmarkEvaluateDefault/hand-written-go"
	keyEvalWorst  = "core/policy BenchmarkEvaluateDefault/policy-critical"
	keyReload     = "bench BenchmarkPolicyReload/debounce=default"
	keyReloadFast = "bench BenchmarkPolicyReload/debounce=50ms"
	keyPlugin     = "core/pluginhost BenchmarkPluginCheck"
	keyBareGRPC   = "bench BenchmarkBareGRPCUnary"
	keyInProcess  = "bench BenchmarkInProcessCheck"
	keyPluginTen  = "core/pluginhost BenchmarkTenPluginChecksOneTick"
	keyPluginOne  = "core/pluginhost BenchmarkTenChecksOnePluginOneTick"
	keyBareOther  = "bench BenchmarkBareGRPCUnaryOtherProcess"
	keyBareTen    = "bench BenchmarkBareGRPCTenProcesses"
	keyZombieLL   = "bench BenchmarkZombieDetection/lifeline"
	keyZombieDG   = "bench BenchmarkZombieDetection/discordgo"
	keyDropLL     = "bench BenchmarkDropToResumed/lifeline"
	keyDropDG     = "bench BenchmarkDropToResumed/discordgo"
	keyOutage     = "bench BenchmarkOutageAllReady"
	keyIdleLL     = "bench BenchmarkIdleShards/lifeline"
	keyIdleDG     = "bench BenchmarkIdleShards/discordgo"
	keyObserve    = "core/metrics BenchmarkObserve/"
	keyScale12    = "core/metrics BenchmarkObserveRESTScaling/buckets=12/advancing"
	keyScale3600  = "core/metrics BenchmarkObserveRESTScaling/buckets=3600/advancing"
	keySteady1    = "core/metrics BenchmarkObserveRESTScaling/buckets=1/steady"
	keySteady3600 = "core/metrics BenchmarkObserveRESTScaling/buckets=3600/steady"
)

// notInRun is the verdict of a row whose benchmarks are missing from the
// raw output (a partial run, or a benchmark that failed).
const notInRun = "not measured in this run (its benchmark is missing from docs/benchmarks.txt)"

// dur formats nanoseconds with a unit that keeps three significant digits.
func dur(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.3g ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.3g µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.3g ms", ns/1e6)
	default:
		return fmt.Sprintf("%.3g s", ns/1e9)
	}
}

// ratio formats a/b as "0.42×".
func ratio(a, b float64) string {
	if a/b < 0.01 {
		return fmt.Sprintf("%.2g×", a/b)
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// verdict says "met" when ok, else "missed: " and why.
func verdict(ok bool, why string) string {
	if ok {
		return "met"
	}
	return "missed: " + why
}

// Rows computes the table from r, in the order.
func Rows(r *Results) []Row {
	return []Row{
		breakerClosed(r), breakerOpen(r), breakerParallel(r), failsafeRow(r),
		policyEval(r), policyReload(r), pluginCheck(r), pluginVsGRPC(r), pluginTen(r),
		zombieRow(r), recoveryRow(r), outageRow(r), idleRow(r), recorderRow(r),
	}
}

func breakerClosed(r *Results) Row {
	row := Row{What: "breaker `Execute`, closed, success", Target: "0 allocs/op and ≤ 0.25× gobreaker's ns/op", Verdict: notInRun}
	ll, ok1 := r.Median(keyClosedLL, "ns/op")
	gb, ok2 := r.Median(keyClosedGB, "ns/op")
	allocs, ok3 := r.Median(keyClosedLL, "allocs/op")
	gbAllocs, _ := r.Median(keyClosedGB, "allocs/op")
	if !ok1 || !ok2 || !ok3 {
		return row
	}
	row.Figure = fmt.Sprintf("%s/op, %.0f allocs", dur(ll), allocs)
	row.Compared = fmt.Sprintf("gobreaker v2: %s/op, %.0f allocs", dur(gb), gbAllocs)
	row.Ratio = ratio(ll, gb)
	var why []string
	if allocs != 0 {
		why = append(why, fmt.Sprintf("%.0f allocs/op", allocs))
	}
	if ll > 0.25*gb {
		why = append(why, fmt.Sprintf("%.2f× where 0.25× was the target (%s over)", ll/gb, dur(ll-0.25*gb)))
	}
	row.Verdict = verdict(len(why) == 0, strings.Join(why, "; "))
	return row
}

func breakerOpen(r *Results) Row {
	row := Row{What: "breaker, open, rejection", Target: "≤ 0.5× gobreaker's ns/op", Verdict: notInRun}
	ll, ok1 := r.Median(keyOpenLL, "ns/op")
	gb, ok2 := r.Median(keyOpenGB, "ns/op")
	if !ok1 || !ok2 {
		return row
	}
	row.Figure = dur(ll) + "/op"
	row.Compared = "gobreaker v2: " + dur(gb) + "/op"
	row.Ratio = ratio(ll, gb)
	row.Verdict = verdict(ll <= 0.5*gb, fmt.Sprintf("%.2f× where 0.5× was the target", ll/gb))
	return row
}

func breakerParallel(r *Results) Row {
	row := Row{What: "breaker `Execute` under GOMAXPROCS goroutines (`RunParallel`)", Target: "≤ 2× lifeline's single-threaded ns/op", Verdict: notInRun}
	par, ok1 := r.Median(keyParLL, "ns/op")
	single, ok2 := r.Median(keyClosedLL, "ns/op")
	gb, ok3 := r.Median(keyParGB, "ns/op")
	if !ok1 || !ok2 || !ok3 {
		return row
	}
	row.Figure = fmt.Sprintf("%s/op on %d goroutines (single: %s/op)", dur(par), r.Procs(keyParLL), dur(single))
	row.Compared = "gobreaker v2: " + dur(gb) + "/op"
	row.Ratio = ratio(par, single) + " of single-threaded; " + ratio(par, gb) + " of gobreaker"
	row.Verdict = verdict(par <= 2*single, fmt.Sprintf("%.2f× single-threaded", par/single))
	return row
}

// failsafe-go's figures come from bench/failsafe, a module of its own:
// every failsafe-go release raises google.golang.org/grpc past the version
// the product's plugin protocol pins.
const (
	keyClosedFS = "bench/failsafe BenchmarkExecuteClosedSuccess/failsafe"
	keyOpenFS   = "bench/failsafe BenchmarkExecuteOpenRejection/failsafe"
	keyParFS    = "bench/failsafe BenchmarkExecuteParallel/failsafe"
)

func failsafeRow(r *Results) Row {
	row := Row{What: "breaker rows above, against failsafe-go v0.9.8's circuit breaker",
		Target: "closed: 0 allocs/op and ≤ 0.25×; open: ≤ 0.5× (gobreaker's targets)", Verdict: notInRun}
	ll, ok1 := r.Median(keyClosedLL, "ns/op")
	fs, ok2 := r.Median(keyClosedFS, "ns/op")
	open, ok3 := r.Median(keyOpenLL, "ns/op")
	fsOpen, ok4 := r.Median(keyOpenFS, "ns/op")
	par, ok5 := r.Median(keyParLL, "ns/op")
	fsPar, ok6 := r.Median(keyParFS, "ns/op")
	allocs, ok7 := r.Median(keyClosedLL, "allocs/op")
	fsAllocs, _ := r.Median(keyClosedFS, "allocs/op")
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || !ok7 {
		return row
	}
	row.Figure = fmt.Sprintf("closed %s/op (%.0f allocs), open %s/op, parallel %s/op", dur(ll), allocs, dur(open), dur(par))
	row.Compared = fmt.Sprintf("failsafe-go: closed %s/op (%.0f allocs), open %s/op, parallel %s/op", dur(fs), fsAllocs, dur(fsOpen), dur(fsPar))
	row.Ratio = fmt.Sprintf("closed %s, open %s, parallel %s", ratio(ll, fs), ratio(open, fsOpen), ratio(par, fsPar))
	var why []string
	if allocs != 0 {
		why = append(why, fmt.Sprintf("%.0f allocs/op", allocs))
	}
	if ll > 0.25*fs {
		why = append(why, fmt.Sprintf("closed %.2f× where 0.25× was the target", ll/fs))
	}
	if open > 0.5*fsOpen {
		why = append(why, fmt.Sprintf("open %.2f× where 0.5× was the target", open/fsOpen))
	}
	row.Verdict = verdict(len(why) == 0, strings.Join(why, "; "))
	return row
}

func policyEval(r *Results) Row {
	row := Row{What: "default policy evaluation over a Snapshot", Target: "≤ 10× the Go function, and under 2 µs", Verdict: notInRun}
	p, ok1 := r.Median(keyEval, "ns/op")
	g, ok2 := r.Median(keyEvalGo, "ns/op")
	allocs, _ := r.Median(keyEval, "allocs/op")
	if !ok1 || !ok2 {
		return row
	}
	row.Figure = fmt.Sprintf("Policy.Evaluate (what the orchestrator calls): %s/op, %.0f allocs", dur(p), allocs)
	if e, ok := r.Median(keyEvalReuse, "ns/op"); ok {
		row.Figure += fmt.Sprintf("; a reused Evaluator: %s/op", dur(e))
	}
	// A healthy Snapshot stops at the first level that fails (levels
	// proved at load to imply the one below); the worst case climbs all
	// of them, so it is shown beside the figure the verdict judges.
	worst, hasWorst := r.Median(keyEvalWorst, "ns/op")
	if hasWorst {
		row.Figure += fmt.Sprintf("; every level holding (the worst case): %s/op (%s)", dur(worst), ratio(worst, g))
	}
	row.Compared = "hand-written Go: " + dur(g) + "/op"
	row.Ratio = ratio(p, g)
	var why []string
	if p > 10*g {
		why = append(why, fmt.Sprintf("%.1f× the Go function", p/g))
	}
	if p >= 2000 {
		why = append(why, dur(p)+" per evaluation")
	}
	row.Verdict = verdict(len(why) == 0, strings.Join(why, "; "))
	if len(why) == 0 && hasWorst && worst > 10*g {
		row.Verdict += fmt.Sprintf(" on a healthy Snapshot; every level holding, %.1f× the Go function", worst/g)
	}
	return row
}

func policyReload(r *Results) Row {
	row := Row{What: "policy reload (file saved → new generation active), real fsnotify", Compared: "—", Target: "p95 under 250 ms including the debounce", Verdict: notInRun}
	p95, ok := r.Median(keyReload, "p95-ms")
	p50, _ := r.Median(keyReload, "p50-ms")
	if !ok {
		return row
	}
	debounce, ok := r.Median(keyReload, "debounce-ms")
	if !ok {
		debounce = 250 // runs before the benchmark reported it
	}
	row.Figure = fmt.Sprintf("p50 %.0f ms, p95 %.0f ms (default %.0f ms debounce)", p50, p95, debounce)
	if per, ok := r.Median(keyReload, "reloads/save"); ok {
		failed, _ := r.Median(keyReload, "failed")
		row.Figure += fmt.Sprintf("; %.2f reloads per save, %.0f failed, over saves in three editors' ways", per, failed)
	}
	if f95, ok := r.Median(keyReloadFast, "p95-ms"); ok {
		row.Compared = fmt.Sprintf("same with a 50 ms debounce: p95 %.0f ms", f95)
	}
	row.Ratio = fmt.Sprintf("%.2f× the target", p95/250)
	row.Verdict = verdict(p95 < 250, fmt.Sprintf("p95 %.0f ms: the debounce alone is %.0f ms (the 50 ms figure shows the rest costs %s)",
		p95, debounce, afterDebounce(r)))
	return row
}

// afterDebounce is the reload time that is not debounce, from the 50 ms
// sub-benchmark's p95.
func afterDebounce(r *Results) string {
	f95, ok := r.Median(keyReloadFast, "p95-ms")
	if !ok {
		return "an unmeasured amount"
	}
	return fmt.Sprintf("about %.0f ms at p95", f95-50)
}

func pluginCheck(r *Results) Row {
	row := Row{What: "plugin health-check call (host → plugin process → host), p99", Compared: "—", Target: "p99 under 1 ms", Verdict: notInRun}
	p50, ok1 := r.Median(keyPlugin, "p50-µs")
	p99, ok2 := r.Median(keyPlugin, "p99-µs")
	if !ok1 || !ok2 {
		return row
	}
	row.Figure = fmt.Sprintf("p50 %.0f µs, p99 %.0f µs", p50, p99)
	row.Ratio = fmt.Sprintf("%.2f× the target", p99/1000)
	row.Verdict = verdict(p99 < 1000, fmt.Sprintf("p99 %.0f µs", p99))
	return row
}

func pluginVsGRPC(r *Results) Row {
	row := Row{What: "plugin health-check call, median", Target: "median ≤ 1.5× bare gRPC", Verdict: notInRun}
	p50, ok1 := r.Median(keyPlugin, "p50-µs")
	g50, ok2 := r.Median(keyBareGRPC, "p50-µs")
	if !ok1 || !ok2 {
		return row
	}
	row.Figure = fmt.Sprintf("p50 %.0f µs", p50)
	row.Compared = fmt.Sprintf("bare gRPC unary call on a Unix socket, server in the same process: p50 %.0f µs", g50)
	o50, other := r.Median(keyBareOther, "p50-µs")
	if other {
		row.Compared += fmt.Sprintf("; server in a process of its own: p50 %.0f µs", o50)
	}
	if ip, ok := r.Median(keyInProcess, "ns/op"); ok {
		row.Compared += fmt.Sprintf("; in-process call of the same check: %s", dur(ip))
	}
	row.Ratio = ratio(p50, g50) + " of bare gRPC"
	why := fmt.Sprintf("%.2f× bare gRPC in the same process", p50/g50)
	if other {
		row.Ratio += fmt.Sprintf(" (%s of bare gRPC to another process)", ratio(p50, o50))
		why += fmt.Sprintf(": the process boundary alone makes a bare call %.2f× slower; go-plugin's mutual TLS "+
			"and lifeline's host path add %.2f× on top (see the notes)", o50/g50, p50/o50)
	} else {
		why += ": the plugin call adds a second process and the TLS of go-plugin's mutual-TLS connection (see the notes)"
	}
	row.Verdict = verdict(p50 <= 1.5*g50, why)
	return row
}

func pluginTen(r *Results) Row {
	row := Row{What: "ten plugin checks in one monitor tick", Target: "under 2× one check", Verdict: notInRun}
	ten, ok1 := r.Median(keyPluginTen, "ns/op")
	one, ok2 := r.Median(keyPlugin, "ns/op")
	if !ok1 || !ok2 {
		return row
	}
	row.Figure = dur(ten) + " per tick, ten plugin processes"
	if shared, ok := r.Median(keyPluginOne, "ns/op"); ok {
		row.Figure += fmt.Sprintf("; ten checks of one plugin process: %s (%s one check)", dur(shared), ratio(shared, one))
	}
	row.Compared = "one check: " + dur(one)
	bareTen, ok3 := r.Median(keyBareTen, "ns/op")
	bareOne, ok4 := r.Median(keyBareOther, "ns/op")
	if ok3 && ok4 {
		row.Compared += fmt.Sprintf("; ten bare gRPC calls at once to ten server processes: %s (%s one bare call)",
			dur(bareTen), ratio(bareTen, bareOne))
	}
	row.Ratio = ratio(ten, one)
	why := fmt.Sprintf("%.2f× one check", ten/one)
	if ok3 && ok4 {
		why += fmt.Sprintf(": ten bare gRPC calls to ten processes already take %.1f× one on this machine, "+
			"where the host and ten plugin processes share two cores (see the notes)", bareTen/bareOne)
	}
	row.Verdict = verdict(ten < 2*one, why)
	return row
}

func zombieRow(r *Results) Row {
	row := Row{What: "zombie detection (last ACK → client leaves the connection), Scale 200 fake", Target: "≤ 1.5 intervals; ≤ 0.3× discordgo", Verdict: notInRun}
	ll, ok1 := r.Median(keyZombieLL, "intervals")
	dg, ok2 := r.Median(keyZombieDG, "intervals")
	if !ok1 || !ok2 {
		return row
	}
	llms, _ := r.Median(keyZombieLL, "ms")
	dgms, _ := r.Median(keyZombieDG, "ms")
	row.Figure = fmt.Sprintf("%.3f intervals (%.0f ms)", ll, llms)
	row.Compared = fmt.Sprintf("plain discordgo v0.29.0: %.3f intervals (%.0f ms)", dg, dgms)
	row.Ratio = ratio(ll, dg)
	var why []string
	if ll > 1.5 {
		why = append(why, fmt.Sprintf("%.3f intervals: the zombie is declared 1.5 intervals (ZombieFactor) after the last ACK "+
			"the client read, and the fake's ledger adds the ACK's flight and the close's", ll))
	}
	if ll > 0.3*dg {
		why = append(why, fmt.Sprintf("%.2f× discordgo", ll/dg))
	}
	row.Verdict = verdict(len(why) == 0, strings.Join(why, "; "))
	return row
}

// losses describes the dispatches a drop benchmark lost.
func losses(r *Results, key string) string {
	lost, _ := r.Median(key, "lost")
	lossy, ok1 := r.Median(key, "runs-with-loss")
	runs, ok2 := r.Median(key, "runs")
	if !ok1 || !ok2 {
		return fmt.Sprintf("up to %.0f dispatches lost in a run", lost)
	}
	return fmt.Sprintf("%.0f of %.0f runs lost dispatches (up to %.0f in one)", lossy, runs, lost)
}

func recoveryRow(r *Results) Row {
	row := Row{What: "recovery after a dropped connection (drop → RESUMED), Scale 200 fake", Target: "lower median than discordgo, 0 dispatches lost", Verdict: notInRun}
	ll, ok1 := r.Median(keyDropLL, "ms")
	dg, ok2 := r.Median(keyDropDG, "ms")
	lost, ok3 := r.Median(keyDropLL, "lost")
	if !ok1 || !ok2 || !ok3 {
		return row
	}
	row.Figure = fmt.Sprintf("median %.3g ms; %s", ll, losses(r, keyDropLL))
	row.Compared = fmt.Sprintf("plain discordgo v0.29.0: median %.0f ms; %s", dg, losses(r, keyDropDG))
	row.Ratio = ratio(ll, dg)
	var why []string
	if ll >= dg {
		why = append(why, fmt.Sprintf("%.2f× discordgo's median", ll/dg))
	}
	if lost != 0 {
		why = append(why, fmt.Sprintf("%.0f dispatches lost", lost))
	}
	row.Verdict = verdict(len(why) == 0, strings.Join(why, "; "))
	return row
}

func outageRow(r *Results) Row {
	row := Row{
		What: "outage of 10 s (scaled) → all shards READY", Compared: "—",
		Target:  "within one backoff step + 100 ms of the fake coming back",
		Verdict: notInRun,
	}
	all, ok1 := r.Median(keyOutage, "all-ready-ms")
	step, ok2 := r.Median(keyOutage, "step-ms")
	excess, ok3 := r.Median(keyOutage, "excess-ms")
	if !ok1 || !ok2 || !ok3 {
		return row
	}
	shards, _ := r.Median(keyOutage, "shards")
	runs, _ := r.Median(keyOutage, "runs")
	over, _ := r.Median(keyOutage, "runs-over")
	worst, _ := r.Median(keyOutage, "worst-excess-ms")
	opens, _ := r.Median(keyOutage, "breaker-opens")
	ids, _ := r.Median(keyOutage, "identifies")
	row.Figure = fmt.Sprintf("%.0f shards, Scale 100 (a 100 ms outage), the default policy's backoff and breaker scaled: "+
		"last shard READY %.0f ms after the fake came back, its backoff step %.0f ms, so %.1f ms beyond the step (medians of %.0f runs)",
		shards, all, step, excess, runs)
	row.Compared = fmt.Sprintf("worst run: %.0f ms beyond its step; %.0f of %.0f runs over; %.0f breaker opens, %.0f IDENTIFYs in all runs",
		worst, over, runs, opens, ids)
	row.Ratio = fmt.Sprintf("%.2f× the 100 ms allowance", excess/100)
	why := fmt.Sprintf("the last shard was READY %.0f ms after its backoff step", excess)
	if over > 0 && opens > 0 {
		why += "; runs over the target had a shard whose circuit breaker opened (5 failures) and waited its open timeout"
	}
	row.Verdict = verdict(excess <= 100, why)
	if row.Verdict == "met" && over > 0 {
		row.Verdict = fmt.Sprintf("met at the median; %.0f of %.0f runs over (worst %.0f ms): a shard's circuit breaker opened during the outage "+
			"(the default policy's 5 failures) and it waited the open timeout", over, runs, worst)
	}
	return row
}

// kb formats bytes in KB (1,000 bytes).
func kb(b float64) string { return fmt.Sprintf("%.1f KB", b/1000) }

func idleRow(r *Results) Row {
	row := Row{
		What: "idle cost per shard, 1,000 shards", Compared: "plain discordgo Sessions",
		Target:  "lifeline's own overhead under 25 KB and under 1% of a core per 1,000 shards at rest",
		Verdict: notInRun,
	}
	llB, ok1 := r.Median(keyIdleLL, "B/shard")
	dgB, ok2 := r.Median(keyIdleDG, "B/shard")
	llC, ok3 := r.Median(keyIdleLL, "%core/1000shards")
	dgC, ok4 := r.Median(keyIdleDG, "%core/1000shards")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return row
	}
	shards, _ := r.Median(keyIdleLL, "shards")
	hb, _ := r.Median(keyIdleLL, "heartbeat-s")
	part := func(key string, b, c float64) string {
		heap, _ := r.Median(key, "heap-B/shard")
		stack, _ := r.Median(key, "stack-B/shard")
		g, _ := r.Median(key, "goroutines/shard")
		return fmt.Sprintf("%s/shard (heap %s, stacks %s, %.1f goroutines), %.2f%% of a core per 1,000 shards", kb(b), kb(heap), kb(stack), g, c)
	}
	row.Figure = fmt.Sprintf("%.0f shards in one process, heartbeat every %.2f s, the fake in another process: ", shards, hb) +
		part(keyIdleLL, llB, llC)
	row.Compared = "plain discordgo v0.29.0 Sessions: " + part(keyIdleDG, dgB, dgC)
	row.Ratio = fmt.Sprintf("overhead %s/shard, %.2f%% of a core", kb(llB-dgB), llC-dgC)
	if shards != 1000 {
		row.Verdict = fmt.Sprintf("not measured at 1,000 shards in this run (%.0f)", shards)
		return row
	}
	var why []string
	if llB-dgB >= 25000 {
		why = append(why, fmt.Sprintf("%s/shard of overhead", kb(llB-dgB)))
	}
	if llC-dgC >= 1 {
		why = append(why, fmt.Sprintf("%.2f%% of a core of overhead", llC-dgC))
	}
	row.Verdict = verdict(len(why) == 0, strings.Join(why, "; ")+" (see the notes)")
	return row
}

func recorderRow(r *Results) Row {
	row := Row{What: "metrics Recorder observation (every method)", Compared: "—", Target: "O(1), 0 allocs", Verdict: notInRun}
	keys := r.Keys(keyObserve)
	a12, ok1 := r.Median(keyScale12, "ns/op")
	a3600, ok2 := r.Median(keyScale3600, "ns/op")
	s1, ok3 := r.Median(keySteady1, "ns/op")
	s3600, ok4 := r.Median(keySteady3600, "ns/op")
	if len(keys) == 0 || !ok1 || !ok2 || !ok3 || !ok4 {
		return row
	}
	var worst, worstAllocs float64
	worstName := ""
	for _, k := range keys {
		ns, _ := r.Median(k, "ns/op")
		a, _ := r.Median(k, "allocs/op")
		if ns > worst {
			worst, worstName = ns, strings.TrimPrefix(k, keyObserve)
		}
		worstAllocs = max(worstAllocs, a)
	}
	row.Figure = fmt.Sprintf("slowest of %d methods: %s %s/op; most allocs: %.0f", len(keys), worstName, dur(worst), worstAllocs)
	row.Compared = fmt.Sprintf("ObserveREST, window still: 1 bucket %s, 3,600 buckets %s; window moving a bucket every call: 12 buckets %s, 3,600 buckets %s",
		dur(s1), dur(s3600), dur(a12), dur(a3600))
	row.Ratio = ratio(s3600, s1) + " still (3,600 vs 1 bucket); " + ratio(a3600, a12) + " moving (3,600 vs 12)"
	var why []string
	if worstAllocs != 0 {
		why = append(why, fmt.Sprintf("%.0f allocs/op", worstAllocs))
	}
	if s3600 > 2*s1 {
		why = append(why, fmt.Sprintf("a still window costs %.2f× more with 3,600 buckets than with 1", s3600/s1))
	}
	if a3600 > 2*a12 {
		why = append(why, fmt.Sprintf("a moving window costs %.2f× more with 3,600 buckets than with 12", a3600/a12))
	}
	row.Verdict = verdict(len(why) == 0, strings.Join(why, "; "))
	return row
}
