package chaos_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeline-bot/lifeline/internal/chaos"
)

var (
	flagSeed     = flag.Int64("chaos.seed", 0, "the chaos schedule's seed (default: 1 for TestChaosShort, a random one, printed, for TestSoak)")
	flagShards   = flag.Int("chaos.shards", 1, "the bot's shard count")
	flagPerShard = flag.Bool("chaos.pershard", false, "one lifeline system per shard instead of one for all")
	flagDuration = flag.Duration("chaos.duration", 0, "TestSoak's chaos phase (0 skips TestSoak)")
	flagReport   = flag.String("chaos.report", "", "TestSoak writes its report here (Markdown; JSON beside it)")
	flagMeanGap  = flag.Duration("chaos.meangap", 5*time.Second, "TestSoak's mean time between two steps")
)

func TestMain(m *testing.M) {
	// A finer heap profile than the default 512 KiB, for the memory
	// check's attribution by allocation site.
	runtime.MemProfileRate = 16 << 10
	goleak.VerifyTestMain(m)
}

// buildPlugin builds plugins/tcpprobe, the real plugin process every chaos
// run loads.
func buildPlugin(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bin", "tcpprobe")
	out, err := exec.Command("go", "build", "-o", bin, "../../plugins/tcpprobe").CombinedOutput()
	if err != nil {
		t.Fatalf("building plugins/tcpprobe: %v\n%s", err, out)
	}
	return bin
}

// seed is -chaos.seed, or def when it is not given (0: a random seed).
func seed(def int64) int64 {
	switch {
	case *flagSeed != 0:
		return *flagSeed
	case def != 0:
		return def
	}
	return 1 + time.Now().UnixNano()%1_000_000_007
}

func runChaos(t *testing.T, cfg chaos.Config) *chaos.Report {
	t.Helper()
	// The secrets sit in the environment, as an operator's would: the
	// plugin processes must not inherit them (their /proc environ is
	// searched), whatever the variable's name.
	t.Setenv("DISCORD_TOKEN", chaos.Token(cfg.Seed))
	t.Setenv("CHAOS_BOT_TOKEN", chaos.Token(cfg.Seed))
	t.Setenv("LIFELINE_HTTP_TOKEN", chaos.HTTPToken(cfg.Seed))
	dir := t.TempDir()
	cfg.Dir = dir
	cfg.PluginPath = buildPlugin(t, dir)
	cfg.Logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration+10*time.Minute)
	defer cancel()
	rep, err := chaos.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("chaos run (seed %d) could not start: %v", cfg.Seed, err)
	}
	t.Log(rep.String())
	if !rep.OK() {
		if rep.GoroutineDump != "" {
			t.Logf("goroutines:\n%s", rep.GoroutineDump)
		}
		t.Logf("last log lines:\n%s", rep.LogTail)
		if rep.Ledger != "" {
			t.Logf("ledger:\n%s", rep.Ledger)
		}
		t.Errorf("chaos run failed; seed %d reproduces the schedule: %s", rep.Seed, rep.Rerun())
	}
	return rep
}

// TestChaosShort is the soak `make test` runs: 20s of every fault kind,
// plugin crashes and policy edits, with every invariant checked (see the
// package doc).
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("a 20s chaos run")
	}
	rep := runChaos(t, chaos.Config{Seed: seed(1), Shards: *flagShards, PerShard: *flagPerShard, Duration: 20 * time.Second})
	if !rep.OK() {
		return
	}
	// The run really did something: every kind of the schedule was
	// injected, the system degraded and recovered, messages flowed.
	for _, k := range chaos.Kinds() {
		if rep.Injected[k] == 0 && k != chaos.KindPluginCrash {
			t.Errorf("kind %s never injected", k)
		}
	}
	// Each crash was followed by a restart (a crash is skipped when the
	// plugin is restarting already, which a loaded machine can cause).
	if rep.PluginStarts < 1+rep.PluginCrashes {
		t.Errorf("plugin crashes %d, starts %d: a crashed plugin was not restarted", rep.PluginCrashes, rep.PluginStarts)
	}
	if rep.PluginCrashes == 0 {
		t.Log("the plugin was restarting whenever a crash was due: none injected")
	}
	// Messages flowed: a few hundred on a quiet machine, 57 seen under
	// heavy CPU starvation, so the floor only tells "some" from "none".
	if rep.AckedMessages < 20 || rep.Resumes == 0 || rep.PolicyReloads == 0 || rep.PolicyReloadFailures == 0 {
		t.Errorf("too little happened: %d messages acked, %d resumes, %d reloads, %d refused",
			rep.AckedMessages, rep.Resumes, rep.PolicyReloads, rep.PolicyReloadFailures)
	}
	if len(rep.Scanned) < 10 {
		t.Errorf("the secret scan read only %v", rep.Scanned)
	}
}

// TestSoak is the long run: `make soak DURATION=30m` (or -chaos.duration).
// It writes the report given by -chaos.report.
func TestSoak(t *testing.T) {
	if *flagDuration <= 0 {
		t.Skip("the long soak runs with -chaos.duration (make soak DURATION=30m)")
	}
	rep := runChaos(t, chaos.Config{Seed: seed(0), Shards: *flagShards, PerShard: *flagPerShard, Duration: *flagDuration,
		MeanGap: *flagMeanGap, SampleEvery: 10 * time.Second})
	if *flagReport != "" {
		md := "# Soak report\n\n" + rep.Markdown()
		if err := os.WriteFile(*flagReport, []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(strings.TrimSuffix(*flagReport, ".md")+".json", b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
