package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/lifeline-bot/lifeline/sdk/proto"
)

// server is the plugin side of the protocol: it serves the Plugins of one
// process over gRPC.
type server struct {
	broker     *plugin.GRPCBroker
	desc       []*pb.Descriptor
	checks     map[string]HealthCheck
	strategies map[string]RecoveryStrategy
	actions    map[string]DegradationAction

	mu       sync.RWMutex
	config   Config
	host     Host
	hostID   uint32
	hostConn *grpc.ClientConn

	calls configCache // the per-call configs, decoded
}

func newServer(p Plugins, broker *plugin.GRPCBroker) (*server, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	s := &server{
		broker:     broker,
		checks:     map[string]HealthCheck{},
		strategies: map[string]RecoveryStrategy{},
		actions:    map[string]DegradationAction{},
		config:     Config{},
		host:       noHost{},
		calls:      configCache{m: map[string]Config{}},
	}
	for _, d := range p.Descriptors() {
		pd, err := DescriptorToProto(d)
		if err != nil {
			return nil, err
		}
		s.desc = append(s.desc, pd)
	}
	for _, c := range p.HealthChecks {
		s.checks[c.Info().Name] = c
	}
	for _, r := range p.RecoveryStrategies {
		s.strategies[r.Info().Name] = r
	}
	for _, a := range p.DegradationActions {
		s.actions[a.Info().Name] = a
	}
	return s, nil
}

func (s *server) register(g *grpc.Server) {
	pb.RegisterPluginServer(g, pluginService{s})
	pb.RegisterHealthCheckServer(g, checkService{s})
	pb.RegisterRecoveryStrategyServer(g, strategyService{s})
	pb.RegisterDegradationActionServer(g, actionService{s})
}

// state returns the process-wide config and host for one call.
func (s *server) state() (Config, Host) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.config, s.host
}

func decodeConfig(raw []byte) (Config, error) {
	c := Config{}
	if len(raw) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "config is not a JSON object: %v", err)
	}
	return c, nil
}

// maxCachedConfigs bounds configCache. A host sends one config per check
// block (or action, or strategy), the same on every call; a cache holding
// more than this is emptied and fills again.
const maxCachedConfigs = 64

// configCache keeps the per-call configs a host sends, decoded, by their
// JSON: decoding the same few bytes again on every call was a twentieth of
// a plugin's CPU per health check. A cached Config is never handed to a
// plugin as it is, only merged into a new one (as the process-wide config
// is), so a plugin changing its request's Config changes no later call's.
type configCache struct {
	mu sync.RWMutex
	m  map[string]Config
}

// decode returns the Config raw holds (empty for no bytes).
func (c *configCache) decode(raw []byte) (Config, error) {
	if len(raw) == 0 {
		return Config{}, nil
	}
	c.mu.RLock()
	cfg, ok := c.m[string(raw)]
	c.mu.RUnlock()
	if ok {
		return cfg, nil
	}
	cfg, err := decodeConfig(raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedConfigs {
		clear(c.m)
	}
	c.m[string(raw)] = cfg
	c.mu.Unlock()
	return cfg, nil
}

type pluginService struct{ s *server }

func (p pluginService) Describe(context.Context, *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	return &pb.DescribeResponse{Plugins: p.s.desc, SdkVersion: Version}, nil
}

func (p pluginService) Configure(_ context.Context, r *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	cfg, err := decodeConfig(r.GetConfigJson())
	if err != nil {
		return nil, err
	}
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.config = cfg
	id := r.GetHostBrokerId()
	if id == s.hostID {
		return &pb.ConfigureResponse{}, nil
	}
	// A new broker id: connect once to the host services there, and keep
	// that connection for every later call.
	if s.hostConn != nil {
		_ = s.hostConn.Close()
		s.hostConn, s.host = nil, noHost{}
	}
	s.hostID = id
	if id == 0 || s.broker == nil {
		return &pb.ConfigureResponse{}, nil
	}
	conn, err := s.broker.Dial(id)
	if err != nil {
		s.hostID = 0
		return nil, status.Errorf(codes.Unavailable, "connecting to the host services (broker id %d): %v", id, err)
	}
	s.hostConn, s.host = conn, hostClient{c: pb.NewHostClient(conn)}
	return &pb.ConfigureResponse{}, nil
}

type checkService struct{ s *server }

func (c checkService) Check(ctx context.Context, r *pb.CheckRequest) (resp *pb.CheckResponse, err error) {
	defer recoverStatus(&err)
	hc, ok := c.s.checks[r.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no health check named %q", r.GetName())
	}
	call, err := c.s.calls.decode(r.GetConfigJson())
	if err != nil {
		return nil, err
	}
	cfg, host := c.s.state()
	res, cerr := hc.Check(ctx, CheckRequest{
		Snapshot:  SnapshotFromProto(r.GetSnapshot()),
		Config:    cfg.Merge(call),
		Threshold: ThresholdFromProto(r.GetThreshold()),
		Host:      host,
	})
	out := &pb.CheckResponse{Passed: res.Passed, Value: res.Value, Threshold: res.Threshold, Unit: res.Unit, Message: res.Message}
	if cerr != nil {
		out.Passed, out.Error = false, cerr.Error()
	}
	return out, nil
}

type strategyService struct{ s *server }

func (st strategyService) request(r *pb.RecoveryRequest) (RecoveryStrategy, RecoveryRequest, error) {
	rs, ok := st.s.strategies[r.GetName()]
	if !ok {
		return nil, RecoveryRequest{}, status.Errorf(codes.NotFound, "no recovery strategy named %q", r.GetName())
	}
	call, err := st.s.calls.decode(r.GetConfigJson())
	if err != nil {
		return nil, RecoveryRequest{}, err
	}
	cfg, host := st.s.state()
	return rs, RecoveryRequest{
		Error:    ErrorInfoFromProto(r.GetError()),
		Snapshot: SnapshotFromProto(r.GetSnapshot()),
		Config:   cfg.Merge(call),
		Attempt:  int(r.GetAttempt()),
		Host:     host,
	}, nil
}

func (st strategyService) Applies(ctx context.Context, r *pb.RecoveryRequest) (resp *pb.AppliesResponse, err error) {
	defer recoverStatus(&err)
	rs, req, err := st.request(r)
	if err != nil {
		return nil, err
	}
	ok, aerr := rs.Applies(ctx, req)
	if aerr != nil {
		return &pb.AppliesResponse{Error: aerr.Error()}, nil
	}
	return &pb.AppliesResponse{Applies: ok}, nil
}

func (st strategyService) Recover(ctx context.Context, r *pb.RecoveryRequest) (resp *pb.RecoverResponse, err error) {
	defer recoverStatus(&err)
	rs, req, err := st.request(r)
	if err != nil {
		return nil, err
	}
	if rerr := rs.Recover(ctx, req); rerr != nil {
		return &pb.RecoverResponse{Error: rerr.Error()}, nil
	}
	return &pb.RecoverResponse{}, nil
}

type actionService struct{ s *server }

func (a actionService) request(r *pb.ActionRequest) (DegradationAction, ActionRequest, error) {
	da, ok := a.s.actions[r.GetName()]
	if !ok {
		return nil, ActionRequest{}, status.Errorf(codes.NotFound, "no degradation action named %q", r.GetName())
	}
	call, err := a.s.calls.decode(r.GetConfigJson())
	if err != nil {
		return nil, ActionRequest{}, err
	}
	cfg, host := a.s.state()
	return da, ActionRequest{
		Level:    r.GetLevel(),
		Snapshot: SnapshotFromProto(r.GetSnapshot()),
		Config:   cfg.Merge(call),
		Host:     host,
	}, nil
}

func (a actionService) Apply(ctx context.Context, r *pb.ActionRequest) (resp *pb.ActionResponse, err error) {
	defer recoverStatus(&err)
	da, req, err := a.request(r)
	if err != nil {
		return nil, err
	}
	if aerr := da.Apply(ctx, req); aerr != nil {
		return &pb.ActionResponse{Error: aerr.Error()}, nil
	}
	return &pb.ActionResponse{}, nil
}

func (a actionService) Rollback(ctx context.Context, r *pb.ActionRequest) (resp *pb.ActionResponse, err error) {
	defer recoverStatus(&err)
	da, req, err := a.request(r)
	if err != nil {
		return nil, err
	}
	if aerr := da.Rollback(ctx, req); aerr != nil {
		return &pb.ActionResponse{Error: aerr.Error()}, nil
	}
	return &pb.ActionResponse{}, nil
}

// DescriptorToProto converts d to its wire form. It fails only when a
// config field's Default cannot be written as JSON.
func DescriptorToProto(d Descriptor) (*pb.Descriptor, error) {
	out := &pb.Descriptor{Name: d.Name, Kind: kindToProto(d.Kind), Version: d.Version, Description: d.Description}
	for _, f := range d.Config {
		pf := &pb.ConfigField{Name: f.Name, Type: pb.FieldType(f.Type), Required: f.Required, Description: f.Description}
		if f.Default != nil {
			b, err := json.Marshal(f.Default)
			if err != nil {
				return nil, fmt.Errorf("sdk: %w: %s %q: default of config field %q: %v", ErrInvalidPlugins, d.Kind, d.Name, f.Name, err)
			}
			pf.DefaultJson = string(b)
		}
		out.Config = append(out.Config, pf)
	}
	return out, nil
}

// DescriptorFromProto converts the wire form back and validates it, so a
// host can trust what a plugin said about itself. The error wraps
// ErrInvalidPlugins.
func DescriptorFromProto(p *pb.Descriptor) (Descriptor, error) {
	d := Descriptor{Kind: kindFromProto(p.GetKind()), Info: Info{Name: p.GetName(), Version: p.GetVersion(), Description: p.GetDescription()}}
	for _, f := range p.GetConfig() {
		cf := ConfigField{Name: f.GetName(), Type: FieldType(f.GetType()), Required: f.GetRequired(), Description: f.GetDescription()}
		if f.GetDefaultJson() != "" {
			if err := json.Unmarshal([]byte(f.GetDefaultJson()), &cf.Default); err != nil {
				return d, fmt.Errorf("sdk: %w: %q: default of config field %q is not JSON: %v", ErrInvalidPlugins, d.Name, f.GetName(), err)
			}
		}
		d.Config = append(d.Config, cf)
	}
	if p.GetKind() == pb.Kind_KIND_UNSPECIFIED || d.Kind == "" {
		return d, fmt.Errorf("sdk: %w: plugin %q has unknown kind %v", ErrInvalidPlugins, d.Name, p.GetKind())
	}
	if d.Version == "" {
		d.Version = "0.0.0"
	}
	return d, d.Validate()
}

func kindToProto(k Kind) pb.Kind {
	switch k {
	case KindHealthCheck:
		return pb.Kind_KIND_HEALTH_CHECK
	case KindRecoveryStrategy:
		return pb.Kind_KIND_RECOVERY_STRATEGY
	case KindDegradationAction:
		return pb.Kind_KIND_DEGRADATION_ACTION
	}
	return pb.Kind_KIND_UNSPECIFIED
}

func kindFromProto(k pb.Kind) Kind {
	switch k {
	case pb.Kind_KIND_HEALTH_CHECK:
		return KindHealthCheck
	case pb.Kind_KIND_RECOVERY_STRATEGY:
		return KindRecoveryStrategy
	case pb.Kind_KIND_DEGRADATION_ACTION:
		return KindDegradationAction
	}
	return ""
}
