// Command httpprobe is a lifeline plugin serving one health check, "http":
// it requests a URL and passes when the status is expected and the answer
// came within the latency limit. See README.md.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/lifeline-bot/lifeline/sdk"
)

func main() {
	sdk.Serve(plugins())
}

func plugins() sdk.Plugins {
	return sdk.Plugins{HealthChecks: []sdk.HealthCheck{&probe{client: &http.Client{
		// Redirects are followed, as a browser would; each check bounds
		// its own request with the timeout.
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
	}}}}
}

type probe struct {
	client *http.Client
}

func (*probe) Info() sdk.Info {
	return sdk.Info{
		Name:        "http",
		Version:     "1.0.0",
		Description: "requests a URL; passes on an expected status within the latency limit",
		Config: []sdk.ConfigField{
			{Name: "url", Type: sdk.String, Required: true, Description: "the URL to request (http or https)"},
			{Name: "method", Type: sdk.String, Default: "GET", Description: "the HTTP method"},
			{Name: "timeout", Type: sdk.Duration, Default: "5s", Description: "bound on the whole request"},
			{Name: "expect_status", Type: sdk.List, Default: "any 2xx", Description: "the statuses that pass, e.g. [200, 204]"},
			{Name: "max_latency", Type: sdk.Duration, Description: "slowest passing answer; default: the check block's threshold, else none"},
			{Name: "headers", Type: sdk.Object, Description: "request headers, e.g. { Authorization = env(\"PROBE_AUTH\") }"},
			{Name: "body_contains", Type: sdk.String, Description: "text the response body must contain (first 64 KiB)"},
		},
	}
}

func (p *probe) Check(ctx context.Context, req sdk.CheckRequest) (sdk.Result, error) {
	c := req.Config
	url, err := c.String("url", "")
	if err != nil {
		return sdk.Result{}, err
	}
	if url == "" {
		return sdk.Result{}, fmt.Errorf("config %q is required", "url")
	}
	method, err := c.String("method", http.MethodGet)
	if err != nil {
		return sdk.Result{}, err
	}
	timeout, err := c.Duration("timeout", 5*time.Second)
	if err != nil {
		return sdk.Result{}, err
	}
	maxLatency, err := c.Duration("max_latency", 0)
	if err != nil {
		return sdk.Result{}, err
	}
	if maxLatency == 0 && req.Threshold.Set && req.Threshold.IsDuration {
		maxLatency = req.Threshold.Duration
	}
	want, err := statuses(c)
	if err != nil {
		return sdk.Result{}, err
	}
	contains, err := c.String("body_contains", "")
	if err != nil {
		return sdk.Result{}, err
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return sdk.Result{}, fmt.Errorf("building the request: %w", err)
	}
	if h, ok := c["headers"].(map[string]any); ok {
		for k, v := range h {
			hreq.Header.Set(k, fmt.Sprint(v))
		}
	}
	start := time.Now()
	resp, err := p.client.Do(hreq)
	latency := time.Since(start)
	res := sdk.Result{Value: ms(latency), Threshold: ms(maxLatency), Unit: "ms"}
	if err != nil {
		res.Message = fmt.Sprintf("%s %s: %v", method, url, err)
		return res, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))

	switch {
	case !want(resp.StatusCode):
		res.Message = fmt.Sprintf("%s %s: unexpected status %d", method, url, resp.StatusCode)
	case contains != "" && !strings.Contains(string(body), contains):
		res.Message = fmt.Sprintf("%s %s: body lacks %q", method, url, contains)
	case maxLatency > 0 && latency > maxLatency:
		res.Message = fmt.Sprintf("%s %s: answered %d in %v, above %v", method, url, resp.StatusCode, latency.Round(time.Millisecond), maxLatency)
	default:
		res.Passed = true
		res.Message = fmt.Sprintf("%s %s: %d in %v", method, url, resp.StatusCode, latency.Round(time.Millisecond))
	}
	return res, nil
}

// statuses returns the predicate for passing statuses: expect_status, or
// any 2xx.
func statuses(c sdk.Config) (func(int) bool, error) {
	raw, ok := c["expect_status"]
	if !ok || raw == nil {
		return func(s int) bool { return s >= 200 && s < 300 }, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("config %q: want a list of statuses such as [200, 204]", "expect_status")
	}
	set := map[int]bool{}
	for _, v := range list {
		n, ok := v.(float64)
		if !ok || n < 100 || n > 599 || n != float64(int(n)) {
			return nil, fmt.Errorf("config %q: %v is not an HTTP status", "expect_status", v)
		}
		set[int(n)] = true
	}
	return func(s int) bool { return set[s] }, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
