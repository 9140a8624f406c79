package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/lifeline-bot/lifeline/sdk"
)

// The plugin rows of docs/benchmarks.md compare core/pluginhost's
// BenchmarkPluginCheck (the whole host → plugin process → host path) with
// the floors below: a bare gRPC unary call over a Unix socket (no
// go-plugin, no mTLS, no adapter, no breaker) to a server in the same
// process and to a server in a process of its own, and an in-process call
// of a check doing what the test plugin's "probe" check does; and
// BenchmarkTenPluginChecksOneTick with ten bare calls at once to ten server
// processes, the floor of any design that gives each check a process.

// reportMicros adds the median and p99 of d, in microseconds, to the
// benchmark's output, under the same names as core/pluginhost's benchmark.
func reportMicros(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[int(p*float64(len(d)-1))] }
	us := func(x time.Duration) float64 { return float64(x) / float64(time.Microsecond) }
	b.ReportMetric(us(q(0.50)), "p50-µs")
	b.ReportMetric(us(q(0.99)), "p99-µs")
}

// BenchmarkBareGRPCUnary is one grpc.health.v1 Check call to a server on a
// Unix socket in the same process: the cost of gRPC itself.
func BenchmarkBareGRPCUnary(b *testing.B) {
	sock := filepath.Join(b.TempDir(), "g.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.Stop()
		if err := <-served; err != nil {
			b.Error(err)
		}
	}()
	cc, err := grpc.Dial("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)
	ctx := context.Background()
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		b.Fatal(err) // connects before the clock starts
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			b.Fatalf("check: %v, %v", resp, err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportMicros(b, lat)
}

// BenchmarkInProcessCheck calls, in process, a check that does what the
// test plugin's "probe" check does in its "ok" mode.
func BenchmarkInProcessCheck(b *testing.B) {
	probe := sdk.NewHealthCheck(sdk.Info{Name: "probe", Version: "1.0.0"},
		func(ctx context.Context, req sdk.CheckRequest) (sdk.Result, error) {
			mode, _ := req.Config.String("mode", "ok")
			l, _ := req.Config.String("label", "")
			if mode != "ok" {
				return sdk.Result{Passed: false}, nil
			}
			return sdk.Result{Passed: true, Value: 42, Threshold: req.Threshold.Value, Unit: "ms", Message: "label=" + l}, nil
		})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := probe.Check(ctx, sdk.CheckRequest{})
		if err != nil || !res.Passed {
			b.Fatalf("check: %+v, %v", res, err)
		}
	}
}

// bareGRPCEnv, when set in the environment of this test binary to a Unix
// socket path, makes it serve grpc.health.v1 there instead of running
// tests: it prints "ready" once listening and serves until its standard
// input closes.
const bareGRPCEnv = "LIFELINE_BENCH_BARE_GRPC"

// serveBareGRPC is the child process's main.
func serveBareGRPC(sock string) int {
	lis, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it (or dies)
		srv.Stop()
	}()
	fmt.Println("ready")
	if err := srv.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startBareServer starts a bare gRPC server in a child process and dials
// it; the call before the clock starts connects.
func startBareServer(b *testing.B) healthpb.HealthClient {
	b.Helper()
	sock := filepath.Join(b.TempDir(), "g.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), bareGRPCEnv+"="+sock)
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
	b.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("bare gRPC server: %q, %v", line, err)
	}
	cc, err := grpc.Dial("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cc.Close() })
	client := healthpb.NewHealthClient(cc)
	if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		b.Fatal(err)
	}
	return client
}

// BenchmarkBareGRPCUnaryOtherProcess is BenchmarkBareGRPCUnary with the
// server in a process of its own, as a plugin is: the cost of gRPC and of
// the process boundary, without go-plugin, mTLS or lifeline.
func BenchmarkBareGRPCUnaryOtherProcess(b *testing.B) {
	client := startBareServer(b)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			b.Fatalf("check: %v, %v", resp, err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportMicros(b, lat)
}

// BenchmarkBareGRPCTenProcesses is ten bare calls at once, one to each of
// ten server processes, each on a goroutine of its own (as the health
// monitor runs a tick's checks): the floor, on this machine, of a tick of
// ten checks that each live in a process.
func BenchmarkBareGRPCTenProcesses(b *testing.B) {
	clients := make([]healthpb.HealthClient, 10)
	for i := range clients {
		clients[i] = startBareServer(b)
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	errs := make([]error, len(clients))
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() { _, errs[i] = c.Check(ctx, &healthpb.HealthCheckRequest{}) })
		}
		wg.Wait()
		lat = append(lat, time.Since(start))
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportMicros(b, lat)
}
