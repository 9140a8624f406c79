package sdk

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/lifeline-bot/lifeline/sdk/proto"
)

// RecoveryMode is how the host restarts the Discord connection when a
// plugin asks it to.
type RecoveryMode string

// The recovery modes a plugin may request.
const (
	// Resume reconnects and RESUMEs the session, replaying missed events.
	Resume RecoveryMode = "resume"
	// Reconnect opens a new connection, resuming when the session allows.
	Reconnect RecoveryMode = "reconnect"
	// Reidentify starts a fresh session with IDENTIFY.
	Reidentify RecoveryMode = "reidentify"
	// RestartClient closes the bot's Discord client and opens it again
	// with a fresh session (the bot's handlers are kept).
	RestartClient RecoveryMode = "restart_client"
)

// Valid reports whether m is one of the recovery modes.
func (m RecoveryMode) Valid() bool {
	return m == Resume || m == Reconnect || m == Reidentify || m == RestartClient
}

// LogLevel is the level of a line a plugin logs through the host.
type LogLevel int

// The log levels, as hclog has them.
const (
	LogInfo LogLevel = iota
	LogTrace
	LogDebug
	LogWarn
	LogError
)

// Host is lifeline as a plugin sees it. Every request a plugin gets carries
// one (CheckRequest.Host, RecoveryRequest.Host, ActionRequest.Host); all of
// them share one connection to the host, set up when the plugin process is
// configured, not one per call. The host side implements the same interface
// and serves it with NewHostServer.
type Host interface {
	// Snapshot returns the host's current metrics snapshot (newer than the
	// one in the request, if time has passed).
	Snapshot(ctx context.Context) (Snapshot, error)
	// RequestRecovery asks the host to recover the Discord connection in
	// the given mode; reason is logged and carried in the host's events.
	// The host may refuse (an unknown mode, a connection that is stopped).
	RequestRecovery(ctx context.Context, mode RecoveryMode, reason string) error
	// SetFeature sets (enabled true) or clears a feature flag that the bot
	// reads through lifeline.
	SetFeature(ctx context.Context, name string, enabled bool) error
	// Log writes a line to the host's log under the plugin's name.
	// keyvals alternate keys and values, as hclog takes them.
	Log(ctx context.Context, level LogLevel, msg string, keyvals ...any) error
}

// ErrNoHost is returned by every method of the Host a plugin gets when the
// host offers no services (for instance sdktest without a fake host).
var ErrNoHost = errors.New("sdk: the host offers no services")

// noHost is the Host of a process configured without host services.
type noHost struct{}

func (noHost) Snapshot(context.Context) (Snapshot, error) { return Snapshot{}, ErrNoHost }
func (noHost) RequestRecovery(context.Context, RecoveryMode, string) error {
	return ErrNoHost
}
func (noHost) SetFeature(context.Context, string, bool) error { return ErrNoHost }
func (noHost) Log(context.Context, LogLevel, string, ...any) error {
	return ErrNoHost
}

// hostClient is the Host of a plugin process: the Host service over the
// broker connection.
type hostClient struct {
	c pb.HostClient
}

func (h hostClient) Snapshot(ctx context.Context) (Snapshot, error) {
	s, err := h.c.GetSnapshot(ctx, &pb.SnapshotRequest{})
	if err != nil {
		return Snapshot{}, hostErr("snapshot", err)
	}
	return SnapshotFromProto(s), nil
}

func (h hostClient) RequestRecovery(ctx context.Context, mode RecoveryMode, reason string) error {
	_, err := h.c.RequestRecovery(ctx, &pb.RecoveryModeRequest{Mode: string(mode), Reason: reason})
	return hostErr("request recovery "+string(mode), err)
}

func (h hostClient) SetFeature(ctx context.Context, name string, enabled bool) error {
	_, err := h.c.SetFeature(ctx, &pb.SetFeatureRequest{Name: name, Enabled: enabled})
	return hostErr("set feature "+name, err)
}

func (h hostClient) Log(ctx context.Context, level LogLevel, msg string, keyvals ...any) error {
	_, err := h.c.Log(ctx, &pb.LogRequest{Level: pb.LogLevel(level), Message: msg, Fields: logFields(keyvals)})
	return hostErr("log", err)
}

func logFields(keyvals []any) []*pb.LogField {
	var out []*pb.LogField
	for i := 0; i < len(keyvals); i += 2 {
		k := fmt.Sprint(keyvals[i])
		v := "MISSING"
		if i+1 < len(keyvals) {
			v = fmt.Sprint(keyvals[i+1])
		}
		out = append(out, &pb.LogField{Key: k, Value: v})
	}
	return out
}

// hostErr turns a gRPC error from the host into an error that says what
// was asked and carries the host's message, not gRPC's wrapping.
func hostErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		return fmt.Errorf("sdk: host %s: %s", what, s.Message())
	}
	return fmt.Errorf("sdk: host %s: %w", what, err)
}

// NewHostServer serves h as the Host gRPC service: the host side of the
// plugin's callbacks. An error from h reaches the plugin with its message;
// a panic in h is recovered and reported to the plugin as an error, so a
// bug in the host's services never takes the host down.
func NewHostServer(h Host) pb.HostServer {
	return &hostServer{h: h}
}

type hostServer struct {
	h Host
}

func (s *hostServer) GetSnapshot(ctx context.Context, _ *pb.SnapshotRequest) (resp *pb.Snapshot, err error) {
	defer recoverStatus(&err)
	snap, err := s.h.Snapshot(ctx)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return SnapshotToProto(snap), nil
}

func (s *hostServer) RequestRecovery(ctx context.Context, r *pb.RecoveryModeRequest) (resp *pb.HostResponse, err error) {
	defer recoverStatus(&err)
	mode := RecoveryMode(r.GetMode())
	if !mode.Valid() {
		return nil, status.Errorf(codes.InvalidArgument, "unknown recovery mode %q (want resume, reconnect, reidentify or restart_client)", r.GetMode())
	}
	if err := s.h.RequestRecovery(ctx, mode, r.GetReason()); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &pb.HostResponse{}, nil
}

func (s *hostServer) SetFeature(ctx context.Context, r *pb.SetFeatureRequest) (resp *pb.HostResponse, err error) {
	defer recoverStatus(&err)
	if r.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "feature name is empty")
	}
	if err := s.h.SetFeature(ctx, r.GetName(), r.GetEnabled()); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &pb.HostResponse{}, nil
}

func (s *hostServer) Log(ctx context.Context, r *pb.LogRequest) (resp *pb.HostResponse, err error) {
	defer recoverStatus(&err)
	kv := make([]any, 0, 2*len(r.GetFields()))
	for _, f := range r.GetFields() {
		kv = append(kv, f.GetKey(), f.GetValue())
	}
	level := LogLevel(r.GetLevel())
	if level < LogInfo || level > LogError {
		level = LogInfo
	}
	if err := s.h.Log(ctx, level, r.GetMessage(), kv...); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &pb.HostResponse{}, nil
}

// recoverStatus turns a panic in the deferring handler into a gRPC Internal
// error carrying the panic value and the first lines of its stack.
func recoverStatus(err *error) {
	if r := recover(); r != nil {
		*err = status.Errorf(codes.Internal, "panic: %v\n%s", r, firstLines(debug.Stack(), 12))
	}
}

func firstLines(b []byte, n int) []byte {
	for i, c := range b {
		if c == '\n' {
			n--
			if n == 0 {
				return b[:i]
			}
		}
	}
	return b
}
