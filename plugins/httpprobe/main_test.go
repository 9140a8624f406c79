package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/sdk"
	"github.com/lifeline-bot/lifeline/sdk/sdktest"
)

func TestHTTPProbe(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			if r.Header.Get("Authorization") != "" && r.Header.Get("Authorization") != "Bearer x" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Write([]byte("status: all good"))
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/created":
			w.WriteHeader(http.StatusCreated)
		case "/stuck":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	defer close(release)

	p := sdktest.Start(t, plugins(), sdktest.Options{})
	tests := []struct {
		name   string
		cfg    sdk.Config
		th     sdk.Threshold
		passed bool
		msg    string
	}{
		{"ok", sdk.Config{"url": srv.URL + "/ok"}, sdk.Threshold{}, true, "GET " + srv.URL + "/ok: 200 in"},
		{"headers", sdk.Config{"url": srv.URL + "/ok", "headers": map[string]any{"Authorization": "Bearer x"}}, sdk.Threshold{}, true, ": 200 in"},
		{"wrong header", sdk.Config{"url": srv.URL + "/ok", "headers": map[string]any{"Authorization": "nope"}}, sdk.Threshold{}, false, "unexpected status 401"},
		{"body", sdk.Config{"url": srv.URL + "/ok", "body_contains": "all good"}, sdk.Threshold{}, true, ": 200 in"},
		{"body missing", sdk.Config{"url": srv.URL + "/ok", "body_contains": "degraded"}, sdk.Threshold{}, false, `body lacks "degraded"`},
		{"5xx", sdk.Config{"url": srv.URL + "/down"}, sdk.Threshold{}, false, "unexpected status 503"},
		{"expected 201", sdk.Config{"url": srv.URL + "/created", "expect_status": []any{201.0}}, sdk.Threshold{}, true, ": 201 in"},
		{"201 not expected", sdk.Config{"url": srv.URL + "/created", "expect_status": []any{200.0}}, sdk.Threshold{}, false, "unexpected status 201"},
		{"timeout", sdk.Config{"url": srv.URL + "/stuck", "timeout": "50ms"}, sdk.Threshold{}, false, "deadline exceeded"},
		{"refused", sdk.Config{"url": "http://127.0.0.1:1/"}, sdk.Threshold{}, false, "connection refused"},
		// A latency limit of 1ns cannot be met: the check fails on latency.
		{"too slow", sdk.Config{"url": srv.URL + "/ok", "max_latency": "1ns"}, sdk.Threshold{}, false, "above 1ns"},
		{"threshold from the check block", sdk.Config{"url": srv.URL + "/ok"}, sdk.Threshold{Set: true, IsDuration: true, Duration: time.Nanosecond}, false, "above 1ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := p.Check(context.Background(), "http", sdk.CheckRequest{Config: tt.cfg, Threshold: tt.th})
			if err != nil {
				t.Fatal(err)
			}
			if res.Passed != tt.passed || !strings.Contains(res.Message, tt.msg) || res.Unit != "ms" {
				t.Fatalf("result = %+v, want passed=%v with %q", res, tt.passed, tt.msg)
			}
		})
	}
	for _, bad := range []sdk.Config{{}, {"url": srv.URL, "expect_status": []any{"200"}}, {"url": srv.URL, "timeout": "soon"}} {
		if _, err := p.Check(context.Background(), "http", sdk.CheckRequest{Config: bad}); err == nil {
			t.Errorf("config %v accepted", bad)
		}
	}
}
