package sdk

import (
	"time"

	pb "github.com/lifeline-bot/lifeline/sdk/proto"
)

// Snapshot is the bot's connection health at one tick, as the host's metrics
// built it. It mirrors lifeline's metrics snapshot field for field; the
// policy reference (docs/policy.md) describes each figure.
type Snapshot struct {
	// Time is when the snapshot was built; Uptime is the time since the
	// host's metrics started.
	Time   time.Time
	Uptime time.Duration

	Shard       ShardInfo
	Latency     Latency
	Errors      Errors
	Gateway     Gateway
	REST        REST
	Breaker     BreakerView
	Health      HealthView
	Degradation DegradationView
}

// ShardInfo says which shard a Snapshot describes.
type ShardInfo struct {
	ID    int
	Count int
}

// Latency holds round-trip figures.
type Latency struct {
	// Heartbeat is the last heartbeat round trip; HeartbeatAvg the mean over
	// the metrics window.
	Heartbeat    time.Duration
	HeartbeatAvg time.Duration
	// RESTP50, RESTP95 and RESTP99 are REST latency quantiles over the window.
	RESTP50 time.Duration
	RESTP95 time.Duration
	RESTP99 time.Duration
}

// Errors summarises failed operations over the metrics window.
type Errors struct {
	// Rate is failed / total operations over the window, in [0, 1].
	Rate float64
	// InWindow counts failures and Operations all operations in the window.
	InWindow   uint64
	Operations uint64
	// Consecutive counts failures since the last success; Total since start.
	Consecutive uint64
	Total       uint64
	// Window is the window's length.
	Window time.Duration
}

// Gateway describes the WebSocket connection.
type Gateway struct {
	// State is the connection state's name, e.g. "READY".
	State string
	// Connected is true while a session is READY or RESUMED.
	Connected bool
	// HeartbeatInterval is the interval HELLO gave.
	HeartbeatInterval time.Duration
	// LastAckAge is the time since the last heartbeat ACK.
	LastAckAge time.Duration
	// Sequence is the last dispatch sequence number.
	Sequence int64
	// Reconnects, Resumes, Identifies and Dispatches count since start.
	Reconnects uint64
	Resumes    uint64
	Identifies uint64
	Dispatches uint64
	// LastCloseCode is the last WebSocket close code; 0 if none.
	LastCloseCode int
}

// REST summarises HTTP traffic to Discord over the window.
type REST struct {
	Requests     uint64
	RateLimited  uint64
	ServerErrors uint64
	Failures     uint64
}

// BreakerView is the host's circuit breaker.
type BreakerView struct {
	// State is CLOSED, OPEN or HALF_OPEN.
	State      string
	Failures   uint64
	Rejections uint64
}

// HealthView is the health monitor's last verdict.
type HealthView struct {
	// Score is 0-100.
	Score float64
	// Status is HEALTHY, DEGRADED, UNHEALTHY or CRITICAL.
	Status string
	// Trend is improving, stable or degrading.
	Trend string
}

// DegradationView is the current degradation level.
type DegradationView struct {
	// Level is NONE, MINIMAL, MODERATE, SEVERE or CRITICAL.
	Level string
	Since time.Time
}

// SnapshotToProto converts s to its wire form.
func SnapshotToProto(s Snapshot) *pb.Snapshot {
	return &pb.Snapshot{
		TimeUnixNano: unixNano(s.Time),
		UptimeNanos:  int64(s.Uptime),
		Shard:        &pb.Shard{Id: int32(s.Shard.ID), Count: int32(s.Shard.Count)},
		Latency: &pb.Latency{
			HeartbeatNanos:    int64(s.Latency.Heartbeat),
			HeartbeatAvgNanos: int64(s.Latency.HeartbeatAvg),
			RestP50Nanos:      int64(s.Latency.RESTP50),
			RestP95Nanos:      int64(s.Latency.RESTP95),
			RestP99Nanos:      int64(s.Latency.RESTP99),
		},
		Errors: &pb.Errors{
			Rate:        s.Errors.Rate,
			InWindow:    s.Errors.InWindow,
			Operations:  s.Errors.Operations,
			Consecutive: s.Errors.Consecutive,
			Total:       s.Errors.Total,
			WindowNanos: int64(s.Errors.Window),
		},
		Gateway: &pb.Gateway{
			State:                  s.Gateway.State,
			Connected:              s.Gateway.Connected,
			HeartbeatIntervalNanos: int64(s.Gateway.HeartbeatInterval),
			LastAckAgeNanos:        int64(s.Gateway.LastAckAge),
			Sequence:               s.Gateway.Sequence,
			Reconnects:             s.Gateway.Reconnects,
			Resumes:                s.Gateway.Resumes,
			Identifies:             s.Gateway.Identifies,
			LastCloseCode:          int32(s.Gateway.LastCloseCode),
			Dispatches:             s.Gateway.Dispatches,
		},
		Rest: &pb.REST{
			Requests:     s.REST.Requests,
			RateLimited:  s.REST.RateLimited,
			ServerErrors: s.REST.ServerErrors,
			Failures:     s.REST.Failures,
		},
		Breaker:     &pb.Breaker{State: s.Breaker.State, Failures: s.Breaker.Failures, Rejections: s.Breaker.Rejections},
		Health:      &pb.Health{Score: s.Health.Score, Status: s.Health.Status, Trend: s.Health.Trend},
		Degradation: &pb.Degradation{Level: s.Degradation.Level, SinceUnixNano: unixNano(s.Degradation.Since)},
	}
}

// SnapshotFromProto converts the wire form back; a nil p gives the zero
// Snapshot, and missing sections are zero.
func SnapshotFromProto(p *pb.Snapshot) Snapshot {
	if p == nil {
		return Snapshot{}
	}
	l, e, g, r := p.GetLatency(), p.GetErrors(), p.GetGateway(), p.GetRest()
	return Snapshot{
		Time:   fromUnixNano(p.GetTimeUnixNano()),
		Uptime: time.Duration(p.GetUptimeNanos()),
		Shard:  ShardInfo{ID: int(p.GetShard().GetId()), Count: int(p.GetShard().GetCount())},
		Latency: Latency{
			Heartbeat:    time.Duration(l.GetHeartbeatNanos()),
			HeartbeatAvg: time.Duration(l.GetHeartbeatAvgNanos()),
			RESTP50:      time.Duration(l.GetRestP50Nanos()),
			RESTP95:      time.Duration(l.GetRestP95Nanos()),
			RESTP99:      time.Duration(l.GetRestP99Nanos()),
		},
		Errors: Errors{
			Rate:        e.GetRate(),
			InWindow:    e.GetInWindow(),
			Operations:  e.GetOperations(),
			Consecutive: e.GetConsecutive(),
			Total:       e.GetTotal(),
			Window:      time.Duration(e.GetWindowNanos()),
		},
		Gateway: Gateway{
			State:             g.GetState(),
			Connected:         g.GetConnected(),
			HeartbeatInterval: time.Duration(g.GetHeartbeatIntervalNanos()),
			LastAckAge:        time.Duration(g.GetLastAckAgeNanos()),
			Sequence:          g.GetSequence(),
			Reconnects:        g.GetReconnects(),
			Resumes:           g.GetResumes(),
			Identifies:        g.GetIdentifies(),
			LastCloseCode:     int(g.GetLastCloseCode()),
			Dispatches:        g.GetDispatches(),
		},
		REST: REST{
			Requests:     r.GetRequests(),
			RateLimited:  r.GetRateLimited(),
			ServerErrors: r.GetServerErrors(),
			Failures:     r.GetFailures(),
		},
		Breaker: BreakerView{State: p.GetBreaker().GetState(), Failures: p.GetBreaker().GetFailures(),
			Rejections: p.GetBreaker().GetRejections()},
		Health: HealthView{Score: p.GetHealth().GetScore(), Status: p.GetHealth().GetStatus(),
			Trend: p.GetHealth().GetTrend()},
		Degradation: DegradationView{Level: p.GetDegradation().GetLevel(),
			Since: fromUnixNano(p.GetDegradation().GetSinceUnixNano())},
	}
}

// unixNano keeps the zero time as 0 on the wire, so it comes back zero.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// ErrorInfoToProto converts e to its wire form.
func ErrorInfoToProto(e ErrorInfo) *pb.ErrorInfo {
	return &pb.ErrorInfo{Message: e.Message, CloseCode: int32(e.CloseCode), Kind: e.Kind, Source: e.Source, Fatal: e.Fatal, Resumable: e.Resumable}
}

// ErrorInfoFromProto converts the wire form back; nil gives the zero value.
func ErrorInfoFromProto(p *pb.ErrorInfo) ErrorInfo {
	return ErrorInfo{Message: p.GetMessage(), CloseCode: int(p.GetCloseCode()), Kind: p.GetKind(),
		Source: p.GetSource(), Fatal: p.GetFatal(), Resumable: p.GetResumable()}
}

// ThresholdToProto converts t to its wire form.
func ThresholdToProto(t Threshold) *pb.Threshold {
	return &pb.Threshold{Set: t.Set, IsDuration: t.IsDuration, Value: t.Value, DurationNanos: int64(t.Duration)}
}

// ThresholdFromProto converts the wire form back; nil gives no threshold.
func ThresholdFromProto(p *pb.Threshold) Threshold {
	return Threshold{Set: p.GetSet(), IsDuration: p.GetIsDuration(), Value: p.GetValue(),
		Duration: time.Duration(p.GetDurationNanos())}
}
