// Command record-incidents records the flight recordings shipped under
// testdata/incidents/: for each incident, a whole lifeline system
// (core/orchestrator, one tick a second) runs a policy against the fake
// Discord (discordtest, Scale 10, two guilds) while a bot sends a message
// every 250 ms and a script injects the incident's faults at fixed offsets.
// It runs in real time, every incident at once, and takes several minutes.
//
//	go run ./internal/cmd/record-incidents -out testdata/incidents
//	make incidents
//
// Each recording ends when, after the script's last step, the gateway is
// connected and the level has been NONE for -quiet (default 30s), or at
// -max (default 12m). It has a "fault" mark where the first fault was
// injected and a "fault cleared" mark where the script stopped injecting.
// When NAME.test.hcl sits next to a recording, its assertions are checked
// against a replay of the new recording with the same policy, and a failed
// assertion makes the command exit 1: the recording is kept, so it can be
// looked at with `lifeline policy test`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/discordtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// step is one action of an incident's script, at an offset from the start
// of the recording.
type step struct {
	at   time.Duration
	mark string                          // attached to the next line when not empty
	do   func(*discordtest.Server) error // nil: only the mark
}

// incident is a named script.
type incident struct {
	name  string
	steps []step // in time order
}

// incidents are the shipped recordings' scripts; testdata/incidents/README.md
// describes them.
var incidents = []incident{
	{"rolling-outage", []step{
		// Longer than the minute medium.hcl waits before CRITICAL
		// (gateway.down_for > 60s), so the recording reaches it.
		{20 * time.Second, "fault", func(s *discordtest.Server) error {
			if err := s.Outage(discordtest.OutageRefuse, 100*time.Second); err != nil {
				return err
			}
			return s.DropConnections()
		}},
		{120 * time.Second, "fault cleared", nil},
	}},
	{"zombie-storm", []step{
		{20 * time.Second, "fault", func(s *discordtest.Server) error { return s.StallACKs(15 * time.Second) }},
		{45 * time.Second, "", func(s *discordtest.Server) error { return s.StallACKs(15 * time.Second) }},
		{70 * time.Second, "", func(s *discordtest.Server) error { return s.StallACKs(15 * time.Second) }},
		{85 * time.Second, "fault cleared", nil},
	}},
	{"rate-limit-storm", []step{
		{20 * time.Second, "fault", func(s *discordtest.Server) error {
			return s.RESTRateLimitStorm(false, 2*time.Second, 40*time.Second)
		}},
		{60 * time.Second, "fault cleared", nil},
	}},
	{"slow-recovery", []step{
		{20 * time.Second, "fault", func(s *discordtest.Server) error { return s.RESTErrors(0.5, 500, 30*time.Second) }},
		{50 * time.Second, "", func(s *discordtest.Server) error {
			if err := s.RESTErrors(0.1, 503, 60*time.Second); err != nil {
				return err
			}
			return s.RESTLatency(1500*time.Millisecond, 60*time.Second)
		}},
		{110 * time.Second, "fault cleared", nil},
	}},
}

// settings are what one recording needs besides its script.
type settings struct {
	policy *policy.Policy
	path   string        // the recording's file
	scale  float64       // the fake Discord's time scale
	quiet  time.Duration // NONE and connected this long after the last step ends it
	max    time.Duration // the longest recording
	log    io.Writer     // progress lines
	tune   func(*conn.Config)
}

// result sums up one recording.
type result struct {
	Length    time.Duration
	MaxLevel  policy.Level
	LastLevel policy.Level
	Recovered bool // ended by -quiet, not by -max
	Stats     flight.Stats
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("record-incidents", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: record-incidents [flags]\n\nRecords the incidents (%s) in real time, all at once.\n\n", strings.Join(names(), ", "))
		fs.PrintDefaults()
	}
	out := fs.String("out", "testdata/incidents", "`directory` to write NAME.jsonl into (and to read NAME.test.hcl from)")
	policyFile := fs.String("policy", "policies/medium.hcl", "policy `file` lifeline runs")
	only := fs.String("only", "", "comma-separated incident `names` (default: all)")
	quiet := fs.Duration("quiet", 30*time.Second, "after the last step, end once connected at level NONE for this `long`")
	maxLen := fs.Duration("max", 12*time.Minute, "end a recording after this `long` whatever its level")
	scale := fs.Float64("scale", 10, "the fake Discord's time `scale` (heartbeat 41.25s / scale)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "record-incidents: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	chosen, err := choose(*only)
	if err != nil {
		fmt.Fprintf(stderr, "record-incidents: %v\n", err)
		return 2
	}
	if *quiet <= 0 || *maxLen <= 0 || *scale <= 0 {
		fmt.Fprintln(stderr, "record-incidents: -quiet, -max and -scale must be positive")
		return 2
	}
	p, err := policy.Load(*policyFile, policy.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "record-incidents: %v\n", err)
		return 1
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "record-incidents: %v\n", err)
		return 1
	}

	var mu sync.Mutex // serialises the report lines
	logw := &lockedWriter{mu: &mu, w: stderr}
	var wg sync.WaitGroup
	failed := make([]bool, len(chosen))
	for i, inc := range chosen {
		wg.Go(func() {
			s := settings{policy: p, path: filepath.Join(*out, inc.name+".jsonl"), scale: *scale, quiet: *quiet, max: *maxLen, log: logw}
			res, err := record(ctx, inc, s)
			var msgs []string
			if err == nil {
				msgs = checkAssertions(s.path, p)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", inc.name, err)
				failed[i] = true
				return
			}
			how := "back to NONE"
			if !res.Recovered {
				how = fmt.Sprintf("cut at -max, level %v", res.LastLevel)
			}
			fmt.Fprintf(stdout, "%s: %s, %d lines, max level %v, %s\n", s.path, res.Length.Round(time.Second), res.Stats.Lines, res.MaxLevel, how)
			if len(msgs) > 0 {
				for _, m := range msgs {
					fmt.Fprintf(stderr, "%s: %s\n", inc.name, m)
				}
				failed[i] = true
			}
		})
	}
	wg.Wait()
	if slices.Contains(failed, true) || ctx.Err() != nil {
		return 1
	}
	return 0
}

func names() []string {
	out := make([]string, len(incidents))
	for i, inc := range incidents {
		out[i] = inc.name
	}
	return out
}

// choose returns the incidents named in a comma-separated list, or all.
func choose(list string) ([]incident, error) {
	if strings.TrimSpace(list) == "" {
		return incidents, nil
	}
	var out []incident
	for n := range strings.SplitSeq(list, ",") {
		n = strings.TrimSpace(n)
		i := slices.IndexFunc(incidents, func(inc incident) bool { return inc.name == n })
		if i < 0 {
			return nil, fmt.Errorf("unknown incident %q (known: %s)", n, strings.Join(names(), ", "))
		}
		out = append(out, incidents[i])
	}
	return out, nil
}

// checkAssertions replays the recording at path with p and checks the
// assertions of the NAME.test.hcl beside it, if there is one.
func checkAssertions(path string, p *policy.Policy) []string {
	testFile := strings.TrimSuffix(path, ".jsonl") + ".test.hcl"
	src, err := os.ReadFile(testFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return []string{err.Error()}
	}
	as, err := flight.DecodeTests(testFile, src)
	if err != nil {
		return []string{err.Error()}
	}
	rec, err := flight.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	tl, err := flight.Replay(rec, p)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, f := range flight.Check(tl, as) {
		out = append(out, fmt.Sprintf("%s: %s", testFile, f))
	}
	return out
}

// record runs one incident and writes its recording to s.path (an older
// recording there and its rotated files are removed first).
func record(ctx context.Context, inc incident, s settings) (res result, err error) {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: s.scale, Guilds: 2})
	if err != nil {
		return res, err
	}
	defer srv.Close()
	old, _ := filepath.Glob(s.path + "*") // Open would rotate an old recording
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return res, err
		}
	}
	rec, err := flight.Open(flight.Settings{Path: s.path})
	if err != nil {
		return res, err
	}

	// The live level and gateway state as the last tick saw them, the
	// highest level, and the first recording error.
	var mu sync.Mutex
	var level, maxLevel policy.Level
	var connected bool
	var tickErr error
	o, err := orchestrator.New(orchestrator.Config{
		Token:          srv.Token(),
		Policy:         s.policy,
		RESTTransport:  srv.Transport(),
		GatewayDialer:  srv.Dialer(),
		IdentifyWindow: srv.IdentifyWindow(),
		Tune:           s.tune,
		OnTick: func(snap metrics.Snapshot, d policy.Decision, l policy.Level) {
			err := rec.Tick(snap, d, l)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && tickErr == nil {
				tickErr = err
			}
			level, connected, maxLevel = l, snap.Gateway.Connected, max(maxLevel, l)
		},
	})
	if err != nil {
		rec.Close()
		return res, err
	}
	o.AddEventListener(events.All, rec.Event)
	ctx, cancel := context.WithTimeout(ctx, s.max+time.Minute)
	defer cancel()
	if err := o.Start(ctx); err != nil {
		rec.Close()
		return res, fmt.Errorf("start: %w", err)
	}
	start := time.Now()

	// The bot's traffic: a message every 250ms.
	load, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		ch := srv.Guilds()[0].ChannelID
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			o.Session().ChannelMessageSend(ch, "ping") //nolint:errcheck // failures are what is recorded
			select {
			case <-load.Done():
				return
			case <-tk.C:
			}
		}
	}()
	// However the recording ends: stop the traffic, then lifeline, then
	// close the file, keeping the first error.
	defer func() {
		stopLoad()
		<-loadDone
		if e := o.Stop(context.WithoutCancel(ctx)); e != nil && err == nil {
			err = fmt.Errorf("stop: %w", e)
		}
		if e := rec.Close(); e != nil && err == nil {
			err = e
		}
		mu.Lock()
		defer mu.Unlock()
		if tickErr != nil && err == nil {
			err = tickErr
		}
		res.Length, res.MaxLevel, res.LastLevel, res.Stats = time.Since(start), maxLevel, level, rec.Stats()
	}()

	sleepUntil := func(at time.Duration) error {
		t := time.NewTimer(time.Until(start.Add(at)))
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, st := range inc.steps {
		if err := sleepUntil(st.at); err != nil {
			return res, err
		}
		if st.mark != "" {
			rec.Mark(st.mark)
		}
		if st.do != nil {
			if err := st.do(srv); err != nil {
				return res, fmt.Errorf("step at %s: %w", st.at, err)
			}
		}
		fmt.Fprintf(s.log, "%s: step at %s done\n", inc.name, st.at)
	}

	// Wait for a quiet NONE, looking once a second, for at most s.max.
	var calmSince time.Time
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for !res.Recovered && time.Since(start) < s.max {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case now := <-tk.C:
			mu.Lock()
			calm := level == policy.None && connected
			mu.Unlock()
			switch {
			case !calm:
				calmSince = time.Time{}
			case calmSince.IsZero():
				calmSince = now
			case now.Sub(calmSince) >= s.quiet:
				res.Recovered = true
			}
		}
	}
	return res, nil
}

// lockedWriter serialises writes from the recordings' goroutines.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
