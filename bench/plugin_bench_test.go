package bench

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/lifeline-bot/lifeline/sdk"
)

// The plugin row of docs/benchmarks.md compares core/pluginhost's
// BenchmarkPluginCheck (the whole host → plugin process → host path) with
// the two floors below: a bare gRPC unary call over a Unix socket (no
// go-plugin, no mTLS, no adapter, no breaker) and an in-process call of a
// check doing what the test plugin's "probe" check does.

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
