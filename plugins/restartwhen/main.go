// Command restartwhen is a lifeline plugin serving one recovery strategy,
// "restart": when a condition on the metrics snapshot holds (too many errors
// in a row, a high error rate, a silent gateway, slow heartbeats, a reconnect
// storm), it asks lifeline to restart the Discord client (or to recover in
// another mode). See README.md.
package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lifeline-bot/lifeline/sdk"
)

func main() {
	sdk.Serve(plugins())
}

func plugins() sdk.Plugins {
	return sdk.Plugins{RecoveryStrategies: []sdk.RecoveryStrategy{strategy{}}}
}

type strategy struct{}

func (strategy) Info() sdk.Info {
	return sdk.Info{
		Name:        "restart",
		Version:     "1.0.0",
		Description: "restarts the Discord client when a condition on the snapshot holds",
		Config: []sdk.ConfigField{
			{Name: "consecutive_errors", Type: sdk.Number, Description: "holds when errors.consecutive is at least this"},
			{Name: "error_rate", Type: sdk.Number, Description: "holds when errors.rate (0-1) is at least this"},
			{Name: "last_ack_age", Type: sdk.Duration, Description: "holds when the last heartbeat ACK is at least this old"},
			{Name: "heartbeat", Type: sdk.Duration, Description: "holds when the heartbeat round trip is at least this"},
			{Name: "reconnects", Type: sdk.Number, Description: "holds when the gateway has reconnected at least this often"},
			{Name: "match", Type: sdk.String, Default: "any", Description: "\"any\" condition or \"all\" of them"},
			{Name: "mode", Type: sdk.String, Default: "restart_client", Description: "recovery to request: restart_client, reidentify, reconnect or resume"},
		},
	}
}

// condition is one configured test on the snapshot.
type condition struct {
	name string
	held func(sdk.Snapshot) (bool, string)
}

// conditions reads the configured conditions; an error names a bad value.
func conditions(c sdk.Config) ([]condition, error) {
	var out []condition
	number := func(key string, get func(sdk.Snapshot) float64, format string) error {
		if !c.Has(key) {
			return nil
		}
		limit, err := c.Number(key, 0)
		if err != nil {
			return err
		}
		out = append(out, condition{key, func(s sdk.Snapshot) (bool, string) {
			v := get(s)
			return v >= limit, fmt.Sprintf("%s "+format+" >= "+format, key, v, limit)
		}})
		return nil
	}
	duration := func(key string, get func(sdk.Snapshot) time.Duration) error {
		if !c.Has(key) {
			return nil
		}
		limit, err := c.Duration(key, 0)
		if err != nil {
			return err
		}
		out = append(out, condition{key, func(s sdk.Snapshot) (bool, string) {
			v := get(s)
			return v >= limit, fmt.Sprintf("%s %v >= %v", key, v, limit)
		}})
		return nil
	}
	for _, err := range []error{
		number("consecutive_errors", func(s sdk.Snapshot) float64 { return float64(s.Errors.Consecutive) }, "%g"),
		number("error_rate", func(s sdk.Snapshot) float64 { return s.Errors.Rate }, "%.3g"),
		duration("last_ack_age", func(s sdk.Snapshot) time.Duration { return s.Gateway.LastAckAge }),
		duration("heartbeat", func(s sdk.Snapshot) time.Duration { return s.Latency.Heartbeat }),
		number("reconnects", func(s sdk.Snapshot) float64 { return float64(s.Gateway.Reconnects) }, "%g"),
	} {
		if err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no condition configured: set at least one of consecutive_errors, error_rate, last_ack_age, heartbeat, reconnects")
	}
	return out, nil
}

// judge reports whether the configured conditions hold for s, and which.
func judge(c sdk.Config, s sdk.Snapshot) (bool, string, error) {
	conds, err := conditions(c)
	if err != nil {
		return false, "", err
	}
	match, err := c.String("match", "any")
	if err != nil {
		return false, "", err
	}
	if match != "any" && match != "all" {
		return false, "", fmt.Errorf("config %q: %q is neither \"any\" nor \"all\"", "match", match)
	}
	var held []string
	for _, cond := range conds {
		if ok, why := cond.held(s); ok {
			held = append(held, why)
		}
	}
	ok := len(held) > 0
	if match == "all" {
		ok = len(held) == len(conds)
	}
	return ok, strings.Join(held, ", "), nil
}

func (strategy) Applies(_ context.Context, req sdk.RecoveryRequest) (bool, error) {
	if req.Error.Fatal {
		return false, nil // a fatal failure (bad token, bad intents) is not cured by a restart
	}
	ok, _, err := judge(req.Config, req.Snapshot)
	return ok, err
}

func (strategy) Recover(ctx context.Context, req sdk.RecoveryRequest) error {
	ok, why, err := judge(req.Config, req.Snapshot)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no restart: the conditions no longer hold")
	}
	mode, err := req.Config.String("mode", string(sdk.RestartClient))
	if err != nil {
		return err
	}
	if !sdk.RecoveryMode(mode).Valid() {
		return fmt.Errorf("config %q: unknown recovery mode %q", "mode", mode)
	}
	return req.Host.RequestRecovery(ctx, sdk.RecoveryMode(mode), why)
}
