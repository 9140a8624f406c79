// Package demo plays lifeline's scripted story against the embedded fake
// Discord: connect, a zombie connection, an outage, a rate-limit storm,
// and recovery, then a health-check plugin whose process crashes mid-call
// and is restarted while the bot stays connected, printing every state
// change, health change, breaker transition, plugin start and exit and
// recovery as it happens. `lifeline demo` (and `make demo`)
// run it; its own test runs a shortened story and checks every incident
// ended recovered with nothing lost.
package demo

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/telemetry"
	"github.com/lifeline-bot/lifeline/discordtest"
)

//go:embed policy.hcl.tmpl
var policyTemplate string

// policyValues are the demo policy's timings for a story of length d.
type policyValues struct {
	ReconnectDelay, MaxReconnectDelay, OpenTimeout, MaxOpenTimeout, RecoveryDelay string
	LatencyMs, LatencyHalfMs                                                      int64
	// The demo plugin's binary, arguments, checksum and crash file, as
	// quoted HCL strings.
	PluginPath, PluginArg, PluginSHA256, CrashFile string
}

// demoPlugin is the plugin the story runs: its binary (with PluginArg) and
// the file whose appearance makes it crash.
type demoPlugin struct {
	path, sha256, crashFile string
}

func demoPolicy(d, heartbeat time.Duration, plug demoPlugin) ([]byte, error) {
	dur := func(x time.Duration) string { return x.Round(time.Millisecond).String() }
	lat := (heartbeat / 8).Milliseconds()
	v := policyValues{
		ReconnectDelay: dur(d / 240), MaxReconnectDelay: dur(d / 30),
		OpenTimeout: dur(d / 60), MaxOpenTimeout: dur(d / 15),
		RecoveryDelay: dur(d / 60),
		LatencyMs:     lat, LatencyHalfMs: lat / 2,
		PluginPath: hclString(plug.path), PluginArg: hclString(PluginArg),
		PluginSHA256: hclString(plug.sha256), CrashFile: hclString(plug.crashFile),
	}
	var b strings.Builder
	if err := template.Must(template.New("policy").Parse(policyTemplate)).Execute(&b, v); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// DefaultDuration is the story's length when Options.Duration is zero.
const DefaultDuration = time.Minute

// MinDuration is the shortest story that still shows every incident.
const MinDuration = 15 * time.Second

// Options configures a run. The zero value is valid.
type Options struct {
	// Out receives the story. Default: io.Discard.
	Out io.Writer
	// JSON prints one JSON object per line instead of text.
	// Default: false.
	JSON bool
	// Duration is the story's length; the fake Discord's clock is sped up
	// so each incident fits (a 60s story runs Discord 20 times faster).
	// Default: DefaultDuration; at least MinDuration.
	Duration time.Duration
	// Logger receives lifeline's own logs. Default: none.
	Logger hclog.Logger
	// Record, when set, is the flight recorder's file: one JSON line per
	// tick, replayable with `lifeline policy test`. Default: none.
	Record string
	// HTTP, when set, serves the operator's surface (dashboard, /metrics,
	// /health) on it during the story. Default: none.
	HTTP net.Listener
	// Shards runs the story with this many shards in one process: the
	// fake Discord recommends that count, lifeline starts them in
	// identify order (the story says "2 of 4 shards READY" as they come
	// up), the zombie is shard 0's alone and every other incident hits
	// them all. Default: 0, one shard.
	Shards int
}

// Incident is one fault of the story and how lifeline came through it.
type Incident struct {
	Name      string        `json:"name"`
	Recovered bool          `json:"recovered"`
	Took      time.Duration `json:"took"`
	Detail    string        `json:"detail,omitempty"`
}

// Result sums the story up.
type Result struct {
	Incidents        []Incident `json:"incidents"`
	MessagesEmitted  int        `json:"messages_emitted"`
	MessagesReceived int        `json:"messages_received"`
	MessagesSent     int        `json:"messages_sent"`
	DispatchesLost   int        `json:"dispatches_lost"`
	Violations       []string   `json:"violations,omitempty"`
	Identifies       int        `json:"identifies"`
	Resumes          uint64     `json:"resumes"`
	REST429s         int        `json:"rest_429s"`
	// Levels is every degradation level the bot went through, in order.
	Levels []string `json:"levels"`
	// Steps are the degradation events as "FROM->TO [actions]", in order.
	Steps []string `json:"steps"`
	// ReadOnlyRefusals counts bot writes refused by read-only mode.
	ReadOnlyRefusals int    `json:"read_only_refusals"`
	FinalLevel       string `json:"final_level"`
	FinalState       string `json:"final_state"`
	FinalHealth      string `json:"final_health"`
	// Shards is how many shards ran and ShardsReady how many were READY
	// at the end.
	Shards      int `json:"shards"`
	ShardsReady int `json:"shards_ready"`

	// PluginCrash is the plugin chapter: a plugin health check's process
	// crashed mid-call and was restarted while the bot stayed connected.
	PluginCrash PluginCrash `json:"plugin_crash"`
}

// OK reports whether every incident ended recovered, the bot is READY,
// nothing was lost and no Discord limit was broken.
func (r Result) OK() bool {
	for _, in := range r.Incidents {
		if !in.Recovered {
			return false
		}
	}
	return r.FinalState == conn.Ready.String() && r.FinalLevel == "NONE" && r.DispatchesLost == 0 &&
		len(r.Violations) == 0 && r.MessagesReceived == r.MessagesEmitted+r.MessagesSent
}

// story is one run in progress.
type story struct {
	opts   Options
	start  time.Time
	srv    *discordtest.Server
	bot    *lifeline.Lifeline
	outMu  sync.Mutex
	states chan string
	levels chan string
	rec    *flight.Recorder
	logger hclog.Logger
	// pluginEvents carries PLUGIN_STARTED and PLUGIN_EXITED to the plugin
	// chapter; crashFile is the demo plugin's cue to crash.
	pluginEvents chan pluginEvent
	crashFile    string

	mu       sync.Mutex
	levelLog []string
	steps    []string
	sent     int
	refused  int
	received map[string]bool
}

// Run plays the story and returns its Result; the error is for a story
// that could not be played at all (the fake or lifeline did not start).
func Run(ctx context.Context, opts Options) (Result, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Duration == 0 {
		opts.Duration = DefaultDuration
	}
	if opts.Duration < MinDuration {
		return Result{}, fmt.Errorf("demo: duration %s is shorter than %s", opts.Duration, MinDuration)
	}
	if opts.Shards < 0 {
		return Result{}, fmt.Errorf("demo: %d shards", opts.Shards)
	}
	shards := max(opts.Shards, 1)
	// 20x Discord's speed for a one-minute story, faster for shorter ones.
	scale := 20 * float64(DefaultDuration) / float64(opts.Duration)
	srv, err := discordtest.NewServer(discordtest.Options{
		Scale:             scale,
		Guilds:            2 * shards,
		RecommendedShards: shards,
		SessionExpiry:     opts.Duration / 2, // the whole outage stays resumable
	})
	if err != nil {
		return Result{}, fmt.Errorf("demo: fake Discord: %w", err)
	}
	defer srv.Close()

	// The demo plugin is this very executable, started with PluginArg;
	// its checksum is pinned, and its crash cue lives in a fresh directory.
	exe, err := os.Executable()
	if err != nil {
		return Result{}, fmt.Errorf("demo: the plugin binary: %w", err)
	}
	sum, err := pluginhost.FileSHA256(exe)
	if err != nil {
		return Result{}, fmt.Errorf("demo: the plugin binary: %w", err)
	}
	cueDir, err := os.MkdirTemp("", "lifeline-demo-")
	if err != nil {
		return Result{}, fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(cueDir)
	plug := demoPlugin{path: exe, sha256: sum, crashFile: filepath.Join(cueDir, "crash")}
	src, err := demoPolicy(opts.Duration, srv.HeartbeatInterval(), plug)
	if err != nil {
		return Result{}, fmt.Errorf("demo: policy: %w", err)
	}
	p, err := policy.LoadSource("demo-policy.hcl", src, policy.Options{})
	if err != nil {
		return Result{}, fmt.Errorf("demo: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		// reduce_logging_level needs a logger whose level it can raise.
		logger = hclog.New(&hclog.LoggerOptions{Name: "lifeline", Output: io.Discard, Level: hclog.Info})
	}
	var rec *flight.Recorder
	var onTick func(metrics.Snapshot, policy.Decision, policy.Level)
	if opts.Record != "" {
		if rec, err = flight.Open(flight.Settings{Path: opts.Record}); err != nil {
			return Result{}, fmt.Errorf("demo: record: %w", err)
		}
		defer rec.Close()
		onTick = func(s metrics.Snapshot, d policy.Decision, l policy.Level) { _ = rec.Tick(s, d, l) }
	}
	var s *story
	bot, err := lifeline.New(lifeline.Config{
		OnTick:         onTick,
		Token:          srv.Token(),
		IdentifyWindow: srv.IdentifyWindow(),
		TickInterval:   100 * time.Millisecond,
		MetricsWindow:  opts.Duration / 15,
		EventQueueSize: 4096,
		Logger:         logger,
	}, lifeline.WithPolicy(p), lifeline.WithNetwork(srv.Transport(), srv.Dialer()),
		// As many shards as the fake recommends (/gateway/bot), each
		// reported as it comes up.
		lifeline.WithShards(0), lifeline.WithShardProgress(func(pr lifeline.ShardProgress) {
			if pr.Total > 1 {
				s.say("connect", "%s (shard %d after %s)", pr, pr.Shard, pr.Elapsed.Round(time.Millisecond))
			}
		}))
	if err != nil {
		return Result{}, fmt.Errorf("demo: %w", err)
	}
	s = &story{opts: opts, start: time.Now(), srv: srv, bot: bot, logger: logger, rec: rec,
		states: make(chan string, 1024), levels: make(chan string, 1024), received: map[string]bool{},
		pluginEvents: make(chan pluginEvent, 64), crashFile: plug.crashFile}
	// What the bot registers so degradation has something to switch off.
	bot.Features().Register("music", lifeline.Optional)
	bot.Features().Register("usage-stats", lifeline.Analytics)
	// Critical: no built-in action switches it off; the demo plugin's
	// action does, by name, through the host API.
	bot.Features().Register(welcomeFeature, lifeline.Critical)
	_ = bot.Services().Register(ctx, "leaderboard", lifeline.Background(func(ctx context.Context) { <-ctx.Done() }), false)
	bot.AddEventListener(lifeline.All, s.onEvent)
	if rec != nil {
		bot.AddEventListener(lifeline.All, rec.Event)
	}
	// On every shard's Session: a guild's messages come on its shard.
	bot.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		s.mu.Lock()
		s.received[m.Content] = true
		s.mu.Unlock()
	})

	s.say("connect", "lifeline connects to the fake Discord at %s (heartbeat every %s)",
		srv.URL(), srv.HeartbeatInterval().Round(time.Millisecond))
	if shards > 1 {
		s.say("connect", "%d shards in this process, in identify order (one IDENTIFY per %s); every incident hits them all",
			shards, srv.IdentifyWindow().Round(time.Millisecond))
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = bot.Start(startCtx)
	cancel()
	if err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = bot.Stop(stopCtx)
		return Result{}, fmt.Errorf("demo: %w", err)
	}
	if opts.HTTP != nil {
		web := telemetry.Serve(opts.HTTP, bot.Handler(telemetry.HandlerOptions{}))
		defer func() {
			shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = web.Shutdown(shutCtx)
		}()
		s.say("http", "live dashboard at %s/ (metrics at %s/metrics, health at %s/health)", web.URL(), web.URL(), web.URL())
	}
	res := s.play(ctx)

	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bot.Stop(stopCtx); err != nil {
		s.say("stop", "lifeline did not stop cleanly: %v", err)
	}
	s.summary(res)
	return res, nil
}

// play runs the incidents at their share of the duration, then waits out
// the rest of it and takes the tally.
func (s *story) play(ctx context.Context) Result {
	d := s.opts.Duration
	hb := s.srv.HeartbeatInterval()
	var res Result
	channel := s.srv.Guilds()[0].ChannelID

	// Background traffic: the fake emits a message now and then; each must
	// reach the bot's handler, through every incident.
	emitCtx, stopEmit := context.WithCancel(ctx)
	var emitted int
	var emitWG sync.WaitGroup
	emitWG.Add(1)
	go func() {
		defer emitWG.Done()
		t := time.NewTicker(d / 40)
		defer t.Stop()
		for {
			select {
			case <-emitCtx.Done():
				return
			case <-t.C:
				ch := channel
				if gs := s.srv.Guilds(); s.opts.Shards > 1 {
					ch = gs[emitted%len(gs)].ChannelID // every guild, so every shard, delivers
				}
				if _, err := s.srv.EmitMessage(ch, fmt.Sprintf("emitted-%d", emitted)); err == nil {
					emitted++
				}
			}
		}
	}()

	s.waitUntil(ctx, d*4/100)
	// With several shards the zombie is one shard's: a blip the others
	// never notice (every later incident hits them all).
	zombieOf, stalled := "", []int(nil)
	if s.opts.Shards > 1 {
		zombieOf, stalled = fmt.Sprintf(" on shard 0 of %d (the others stay READY)", s.opts.Shards), []int{0}
	}
	res.Incidents = append(res.Incidents, s.incident(ctx, "zombie",
		fmt.Sprintf("Discord stops answering heartbeats%s (ACKs stall for %s); discordgo alone would wait 5 intervals (%s)",
			zombieOf, (2*hb).Round(time.Millisecond), (5*hb).Round(time.Millisecond)),
		d*6/100, untilReady, func() error { return s.srv.StallACKs(2*hb, stalled...) }))

	s.waitUntil(ctx, d*10/100)
	res.Incidents = append(res.Incidents, s.incident(ctx, "latency-spike",
		fmt.Sprintf("heartbeat ACKs come back %s late for %s", (hb/4).Round(time.Millisecond), (2*hb).Round(time.Millisecond)),
		// Two slow heartbeats, two more to see them fast again, and the
		// recovery delay with a margin.
		4*hb+d/15, untilLevelNone, func() error { return s.srv.DelayACKs(hb/4, 2*hb) }))

	s.waitUntil(ctx, d*26/100)
	res.Incidents = append(res.Incidents, s.rateLimitStorm(ctx, channel, d/12))

	s.waitUntil(ctx, d*34/100)
	burst := d * 7 / 100
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	var trafficWG sync.WaitGroup
	trafficWG.Add(1)
	go func() { defer trafficWG.Done(); s.restTraffic(trafficCtx, channel) }()
	res.Incidents = append(res.Incidents, s.incident(ctx, "error-burst",
		fmt.Sprintf("6 in 10 REST calls fail with 500 for %s while the bot reads messages", burst.Round(time.Millisecond)),
		d*30/100, untilLevelNone, func() error { return s.srv.RESTErrors(0.6, 500, burst) }))
	stopTraffic()
	trafficWG.Wait()

	s.waitUntil(ctx, d*58/100)
	outage := d / 10
	inc := s.incident(ctx, "outage",
		fmt.Sprintf("Discord drops every connection and refuses new ones for %s", outage.Round(time.Millisecond)),
		d*40/100, untilReadyAndLevelNone, func() error {
			if err := s.srv.Outage(discordtest.OutageRefuse, outage); err != nil {
				return err
			}
			if err := s.srv.DropConnections(); err != nil {
				return err
			}
			// While the breaker is open the policy goes CRITICAL: the bot's
			// writes are refused instead of piling up.
			go s.tryWritesWhileCritical(ctx, channel, outage)
			return nil
		})
	res.Incidents = append(res.Incidents, inc)

	// Calm again: a plugin's process dies under lifeline, which must not
	// care. Its timings are the plugin host's (real seconds, not scaled).
	inc, res.PluginCrash = s.pluginCrash(ctx, 20*time.Second)
	res.Incidents = append(res.Incidents, inc)

	s.waitUntil(ctx, d*98/100)
	stopEmit()
	emitWG.Wait()
	res.MessagesEmitted = emitted
	res.MessagesSent = s.sentCount()
	s.say("end", "faults over: waiting for every message to reach the bot")
	s.waitFor(ctx, max(d+d/10, time.Since(s.start)+d/10), func() bool { return s.count() >= res.MessagesEmitted+res.MessagesSent })

	res.MessagesReceived = s.count()
	diag := s.bot.Diagnostics()
	res.FinalState = diag.State
	res.FinalHealth = diag.Health.Status.String()
	res.FinalLevel = s.bot.Degradation().Level().String()
	res.Resumes = diag.Snapshot.Gateway.Resumes
	res.Shards, res.ShardsReady = diag.Snapshot.Shards.Total, diag.Snapshot.Shards.Ready
	s.mu.Lock()
	res.Levels = append([]string(nil), s.levelLog...)
	res.Steps = append([]string(nil), s.steps...)
	res.ReadOnlyRefusals = s.refused
	s.mu.Unlock()
	led := s.srv.Ledger()
	for _, r := range led.REST() {
		if r.Status == 429 {
			res.REST429s++
		}
	}
	res.Identifies = len(led.Identifies())
	for _, v := range led.Violations() {
		res.Violations = append(res.Violations, fmt.Sprint(v))
	}
	for _, sess := range led.Sessions() {
		res.DispatchesLost += len(led.Lost(sess.ID))
	}
	return res
}

// rateLimitStorm has the bot send five messages while every REST call gets
// 429: discordgo waits each retry_after out, and every message goes through.
func (s *story) rateLimitStorm(ctx context.Context, channel string, storm time.Duration) Incident {
	s.say("ratelimit-storm", "every REST call gets 429 for %s while the bot sends 5 messages", storm.Round(time.Millisecond))
	began := time.Now()
	if err := s.srv.RESTRateLimitStorm(false, storm/4, storm); err != nil {
		return Incident{Name: "ratelimit-storm", Detail: "could not start the storm: " + err.Error()}
	}
	sent := 0
	var sendErr error
	for i := 0; i < 5 && ctx.Err() == nil; i++ {
		if _, err := s.bot.Session().ChannelMessageSend(channel, fmt.Sprintf("sent-%d", i)); err != nil {
			sendErr = err
			continue
		}
		sent++
	}
	s.mu.Lock()
	s.sent += sent
	s.mu.Unlock()
	inc := Incident{Name: "ratelimit-storm", Recovered: sent == 5, Took: time.Since(began).Round(time.Millisecond)}
	if sendErr != nil {
		inc.Detail = sendErr.Error()
	}
	s.say("ratelimit-storm", "%d of 5 messages sent through the storm in %s", sent, inc.Took)
	return inc
}

// restTraffic is the bot reading a message over and over (bounded by ctx).
func (s *story) restTraffic(ctx context.Context, channel string) {
	// The message to read is sent as the burst begins: a 500 is likely,
	// so try again (a bounded number of times).
	var m *discordgo.Message
	var err error
	for i := 0; i < 20 && ctx.Err() == nil; i++ {
		if m, err = s.bot.Session().ChannelMessageSend(channel, "pinned", discordgo.WithContext(ctx)); err == nil {
			break
		}
	}
	if err != nil || m == nil {
		return
	}
	s.mu.Lock()
	s.sent++
	s.mu.Unlock()
	t := time.NewTicker(s.opts.Duration / 600)
	defer t.Stop()
	for i := 0; i < 10000; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = s.bot.Session().ChannelMessage(channel, m.ID, discordgo.WithContext(ctx))
		}
	}
}

// tryWritesWhileCritical tries a write now and then during the outage and
// reports what read-only mode does to it.
func (s *story) tryWritesWhileCritical(ctx context.Context, channel string, outage time.Duration) {
	deadline := time.Now().Add(outage)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if s.bot.Degradation().Level() == lifeline.LevelCritical {
			s.mu.Lock()
			n := s.sent + s.refused
			s.mu.Unlock()
			_, err := s.bot.Session().ChannelMessageSend(channel, fmt.Sprintf("status-%d", n), discordgo.WithContext(ctx))
			if errors.Is(err, lifeline.ErrReadOnly) {
				s.mu.Lock()
				s.refused++
				s.mu.Unlock()
				s.say("outage", "effect: the bot's message was refused (%v), not queued against a dead Discord", lifeline.ErrReadOnly)
				return
			}
			if err == nil {
				s.mu.Lock()
				s.sent++
				s.mu.Unlock()
			}
		}
		time.Sleep(outage / 20)
	}
}

func (s *story) sentCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// until says when an incident is over.
type until int

const (
	untilReady             until = iota // the connection left READY and is back
	untilLevelNone                      // degradation rose and is back to NONE
	untilReadyAndLevelNone              // both
)

// incident injects a fault and waits, within budget, for the system to
// come through it as until says.
func (s *story) incident(ctx context.Context, name, what string, budget time.Duration, u until, inject func() error) Incident {
	s.say(name, "%s", what)
	if s.rec != nil {
		s.rec.Mark(name)
	}
	s.drainStates()
	began := time.Now()
	if err := inject(); err != nil {
		return Incident{Name: name, Detail: "could not inject: " + err.Error()}
	}
	deadline := time.NewTimer(budget)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	leftReady, degraded := false, false
	for {
		select {
		case st := <-s.states:
			if st != conn.Ready.String() {
				leftReady = true
			}
		case lv := <-s.levels:
			if lv != "NONE" {
				degraded = true
			}
		case <-tick.C:
			ready := s.bot.Diagnostics().State == conn.Ready.String()
			none := s.bot.Degradation().Level() == lifeline.LevelNone
			done := false
			switch u {
			case untilReady:
				done = leftReady && ready
			case untilLevelNone:
				done = degraded && none
			case untilReadyAndLevelNone:
				done = leftReady && ready && degraded && none
			}
			if done {
				took := time.Since(began).Round(time.Millisecond)
				s.say(name, "recovered after %s", took)
				return Incident{Name: name, Recovered: true, Took: took}
			}
		case <-deadline.C:
			return Incident{Name: name, Detail: fmt.Sprintf("not recovered within %s (left READY %v, degraded %v)", budget, leftReady, degraded)}
		case <-ctx.Done():
			return Incident{Name: name, Detail: ctx.Err().Error()}
		}
	}
}

func (s *story) drainStates() {
	for {
		select {
		case <-s.states:
		case <-s.levels:
		default:
			return
		}
	}
}

// waitUntil sleeps until offset into the story (or ctx ends).
func (s *story) waitUntil(ctx context.Context, offset time.Duration) {
	wait := time.Until(s.start.Add(offset))
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// waitFor polls cond until it holds, the story's end, or ctx.
func (s *story) waitFor(ctx context.Context, end time.Duration, cond func() bool) {
	for !cond() && time.Since(s.start) < end && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *story) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.received)
}

// onEvent prints an event and tracks the connection state.
func (s *story) onEvent(e events.Event) {
	if d, ok := e.Data.(events.StateChange); ok {
		select {
		case s.states <- d.To:
		default:
		}
	}
	if d, ok := e.Data.(events.Plugin); ok {
		select {
		case s.pluginEvents <- pluginEvent{at: e.Time, d: d}:
		default:
		}
	}
	if d, ok := e.Data.(events.Degradation); ok && d.From != d.To {
		s.mu.Lock()
		s.levelLog = append(s.levelLog, d.To)
		s.steps = append(s.steps, fmt.Sprintf("%s->%s %v", d.From, d.To, d.Actions))
		s.mu.Unlock()
		select {
		case s.levels <- d.To:
		default:
		}
		defer s.say("effect", "%s", s.effects())
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.opts.JSON {
		_ = json.NewEncoder(s.opts.Out).Encode(e)
		return
	}
	fmt.Fprintf(s.opts.Out, "%7.2fs  %-26s %s\n", e.Time.Sub(s.start).Seconds(), e.Type, summary(e))
}

func summary(e events.Event) string {
	if e.Data == nil {
		return ""
	}
	return e.Data.Summary()
}

// effects describes what the degradation actions changed, read from the
// components themselves.
func (s *story) effects() string {
	k := s.bot.DegradationKit()
	st := k.Transport.Stats()
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	limit := "none"
	if st.ConcurrencyLimit > 0 {
		limit = fmt.Sprint(st.ConcurrencyLimit)
	}
	return fmt.Sprintf("log level %s, usage-stats %s, music %s, leaderboard %s, REST cache %s, REST limit %s, timeouts x%g, read-only %s, %s %s",
		s.logger.GetLevel(), onOff(k.Features.Enabled("usage-stats")), onOff(k.Features.Enabled("music")),
		map[bool]string{true: "running", false: "stopped"}[k.Services.Running("leaderboard")],
		onOff(st.Caching), limit, k.Timeouts.Multiplier(), onOff(st.ReadOnly),
		welcomeFeature, onOff(k.Features.Enabled(welcomeFeature)))
}

// say prints a line of the story's narration.
func (s *story) say(step, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.opts.JSON {
		_ = json.NewEncoder(s.opts.Out).Encode(struct {
			Type string    `json:"type"`
			Time time.Time `json:"time"`
			Step string    `json:"step"`
			Msg  string    `json:"message"`
		}{"DEMO_STEP", time.Now(), step, msg})
		return
	}
	fmt.Fprintf(s.opts.Out, "%7.2fs  ── %s: %s\n", time.Since(s.start).Seconds(), step, msg)
}

func (s *story) summary(r Result) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.opts.JSON {
		_ = json.NewEncoder(s.opts.Out).Encode(struct {
			Type string `json:"type"`
			OK   bool   `json:"ok"`
			Result
		}{"DEMO_SUMMARY", r.OK(), r})
		return
	}
	w := s.opts.Out
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Summary")
	for _, in := range r.Incidents {
		verdict := "recovered in " + in.Took.String()
		if !in.Recovered {
			verdict = "NOT recovered: " + in.Detail
		}
		fmt.Fprintf(w, "  %-16s %s\n", in.Name, verdict)
	}
	fmt.Fprintf(w, "  messages         %d emitted by Discord + %d sent by the bot, %d received by its handler\n",
		r.MessagesEmitted, r.MessagesSent, r.MessagesReceived)
	fmt.Fprintf(w, "  gateway          %d IDENTIFY, %d RESUME, %d dispatches lost, %d REST 429s absorbed\n",
		r.Identifies, r.Resumes, r.DispatchesLost, r.REST429s)
	fmt.Fprintf(w, "  degradation      %s (%d bot writes refused in read-only mode)\n",
		strings.Join(append([]string{"NONE"}, r.Levels...), " -> "), r.ReadOnlyRefusals)
	if pc := r.PluginCrash; pc.PIDAfter != 0 {
		fmt.Fprintf(w, "  plugin           %s/%s: pid %d died (%s), restarted after %s as pid %d; connection stayed READY: %v\n",
			pc.Plugin, pc.Check, pc.PIDBefore, pc.Exit, pc.RestartedAfter, pc.PIDAfter, pc.StayedReady)
	}
	if len(r.Violations) > 0 {
		fmt.Fprintf(w, "  limit violations %v\n", r.Violations)
	}
	if r.Shards > 1 {
		fmt.Fprintf(w, "  shards           %d in one process, %d READY at the end\n", r.Shards, r.ShardsReady)
	}
	fmt.Fprintf(w, "  final            %s, health %s, degradation %s\n", r.FinalState, r.FinalHealth, r.FinalLevel)
	if r.OK() {
		fmt.Fprintln(w, "OK: every incident recovered, nothing lost.")
	} else {
		fmt.Fprintln(w, "FAILED: see above.")
	}
}

// ErrFailed is returned by the command when the story ran but did not end
// well (an incident not recovered, a message lost).
var ErrFailed = errors.New("demo: not every incident recovered")
