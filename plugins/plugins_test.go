// Package plugins_test builds every built-in plugin and runs each one as
// lifeline does, a real process over go-plugin, for one real call.
package plugins_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lifeline-bot/lifeline/internal/testutil"
	"github.com/lifeline-bot/lifeline/sdk"
	"github.com/lifeline-bot/lifeline/sdk/sdktest"
)

func TestEveryBuiltinPluginBuildsAndServes(t *testing.T) {
	bin := t.TempDir()
	// One go build links the four binaries in parallel.
	if out, err := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./...").CombinedOutput(); err != nil {
		t.Fatalf("go build ./plugins/...: %v\n%s", err, out)
	}
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
	}))
	defer srv.Close()
	target := testutil.AcceptingListener(t)
	ctx := context.Background()

	tests := []struct {
		name string
		kind sdk.Kind
		cfg  sdk.Config
		call func(t *testing.T, p *sdktest.Plugin)
	}{
		{"httpprobe", sdk.KindHealthCheck, nil, func(t *testing.T, p *sdktest.Plugin) {
			res, err := p.Check(ctx, "http", sdk.CheckRequest{Config: sdk.Config{"url": srv.URL}})
			if err != nil || !res.Passed {
				t.Fatalf("http check = %+v, %v", res, err)
			}
		}},
		{"tcpprobe", sdk.KindHealthCheck, nil, func(t *testing.T, p *sdktest.Plugin) {
			res, err := p.Check(ctx, "tcp", sdk.CheckRequest{Config: sdk.Config{"address": target}})
			if err != nil || !res.Passed {
				t.Fatalf("tcp check = %+v, %v", res, err)
			}
		}},
		{"webhook", sdk.KindDegradationAction, sdk.Config{"url": srv.URL}, func(t *testing.T, p *sdktest.Plugin) {
			if err := p.Apply(ctx, "notify", sdk.ActionRequest{Level: "SEVERE"}); err != nil {
				t.Fatal(err)
			}
			if posts.Load() != 1 {
				t.Fatalf("%d posts", posts.Load())
			}
		}},
		{"restartwhen", sdk.KindRecoveryStrategy, sdk.Config{"consecutive_errors": 3.0}, func(t *testing.T, p *sdktest.Plugin) {
			req := sdk.RecoveryRequest{Snapshot: sdk.Snapshot{Errors: sdk.Errors{Consecutive: 3}}}
			if err := p.Recover(ctx, "restart", req); err != nil {
				t.Fatal(err)
			}
			if r := p.Host().Recoveries(); len(r) != 1 || r[0].Mode != sdk.RestartClient {
				t.Fatalf("recoveries = %+v", r)
			}
		}},
	}
	// Every plugin directory is in the table above and has its README (name
	// and description, configuration, example), so a new plugin cannot
	// ship untested or undocumented. (examples/plugins/guide checks that
	// the READMEs' example policies fit the plugins.)
	dirs, err := filepath.Glob("*/main.go")
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{}
	for _, tt := range tests {
		tested[tt.name] = true
	}
	for _, m := range dirs {
		name := filepath.Dir(m)
		if !tested[name] {
			t.Errorf("plugins/%s is not exercised by this test: add it to the table", name)
		}
		readme, err := os.ReadFile(filepath.Join(name, "README.md"))
		if err != nil {
			t.Errorf("plugins/%s: %v", name, err)
			continue
		}
		for _, want := range []string{"# " + name + " — ", "## Configuration", "## Example", "```hcl"} {
			if !strings.Contains(string(readme), want) {
				t.Errorf("plugins/%s/README.md lacks %q", name, want)
			}
		}
	}
	if len(dirs) != len(tests) {
		t.Errorf("%d plugin directories, %d plugins tested", len(dirs), len(tests))
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sdktest.Exec(t, filepath.Join(bin, tt.name), sdktest.Options{Name: tt.name, Config: tt.cfg})
			d := p.Describe()
			if len(d) != 1 || d[0].Kind != tt.kind || d[0].Version != "1.0.0" || strings.TrimSpace(d[0].Description) == "" {
				t.Fatalf("Describe = %+v", d)
			}
			tt.call(t, p)
		})
	}
}
