// Command webhook is a lifeline plugin serving one degradation action,
// "notify": it posts a JSON message to a URL when a degradation level
// activates and again when it is rolled back, so a chat channel or an
// incident tool hears about it. See README.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/lifeline-bot/lifeline/sdk"
)

func main() {
	sdk.Serve(plugins())
}

func plugins() sdk.Plugins {
	n := &notifier{client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}, now: time.Now}
	return sdk.Plugins{DegradationActions: []sdk.DegradationAction{n}}
}

type notifier struct {
	client *http.Client
	now    func() time.Time
}

func (*notifier) Info() sdk.Info {
	return sdk.Info{
		Name:        "notify",
		Version:     "1.0.0",
		Description: "posts a JSON message to a URL when a degradation level activates and when it ends",
		Config: []sdk.ConfigField{
			{Name: "url", Type: sdk.String, Required: true, Description: "where to POST"},
			{Name: "timeout", Type: sdk.Duration, Default: "5s", Description: "bound on the request"},
			{Name: "headers", Type: sdk.Object, Description: "request headers, e.g. { Authorization = env(\"HOOK_AUTH\") }"},
			{Name: "text_field", Type: sdk.String, Default: "text", Description: "name of the human-readable field (\"content\" for Discord webhooks)"},
			{Name: "bot", Type: sdk.String, Description: "a name for the bot in the message"},
		},
	}
}

// Message is the JSON body posted.
type Message struct {
	Event       string  `json:"event"` // degradation_activated or degradation_deactivated
	Level       string  `json:"level"`
	Bot         string  `json:"bot,omitempty"`
	HealthScore float64 `json:"health_score"`
	ErrorRate   float64 `json:"error_rate"`
	Connected   bool    `json:"connected"`
	Time        string  `json:"time"`
}

func (n *notifier) Apply(ctx context.Context, req sdk.ActionRequest) error {
	return n.post(ctx, req, "degradation_activated")
}

func (n *notifier) Rollback(ctx context.Context, req sdk.ActionRequest) error {
	return n.post(ctx, req, "degradation_deactivated")
}

func (n *notifier) post(ctx context.Context, req sdk.ActionRequest, event string) error {
	c := req.Config
	url, err := c.String("url", "")
	if err != nil {
		return err
	}
	if url == "" {
		return fmt.Errorf("config %q is required", "url")
	}
	timeout, err := c.Duration("timeout", 5*time.Second)
	if err != nil {
		return err
	}
	textField, err := c.String("text_field", "text")
	if err != nil {
		return err
	}
	bot, err := c.String("bot", "")
	if err != nil {
		return err
	}
	s := req.Snapshot
	m := Message{Event: event, Level: req.Level, Bot: bot, HealthScore: s.Health.Score, ErrorRate: s.Errors.Rate,
		Connected: s.Gateway.Connected, Time: n.now().UTC().Format(time.RFC3339)}
	who := "the bot"
	if bot != "" {
		who = bot
	}
	text := fmt.Sprintf("%s degraded to %s (health %.0f, error rate %.1f%%)", who, req.Level, s.Health.Score, 100*s.Errors.Rate)
	if event == "degradation_deactivated" {
		text = fmt.Sprintf("%s left degradation level %s (health %.0f)", who, req.Level, s.Health.Score)
	}
	// The human-readable line goes under text_field beside the fields.
	body := map[string]any{}
	raw, _ := json.Marshal(m)
	_ = json.Unmarshal(raw, &body)
	body[textField] = text
	payload, err := json.Marshal(body)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("building the request: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if h, ok := c["headers"].(map[string]any); ok {
		for k, v := range h {
			hreq.Header.Set(k, fmt.Sprint(v))
		}
	}
	resp, err := n.client.Do(hreq)
	if err != nil {
		return fmt.Errorf("posting to the webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
