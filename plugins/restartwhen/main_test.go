package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/sdk"
	"github.com/lifeline-bot/lifeline/sdk/sdktest"
)

func TestRestartWhen(t *testing.T) {
	bad := sdk.Snapshot{Errors: sdk.Errors{Consecutive: 6, Rate: 0.2}, Gateway: sdk.Gateway{LastAckAge: 30 * time.Second}}
	fine := sdk.Snapshot{Errors: sdk.Errors{Consecutive: 1, Rate: 0.01}}
	tests := []struct {
		name    string
		cfg     sdk.Config
		snap    sdk.Snapshot
		fatal   bool
		applies bool
		err     string
	}{
		{"consecutive holds", sdk.Config{"consecutive_errors": 5.0}, bad, false, true, ""},
		{"consecutive does not", sdk.Config{"consecutive_errors": 5.0}, fine, false, false, ""},
		{"any of two", sdk.Config{"consecutive_errors": 10.0, "last_ack_age": "20s"}, bad, false, true, ""},
		{"all of two", sdk.Config{"consecutive_errors": 10.0, "last_ack_age": "20s", "match": "all"}, bad, false, false, ""},
		{"all hold", sdk.Config{"error_rate": 0.1, "last_ack_age": "20s", "match": "all"}, bad, false, true, ""},
		{"fatal never", sdk.Config{"consecutive_errors": 1.0}, bad, true, false, ""},
		{"nothing configured", sdk.Config{}, bad, false, false, "no condition configured"},
		{"bad match", sdk.Config{"reconnects": 1.0, "match": "some"}, bad, false, false, `"some" is neither`},
		{"bad duration", sdk.Config{"heartbeat": "fast"}, bad, false, false, "not a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sdktest.Start(t, plugins(), sdktest.Options{Config: tt.cfg})
			ok, err := p.Applies(context.Background(), "restart", sdk.RecoveryRequest{Snapshot: tt.snap, Error: sdk.ErrorInfo{Fatal: tt.fatal}})
			if ok != tt.applies || (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("Applies = %v, %v; want %v, %q", ok, err, tt.applies, tt.err)
			}
		})
	}
}

func TestRestartWhenAsksTheHost(t *testing.T) {
	p := sdktest.Start(t, plugins(), sdktest.Options{Config: sdk.Config{"consecutive_errors": 5.0, "last_ack_age": "20s"}})
	snap := sdk.Snapshot{Errors: sdk.Errors{Consecutive: 6}, Gateway: sdk.Gateway{LastAckAge: 30 * time.Second}}
	if err := p.Recover(context.Background(), "restart", sdk.RecoveryRequest{Snapshot: snap}); err != nil {
		t.Fatal(err)
	}
	r := p.Host().Recoveries()
	if len(r) != 1 || r[0].Mode != sdk.RestartClient || r[0].Reason != "consecutive_errors 6 >= 5, last_ack_age 30s >= 20s" {
		t.Fatalf("recoveries = %+v", r)
	}
	if err := p.Recover(context.Background(), "restart", sdk.RecoveryRequest{}); err == nil || !strings.Contains(err.Error(), "no longer hold") {
		t.Fatalf("Recover when nothing holds = %v", err)
	}
	p.Host().RefuseRecovery(errors.New("client restart already running"))
	if err := p.Recover(context.Background(), "restart", sdk.RecoveryRequest{Snapshot: snap}); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("refused Recover = %v", err)
	}

	p2 := sdktest.Start(t, plugins(), sdktest.Options{Config: sdk.Config{"reconnects": 3.0, "mode": "reidentify"}})
	if err := p2.Recover(context.Background(), "restart", sdk.RecoveryRequest{Snapshot: sdk.Snapshot{Gateway: sdk.Gateway{Reconnects: 3}}}); err != nil {
		t.Fatal(err)
	}
	if r := p2.Host().Recoveries(); len(r) != 1 || r[0].Mode != sdk.Reidentify {
		t.Fatalf("recoveries = %+v", r)
	}
}
