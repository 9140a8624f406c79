package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	"github.com/lifeline-bot/lifeline/sdk"
	pb "github.com/lifeline-bot/lifeline/sdk/proto"
)

// Options configures Start and Exec. The zero value is valid.
type Options struct {
	// Name is the plugin's name as a policy would give it. Default: "test".
	Name string
	// Config is the plugin block's config, sent with Configure before the
	// first call. Default: none.
	Config sdk.Config
	// Host is the fake host the plugin calls back into. Default: a new
	// Host, available from Plugin.Host.
	Host *Host
	// NoHost starts the plugin without host services: every sdk.Host
	// method it calls fails with sdk.ErrNoHost. Default: false.
	NoHost bool
}

// Plugin is a plugin under test, reached over the real wire protocol, whether
// it runs in the test's process (Start) or as a subprocess (Exec). Its
// methods call the plugin's services as lifeline would.
type Plugin struct {
	remote *sdk.Remote
	host   *Host
	hostID uint32
	desc   []sdk.Descriptor
	close  func()
	once   sync.Once
}

// Start serves p in the test's own process, over gRPC on a local socket,
// and returns a Plugin connected to it, described and configured. It is the
// fast way to test a plugin's logic through the protocol. The plugin stops
// when the test ends (or at Close).
func Start(t testing.TB, p sdk.Plugins, opts Options) *Plugin {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, sdk.VersionedPlugins(p)[sdk.ProtocolVersion])
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		client.Close()
		server.Stop()
		t.Fatalf("sdktest: dispensing the plugin: %v", err)
	}
	// Closing the client shuts the server down through go-plugin's
	// controller service (stopping it here as well would race with that).
	pl := &Plugin{remote: raw.(*sdk.Remote), close: func() { _ = client.Close() }}
	t.Cleanup(pl.Close)
	if err := pl.setup(opts); err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	return pl
}

// Exec starts the plugin binary at path as lifeline does: a subprocess
// speaking go-plugin over gRPC with automatic mutual TLS and protocol
// negotiation. Its log goes to the test log when the test fails. The process
// is killed when the test ends (or at Close).
func Exec(t testing.TB, path string, opts Options, args ...string) *Plugin {
	t.Helper()
	logs := &lockedBuffer{}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.VersionedPlugins(sdk.Plugins{}),
		Cmd:              exec.Command(path, args...),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: logs, Level: hclog.Debug}),
	})
	pl := &Plugin{close: client.Kill}
	t.Cleanup(func() {
		pl.Close()
		if t.Failed() {
			t.Logf("sdktest: log of %s:\n%s", path, logs.String())
		}
	})
	proto, err := client.Client()
	if err != nil {
		t.Fatalf("sdktest: starting %s: %v", path, err)
	}
	raw, err := proto.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("sdktest: dispensing from %s: %v", path, err)
	}
	pl.remote = raw.(*sdk.Remote)
	if err := pl.setup(opts); err != nil {
		t.Fatalf("sdktest: %s: %v", path, err)
	}
	return pl
}

// Build compiles the main package pkg (an import path or a directory such
// as "." or "./cmd/myplugin", resolved from the test's working directory)
// into a temporary directory and returns the binary's path. Build it once in
// TestMain or a sync.Once when several tests run it.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "plugin")
	cmd := exec.Command("go", "build", "-o", out, pkg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sdktest: go build %s: %v\n%s", pkg, err, stderr.String())
	}
	return out
}

func (p *Plugin) setup(opts Options) error {
	resp, err := p.remote.Plugin.Describe(context.Background(), &pb.DescribeRequest{})
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	for _, d := range resp.GetPlugins() {
		sd, err := sdk.DescriptorFromProto(d)
		if err != nil {
			return err
		}
		p.desc = append(p.desc, sd)
	}
	if !opts.NoHost {
		p.host = opts.Host
		if p.host == nil {
			p.host = &Host{}
		}
	}
	return p.Configure(opts.Name, opts.Config)
}

// Close stops the plugin. It is safe to call more than once.
func (p *Plugin) Close() {
	p.once.Do(p.close)
}

// Host returns the fake host the plugin calls back into; nil with NoHost.
func (p *Plugin) Host() *Host { return p.host }

// Describe returns what the plugin said it serves.
func (p *Plugin) Describe() []sdk.Descriptor {
	return append([]sdk.Descriptor(nil), p.desc...)
}

// Configure sends a new plugin-block config, as lifeline does when the
// policy changes it; the host services connection is kept.
func (p *Plugin) Configure(name string, cfg sdk.Config) error {
	if name == "" {
		name = "test"
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	req := &pb.ConfigureRequest{Name: name, ConfigJson: raw}
	if p.host != nil {
		if p.hostID == 0 {
			p.hostID = p.remote.ServeHost(p.host)
		}
		req.HostBrokerId = p.hostID
	}
	if _, err := p.remote.Plugin.Configure(context.Background(), req); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	return nil
}

// Check runs the health check called name. req.Host is ignored: the plugin
// gets the fake host. An error returned by the check comes back as the
// error, with the Result the plugin sent.
func (p *Plugin) Check(ctx context.Context, name string, req sdk.CheckRequest) (sdk.Result, error) {
	cfg, err := json.Marshal(req.Config)
	if err != nil {
		return sdk.Result{}, err
	}
	resp, err := p.remote.HealthCheck.Check(ctx, &pb.CheckRequest{Name: name, Snapshot: sdk.SnapshotToProto(req.Snapshot),
		ConfigJson: cfg, Threshold: sdk.ThresholdToProto(req.Threshold)})
	if err != nil {
		return sdk.Result{}, err
	}
	res := sdk.Result{Passed: resp.GetPassed(), Value: resp.GetValue(), Threshold: resp.GetThreshold(),
		Unit: resp.GetUnit(), Message: resp.GetMessage()}
	if resp.GetError() != "" {
		return res, errors.New(resp.GetError())
	}
	return res, nil
}

func (p *Plugin) recoveryRequest(name string, req sdk.RecoveryRequest) (*pb.RecoveryRequest, error) {
	cfg, err := json.Marshal(req.Config)
	if err != nil {
		return nil, err
	}
	return &pb.RecoveryRequest{Name: name, Error: sdk.ErrorInfoToProto(req.Error), Snapshot: sdk.SnapshotToProto(req.Snapshot),
		ConfigJson: cfg, Attempt: int32(req.Attempt)}, nil
}

// Applies asks the recovery strategy called name whether it applies.
func (p *Plugin) Applies(ctx context.Context, name string, req sdk.RecoveryRequest) (bool, error) {
	r, err := p.recoveryRequest(name, req)
	if err != nil {
		return false, err
	}
	resp, err := p.remote.RecoveryStrategy.Applies(ctx, r)
	if err != nil {
		return false, err
	}
	if resp.GetError() != "" {
		return false, errors.New(resp.GetError())
	}
	return resp.GetApplies(), nil
}

// Recover runs the recovery strategy called name.
func (p *Plugin) Recover(ctx context.Context, name string, req sdk.RecoveryRequest) error {
	r, err := p.recoveryRequest(name, req)
	if err != nil {
		return err
	}
	resp, err := p.remote.RecoveryStrategy.Recover(ctx, r)
	if err != nil {
		return err
	}
	if resp.GetError() != "" {
		return errors.New(resp.GetError())
	}
	return nil
}

func (p *Plugin) action(ctx context.Context, rollback bool, name string, req sdk.ActionRequest) error {
	cfg, err := json.Marshal(req.Config)
	if err != nil {
		return err
	}
	r := &pb.ActionRequest{Name: name, Level: req.Level, Snapshot: sdk.SnapshotToProto(req.Snapshot), ConfigJson: cfg}
	var resp *pb.ActionResponse
	if rollback {
		resp, err = p.remote.DegradationAction.Rollback(ctx, r)
	} else {
		resp, err = p.remote.DegradationAction.Apply(ctx, r)
	}
	if err != nil {
		return err
	}
	if resp.GetError() != "" {
		return errors.New(resp.GetError())
	}
	return nil
}

// Apply runs the degradation action called name for req.Level.
func (p *Plugin) Apply(ctx context.Context, name string, req sdk.ActionRequest) error {
	return p.action(ctx, false, name, req)
}

// Rollback undoes the degradation action called name.
func (p *Plugin) Rollback(ctx context.Context, name string, req sdk.ActionRequest) error {
	return p.action(ctx, true, name, req)
}

// lockedBuffer collects a plugin's log from go-plugin's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
