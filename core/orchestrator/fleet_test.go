package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/lifeline-bot/lifeline/core/conn"
	_ "github.com/lifeline-bot/lifeline/core/coord/natscoord" // the "nats" coordination backend
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/telemetry"
	"github.com/lifeline-bot/lifeline/discordtest"
	"github.com/lifeline-bot/lifeline/internal/testutil"
)

// runNATS starts an embedded NATS server with JetStream on 127.0.0.1.
func runNATS(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// fleetPolicy is a policy whose coordination block joins the fleet on
// natsURL with short, test-sized timings.
func fleetPolicy(t *testing.T, natsURL, process string, shards int) *policy.Policy {
	t.Helper()
	src := fmt.Sprintf(`connection {
  shards = %d
}
coordination "nats" {
  url           = %q
  bucket_prefix = "orchestrator-test"
  process_id    = %q
  lease_ttl     = "1s"
  interval      = "100ms"
  save_interval = "100ms"
  memory        = true
}
`, shards, natsURL, process)
	p, diags := policy.Decode("fleet.hcl", []byte(src), policy.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return p
}

// fleetMember is one orchestrator of the fleet, in this test process.
type fleetMember struct {
	o    *orchestrator.Orchestrator
	name string
}

func newFleetMember(t *testing.T, srv *discordtest.Server, natsURL, name string, shards int, got *messageCounter) *fleetMember {
	t.Helper()
	cfg := fakeConfig(srv)
	cfg.Policy = fleetPolicy(t, natsURL, name, shards)
	o, err := orchestrator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o.AddHandler(got.handler)
	return &fleetMember{o: o, name: name}
}

func (m *fleetMember) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.o.Start(ctx); err != nil {
		t.Fatalf("%s: Start: %v", m.name, err)
	}
}

func (m *fleetMember) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.o.Stop(ctx); err != nil {
		t.Errorf("%s: Stop: %v", m.name, err)
	}
}

func (m *fleetMember) owned() []int {
	var ids []int
	for _, s := range m.o.Shards() {
		if s.State() == conn.Ready {
			ids = append(ids, s.ID())
		}
	}
	return ids
}

// messageCounter counts every message the fleet's handlers get.
type messageCounter struct {
	mu  sync.Mutex
	got map[string]int
}

func (c *messageCounter) handler(_ *discordgo.Session, m *discordgo.MessageCreate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got[m.Content]++
}

func (c *messageCounter) wait(t *testing.T, want []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.mu.Lock()
		missing := 0
		for _, w := range want {
			if c.got[w] == 0 {
				missing++
			}
		}
		c.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages never arrived", missing, len(want))
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range want {
		if c.got[w] != 1 {
			t.Fatalf("message %q delivered %d times", w, c.got[w])
		}
	}
}

func emitEveryGuild(t *testing.T, srv *discordtest.Server, prefix string) []string {
	t.Helper()
	var out []string
	for i, g := range srv.Guilds() {
		c := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := srv.EmitMessage(g.ChannelID, c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func eventuallyT(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noTwoLiveConnections checks in the ledger that no shard ever had two
// gateway connections open at once.
func noTwoLiveConnections(t *testing.T, srv *discordtest.Server) {
	t.Helper()
	byShard := map[int][]discordtest.ConnRecord{}
	for _, c := range srv.Ledger().Connections() {
		if c.Shard[1] != 0 {
			byShard[c.Shard[0]] = append(byShard[c.Shard[0]], c)
		}
	}
	for id, cs := range byShard {
		sort.Slice(cs, func(i, j int) bool { return cs[i].OpenedAt.Before(cs[j].OpenedAt) })
		for i := 1; i < len(cs); i++ {
			if !cs[i-1].Closed || cs[i-1].ClosedAt.After(cs[i].OpenedAt) {
				t.Fatalf("shard %d had two live connections (%d and %d)", id, cs[i-1].ID, cs[i].ID)
			}
		}
	}
}

// Two orchestrators with the same coordination block form a fleet: the
// first runs every shard, the second joins and takes half by handover,
// the first stops and hands the rest over. Every move is a RESUME (one
// IDENTIFY per shard in all), no message is lost or doubled, the fleet.*
// view and the diagnostics show who owns which shard, and /metrics has the
// fleet's series.
func TestFleetOfOrchestratorsHandsShardsOverByResume(t *testing.T) {
	const shards = 4
	ns := runNATS(t)
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 50, Guilds: 4 * shards, RecommendedShards: shards,
		SessionExpiry: 30 * time.Second, HeartbeatTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	got := &messageCounter{got: map[string]int{}}

	a := newFleetMember(t, srv, ns.ClientURL(), "proc-a", shards, got)
	a.start(t)
	if ids := a.owned(); !slices.Equal(ids, []int{0, 1, 2, 3}) {
		t.Fatalf("a alone runs %v, want every shard", ids)
	}
	first := emitEveryGuild(t, srv, "first")
	got.wait(t, first)
	if f := a.o.Snapshot().Fleet; !f.Coordinated || f.Shards != shards {
		t.Fatalf("Snapshot.Fleet = %+v", f)
	}

	b := newFleetMember(t, srv, ns.ClientURL(), "proc-b", shards, got)
	b.start(t) // returns once b's share is READY
	eventuallyT(t, "a hands half over", func() bool { return len(a.owned()) == 2 && len(b.owned()) == 2 })
	eventuallyT(t, "the fleet view shows two processes, every shard READY", func() bool {
		f := a.o.Snapshot().Fleet
		return f.Processes == 2 && f.Owned == shards && f.Ready == shards && f.UnhealthyRatio == 0 && f.Available
	})
	second := emitEveryGuild(t, srv, "second")
	got.wait(t, append(first, second...))

	eventuallyT(t, "b's view shows both processes", func() bool {
		d := b.o.Diagnostics().Fleet
		return d != nil && len(d.View.List) == 2 && d.View.Owned == shards
	})
	d := b.o.Diagnostics().Fleet
	if d == nil || d.Process != "proc-b" || !slices.Equal(d.Owned, b.owned()) || len(d.View.List) != 2 {
		t.Fatalf("b's fleet diagnostics = %+v", d)
	}
	owners := map[int]string{}
	for _, p := range d.View.List {
		for _, id := range p.Owned {
			if prev, dup := owners[id]; dup {
				t.Fatalf("shard %d listed under %s and %s", id, prev, p.ID)
			}
			owners[id] = p.ID
		}
	}
	if len(owners) != shards {
		t.Fatalf("the diagnostics list owners for %d shards, want %d: %v", len(owners), shards, owners)
	}
	// The fleet view behind /metrics is refreshed each tick from what the
	// processes published: wait (bounded) for the tick that sees both.
	var body string
	want := []string{"lifeline_fleet_processes 2", "lifeline_fleet_lease_valid 1", `lifeline_fleet_shards{status="ready"} 4`}
	scrape := func() bool {
		rec := httptest.NewRecorder()
		b.o.Handler(telemetry.HandlerOptions{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body = rec.Body.String()
		for _, m := range want {
			if !strings.Contains(body, m) {
				return false
			}
		}
		return strings.Count(body, "\nlifeline_fleet_shard_owner{") == shards
	}
	deadline := time.Now().Add(20 * time.Second)
	for !scrape() {
		if time.Now().After(deadline) {
			for _, m := range want {
				if !strings.Contains(body, m) {
					t.Fatalf("/metrics lacks %q", m)
				}
			}
			t.Fatalf("/metrics has %d lifeline_fleet_shard_owner series, want %d", strings.Count(body, "\nlifeline_fleet_shard_owner{"), shards)
		}
		time.Sleep(20 * time.Millisecond)
	}

	a.stop(t) // hands a's shards over before it stops
	eventuallyT(t, "b takes every shard", func() bool { return len(b.owned()) == shards })
	third := emitEveryGuild(t, srv, "third")
	got.wait(t, append(append(first, second...), third...))
	b.stop(t)

	if n := len(srv.Ledger().Identifies()); n != shards {
		t.Fatalf("%d IDENTIFYs, want %d: a handover must RESUME", n, shards)
	}
	if v := srv.Ledger().Violations(); len(v) > 0 {
		t.Fatalf("ledger violations: %+v", v)
	}
	noTwoLiveConnections(t, srv)
}

// A coordination block gives the process its shards: combined with a shard
// range it is refused at New.
func TestFleetRefusesAShardRange(t *testing.T) {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 200})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	_, err = orchestrator.New(orchestrator.Config{Token: srv.Token(), Policy: fleetPolicy(t, "nats://127.0.0.1:4222", "p", 4),
		ShardRange: &orchestrator.ShardRange{First: 0, Last: 1}})
	if !errors.Is(err, orchestrator.ErrShardConfig) || !strings.Contains(err.Error(), "coordination") {
		t.Fatalf("New = %v, want ErrShardConfig about the coordination block", err)
	}
}

// The coordination block is read at start: a policy change to it is
// reported and left for the next start, the rest of the policy applies.
func TestFleetCoordinationChangeWaitsForRestart(t *testing.T) {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 200})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	var logs testutil.SyncBuffer
	o, err := orchestrator.New(orchestrator.Config{Token: srv.Token(), Policy: fleetPolicy(t, "nats://127.0.0.1:4222", "p", 4),
		Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Stop(context.Background()) })
	if err := o.SetPolicy(fleetPolicy(t, "nats://127.0.0.1:4222", "p", 4)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "coordination block changed") {
		t.Fatalf("an unchanged block was reported: %s", logs.String())
	}
	if err := o.SetPolicy(fleetPolicy(t, "nats://127.0.0.1:4333", "p", 4)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "coordination block changed") || !strings.Contains(logs.String(), "4333") {
		t.Fatalf("the change was not reported: %q", logs.String())
	}
	if o.Policy().Coordination.URL != "nats://127.0.0.1:4333" {
		t.Fatal("the new policy is not in force")
	}
}
