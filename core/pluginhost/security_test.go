package pluginhost_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/pluginhost"
)

// A plugin does not inherit the host's environment: the bot token under
// any variable name, the HTTP bearer token and other secrets stay in the
// host; what a program needs to run (PATH, locale) is passed.
func TestPluginsDoNotInheritTheHostEnvironment(t *testing.T) {
	secrets := map[string]string{
		"DISCORD_TOKEN":         "MTE-discord-token-in-the-usual-variable",
		"MY_BOT_TOKEN":          "MTE-token-under-a-name-the-policy-chose",
		"LIFELINE_HTTP_TOKEN":   "operator-bearer-token",
		"DB_PASSWORD":           "hunter2",
		"AWS_SECRET_ACCESS_KEY": "aws-secret",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	t.Setenv("LC_TIME", "C")
	hs := newHarness(t, nil) // Options.Env nil: the default
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
		t.Fatal(err)
	}
	for k := range secrets {
		if res := probe(hs, "p", map[string]any{"mode": "env", "var": k}); res.Message != k+"=" {
			t.Errorf("%s reached the plugin: %q", k, res.Message)
		}
	}
	for k, want := range map[string]string{"PATH": os.Getenv("PATH"), "LC_TIME": "C"} {
		if res := probe(hs, "p", map[string]any{"mode": "env", "var": k}); res.Message != k+"="+want {
			t.Errorf("%s not passed: %q, want %q", k, res.Message, k+"="+want)
		}
	}
	// The process's whole environment, as the kernel holds it.
	if environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", hs.status("p").PID)); err == nil {
		for k, v := range secrets {
			if bytes.Contains(environ, []byte(v)) {
				t.Errorf("the plugin process's environment holds %s", k)
			}
		}
		// AutoMTLS: go-plugin hands the plugin the host's client
		// certificate, so the plugin serves TLS and checks the host's.
		if !bytes.Contains(environ, []byte("PLUGIN_CLIENT_CERT=-----BEGIN CERTIFICATE-----")) {
			t.Error("no client certificate in the plugin's environment: AutoMTLS is off")
		}
	} else if runtime.GOOS == "linux" {
		t.Fatal(err)
	}
}

// A variable an operator lists in Options.Env explicitly still never
// passes when it is a known secret.
func TestSecretEnvWinsOverAnExplicitEnv(t *testing.T) {
	hs := newHarness(t, func(o *pluginhost.Options) {
		o.Env = []string{"LIFELINE_HTTP_TOKEN=bearer", "LIFELINE_TOKEN=tok", "KEEP=yes"}
	})
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"LIFELINE_HTTP_TOKEN": "", "LIFELINE_TOKEN": "", "KEEP": "yes"} {
		if res := probe(hs, "p", map[string]any{"mode": "env", "var": k}); res.Message != k+"="+want {
			t.Errorf("%s: %q", k, res.Message)
		}
	}
}

// A plugin binary without the execute permission fails to start with an
// error naming the plugin and the reason; the other plugins run.
func TestAPluginBinaryThatIsNotExecutable(t *testing.T) {
	b, err := os.ReadFile(testPlugin)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "noexec")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	hs := newHarness(t, nil)
	bad := pluginhost.Spec{Name: "noexec", Path: path, Checks: []pluginhost.CheckUse{{Name: "probe"}}}
	err = hs.h.Reconcile(context.Background(), []pluginhost.Spec{bad, spec("good")})
	if !errors.Is(err, pluginhost.ErrStartFailed) || !strings.Contains(err.Error(), "noexec") ||
		!strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Reconcile = %v, want ErrStartFailed naming noexec and the permission", err)
	}
	if res := probe(hs, "good", nil); !res.Passed {
		t.Fatalf("the other plugin: %+v", res)
	}
	if st := hs.status("noexec"); st.State == pluginhost.Running || !strings.Contains(st.LastError, "permission denied") {
		t.Fatalf("status = %+v", st)
	}
	if res := probe(hs, "noexec", nil); res.Passed || !strings.Contains(res.Message, "noexec") {
		t.Fatalf("the broken plugin's check: %+v", res)
	}
}

// lineCounter is a log destination that counts lines and keeps none, so a
// flood costs the test no memory.
type lineCounter struct{ lines, bytes atomic.Int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines.Add(int64(bytes.Count(p, []byte("\n"))))
	c.bytes.Add(int64(len(p)))
	return len(p), nil
}

// A plugin that floods its log (hclog lines as fast as it can, and a line
// that never ends) does not stop the host: its calls are answered, its
// output reaches the host's log in bounded lines and within its budget
// (the fake clock does not move: the default burst of 1000 lines is all it
// gets), the rest is reported dropped, and Stop ends it.
func TestAPluginFloodingItsLogDoesNotStopTheHost(t *testing.T) {
	leakCheck(t)
	bin := filepath.Join(t.TempDir(), "floodplugin")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/floodplugin").CombinedOutput(); err != nil {
		t.Fatalf("building the flood plugin: %v\n%s", err, out)
	}
	counter := &lineCounter{}
	hs := newHarness(t, func(o *pluginhost.Options) {
		o.Logger = hclog.New(&hclog.LoggerOptions{Output: counter, Level: hclog.Debug})
	})
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sp := pluginhost.Spec{Name: "flood", Path: bin, Checks: []pluginhost.CheckUse{{Name: "probe"}}}
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{sp}); err != nil {
		t.Fatal(err)
	}
	pid := hs.status("flood").PID
	for i := 0; i < 20; i++ {
		if res := probe(hs, "flood", nil); !res.Passed || res.Message != "still answering" {
			t.Fatalf("call %d: %+v", i, res)
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	hs.h.Stop()
	if !processGone(pid) {
		t.Fatalf("the flooding plugin (pid %d) survived Stop", pid)
	}
	lines, written := counter.lines.Load(), counter.bytes.Load()
	if lines < 100 {
		t.Fatalf("only %d lines of the flood reached the host's log", lines)
	}
	// The burst, and the host's own few lines about the plugin.
	if lines > pluginhost.DefaultLogBurst+20 {
		t.Fatalf("%d lines of the flood reached the host's log, over its budget of %d", lines, pluginhost.DefaultLogBurst)
	}
	if hs.rec.droppedTotal("flood") == 0 {
		t.Fatalf("the flood's dropped lines were not reported:\n%s", hs.rec.dump())
	}
	// Lines are cut at 64 KiB at most, so the average stays small.
	if avg := written / lines; avg > 80<<10 {
		t.Fatalf("log lines average %d bytes", avg)
	}
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 64<<20 {
		t.Fatalf("the host's heap grew by %d MB during the flood", grew>>20)
	}
	t.Logf("%d lines (%d MB) of flood reached the host's log, %d dropped", lines, written>>20, hs.rec.droppedTotal("flood"))
}
