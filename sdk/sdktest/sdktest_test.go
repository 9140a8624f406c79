package sdktest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/sdk"
	"github.com/lifeline-bot/lifeline/sdk/sdktest"
)

// bin is the echo plugin, built once for every test.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sdktest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "echo")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/echo").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the echo plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestExecRunsTheBinaryOverTheWire(t *testing.T) {
	p := sdktest.Exec(t, bin, sdktest.Options{Config: sdk.Config{"who": "plugin block"}})

	d := p.Describe()
	if len(d) != 2 || d[0].Name != "connected" || d[0].Kind != sdk.KindHealthCheck || d[1].Name != "resume" || d[1].Kind != sdk.KindRecoveryStrategy {
		t.Fatalf("Describe = %+v", d)
	}
	ctx := context.Background()
	snap := sdk.Snapshot{Gateway: sdk.Gateway{Connected: true}}
	res, err := p.Check(ctx, "connected", sdk.CheckRequest{Snapshot: snap})
	if err != nil || !res.Passed || res.Message != "asked by plugin block" {
		t.Fatalf("Check = %+v, %v", res, err)
	}
	res, err = p.Check(ctx, "connected", sdk.CheckRequest{Config: sdk.Config{"who": "check block"}})
	if err != nil || res.Passed || res.Message != "asked by check block" {
		t.Fatalf("Check (disconnected) = %+v, %v", res, err)
	}
	if err := p.Recover(ctx, "resume", sdk.RecoveryRequest{Error: sdk.ErrorInfo{Message: "closed 4000"}}); err != nil {
		t.Fatal(err)
	}
	if r := p.Host().Recoveries(); len(r) != 1 || r[0].Mode != sdk.Resume || r[0].Reason != "closed 4000" {
		t.Fatalf("Recoveries = %+v", r)
	}
	p.Close()
	if _, err := p.Check(ctx, "connected", sdk.CheckRequest{}); err == nil {
		t.Fatal("Check after Close succeeded")
	}
}

func TestBinaryRunByHandSaysItIsAPlugin(t *testing.T) {
	out, err := exec.Command(bin).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "plugin") {
		t.Fatalf("running by hand: %v\n%s", err, out)
	}
}

func TestBuildReportsCompileErrors(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sdktest.Build(ft, "./testdata/does-not-exist")
	}()
	<-done
	if !strings.Contains(ft.msg, "go build ./testdata/does-not-exist") {
		t.Fatalf("Build failure message = %q", ft.msg)
	}
}

// fatalRecorder records Fatalf instead of failing the real test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
