// Command tcpprobe is a lifeline plugin serving one health check, "tcp":
// it opens a TCP connection to an address (a database, a cache, a queue)
// and passes when the connection is accepted within the latency limit.
// See README.md.
package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/lifeline-bot/lifeline/sdk"
)

func main() {
	sdk.Serve(plugins())
}

func plugins() sdk.Plugins {
	return sdk.Plugins{HealthChecks: []sdk.HealthCheck{probe{}}}
}

type probe struct{}

func (probe) Info() sdk.Info {
	return sdk.Info{
		Name:        "tcp",
		Version:     "1.0.0",
		Description: "connects to host:port; passes when the connection is accepted in time",
		Config: []sdk.ConfigField{
			{Name: "address", Type: sdk.String, Required: true, Description: "host:port to connect to, e.g. 127.0.0.1:5432"},
			{Name: "timeout", Type: sdk.Duration, Default: "3s", Description: "bound on the connection attempt"},
			{Name: "max_latency", Type: sdk.Duration, Description: "slowest passing connect; default: the check block's threshold, else none"},
			{Name: "send", Type: sdk.String, Description: "bytes to send once connected (e.g. \"PING\\r\\n\")"},
			{Name: "expect", Type: sdk.String, Description: "what the answer must start with (e.g. \"+PONG\"); needs send"},
		},
	}
}

func (probe) Check(ctx context.Context, req sdk.CheckRequest) (sdk.Result, error) {
	c := req.Config
	addr, err := c.String("address", "")
	if err != nil {
		return sdk.Result{}, err
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return sdk.Result{}, fmt.Errorf("config %q: %q is not host:port: %v", "address", addr, err)
	}
	timeout, err := c.Duration("timeout", 3*time.Second)
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
	send, err := c.String("send", "")
	if err != nil {
		return sdk.Result{}, err
	}
	expect, err := c.String("expect", "")
	if err != nil {
		return sdk.Result{}, err
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	latency := time.Since(start)
	res := sdk.Result{Value: ms(latency), Threshold: ms(maxLatency), Unit: "ms"}
	if err != nil {
		res.Message = fmt.Sprintf("%s: %v", addr, err)
		return res, nil
	}
	defer conn.Close()
	if send != "" {
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		if _, err := conn.Write([]byte(send)); err != nil {
			res.Message = fmt.Sprintf("%s: sending: %v", addr, err)
			return res, nil
		}
		if expect != "" {
			buf := make([]byte, len(expect))
			n, err := readFull(conn, buf)
			if err != nil || string(buf[:n]) != expect {
				res.Message = fmt.Sprintf("%s: answer %q, want %q (%v)", addr, buf[:n], expect, err)
				return res, nil
			}
		}
		latency = time.Since(start)
		res.Value = ms(latency)
	}
	if maxLatency > 0 && latency > maxLatency {
		res.Message = fmt.Sprintf("%s: answered in %v, above %v", addr, latency.Round(time.Microsecond), maxLatency)
		return res, nil
	}
	res.Passed = true
	res.Message = fmt.Sprintf("%s: answered in %v", addr, latency.Round(time.Microsecond))
	return res, nil
}

func readFull(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
