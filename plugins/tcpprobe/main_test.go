package main

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/sdk"
	"github.com/lifeline-bot/lifeline/sdk/sdktest"
)

// pingServer answers "PING\r\n" with "+PONG\r\n", like Redis.
func pingServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil && line == "PING\r\n" {
					c.Write([]byte("+PONG\r\n"))
				} else if err == nil {
					c.Write([]byte("-ERR\r\n"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestTCPProbe(t *testing.T) {
	up, down := pingServer(t), closedPort(t)
	p := sdktest.Start(t, plugins(), sdktest.Options{})
	tests := []struct {
		name   string
		cfg    sdk.Config
		th     sdk.Threshold
		passed bool
		msg    string
	}{
		{"reachable", sdk.Config{"address": up}, sdk.Threshold{}, true, up + ": answered in"},
		{"ping pong", sdk.Config{"address": up, "send": "PING\r\n", "expect": "+PONG"}, sdk.Threshold{}, true, "answered in"},
		{"wrong answer", sdk.Config{"address": up, "send": "HELLO\r\n", "expect": "+PONG"}, sdk.Threshold{}, false, `answer "-ERR\r"`},
		{"refused", sdk.Config{"address": down}, sdk.Threshold{}, false, "connection refused"},
		{"too slow", sdk.Config{"address": up, "max_latency": "1ns"}, sdk.Threshold{}, false, "above 1ns"},
		{"threshold", sdk.Config{"address": up}, sdk.Threshold{Set: true, IsDuration: true, Duration: time.Nanosecond}, false, "above 1ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := p.Check(context.Background(), "tcp", sdk.CheckRequest{Config: tt.cfg, Threshold: tt.th})
			if err != nil {
				t.Fatal(err)
			}
			if res.Passed != tt.passed || !strings.Contains(res.Message, tt.msg) {
				t.Fatalf("result = %+v, want passed=%v with %q", res, tt.passed, tt.msg)
			}
		})
	}
	for _, bad := range []sdk.Config{{}, {"address": "no-port"}, {"address": up, "timeout": 3.5e9, "send": 1.0}} {
		if _, err := p.Check(context.Background(), "tcp", sdk.CheckRequest{Config: bad}); err == nil {
			t.Errorf("config %v accepted", bad)
		}
	}
}
