package bench

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/shard"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// The idle row: N shards connected to a fake Discord and left alone, once
// as N plain discordgo v0.29.0 Sessions and once as one shard.Manager of N
// shards (lifeline's defaults, through its public API only). The fake runs
// in a child process (this test binary, re-run with idleFakeEnv set), so
// what the benchmark process holds and spends is the clients' alone.
//
// "At rest" means heartbeats at Discord's pace and nothing else: the fake's
// heartbeat interval is -idle.heartbeat (make bench: Discord's 41.25 s).
// discordgo sends its first heartbeat one whole interval after READY and
// lifeline a random share of one interval after (as Discord asks), so the
// benchmark waits one interval (and a little) after the last READY before
// it measures, and measures CPU over exactly one interval, in which every
// shard of either client heartbeats once.
//
// For each client it reports the live heap plus goroutine stacks per shard
// ("B/shard", after two GCs, against the same reading before the clients
// started; "heap-B/shard" and "stack-B/shard" split it), the goroutines
// per shard, and the CPU the process used over the interval (getrusage,
// user + system) as a percentage of one core, scaled to 1,000 shards
// ("%core/1000shards"). The report subtracts discordgo's figures from
// lifeline's: that difference is lifeline's own overhead.
//
// bench-smoke runs it with the defaults (16 shards, a 1 s interval); make
// bench passes -idle.shards 1000 -idle.heartbeat 41.25s and runs the two
// sub-benchmarks at the same time in two processes, which halves the wait
// (two heartbeat intervals each) and changes nothing measured: each process
// reads only its own heap and CPU, and at rest both are nearly idle.

var (
	idleShards    = flag.Int("idle.shards", 16, "shards the idle-cost benchmark connects (make bench: 1000)")
	idleHeartbeat = flag.Duration("idle.heartbeat", time.Second, "the fake's heartbeat interval in the idle-cost benchmark (make bench: 41.25s, Discord's)")
)

// idleFakeEnv, when set in the environment of this test binary to
// "SHARDS,HEARTBEAT", makes it serve a fake Discord for that many shards
// with that heartbeat interval instead of running tests: it prints
// "ADDR TOKEN" on one line and serves until its standard input closes.
const idleFakeEnv = "LIFELINE_BENCH_IDLE_FAKE"

// serveIdleFake is the child process's main.
func serveIdleFake(arg string) int {
	shards, interval, _ := strings.Cut(arg, ",")
	n, err := strconv.Atoi(shards)
	hb, err2 := time.ParseDuration(interval)
	if err != nil || err2 != nil || n < 1 || hb <= 0 {
		fmt.Fprintf(os.Stderr, "%s=%q: want SHARDS,HEARTBEAT (\"1000,41.25s\")\n", idleFakeEnv, arg)
		return 2
	}
	srv, err := discordtest.NewServer(discordtest.Options{
		Guilds: n, RecommendedShards: n, MaxConcurrency: n,
		HeartbeatInterval: hb,
		IdentifyWindow:    50 * time.Millisecond,
		SessionStartTotal: 1 << 20,
		// discordgo asks GET /gateway once per Session.
		GlobalLimit: 1 << 20, RESTBucketLimit: 1 << 20,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Close()
	fmt.Printf("%s %s\n", srv.Addr(), srv.Token())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it (or dies)
	return 0
}

// remoteFake is a fake Discord in a child process.
type remoteFake struct {
	addr, token string
	cmd         *exec.Cmd
	stdin       io.Closer
}

func startRemoteFake(b *testing.B, shards int, heartbeat time.Duration) *remoteFake {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%s", idleFakeEnv, shards, heartbeat))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	f := &remoteFake{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, token, ok := strings.Cut(strings.TrimSpace(line), " ")
	if err != nil || !ok {
		f.close()
		b.Fatalf("fake process: first line %q: %v", line, err)
	}
	f.addr, f.token = addr, token
	return f
}

func (f *remoteFake) close() {
	_ = f.stdin.Close()
	done := make(chan struct{})
	go func() { _ = f.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(e2eWait):
		_ = f.cmd.Process.Kill()
		<-done
	}
}

// transport sends every request, discord.com's included, to the fake.
func (f *remoteFake) transport() http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		r := req.Clone(req.Context())
		u := *req.URL
		u.Scheme, u.Host = "http", f.addr
		r.URL, r.Host = &u, f.addr
		return http.DefaultTransport.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func dialer() *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
}

// idleClient is one way of running n shards.
type idleClient struct {
	name  string
	start func(b *testing.B, f *remoteFake, n int) (stop func())
}

var idleClients = []idleClient{
	{"discordgo", startDiscordgoShards},
	{"lifeline", startLifelineShards},
}

// startDiscordgoShards opens n plain discordgo Sessions, one per shard,
// 32 at a time (the fake gives every shard a bucket of its own), and waits
// until each has READY.
func startDiscordgoShards(b *testing.B, f *remoteFake, n int) func() {
	b.Helper()
	var ready atomic.Int64
	sessions := make([]*discordgo.Session, n)
	stop := func() {
		// In parallel: discordgo's Close waits a second for the server's
		// close frame.
		var wg sync.WaitGroup
		for _, s := range sessions {
			if s != nil {
				wg.Go(func() { _ = s.Close() })
			}
		}
		wg.Wait()
	}
	client := &http.Client{Transport: f.transport(), Timeout: 30 * time.Second}
	errs := make([]error, n)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range n {
		s, err := discordgo.New("Bot " + f.token)
		if err != nil {
			stop()
			b.Fatal(err)
		}
		s.ShardID, s.ShardCount = i, n
		s.Client, s.Dialer, s.LogLevel = client, dialer(), -1
		s.AddHandler(func(*discordgo.Session, *discordgo.Ready) { ready.Add(1) })
		sessions[i] = s
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.Open(); err != nil {
				errs[i] = fmt.Errorf("shard %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		stop()
		b.Fatal(err)
	}
	waitUntil(b, "every discordgo Session READY", func() bool { return ready.Load() >= int64(n) })
	return stop
}

// startLifelineShards starts one shard.Manager of n shards with lifeline's
// defaults; Start returns once every shard is READY.
func startLifelineShards(b *testing.B, f *remoteFake, n int) func() {
	b.Helper()
	m, err := shard.New(shard.Config{
		Token: f.token, RESTTransport: f.transport(), IdentifyWindow: 50 * time.Millisecond,
		Conn: conn.Config{GatewayDialer: dialer()},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		b.Fatal(err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := m.Stop(ctx); err != nil {
			b.Error(err)
		}
	}
}

// memory is the live heap and goroutine stacks after two collections.
func memory() (heap, stack float64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc), float64(ms.StackInuse)
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleShards: see the comment at the top of this file.
func BenchmarkIdleShards(b *testing.B) {
	n, hb := *idleShards, *idleHeartbeat
	for _, cl := range idleClients {
		b.Run(cl.name, func(b *testing.B) {
			var heap, stack, gor, cpu float64
			for range b.N {
				f := startRemoteFake(b, n, hb)
				heap0, stack0 := memory()
				g0 := runtime.NumGoroutine()
				stop := cl.start(b, f, n)
				// Every shard past its first heartbeat.
				time.Sleep(hb + min(2*time.Second, hb))
				heap1, stack1 := memory()
				g1 := runtime.NumGoroutine()
				// Hand back what start-up freed now, so the background
				// scavenger does not do it inside the window.
				debug.FreeOSMemory()
				time.Sleep(min(time.Second, hb/2))
				c0, t0 := cpuTime(b), time.Now()
				time.Sleep(hb)
				c1, elapsed := cpuTime(b), time.Since(t0)
				stop()
				f.close()
				heap += (heap1 - heap0) / float64(n)
				stack += (stack1 - stack0) / float64(n)
				gor += float64(g1-g0) / float64(n)
				cpu += 100 * float64(c1-c0) / float64(elapsed) * 1000 / float64(n)
			}
			runs := float64(b.N)
			b.ReportMetric((heap+stack)/runs, "B/shard")
			b.ReportMetric(heap/runs, "heap-B/shard")
			b.ReportMetric(stack/runs, "stack-B/shard")
			b.ReportMetric(gor/runs, "goroutines/shard")
			b.ReportMetric(cpu/runs, "%core/1000shards")
			b.ReportMetric(float64(n), "shards")
			b.ReportMetric(hb.Seconds(), "heartbeat-s")
		})
	}
}
