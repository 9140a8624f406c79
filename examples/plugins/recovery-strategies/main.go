// Command recovery-strategies shows lifeline's two ways of adding a recovery
// strategy, side by side, against the embedded fake Discord: one written in
// Go (reconnectAfterDialErrors) and one served by a plugin (./resumer) that
// calls back into the host to RESUME the session. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/recovery"
	"github.com/lifeline-bot/lifeline/discordtest"
)

func main() {
	policyPath := flag.String("policy", "policy.hcl", "the policy file (its plugin paths are relative to it)")
	verbose := flag.Bool("v", false, "log what lifeline does")
	flag.Parse()
	level := hclog.Warn
	if *verbose {
		level = hclog.Info
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "lifeline", Level: level, Output: os.Stderr})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, *policyPath, log); err != nil {
		fmt.Fprintln(os.Stderr, "recovery-strategies:", err)
		os.Exit(1)
	}
}

// reconnectAfterDialErrors is a recovery strategy written in Go: when the
// gateway cannot even be dialled, open a new connection (resuming if the
// session allows).
func reconnectAfterDialErrors(c *conn.Connection) recovery.Strategy {
	return recovery.Strategy{
		Name:        "reconnect-after-dial-errors",
		Priority:    20,
		When:        func(f recovery.Failure) bool { return f.Error.Kind == "dial" && !f.Error.Fatal },
		MaxAttempts: 1,
		Recoverer: recovery.RecovererFunc(func(_ context.Context, a recovery.Attempt) error {
			return c.Recover(conn.RecoverReconnect, a.Cause())
		}),
	}
}

// connServices is what plugins may ask of lifeline, served by one managed
// connection: the orchestrator's job in a full bot.
type connServices struct {
	c *conn.Connection
}

func (s connServices) Snapshot() metrics.Snapshot { return metrics.Snapshot{} }

func (s connServices) RequestRecovery(_ context.Context, mode, reason string) error {
	modes := map[string]conn.RecoverMode{"resume": conn.RecoverResume, "reconnect": conn.RecoverReconnect,
		"reidentify": conn.RecoverReidentify, "restart_client": conn.RecoverRestart}
	m, ok := modes[mode]
	if !ok {
		return fmt.Errorf("unknown recovery mode %q", mode)
	}
	return s.c.Recover(m, reason)
}

func (s connServices) SetFeature(string, bool) error {
	return errors.New("this example has no feature flags")
}

// run starts the fake Discord, a managed connection, the plugin host and the
// recovery engine, then handles two failures and prints what happened.
func run(ctx context.Context, out io.Writer, policyPath string, log hclog.Logger) error {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 100, SessionExpiry: time.Minute})
	if err != nil {
		return err
	}
	defer srv.Close()
	bus := events.NewBus(events.Options{QueueSize: 1024})
	defer bus.Close()
	done := make(chan events.Recovery, 16)
	bus.Subscribe(events.RecoveryCompleted, func(e events.Event) {
		r := e.Data.(events.Recovery)
		ours := strings.Contains(r.Trigger, "plugin resumer") || strings.Contains(r.Trigger, "reconnect-after-dial-errors")
		if r.Completed && r.Success && ours {
			select {
			case done <- r:
			default:
			}
		}
	})

	c, err := conn.New(conn.Config{
		Token: srv.Token(), GatewayURL: srv.GatewayURL(), RESTTransport: srv.Transport(), GatewayDialer: srv.Dialer(),
		Events: bus, Logger: log.Named("conn"), ReconnectDelay: 20 * time.Millisecond,
		IdentifyQueue: conn.NewLocalIdentifyQueue(conn.SessionStartLimit{Total: 1000, Remaining: 1000, ResetAfter: time.Hour, MaxConcurrency: 1},
			conn.IdentifyQueueOptions{Window: srv.IdentifyWindow()}),
	})
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer c.Stop(context.Background())

	pol, err := policy.Load(policyPath, policy.Options{})
	if err != nil {
		return err
	}
	host := pluginhost.New(pluginhost.Options{BaseDir: filepath.Dir(policyPath), Services: connServices{c}, Events: bus, Logger: log})
	defer host.Stop()
	specs := pluginhost.SpecsFromPolicy(pol)
	if err := host.Reconcile(ctx, specs); err != nil {
		return err
	}
	// The plugin's strategies are registered under the names the policy
	// uses ("resumer.resume") before the policy is bound to the engine.
	eng := recovery.New(recovery.Settings{Events: bus, Logger: log})
	for _, s := range specs {
		for _, name := range s.Strategies {
			if err := eng.Register(s.Name+"."+name, host.Strategy(s.Name, name)); err != nil {
				return err
			}
		}
	}
	if err := eng.SetPolicy(pol); err != nil {
		return err
	}
	if err := eng.AddRecoveryStrategy(reconnectAfterDialErrors(c)); err != nil {
		return err
	}

	session := srv.Sessions()[0].ID
	resumes := func() int {
		rec, _ := srv.Ledger().Session(session)
		return len(rec.Resumes)
	}
	incidents := []recovery.Failure{
		{Error: policy.ErrorInfo{Kind: "close", CloseCode: 4000, Message: "gateway closed 4000 (simulated)", Source: "conn"}},
		{Error: policy.ErrorInfo{Kind: "dial", Message: "dial tcp: connection refused (simulated)", Source: "conn"}},
	}
	for _, f := range incidents {
		before := resumes()
		rep, err := eng.Handle(ctx, f)
		if err != nil {
			return fmt.Errorf("handling %s: %w", f, err)
		}
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the connection to recover from %s: %w", f, ctx.Err())
		}
		var skipped []string
		for _, s := range rep.Skipped {
			skipped = append(skipped, s.Strategy)
		}
		fmt.Fprintf(out, "%s\n  plan %v, skipped %v\n  recovered by %s; fake Discord ledger: %d RESUME(s) of session %s (+%d)\n",
			f, rep.Plan, skipped, rep.Strategy, resumes(), session, resumes()-before)
	}
	fmt.Fprintf(out, "IDENTIFYs in the ledger: %d\n", len(srv.Ledger().Identifies()))
	return nil
}
