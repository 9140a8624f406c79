package orchestrator

import (
	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/gateway"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/telemetry"
)

// wireObserver turns the upstream connection's wire observations into
// Recorder calls. It runs on the connection's goroutine and never blocks:
// every Recorder method is O(1) and lock-free or briefly locked.
type wireObserver struct {
	rec   *metrics.Recorder
	tel   *telemetry.Telemetry
	onAck func()
}

func (w wireObserver) Observe(o gateway.Observation) {
	switch o.Kind {
	case gateway.ObsHello:
		w.rec.Hello(o.Interval)
	case gateway.ObsHeartbeatSent:
		w.rec.HeartbeatSent()
	case gateway.ObsAck:
		w.rec.HeartbeatAcked()
		w.tel.ObserveHeartbeatRTT(o.RTT)
		if w.onAck != nil {
			w.onAck()
		}
	case gateway.ObsSent:
		switch o.Op {
		case gateway.OpIdentify:
			w.rec.IdentifySent()
		case gateway.OpResume:
			w.rec.ResumeSent()
		}
	case gateway.ObsReceived:
		if o.Op == gateway.OpDispatch {
			w.rec.Dispatch(o.Seq)
		}
	case gateway.ObsReady:
		w.rec.OperationSucceeded()
	case gateway.ObsCloseSent:
		w.rec.CloseCode(o.CloseCode)
		w.tel.ObserveCloseSent(o.CloseCode)
	}
}

// restObserver feeds REST results to the Recorder and the telemetry.
type restObserver struct {
	rec *metrics.Recorder
	tel *telemetry.Telemetry
}

func (r restObserver) ObserveREST(res conn.RESTResult) {
	r.rec.ObserveREST(res.Latency, res.Status, res.Err != nil)
	r.tel.ObserveREST(res)
}

// probeOnAck counts a heartbeat ACK as a successful probe while the
// breaker is HALF_OPEN. A gateway connection is one attempt that lasts
// for hours, so "recovery_threshold successful probes" cannot mean that
// many new connections: it means the connection that got through proves
// itself with that many answered heartbeats (READY is the first).
func probeOnAck(b *breaker.Breaker) func() {
	return func() {
		if b.State() != breaker.StateHalfOpen {
			return
		}
		if done, err := b.Allow(); err == nil {
			done(nil)
		}
	}
}
