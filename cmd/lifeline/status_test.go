package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// debugServer serves testdata/status/debug.json on /debug/lifeline,
// refusing requests without "Bearer want" when want is set.
func debugServer(t *testing.T, want string) *httptest.Server {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("testdata", "status", "debug.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != "/debug/lifeline" && r.URL.Path != "/bot/lifeline/debug/lifeline":
			http.NotFound(w, r)
		case want != "" && r.Header.Get("Authorization") != "Bearer "+want:
			w.WriteHeader(http.StatusUnauthorized)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Write(doc)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestStatusGolden(t *testing.T) {
	srv := debugServer(t, "")
	tests := []struct {
		name, golden string
		args         []string
	}{
		{"summary", "summary.golden", []string{"--addr", strings.TrimPrefix(srv.URL, "http://")}},
		{"three events", "events3.golden", []string{"--addr", srv.URL + "/", "--events", "3"}},
		{"no events", "noevents.golden", []string{"--addr", srv.URL, "--events", "0"}},
		{"mounted under a prefix", "summary-prefix.golden", []string{"--addr", srv.URL + "/bot/lifeline"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, out, errb := testEnv(nil)
			if code := run(context.Background(), env, append([]string{"status"}, tt.args...)); code != 0 {
				t.Fatalf("exit %d\n%s", code, errb.String())
			}
			got := strings.ReplaceAll(out.String(), srv.URL, "http://ADDR")
			path := filepath.Join("testdata", "status", tt.golden)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Fatalf("output differs from %s (go test -run TestStatusGolden -update rewrites it):\n%s", path, got)
			}
		})
	}
	env, out, _ := testEnv(nil)
	if code := run(context.Background(), env, []string{"status", "--addr", srv.URL, "--json"}); code != 0 || !strings.HasPrefix(out.String(), "{\n  \"summary\"") {
		t.Fatalf("--json: exit %d\n%s", code, out.String())
	}
}

func TestStatusFailures(t *testing.T) {
	const token = "status-test-token-77c1"
	srv := debugServer(t, token)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		err  string
	}{
		{"token sent", []string{"--addr", srv.URL}, map[string]string{"LIFELINE_HTTP_TOKEN": token}, 0, ""},
		{"token missing", []string{"--addr", srv.URL}, nil, 1, "401 Unauthorized (set LIFELINE_HTTP_TOKEN"},
		{"wrong token", []string{"--addr", srv.URL}, map[string]string{"LIFELINE_HTTP_TOKEN": "nope"}, 1, "401"},
		{"nothing there", []string{"--addr", closed.URL}, nil, 1, "connection refused"},
		{"not lifeline", []string{"--addr", srv.URL + "/elsewhere"}, map[string]string{"LIFELINE_HTTP_TOKEN": token}, 1, "404"},
		{"bad events", []string{"--events", "-1"}, nil, 2, "--events -1"},
		{"extra argument", []string{"now"}, nil, 2, `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, out, errb := testEnv(tt.env)
			code := run(context.Background(), env, append([]string{"status"}, tt.args...))
			if code != tt.code || !strings.Contains(errb.String(), tt.err) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errb.String(), tt.code, tt.err)
			}
			if strings.Contains(out.String()+errb.String(), token) {
				t.Fatal("the output carries the token")
			}
		})
	}
}
