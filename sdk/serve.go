package sdk

import (
	"context"
	"fmt"
	"os"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/lifeline-bot/lifeline/sdk/proto"
)

// ProtocolVersion is the version of the plugin protocol (sdk/proto) this sdk
// speaks. The host and the plugin agree on a version through go-plugin's
// VersionedPlugins: each side lists the versions it supports and the highest
// common one wins; with none in common the host refuses the plugin with an
// error naming both lists.
const ProtocolVersion = 1

// PluginName is the name of lifeline's protocol in go-plugin's PluginSet.
const PluginName = "lifeline"

// Handshake is the go-plugin handshake of lifeline plugins. The magic cookie
// only stops a plugin binary that is run by hand from waiting for a host
// that never comes; it is not a security measure (the sha256 pin is).
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "LIFELINE_PLUGIN",
	MagicCookieValue: "0c6b5a8e-lifeline-plugin-v1",
}

// VersionedPlugins is the go-plugin plugin set of every protocol version this
// sdk speaks, serving p. A host passes VersionedPlugins(Plugins{}) (it only
// dispenses); Serve passes the binary's plugins.
func VersionedPlugins(p Plugins) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ProtocolVersion: {PluginName: &GRPCPlugin{Plugins: p}},
	}
}

// Serve serves p to lifeline and does not return until the host ends the
// process. A plugin's main function is a call to Serve:
//
//	func main() {
//		sdk.Serve(sdk.Plugins{HealthChecks: []sdk.HealthCheck{myCheck{}}})
//	}
//
// If p is invalid (see Plugins.Validate), Serve prints why to standard error
// and exits with status 1. Run by hand rather than by lifeline, the binary
// says it is a plugin and exits with status 1.
func Serve(p Plugins) {
	if err := p.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: VersionedPlugins(p),
		GRPCServer:       grpcServer,
		Logger:           Logger(""),
	})
}

// grpcServer is go-plugin's default server with a fixed flow-control
// window: without one, gRPC's bandwidth-delay estimator follows nearly every
// response with a PING the host must answer, an extra write and wake-up of
// both processes per call for a figure that only matters for bulk
// transfers (measured with strace: 3.5 writes per call in both processes
// together, 2.1 with the window on both sides). 1 MiB is far above any
// message of the plugin protocol, so flow control never holds a call back.
//
// Calls are served by a few goroutines kept for the purpose
// (grpc.NumStreamWorkers) rather than by a new goroutine per call: a call's
// path through gRPC, the sdk and the plugin's code grows a new goroutine's
// stack several times, by copying it, on every call, while a kept goroutine
// keeps the stack it grew. When every kept goroutine is busy, gRPC serves
// the call on a new goroutine as before, so a slow call never holds up
// another.
func grpcServer(opts []grpc.ServerOption) *grpc.Server {
	const window = 1 << 20
	return grpc.NewServer(append(opts, grpc.InitialWindowSize(window), grpc.InitialConnWindowSize(window),
		grpc.NumStreamWorkers(streamWorkers))...)
}

// streamWorkers is how many goroutines the plugin's gRPC server keeps for
// streams: go-plugin's two long-lived streams (the broker's and standard
// output's) hold one each for the life of the process, and ten are left
// for the calls a host makes at once in a tick of checks served by one
// plugin. An idle one costs a few kilobytes.
const streamWorkers = 12

// processStderr is the process's standard error as it was at start:
// go-plugin's Serve points os.Stderr at a pipe it forwards over gRPC, which
// reaches the host later and unordered; the host reads this one directly.
var processStderr = os.Stderr

// Logger returns an hclog.Logger for a plugin process: JSON lines on standard
// error, which the host reads and writes to its own log at the same level
// under the plugin's name. Plain writes to os.Stderr and os.Stdout reach the
// host's log too (go-plugin forwards them over the connection), at info
// level. Host.Log is the other way, for a line that must reach the host in
// order with the plugin's calls.
func Logger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Output:     processStderr,
		JSONFormat: true,
		Level:      hclog.Trace,
	})
}

// GRPCPlugin is lifeline's protocol as a go-plugin GRPCPlugin. A plugin
// process serves it (Serve does that); a host dispenses it from a go-plugin
// client and gets a *Remote. Plugin authors do not need it.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Plugins is what the process serves; the host leaves it empty.
	Plugins Plugins
}

// GRPCServer registers the plugin services on s (plugin side).
func (p *GRPCPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	srv, err := newServer(p.Plugins, broker)
	if err != nil {
		return err
	}
	srv.register(s)
	return nil
}

// GRPCClient returns a *Remote over c (host side).
func (p *GRPCPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &Remote{
		Plugin:            pb.NewPluginClient(c),
		HealthCheck:       pb.NewHealthCheckClient(c),
		RecoveryStrategy:  pb.NewRecoveryStrategyClient(c),
		DegradationAction: pb.NewDegradationActionClient(c),
		Broker:            broker,
	}, nil
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// Remote is a plugin process as the host holds it: the gRPC clients of its
// services and the broker to offer host services on.
type Remote struct {
	Plugin            pb.PluginClient
	HealthCheck       pb.HealthCheckClient
	RecoveryStrategy  pb.RecoveryStrategyClient
	DegradationAction pb.DegradationActionClient
	// Broker is go-plugin's connection broker for this process.
	Broker *plugin.GRPCBroker
}

// ServeHost offers h to the plugin process on a new broker connection and
// returns the broker id to send in ConfigureRequest.HostBrokerId. The plugin
// dials it once, when it is configured; the server lives until the
// go-plugin client is killed.
func (r *Remote) ServeHost(h Host) uint32 {
	id := r.Broker.NextId()
	srv := NewHostServer(h)
	go r.Broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		pb.RegisterHostServer(s, srv)
		return s
	})
	return id
}
