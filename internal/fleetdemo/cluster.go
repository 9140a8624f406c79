package fleetdemo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/discordtest"
	"github.com/lifeline-bot/lifeline/internal/childproc"
)

// Options configures a Cluster. The zero value is valid apart from
// Binary.
type Options struct {
	// Binary is the lifeline executable the processes run (`lifeline
	// run`). Required.
	Binary string
	// Dir holds the policy file, the NATS store and each process's log.
	// Default: a new temporary directory, removed by Close.
	Dir string
	// Shards is the bot's shard count. Default: 12.
	Shards int
	// MaxConcurrency is the fake Discord's max_concurrency (identify
	// buckets). Default: 4.
	MaxConcurrency int
	// Scale divides the fake Discord's timings (heartbeat, identify
	// window). Default: 20 (a 2s heartbeat, a 250ms identify window).
	Scale float64
	// LeaseTTL is the fleet's lease. Default: 2s.
	LeaseTTL time.Duration
	// Interval is the fleet's heartbeat and reconcile period. Default:
	// 200ms.
	Interval time.Duration
	// SaveInterval is how often each process saves its shards' sessions.
	// Default: 200ms.
	SaveInterval time.Duration
	// SessionExpiry is how long the fake keeps a disconnected session
	// resumable. Default: 2 minutes (wall time, not scaled: a restarting
	// process must find its sessions).
	SessionExpiry time.Duration
	// DispatchInterval, when positive, has the fake send every live
	// session a MESSAGE_CREATE at this interval (traffic whose loss the
	// ledger would show). Default: 0, none.
	DispatchInterval time.Duration
	// Env is added to each process's environment (GORACE, ...).
	Env []string
}

func (o *Options) defaults() error {
	if o.Binary == "" {
		return errors.New("fleetdemo: Options.Binary: the lifeline executable is required")
	}
	if o.Shards <= 0 {
		o.Shards = 12
	}
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = 4
	}
	if o.Scale <= 0 {
		o.Scale = 20
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 2 * time.Second
	}
	if o.Interval <= 0 {
		o.Interval = 200 * time.Millisecond
	}
	if o.SaveInterval <= 0 {
		o.SaveInterval = 200 * time.Millisecond
	}
	if o.SessionExpiry <= 0 {
		o.SessionExpiry = 2 * time.Minute
	}
	return nil
}

// Cluster is a fleet of lifeline processes on this machine: the fake
// Discord and an embedded NATS server with JetStream run in this process,
// on 127.0.0.1, and every member is a `lifeline run` child process sharing
// them through a policy with a coordination "nats" block.
type Cluster struct {
	opts    Options
	ownDir  bool
	policy  string
	fake    *discordtest.Server
	natsDir string

	mu    sync.Mutex
	nats  *server.Server
	port  int
	procs map[string]*Process
}

// Process is one `lifeline run` of the cluster.
type Process struct {
	// ID is the process's ID in the fleet.
	ID string
	// HTTP is the base URL of its HTTP surface (/debug/lifeline, ...).
	HTTP string
	// Log is the path of its log (stderr).
	Log string

	proc *childproc.Process
}

// Exited is closed when the process has exited; Err then says how.
func (p *Process) Exited() <-chan struct{} { return p.proc.Done() }

// Err is how the process exited (nil for exit status 0), once Exited is
// closed.
func (p *Process) Err() error { return p.proc.Err() }

// Pid returns the process's operating-system process ID.
func (p *Process) Pid() int { return p.proc.Pid() }

// Start starts the fake Discord and the NATS server and writes the policy;
// no lifeline process runs until Spawn.
func Start(opts Options) (*Cluster, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, procs: map[string]*Process{}}
	if c.opts.Dir == "" {
		d, err := os.MkdirTemp("", "lifeline-fleet-")
		if err != nil {
			return nil, fmt.Errorf("fleetdemo: %w", err)
		}
		c.opts.Dir, c.ownDir = d, true
	}
	c.natsDir = filepath.Join(c.opts.Dir, "nats")
	fake, err := discordtest.NewServer(discordtest.Options{
		Scale:             opts.Scale,
		Guilds:            2 * opts.Shards,
		RecommendedShards: opts.Shards,
		MaxConcurrency:    opts.MaxConcurrency,
		SessionExpiry:     opts.SessionExpiry,
		DispatchInterval:  opts.DispatchInterval,
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("fleetdemo: fake Discord: %w", err)
	}
	c.fake = fake
	if err := c.StartNATS(); err != nil {
		c.Close()
		return nil, err
	}
	c.policy = filepath.Join(c.opts.Dir, "fleet.hcl")
	if err := os.WriteFile(c.policy, []byte(c.policyText()), 0o600); err != nil {
		c.Close()
		return nil, fmt.Errorf("fleetdemo: %w", err)
	}
	return c, nil
}

// policyText is the policy every process runs.
func (c *Cluster) policyText() string {
	return fmt.Sprintf(`# Written by lifeline's fleet demo: %d shards shared by every process.
connection {
  shards = %d
}

coordination "nats" {
  url           = %q
  bucket_prefix = "fleetdemo"
  process_id    = env("LIFELINE_PROCESS_ID", "")
  lease_ttl     = %q
  interval      = %q
  save_interval = %q
}
`, c.opts.Shards, c.opts.Shards, c.NATSURL(), c.opts.LeaseTTL.String(), c.opts.Interval.String(), c.opts.SaveInterval.String())
}

// Fake returns the fake Discord, whose ledger records every connection.
func (c *Cluster) Fake() *discordtest.Server { return c.fake }

// Options returns the cluster's options with their defaults filled in.
func (c *Cluster) Options() Options { return c.opts }

// PolicyFile returns the path of the policy the processes run.
func (c *Cluster) PolicyFile() string { return c.policy }

// NATSURL returns the NATS server's client URL.
func (c *Cluster) NATSURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return "nats://127.0.0.1:" + strconv.Itoa(c.port)
}

// StartNATS starts the embedded NATS server (JetStream, file storage in
// Dir), on the port it had before when it is restarted.
func (c *Cluster) StartNATS() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nats != nil {
		return errors.New("fleetdemo: NATS is already running")
	}
	port := c.port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	var s *server.Server
	var err error
	// A restart on the same port can find it in TIME_WAIT for a moment.
	for try := 0; try < 50; try++ {
		s, err = server.NewServer(&server.Options{ServerName: "fleetdemo", Host: "127.0.0.1", Port: port, JetStream: true,
			StoreDir: c.natsDir, NoLog: true, NoSigs: true})
		if err != nil {
			return fmt.Errorf("fleetdemo: NATS server: %w", err)
		}
		go s.Start()
		if s.ReadyForConnections(10 * time.Second) {
			break
		}
		s.Shutdown()
		s = nil
		time.Sleep(100 * time.Millisecond)
	}
	if s == nil {
		return errors.New("fleetdemo: NATS server not ready")
	}
	c.nats = s
	c.port = s.Addr().(*net.TCPAddr).Port
	return nil
}

// StopNATS stops the NATS server, as an outage of the coordination store.
func (c *Cluster) StopNATS() {
	c.mu.Lock()
	s := c.nats
	c.nats = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Spawn starts a lifeline process with the given fleet ID and returns
// once its HTTP surface answers (it may still be joining the fleet).
func (c *Cluster) Spawn(ctx context.Context, id string) (*Process, error) {
	c.mu.Lock()
	if p := c.procs[id]; p != nil && !p.proc.Exited() {
		c.mu.Unlock()
		return nil, fmt.Errorf("fleetdemo: process %s is running", id)
	}
	c.mu.Unlock()
	logPath := filepath.Join(c.opts.Dir, id+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fleetdemo: %w", err)
	}
	// The child writes its log to its own copy of the descriptor.
	defer logf.Close()
	cmd := exec.Command(c.opts.Binary, "run", "--policy", c.policy, "--fake-url", c.fake.URL(),
		"--fake-scale", strconv.FormatFloat(c.opts.Scale, 'g', -1, 64), "--http", "127.0.0.1:0", "--log-level", "info")
	cmd.Env = append(os.Environ(), "DISCORD_TOKEN="+c.fake.Token(), "LIFELINE_PROCESS_ID="+id)
	cmd.Env = append(cmd.Env, c.opts.Env...)
	cmd.Stderr = logf
	proc, err := childproc.Start(cmd, childproc.Options{})
	if err != nil {
		return nil, fmt.Errorf("fleetdemo: process %s: %w", id, err)
	}
	p := &Process{ID: id, Log: logPath, proc: proc}
	c.mu.Lock()
	c.procs[id] = p
	c.mu.Unlock()
	u, err := proc.WaitLine(ctx, func(l string) bool { return strings.HasPrefix(l, "http=") })
	switch {
	case errors.Is(err, childproc.ErrExited):
		return nil, fmt.Errorf("fleetdemo: process %s exited before serving HTTP (%v); log %s:\n%s", id, proc.Err(), logPath, Tail(logPath, 20))
	case err != nil:
		_ = proc.Kill()
		return nil, fmt.Errorf("fleetdemo: process %s: %w", id, err)
	}
	p.HTTP = strings.TrimPrefix(u, "http=")
	return p, nil
}

// Process returns the process with the given ID (the last one spawned
// with it), nil when none.
func (c *Cluster) Process(id string) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[id]
}

// Live returns the IDs of the processes still running, sorted.
func (c *Cluster) Live() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id, p := range c.procs {
		if !p.proc.Exited() {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Kill ends a process with SIGKILL (no handover: its shards move when its
// lease expires) and waits for it.
func (c *Cluster) Kill(id string) error {
	p := c.Process(id)
	if p == nil {
		return fmt.Errorf("fleetdemo: no process %s", id)
	}
	if err := p.proc.Kill(); err != nil {
		return fmt.Errorf("fleetdemo: kill %s: %w", id, err)
	}
	return nil
}

// Stop ends a process with SIGTERM (it hands its shards over, then
// exits) and returns how it exited.
func (c *Cluster) Stop(ctx context.Context, id string) error {
	p := c.Process(id)
	if p == nil {
		return fmt.Errorf("fleetdemo: no process %s", id)
	}
	if err := p.proc.Stop(ctx, syscall.SIGTERM); err != nil {
		return fmt.Errorf("fleetdemo: stop %s: %w", id, err)
	}
	if err := p.proc.Err(); err != nil {
		return fmt.Errorf("fleetdemo: %s exited with %v; log %s:\n%s", id, err, p.Log, Tail(p.Log, 30))
	}
	return nil
}

// Close kills every process, stops NATS and the fake, and removes Dir when
// Start made it.
func (c *Cluster) Close() {
	c.mu.Lock()
	procs := make([]*Process, 0, len(c.procs))
	for _, p := range c.procs {
		procs = append(procs, p)
	}
	c.mu.Unlock()
	for _, p := range procs {
		_ = p.proc.Kill()
	}
	c.StopNATS()
	if c.fake != nil {
		c.fake.Close()
	}
	if c.ownDir {
		os.RemoveAll(c.opts.Dir)
	}
}

// State is one process as its /debug/lifeline shows it.
type State struct {
	// Fleet is its fleet diagnostics (nil before it joined).
	Fleet *orchestrator.FleetDiagnostics
	// Ready lists the shards it runs that are READY.
	Ready []int
	// Shards lists every shard it runs.
	Shards []int
}

// debugDocument is the part of /debug/lifeline State reads.
type debugDocument struct {
	Diagnostics struct {
		Fleet  *orchestrator.FleetDiagnostics `json:"fleet"`
		Shards *struct {
			Shards []struct {
				ID    int    `json:"id"`
				State string `json:"state"`
			} `json:"shards"`
		} `json:"shards"`
	} `json:"diagnostics"`
}

// State reads a process's /debug/lifeline.
func (c *Cluster) State(ctx context.Context, id string) (State, error) {
	p := c.Process(id)
	if p == nil || p.HTTP == "" {
		return State{}, fmt.Errorf("fleetdemo: no process %s", id)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.HTTP+"/debug/lifeline", nil)
	if err != nil {
		return State{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return State{}, fmt.Errorf("fleetdemo: %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return State{}, fmt.Errorf("fleetdemo: %s: /debug/lifeline answered %s", id, resp.Status)
	}
	var doc debugDocument
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return State{}, fmt.Errorf("fleetdemo: %s: %w", id, err)
	}
	st := State{Fleet: doc.Diagnostics.Fleet}
	if sv := doc.Diagnostics.Shards; sv != nil {
		for _, s := range sv.Shards {
			st.Shards = append(st.Shards, s.ID)
			if s.State == "READY" {
				st.Ready = append(st.Ready, s.ID)
			}
		}
	}
	// A shard view is the last tick's; the fleet's list is current.
	if st.Fleet != nil {
		st.Ready = slices.DeleteFunc(st.Ready, func(id int) bool { return !slices.Contains(st.Fleet.Owned, id) })
	}
	return st, nil
}

// Owners returns, for every shard, the live processes whose diagnostics
// say they run it and have it READY.
func (c *Cluster) Owners(ctx context.Context) (map[int][]string, error) {
	out := map[int][]string{}
	for _, id := range c.Live() {
		st, err := c.State(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, s := range st.Ready {
			out[s] = append(out[s], id)
		}
	}
	return out, nil
}

// WaitSettled waits until every shard is READY in exactly one live
// process, the live processes share the shards fairly (as the fleet's
// leader plans them), and the fake has exactly one open connection per
// shard; it returns the owners.
func (c *Cluster) WaitSettled(ctx context.Context) (map[int]string, error) {
	var last string
	for {
		owners, err := c.Owners(ctx)
		if err == nil {
			one := map[int]string{}
			for s, ps := range owners {
				if len(ps) == 1 {
					one[s] = ps[0]
				}
			}
			open := OpenConnections(c.fake)
			settled := len(one) == c.opts.Shards && fair(one, c.opts.Shards, c.Live())
			for s := range c.opts.Shards {
				if open[s] != 1 {
					settled = false
				}
			}
			if settled {
				return one, nil
			}
			last = fmt.Sprintf("%d of %d shards READY in exactly one process; open connections per shard %v", len(one), c.opts.Shards, open)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("fleetdemo: not settled (%s): %w", last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// fair reports whether each live process owns shards/len(live) shards or
// one more, as the fleet's leader plans them.
func fair(owners map[int]string, shards int, live []string) bool {
	if len(live) == 0 {
		return false
	}
	n := map[string]int{}
	for _, p := range owners {
		n[p]++
	}
	for _, id := range live {
		if k := n[id]; k < shards/len(live) || k > shards/len(live)+1 {
			return false
		}
	}
	return true
}

// Tail returns the last n lines of a file, for error messages.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
