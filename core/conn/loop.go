package conn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/gateway"
)

// attempt describes the connection attempt in flight, for the RECOVERY_*
// events it produces.
type attempt struct {
	strategy string // "connect", "resume" or "reidentify"
	n        int
	trigger  string
	start    time.Time
	recovery bool
	// report tells the breaker how the attempt went, once: success at
	// READY (a healthy connection may last for days, and a HALF_OPEN
	// breaker waits for its probe), failure when it ends before READY.
	report func(error)
	once   sync.Once
	// reply, for an attempt a Planner asked for, receives nil at READY or
	// how the connection ended; such attempts publish no RECOVERY_* events
	// of their own (the Planner does).
	reply     chan error
	replyOnce sync.Once
}

func (a *attempt) answer(err error) {
	if a.reply != nil {
		a.replyOnce.Do(func() { a.reply <- err })
	}
}

func (a *attempt) done(err error) { a.once.Do(func() { a.report(err) }) }

// run is the recovery loop: one iteration per upstream connection.
func (c *Connection) run(ctx context.Context) {
	defer close(c.done)
	defer c.downstream.Wait()

	failures := 0        // attempts in a row that did not reach READY
	trigger := "start"   // why the next attempt happens
	recovering := false  // the next attempt is a recovery
	named := ""          // a strategy asked for by name through Recover
	var reply chan error // the next attempt answers a Planner's try
	var plan *planRun    // the Planner's run for the current failure
	for {
		if ctx.Err() != nil {
			c.setState(Stopped, "stopped")
			return
		}
		c.mu.Lock()
		sess := c.session
		c.mu.Unlock()

		hs := gateway.Handshake{}
		strategy := "connect"
		if sess != nil {
			hs.Resume = &gateway.ResumeState{Token: c.cfg.Token, SessionID: sess.id, Seq: sess.seq, URL: sess.resumeURL}
			strategy = "resume"
		} else {
			payload, err := c.identifyPayload()
			if err != nil {
				c.failWith(fmt.Errorf("conn: build IDENTIFY: %w", err))
				return
			}
			hs.Identify = payload
			shard := c.cfg.ShardID
			hs.BeforeIdentify = func(ctx context.Context) error { return c.cfg.IdentifyQueue.Wait(ctx, shard) }
			if recovering {
				strategy = "reidentify"
			}
		}
		if named != "" {
			strategy, named = named, ""
		}
		if recovering && c.cfg.ReconnectGate != nil {
			if err := c.cfg.ReconnectGate.Wait(ctx, c.cfg.ShardID, sess != nil); err != nil {
				if ctx.Err() != nil {
					continue // stopping: the top of the loop says so
				}
				c.log.Warn("reconnect gate failed; reconnecting anyway", "error", err)
			}
		}

		done := func(error) {}
		if c.cfg.Breaker != nil {
			d, err := c.cfg.Breaker.Allow()
			if err != nil {
				// An open breaker is a failure of its own: wait one backoff
				// step, never less than the first.
				wait := c.backoff.Next()
				if wait < c.cfg.ReconnectDelay {
					wait = c.cfg.ReconnectDelay
				}
				c.setState(BackingOff, fmt.Sprintf("circuit breaker: %v; next try in %s", err, wait.Round(time.Millisecond)))
				if !c.sleep(ctx, wait) {
					continue
				}
				continue
			}
			done = d
		}

		at := &attempt{strategy: strategy, n: failures + 1, trigger: trigger, start: c.cfg.Clock.Now(), recovery: recovering && reply == nil,
			report: done, reply: reply}
		reply = nil
		if at.recovery {
			c.cfg.Events.Publish(events.ForShard(at.start, c.cfg.ShardID,
				events.Recovery{Strategy: strategy, Attempt: at.n, Trigger: trigger}))
		}
		c.setState(Connecting, trigger)
		up := gateway.NewConn(gateway.Options{
			URL:              c.gatewayURL,
			Dialer:           c.cfg.GatewayDialer,
			Clock:            c.cfg.Clock,
			HandshakeTimeout: c.handshakeTimeout(),
			ZombieFactor:     c.cfg.ZombieFactor,
			Jitter:           c.cfg.Rand,
			Observer:         gateway.ObserverFunc(func(o gateway.Observation) { c.observe(o); c.onReady(o, at) }),
		})
		c.mu.Lock()
		c.current = up
		c.mu.Unlock()

		end := up.Run(ctx, hs, c.onDispatch)

		c.mu.Lock()
		c.current = nil
		c.mu.Unlock()
		if end.Ready {
			at.done(nil)
			if at.reply != nil && plan != nil {
				plan.succeeded = true
			}
		} else {
			at.done(end)
		}
		if at.recovery && !end.Ready {
			c.cfg.Events.Publish(events.ForShard(c.cfg.Clock.Now(), c.cfg.ShardID,
				events.Recovery{Completed: true, Strategy: strategy, Attempt: at.n, Trigger: at.trigger, Error: end.Error(),
					Duration: c.cfg.Clock.Since(at.start)}))
		}
		if ctx.Err() != nil {
			c.setState(Stopped, "stopped")
			return
		}

		// A recovery asked for from outside takes precedence.
		select {
		case req := <-c.recover:
			if req.mode == RecoverReidentify || req.mode == RecoverRestart {
				c.mu.Lock()
				c.session = nil
				c.mu.Unlock()
			}
			at.answer(end)
			c.setState(Reconnecting, req.mode.String()+": "+req.cause)
			trigger, recovering, failures = req.cause, true, 0
			if req.mode == RecoverRestart {
				named = req.mode.String()
			}
			c.backoff.Reset()
			continue
		default:
		}

		if end.Ready {
			failures = 0
			c.backoff.Reset()
		} else {
			failures++
		}
		delay, err := c.classify(end, failures)
		if err != nil {
			c.failWith(err)
			return
		}
		failure := events.Error{Source: "conn", Kind: end.Reason.String(), Message: end.Error(),
			Resumable: end.Reason == gateway.EndInvalidSession && end.Resumable}
		if end.Reason == gateway.EndClosed {
			failure.Kind, failure.CloseCode = "close", end.CloseCode
		}
		c.cfg.Events.Publish(events.ForShard(c.cfg.Clock.Now(), c.cfg.ShardID, failure))
		at.answer(end) // after the error event, so the two stay in order
		c.setState(Reconnecting, end.Error())
		trigger, recovering = end.Error(), true
		if c.cfg.Planner != nil {
			req, err := c.awaitPlan(ctx, &plan, failure)
			if err != nil {
				c.failWith(err)
				return
			}
			if req != nil {
				if req.mode == RecoverReidentify || req.mode == RecoverRestart {
					c.mu.Lock()
					c.session = nil
					c.mu.Unlock()
				}
				if req.mode == RecoverRestart {
					named = req.mode.String()
					c.closeSessionForRestart()
				}
				trigger, reply = "planner: "+req.mode.String(), req.reply
				// The Planner chooses how, the backoff still chooses when:
				// a strategy list must never become a reconnect storm.
				if delay > 0 {
					c.setState(BackingOff, fmt.Sprintf("waiting %s before attempt %d (%s)", delay.Round(time.Millisecond), failures+1, req.mode))
					c.sleep(ctx, delay)
				}
				if req.started != nil {
					req.started()
				}
				continue
			}
			if ctx.Err() != nil {
				continue
			}
			// The Planner handed the failure back: the loop's own choice.
		}
		if delay > 0 {
			c.setState(BackingOff, fmt.Sprintf("waiting %s before attempt %d", delay.Round(time.Millisecond), failures+1))
			c.sleep(ctx, delay)
		}
	}
}

// onReady marks the connection READY when the handshake completes.
func (c *Connection) onReady(o gateway.Observation, at *attempt) {
	if o.Kind != gateway.ObsReady {
		return
	}
	c.setState(Ready, o.Type+" received")
	at.done(nil)
	at.answer(nil)
	c.readyOne.Do(func() { close(c.readyCh) })
	if at.recovery {
		c.cfg.Events.Publish(events.ForShard(o.Time, c.cfg.ShardID,
			events.Recovery{Completed: true, Strategy: at.strategy, Attempt: at.n, Trigger: at.trigger, Success: true,
				Duration: o.Time.Sub(at.start)}))
	}
	c.mu.Lock()
	cur := c.current
	c.mu.Unlock()
	if cur != nil {
		c.flushPending(cur)
	}
}

// classify turns how a connection ended into the wait before the next
// attempt, clearing the session when it cannot be resumed, or into a
// fatal error.
func (c *Connection) classify(end gateway.End, failures int) (time.Duration, error) {
	if c.cfg.MaxReconnectAttempts > 0 && failures > c.cfg.MaxReconnectAttempts {
		return 0, fmt.Errorf("conn: gave up after %d failed attempts in a row (max_reconnect_attempts); last: %v", failures-1, end)
	}
	forget := func() {
		c.mu.Lock()
		c.session = nil
		c.mu.Unlock()
	}
	// A close code or op 9 that ends a session is about the session the
	// connection named: one that came before the IDENTIFY or RESUME went
	// out (a connection still waiting for HELLO, say) says nothing about
	// the session this loop holds, which may still resume. Keeping it costs
	// at most one RESUME that Discord refuses (op 9, 4009), after which
	// the loop forgets it; forgetting it would throw away a live session
	// and the dispatches Discord keeps for it.
	switch end.Reason {
	case gateway.EndClosed:
		switch ClassifyClose(end.CloseCode).Action {
		case ActionFatal:
			return 0, NewCloseError(end.CloseCode, end.CloseText)
		case ActionNewSession:
			if end.HandshakeSent {
				forget()
			}
		}
	case gateway.EndInvalidSession:
		if !end.Resumable {
			if end.HandshakeSent {
				forget()
			}
			lo, hi := c.cfg.InvalidSessionDelay[0], c.cfg.InvalidSessionDelay[1]
			wait := lo + time.Duration(c.cfg.Rand()*float64(hi-lo))
			if failures > 0 {
				if b := c.backoff.Next(); b > wait {
					wait = b
				}
			}
			return wait, nil
		}
	case gateway.EndIdentifyBlocked:
		if errors.Is(end.Err, ErrSessionStartLimit) {
			return 0, end.Err
		}
	}
	if failures == 0 {
		return 0, nil // the connection was healthy: try again at once
	}
	return c.backoff.Next(), nil
}

// failWith stops the connection for good.
func (c *Connection) failWith(err error) {
	c.mu.Lock()
	c.fatal = err
	c.mu.Unlock()
	c.log.Error("connection failed; no further attempts", "error", err)
	c.publishError("fatal", err.Error(), closeCodeOf(err), true)
	c.setState(Failed, err.Error())
}

func closeCodeOf(err error) int {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// handshakeTimeout is HandshakeTimeout, stretched by TimeoutScale while a
// degradation action asks for longer timeouts.
func (c *Connection) handshakeTimeout() time.Duration {
	if c.cfg.TimeoutScale == nil {
		return c.cfg.HandshakeTimeout
	}
	if d := c.cfg.TimeoutScale(c.cfg.HandshakeTimeout); d > 0 {
		return d
	}
	return c.cfg.HandshakeTimeout
}
