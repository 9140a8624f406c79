package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/lifeline-bot/lifeline/sdk"
	"github.com/lifeline-bot/lifeline/sdk/sdktest"
)

// hook is a local HTTP server that records what the plugin posts.
type hook struct {
	mu     sync.Mutex
	bodies []map[string]any
	auth   []string
	status int
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bodies = append(h.bodies, m)
	h.auth = append(h.auth, r.Header.Get("Authorization")+"|"+r.Header.Get("Content-Type"))
	if h.status != 0 {
		w.WriteHeader(h.status)
	}
}

func TestWebhookPostsWhenALevelActivatesAndEnds(t *testing.T) {
	h := &hook{}
	srv := httptest.NewServer(h)
	defer srv.Close()
	p := sdktest.Start(t, plugins(), sdktest.Options{Config: sdk.Config{
		"url": srv.URL, "bot": "modbot", "text_field": "content", "headers": map[string]any{"Authorization": "Bot hook-secret"}}})
	snap := sdk.Snapshot{Health: sdk.HealthView{Score: 50}, Errors: sdk.Errors{Rate: 0.25}, Gateway: sdk.Gateway{Connected: true}}
	ctx := context.Background()
	if err := p.Apply(ctx, "notify", sdk.ActionRequest{Level: "MODERATE", Snapshot: snap}); err != nil {
		t.Fatal(err)
	}
	if err := p.Rollback(ctx, "notify", sdk.ActionRequest{Level: "MODERATE", Snapshot: snap}); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.bodies) != 2 {
		t.Fatalf("%d posts, want 2", len(h.bodies))
	}
	on, off := h.bodies[0], h.bodies[1]
	if on["event"] != "degradation_activated" || on["level"] != "MODERATE" || on["bot"] != "modbot" ||
		on["health_score"] != 50.0 || on["error_rate"] != 0.25 || on["connected"] != true ||
		on["content"] != "modbot degraded to MODERATE (health 50, error rate 25.0%)" || on["time"] == "" {
		t.Fatalf("activation body = %v", on)
	}
	if off["event"] != "degradation_deactivated" || off["content"] != "modbot left degradation level MODERATE (health 50)" {
		t.Fatalf("rollback body = %v", off)
	}
	if h.auth[0] != "Bot hook-secret|application/json" {
		t.Fatalf("headers = %q", h.auth[0])
	}
}

func TestWebhookFailuresAreReported(t *testing.T) {
	h := &hook{status: http.StatusBadGateway}
	srv := httptest.NewServer(h)
	defer srv.Close()
	p := sdktest.Start(t, plugins(), sdktest.Options{Config: sdk.Config{"url": srv.URL}})
	err := p.Apply(context.Background(), "notify", sdk.ActionRequest{Level: "SEVERE"})
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("Apply against a failing hook = %v", err)
	}
	p2 := sdktest.Start(t, plugins(), sdktest.Options{Config: sdk.Config{"url": "http://127.0.0.1:1/hook"}})
	if err := p2.Apply(context.Background(), "notify", sdk.ActionRequest{Level: "SEVERE"}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Apply against a closed port = %v", err)
	}
	p3 := sdktest.Start(t, plugins(), sdktest.Options{})
	if err := p3.Apply(context.Background(), "notify", sdk.ActionRequest{Level: "SEVERE"}); err == nil || !strings.Contains(err.Error(), `"url" is required`) {
		t.Fatalf("Apply without a url = %v", err)
	}
}
