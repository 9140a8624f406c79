package shard

import (
	"time"

	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/gateway"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// wireObserver turns one shard's wire observations into calls on its
// Recorder. It runs on the connection's goroutines and never blocks: every
// Recorder method is O(1).
type wireObserver struct {
	rec  *metrics.Recorder
	brk  *breaker.Breaker
	next gateway.Observer // the template's Observer, if any
	// onIdentify is told when an IDENTIFY was written (the pacer).
	onIdentify func(at time.Time)
}

func (w wireObserver) Observe(o gateway.Observation) {
	switch o.Kind {
	case gateway.ObsHello:
		w.rec.Hello(o.Interval)
	case gateway.ObsHeartbeatSent:
		w.rec.HeartbeatSent()
	case gateway.ObsAck:
		w.rec.HeartbeatAcked()
		probeOnAck(w.brk)
	case gateway.ObsSent:
		switch o.Op {
		case gateway.OpIdentify:
			w.rec.IdentifySent()
			if w.onIdentify != nil {
				w.onIdentify(o.Time)
			}
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
	}
	if w.next != nil {
		w.next.Observe(o)
	}
}

// probeOnAck counts an answered heartbeat as a successful probe while the
// shard's breaker is HALF_OPEN: a gateway connection is one attempt that
// lasts for hours, so it proves itself with answered heartbeats (READY
// being the first), as the single-shard orchestrator does.
func probeOnAck(b *breaker.Breaker) {
	if b == nil || b.State() != breaker.StateHalfOpen {
		return
	}
	if done, err := b.Allow(); err == nil {
		done(nil)
	}
}

// shardEvents is the Publisher a shard's connection and breaker publish
// to. It stamps process-wide events (the breaker's) with the shard, feeds
// the shard's Recorder synchronously (so no metric depends on a bus
// subscriber keeping up, whatever the number of shards), lets the manager
// follow the shard's state, and forwards every event to the manager's
// Publisher.
type shardEvents struct {
	sh   *Shard
	next events.Publisher
}

func (p shardEvents) Publish(e events.Event) {
	if e.Shard == events.NoShard {
		e.Shard = p.sh.id
	}
	p.sh.record(e)
	p.next.Publish(e)
}

// record feeds one of the shard's events into its Recorder and state.
func (s *Shard) record(e events.Event) {
	switch d := e.Data.(type) {
	case events.StateChange:
		ready := d.To == conn.Ready.String()
		s.rec.SetGatewayState(d.To, ready)
		if ready {
			s.everReady.Store(true)
		}
		switch d.To {
		case conn.Reconnecting.String(), conn.BackingOff.String(), conn.Failed.String(), conn.Stopped.String():
			// The attempt ended: if it had not identified yet, let the
			// next shard of its bucket go rather than hold the whole
			// bucket behind one shard.
			if s.slot != nil {
				s.slot.pass()
			}
			if s.pacer != nil {
				s.pacer.abandon(s.id)
			}
			if d.To == conn.Failed.String() && s.onFailed != nil {
				s.onFailed(s)
			}
		}
	case events.Error:
		if d.Source == "conn" {
			s.rec.OperationFailed()
		}
		if d.CloseCode != 0 {
			s.rec.CloseCode(d.CloseCode)
		}
	case events.Recovery:
		if !d.Completed {
			s.rec.ReconnectStarted()
		}
	}
}
