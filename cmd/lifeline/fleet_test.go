package main

import (
	"context"
	"flag"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/internal/fleetdemo"
)

// flagFleetLong runs TestFleetProcesses at full size (64 shards over three
// processes, every scenario of issue #12); `make fleet-test` sets it. The
// default is a smaller, representative run (16 shards, every scenario).
var flagFleetLong = flag.Bool("fleet.long", false, "TestFleetProcesses with 64 shards (make fleet-test)")

// startCluster starts a fleetdemo cluster of the lifeline binary under
// test; a failing test prints the tail of every process's log.
func startCluster(t *testing.T, o fleetdemo.Options) *fleetdemo.Cluster {
	t.Helper()
	o.Binary = lifelineBin
	o.Dir = t.TempDir()
	// A data race in a process ends it with exit status 66, which Stop
	// reports.
	o.Env = append(o.Env, "GORACE=halt_on_error=1")
	c, err := fleetdemo.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, id := range []string{"p1", "p2", "p3", "p4"} {
				if p := c.Process(id); p != nil {
					t.Logf("--- %s log (last lines):\n%s", id, fleetdemo.Tail(p.Log, 40))
				}
			}
		}
		c.Close()
	})
	return c
}

func spawn(t *testing.T, c *fleetdemo.Cluster, ids ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, id := range ids {
		if _, err := c.Spawn(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

func settle(t *testing.T, c *fleetdemo.Cluster) map[int]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owners, err := c.WaitSettled(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return owners
}

func stopProcess(t *testing.T, c *fleetdemo.Cluster, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// perProcess counts the shards each process owns.
func perProcess(owners map[int]string) map[string]int {
	n := map[string]int{}
	for _, p := range owners {
		n[p]++
	}
	return n
}

// checkFair fails unless each of the live processes owns shards/n or one
// more.
func checkFair(t *testing.T, owners map[int]string, shards int, live []string) {
	t.Helper()
	n := perProcess(owners)
	for _, id := range live {
		if k := n[id]; k < shards/len(live) || k > shards/len(live)+1 {
			t.Fatalf("unfair share: %v over %v", n, live)
		}
	}
}

// checkLedger fails on any broken identify limit or budget, any shard with
// two live connections at once, and any lost dispatch.
func checkLedger(t *testing.T, c *fleetdemo.Cluster, phase string, tally fleetdemo.Tally) {
	t.Helper()
	if len(tally.Violations) > 0 {
		t.Fatalf("%s: the fake's ledger shows violations: %+v", phase, tally.Violations)
	}
	if o := fleetdemo.Overlaps(c.Fake()); len(o) > 0 {
		t.Fatalf("%s: shards with two live connections: %v", phase, o)
	}
	if lost := fleetdemo.Lost(c.Fake()); len(lost) > 0 {
		t.Fatalf("%s: lost dispatches: %v", phase, lost)
	}
}

// waitLeases waits until every live process reports a valid lease.
func waitLeases(t *testing.T, c *fleetdemo.Cluster) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		valid := 0
		for _, id := range c.Live() {
			if st, err := c.State(context.Background(), id); err == nil && st.Fleet != nil && st.Fleet.Stats.LeaseValid {
				valid++
			}
		}
		if valid == len(c.Live()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d processes have a valid lease after 60s", valid, len(c.Live()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func moved(before, after map[int]string) []int {
	var out []int
	for s, p := range after {
		if before[s] != p {
			out = append(out, s)
		}
	}
	sort.Ints(out)
	return out
}

// Three lifeline processes (`lifeline run`, built with -race when the tests
// are) share one fake Discord and an embedded NATS server with JetStream,
// coordinated by the policy's coordination "nats" block, and every claim of
// issue #12 is checked in the fake's ledger, which is what Discord would
// see:
//
//   - the shards spread fairly, one IDENTIFY each, no identify-concurrency or
//     budget violation;
//   - kill -9 of one process: the others RESUME its shards (no IDENTIFY)
//     after its lease runs out, no shard ever has two live connections, no
//     dispatch is lost;
//   - a process joining takes a fair share by handover, by RESUME;
//   - a rolling restart of every process (SIGTERM, then the same ID again):
//     zero IDENTIFYs;
//   - NATS stopped for longer than the lease: no IDENTIFY, no shard moves,
//     running shards keep their connections, a shard that drops meanwhile
//     waits and RESUMEs once NATS is back, and once every process has
//     rejoined and its grace is over still nothing has moved.
//
// The fake sends every session a MESSAGE_CREATE every 100ms throughout, so
// a lost dispatch would show. By default 16 shards (max_concurrency 4);
// -fleet.long (make fleet-test) runs 64 (max_concurrency 16).
func TestFleetProcesses(t *testing.T) {
	shards, mc := 16, 4
	if *flagFleetLong {
		shards, mc = 64, 16
	}
	c := startCluster(t, fleetdemo.Options{Shards: shards, MaxConcurrency: mc, DispatchInterval: 100 * time.Millisecond})
	lease := c.Options().LeaseTTL
	srv := c.Fake()

	// Spread.
	began := time.Now()
	spawn(t, c, "p1", "p2", "p3")
	owners := settle(t, c)
	t.Logf("spread: %d shards READY over %v in %s", shards, perProcess(owners), time.Since(began).Round(time.Millisecond))
	checkFair(t, owners, shards, []string{"p1", "p2", "p3"})
	tally := fleetdemo.Since(srv, fleetdemo.Mark{})
	if tally.Identifies != shards {
		t.Fatalf("spread: %d IDENTIFYs for %d shards", tally.Identifies, shards)
	}
	checkLedger(t, c, "spread", tally)
	// lifeline status shows which process owns which shards.
	out, err := exec.Command(lifelineBin, "status", "--addr", c.Process("p1").HTTP, "--events", "0").CombinedOutput()
	if err != nil {
		t.Fatalf("lifeline status: %v\n%s", err, out)
	}
	for _, want := range []string{"Fleet (nats, buckets fleetdemo_*): 3 processes, " + strconv.Itoa(shards) + " of " + strconv.Itoa(shards) + " shards owned",
		"p1 (this)", "p2 ", "p3 ", "leader"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("lifeline status lacks %q:\n%s", want, out)
		}
	}

	// kill -9.
	mark := fleetdemo.MarkNow(srv)
	victim := perProcess(owners)["p2"]
	killed := time.Now()
	if err := c.Kill("p2"); err != nil {
		t.Fatal(err)
	}
	after := settle(t, c)
	tally = fleetdemo.Since(srv, mark)
	var worst time.Duration
	for _, at := range fleetdemo.ResumedAt(srv, mark) {
		worst = max(worst, at.Sub(killed))
	}
	t.Logf("kill -9: %d shards moved to %v, %d RESUMEs, %d IDENTIFYs; last RESUME %s after the kill (lease %s, fleet interval %s)",
		len(moved(owners, after)), perProcess(after), tally.Resumes, tally.Identifies, worst.Round(time.Millisecond), lease, c.Options().Interval)
	if tally.Identifies != 0 || tally.Resumes != victim {
		t.Fatalf("kill -9: %d IDENTIFYs and %d RESUMEs, want 0 and %d (the killed process's shards)", tally.Identifies, tally.Resumes, victim)
	}
	// A timing, checked only in the full-size run (make fleet-test): the
	// lease plus one of the fake's heartbeat intervals.
	if bound := lease + srv.HeartbeatInterval(); *flagFleetLong && worst > bound {
		t.Fatalf("kill -9: the last shard RESUMEd %s after the kill, want within %s", worst, bound)
	}
	checkFair(t, after, shards, []string{"p1", "p3"})
	checkLedger(t, c, "kill -9", tally)
	owners = after

	// Join.
	mark = fleetdemo.MarkNow(srv)
	spawn(t, c, "p4")
	after = settle(t, c)
	tally = fleetdemo.Since(srv, mark)
	mv := moved(owners, after)
	var gap time.Duration
	for _, g := range fleetdemo.HandoverGaps(srv, mark) {
		gap = max(gap, g)
	}
	t.Logf("join: p4 took %d shards by handover (%v), %d RESUMEs, %d IDENTIFYs; longest time a shard had no connection %s",
		len(mv), perProcess(after), tally.Resumes, tally.Identifies, gap.Round(time.Millisecond))
	checkFair(t, after, shards, []string{"p1", "p3", "p4"})
	if tally.Identifies != 0 || tally.Resumes != len(mv) {
		t.Fatalf("join: %d IDENTIFYs and %d RESUMEs for %d moved shards", tally.Identifies, tally.Resumes, len(mv))
	}
	checkLedger(t, c, "join", tally)
	owners = after

	// Rolling restart.
	mark = fleetdemo.MarkNow(srv)
	began = time.Now()
	for _, id := range []string{"p1", "p3", "p4"} {
		stopProcess(t, c, id) // exits 0 after handing its shards over
		settle(t, c)
		spawn(t, c, id)
		owners = settle(t, c)
	}
	tally = fleetdemo.Since(srv, mark)
	t.Logf("rolling restart: %s, %d RESUMEs, %d IDENTIFYs, now %v", time.Since(began).Round(time.Millisecond), tally.Resumes, tally.Identifies, perProcess(owners))
	if tally.Identifies != 0 {
		t.Fatalf("rolling restart: %d IDENTIFYs, want 0", tally.Identifies)
	}
	checkFair(t, owners, shards, []string{"p1", "p3", "p4"})
	checkLedger(t, c, "rolling restart", tally)

	// NATS outage, longer than the lease.
	mark = fleetdemo.MarkNow(srv)
	open := fleetdemo.OpenConnections(srv)
	c.StopNATS()
	time.Sleep(lease + lease/2) // every lease has run out
	dropped := 0
	if err := srv.DropConnections(dropped); err != nil {
		t.Fatal(err)
	}
	time.Sleep(lease / 2) // the dropped shard would reconnect by now if it could
	if n := fleetdemo.OpenConnections(srv)[dropped]; n != 0 {
		t.Fatalf("NATS down: shard %d reconnected (%d connections) while its process could not hold it", dropped, n)
	}
	during := fleetdemo.Since(srv, mark)
	for s := range shards {
		if s != dropped && fleetdemo.OpenConnections(srv)[s] != open[s] {
			t.Fatalf("NATS down: shard %d lost its connection", s)
		}
	}
	if err := c.StartNATS(); err != nil {
		t.Fatal(err)
	}
	// Every process rejoins, and its grace after rejoining (one lease,
	// during which its leader plans nothing) ends, before the tally: a
	// plan made from a partial view of the fleet would move shards only
	// then, after the dropped shard had RESUMEd and the fleet looked
	// settled.
	waitLeases(t, c)
	time.Sleep(lease + c.Options().Interval)
	after = settle(t, c)
	tally = fleetdemo.Since(srv, mark)
	t.Logf("NATS outage: %d IDENTIFYs while down, %d RESUMEs and %d IDENTIFYs in all, %d shards moved", during.Identifies, tally.Resumes, tally.Identifies, len(moved(owners, after)))
	if during.Identifies != 0 || tally.Identifies != 0 {
		t.Fatalf("NATS outage: %d IDENTIFYs while down, %d in all; want none", during.Identifies, tally.Identifies)
	}
	if mv := moved(owners, after); len(mv) != 0 {
		t.Fatalf("NATS outage: shards %v moved", mv)
	}
	if tally.Resumes != 1 {
		t.Fatalf("NATS outage: %d RESUMEs, want 1 (the dropped shard, once NATS was back)", tally.Resumes)
	}
	checkLedger(t, c, "NATS outage", tally)

	// Everyone leaves; each exits 0 (no data race in any process).
	mark = fleetdemo.MarkNow(srv)
	for _, id := range c.Live() {
		stopProcess(t, c, id)
	}
	tally = fleetdemo.Since(srv, mark)
	if tally.Identifies != 0 {
		t.Fatalf("shutdown: %d IDENTIFYs", tally.Identifies)
	}
	checkLedger(t, c, "shutdown", tally)
}

func TestFakeURL(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{in: "http://127.0.0.1:4000", want: "http://127.0.0.1:4000"},
		{in: "http://127.0.0.1:4000/api/v10", want: "http://127.0.0.1:4000"},
		{in: "http://localhost:4000/api/v9/", want: "http://localhost:4000"},
		{in: "http://[::1]:4000", want: "http://[::1]:4000"},
		{in: "http://10.0.0.5:4000", err: "loopback only"},
		{in: "ws://127.0.0.1:4000/gateway", err: "want http://127.0.0.1:PORT"},
		{in: "127.0.0.1:4000", err: "want http://127.0.0.1:PORT"},
	}
	for _, tc := range cases {
		got, err := fakeBaseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("fakeBaseURL(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("fakeBaseURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	// --fake-url and --fake together are a usage error.
	env, _, errb := testEnv(nil)
	if code := runRun(context.Background(), env, []string{"--fake", "--fake-url", "http://127.0.0.1:1", "--http", "off"}); code != 2 ||
		!strings.Contains(errb.String(), "--fake-url and --fake") {
		t.Fatalf("run --fake --fake-url = %d: %s", code, errb.String())
	}
}

func TestShardList(t *testing.T) {
	for in, want := range map[string]string{"": "-", "3": "3", "0 1 2 5 7 8": "0-2 5 7-8", "9 1 0": "0-1 9"} {
		var ids []int
		for _, f := range strings.Fields(in) {
			n, _ := strconv.Atoi(f)
			ids = append(ids, n)
		}
		if got := shardList(ids); got != want {
			t.Errorf("shardList(%v) = %q, want %q", ids, got, want)
		}
	}
}
