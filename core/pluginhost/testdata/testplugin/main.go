// Command testplugin is the plugin the host's tests start as a real
// process. Its health check "probe" misbehaves on request (config "mode"),
// and flags make the whole process misbehave at start.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/lifeline-bot/lifeline/sdk"
	pb "github.com/lifeline-bot/lifeline/sdk/proto"
)

func main() {
	exitAtStart := flag.Bool("exit-at-start", false, "exit with status 7 before serving")
	garbage := flag.Bool("garbage", false, "print garbage instead of the handshake")
	version := flag.Int("version", 0, "serve only this protocol version")
	badDescribe := flag.Bool("bad-describe", false, "describe itself with an unknown kind")
	flag.Parse()

	switch {
	case *exitAtStart:
		fmt.Fprintln(os.Stderr, "cannot open config")
		os.Exit(7)
	case *garbage:
		fmt.Println("hello, I am not a plugin")
		time.Sleep(time.Minute)
		return
	case *version != 0:
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  sdk.Handshake,
			VersionedPlugins: map[int]plugin.PluginSet{*version: {sdk.PluginName: &sdk.GRPCPlugin{Plugins: plugins()}}},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
		return
	case *badDescribe:
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  sdk.Handshake,
			VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion: {sdk.PluginName: badPlugin{}}},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
		return
	}
	sdk.Serve(plugins())
}

func plugins() sdk.Plugins {
	probe := sdk.NewHealthCheck(sdk.Info{Name: "probe", Version: "1.0.0", Config: []sdk.ConfigField{
		{Name: "mode", Type: sdk.String}, {Name: "var", Type: sdk.String}, {Name: "label", Type: sdk.String}}},
		func(ctx context.Context, req sdk.CheckRequest) (sdk.Result, error) {
			mode, _ := req.Config.String("mode", "ok")
			l, _ := req.Config.String("label", "")
			switch mode {
			case "ok":
				return sdk.Result{Passed: true, Value: 42, Threshold: req.Threshold.Value, Unit: "ms", Message: "label=" + l}, nil
			case "fail":
				return sdk.Result{Passed: false, Value: 7, Message: "probe failed"}, nil
			case "error":
				return sdk.Result{}, fmt.Errorf("database unreachable")
			case "exit":
				sdk.Logger("").Error("dying on purpose")
				os.Exit(3)
			case "panic":
				go func() { panic("boom in goroutine") }()
				time.Sleep(time.Minute)
			case "panic-call":
				panic("boom in call")
			case "hang":
				select {} // ignores ctx: only the host's deadline ends the call
			case "slow":
				<-ctx.Done()
				return sdk.Result{}, ctx.Err()
			case "wait":
				// Says it is in the call (a feature flag named after its
				// label), then waits for the host's deadline.
				if err := req.Host.SetFeature(ctx, "waiting-"+l, true); err != nil {
					return sdk.Result{}, err
				}
				<-ctx.Done()
				return sdk.Result{}, ctx.Err()
			case "nan":
				return sdk.Result{Passed: true, Value: math.NaN()}, nil
			case "env":
				v, _ := req.Config.String("var", "")
				return sdk.Result{Passed: true, Message: v + "=" + os.Getenv(v)}, nil
			case "snapshot":
				s, err := req.Host.Snapshot(ctx)
				if err != nil {
					return sdk.Result{}, err
				}
				return sdk.Result{Passed: true, Value: float64(s.Gateway.Sequence), Message: fmt.Sprint(req.Snapshot.Gateway.Sequence)}, nil
			case "spam-host", "spam-stderr", "spam-stdout":
				// 300 lines down one path, for the host's log budget.
				for i := range 300 {
					line := fmt.Sprintf("spam line %d via %s", i, mode)
					switch mode {
					case "spam-host":
						if err := req.Host.Log(ctx, sdk.LogWarn, line); err != nil {
							return sdk.Result{}, err
						}
					case "spam-stderr":
						sdk.Logger("spam").Warn(line)
					default:
						fmt.Println(line)
					}
				}
				return sdk.Result{Passed: true}, nil
			case "log":
				sdk.Logger("probe").Warn("written to stderr", "n", 1)
				if err := req.Host.Log(ctx, sdk.LogWarn, "sent through the host", "n", 2); err != nil {
					return sdk.Result{}, err
				}
				return sdk.Result{Passed: true}, nil
			}
			return sdk.Result{}, fmt.Errorf("unknown mode %q", mode)
		})
	other := sdk.NewHealthCheck(sdk.Info{Name: "other"}, func(context.Context, sdk.CheckRequest) (sdk.Result, error) {
		return sdk.Result{Passed: true, Message: "other"}, nil
	})
	kick := sdk.NewRecoveryStrategy(sdk.Info{Name: "kick", Config: []sdk.ConfigField{{Name: "recovery_mode", Type: sdk.String}}},
		func(_ context.Context, req sdk.RecoveryRequest) (bool, error) {
			return !req.Error.Fatal, nil
		},
		func(ctx context.Context, req sdk.RecoveryRequest) error {
			mode, _ := req.Config.String("recovery_mode", "resume")
			return req.Host.RequestRecovery(ctx, sdk.RecoveryMode(mode), fmt.Sprintf("%s (attempt %d)", req.Error.Message, req.Attempt))
		})
	flag := sdk.NewDegradationAction(sdk.Info{Name: "flag"},
		func(ctx context.Context, req sdk.ActionRequest) error {
			return req.Host.SetFeature(ctx, "feature-"+req.Level, false)
		},
		func(ctx context.Context, req sdk.ActionRequest) error {
			return req.Host.SetFeature(ctx, "feature-"+req.Level, true)
		})
	return sdk.Plugins{HealthChecks: []sdk.HealthCheck{probe, other},
		RecoveryStrategies: []sdk.RecoveryStrategy{kick}, DegradationActions: []sdk.DegradationAction{flag}}
}

// badPlugin serves a Plugin service that describes garbage.
type badPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (badPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, badDescriber{})
	return nil
}

func (badPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("not a host")
}

type badDescriber struct{}

func (badDescriber) Describe(context.Context, *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	return &pb.DescribeResponse{Plugins: []*pb.Descriptor{{Name: "x", Kind: 99}}}, nil
}

func (badDescriber) Configure(context.Context, *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	return &pb.ConfigureResponse{}, nil
}
