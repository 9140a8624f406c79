package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// `lifeline run --shard-count 3` runs three shards in one process and
// logs each as it comes up ("2 of 3 shards READY"), serves one series per
// shard on /metrics, and closes every shard resumably on the way out;
// `--shard 1` runs that one shard only.
func TestRunShardsReportsProgress(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		policy   string // written to a file and given as --policy when set
		progress []string
		shards   []string // shard labels of lifeline_shard_identifies_total
	}{
		{"all shards of the count", []string{"--shard-count", "3"}, "",
			[]string{"1 of 3 shards READY", "2 of 3 shards READY", "3 of 3 shards READY"}, []string{"0", "1", "2"}},
		{"one shard of the count", []string{"--shard-count", "3", "--shard", "1"}, "", nil, []string{"1"}},
		// No --shard-count: auto, so the policy's count is not overridden
		// (the fake would recommend 1).
		{"the policy's count", nil, "connection {\n  shards = 2\n}\n",
			[]string{"1 of 2 shards READY", "2 of 2 shards READY"}, []string{"0", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.policy != "" {
				path := filepath.Join(t.TempDir(), "policy.hcl")
				if err := os.WriteFile(path, []byte(tt.policy), 0o600); err != nil {
					t.Fatal(err)
				}
				tt.args = append(tt.args, "--policy", path)
			}
			r := startRun(t, nil, append([]string{"--fake", "--fake-scale", "50", "--http", "127.0.0.1:0"}, tt.args...)...)
			r.waitReady()
			log := r.stderr.String()
			last := -1
			for _, p := range tt.progress {
				i := strings.Index(log, p)
				if i < 0 || i < last {
					t.Fatalf("%q missing or out of order in:\n%s", p, log)
				}
				last = i
			}
			if tt.progress == nil && regexp.MustCompile(`\d+ of \d+ shards READY`).MatchString(log) {
				t.Fatalf("progress logged for a single shard:\n%s", log)
			}
			resp, err := http.Get(r.httpURL() + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := regexp.MustCompile(`(?m)^lifeline_shard_identifies_total\{shard="(\d+)"\} 1$`).FindAllStringSubmatch(string(body), -1)
			var labels []string
			for _, g := range got {
				labels = append(labels, g[1])
			}
			if strings.Join(labels, ",") != strings.Join(tt.shards, ",") {
				t.Fatalf("shards on /metrics %v, want %v", labels, tt.shards)
			}
			r.stop()
			if want := "close_code=4000 resumable=true"; !strings.Contains(r.stderr.String(), want) {
				t.Fatalf("no %q in:\n%s", want, r.stderr.String())
			}
			http.DefaultClient.CloseIdleConnections()
		})
	}
}

// `lifeline demo --shards N` wants 1 to maxDemoShards shards.
func TestDemoShardsUsage(t *testing.T) {
	for _, n := range []string{"0", "-2", "65"} {
		env, _, errb := testEnv(nil)
		if code := run(context.Background(), env, []string{"demo", "--http", "off", "--shards", n}); code != 2 ||
			!strings.Contains(errb.String(), "--shards "+n+": want 1 to 64") {
			t.Errorf("--shards %s: exit %d, stderr:\n%s", n, code, errb.String())
		}
	}
}
