package pluginhost

import (
	"context"
	"errors"
	"fmt"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/sdk"
)

// ErrNoServices is returned to a plugin that calls back into a host built
// without Options.Services.
var ErrNoServices = errors.New("the host offers no services")

// services is the Host one plugin process calls back into: Options.Services
// plus the plugin's own logger. Each process gets one, served over a single
// broker connection opened when the process is configured.
type services struct {
	h    *Host
	name string
	log  hclog.Logger
}

var _ sdk.Host = (*services)(nil)

func (s *services) Snapshot(context.Context) (sdk.Snapshot, error) {
	if s.h.o.Services == nil {
		return sdk.Snapshot{}, ErrNoServices
	}
	return SnapshotToSDK(s.h.o.Services.Snapshot()), nil
}

func (s *services) RequestRecovery(ctx context.Context, mode sdk.RecoveryMode, reason string) error {
	if s.h.o.Services == nil {
		return ErrNoServices
	}
	why := fmt.Sprintf("plugin %s", s.name)
	if reason != "" {
		why += ": " + reason
	}
	s.log.Info("plugin requested a recovery", "mode", string(mode), "reason", reason)
	return s.h.o.Services.RequestRecovery(ctx, string(mode), why)
}

func (s *services) SetFeature(_ context.Context, name string, enabled bool) error {
	if s.h.o.Services == nil {
		return ErrNoServices
	}
	s.log.Info("plugin set a feature flag", "feature", name, "enabled", enabled)
	return s.h.o.Services.SetFeature(name, enabled)
}

func (s *services) Log(_ context.Context, level sdk.LogLevel, msg string, keyvals ...any) error {
	msg, keyvals = safeLogText(msg), safeKeyvals(keyvals)
	switch level {
	case sdk.LogTrace:
		s.log.Trace(msg, keyvals...)
	case sdk.LogDebug:
		s.log.Debug(msg, keyvals...)
	case sdk.LogWarn:
		s.log.Warn(msg, keyvals...)
	case sdk.LogError:
		s.log.Error(msg, keyvals...)
	default:
		s.log.Info(msg, keyvals...)
	}
	return nil
}

// SnapshotToSDK converts a metrics Snapshot to the sdk's mirror of it, the
// form plugins receive.
func SnapshotToSDK(s metrics.Snapshot) sdk.Snapshot {
	return sdk.Snapshot{
		Time:   s.Time,
		Uptime: s.Uptime,
		Shard:  sdk.ShardInfo{ID: s.Shard.ID, Count: s.Shard.Count},
		Latency: sdk.Latency{Heartbeat: s.Latency.Heartbeat, HeartbeatAvg: s.Latency.HeartbeatAvg,
			RESTP50: s.Latency.RESTP50, RESTP95: s.Latency.RESTP95, RESTP99: s.Latency.RESTP99},
		Errors: sdk.Errors{Rate: s.Errors.Rate, InWindow: s.Errors.InWindow, Operations: s.Errors.Operations,
			Consecutive: s.Errors.Consecutive, Total: s.Errors.Total, Window: s.Errors.Window},
		Gateway: sdk.Gateway{State: s.Gateway.State, Connected: s.Gateway.Connected,
			HeartbeatInterval: s.Gateway.HeartbeatInterval, LastAckAge: s.Gateway.LastAckAge,
			Sequence: s.Gateway.Sequence, Reconnects: s.Gateway.Reconnects, Resumes: s.Gateway.Resumes,
			Identifies: s.Gateway.Identifies, Dispatches: s.Gateway.Dispatches, LastCloseCode: s.Gateway.LastCloseCode},
		REST: sdk.REST{Requests: s.REST.Requests, RateLimited: s.REST.RateLimited,
			ServerErrors: s.REST.ServerErrors, Failures: s.REST.Failures},
		Breaker:     sdk.BreakerView{State: s.Breaker.State, Failures: s.Breaker.Failures, Rejections: s.Breaker.Rejections},
		Health:      sdk.HealthView{Score: s.Health.Score, Status: s.Health.Status, Trend: s.Health.Trend},
		Degradation: sdk.DegradationView{Level: s.Degradation.Level, Since: s.Degradation.Since},
	}
}
