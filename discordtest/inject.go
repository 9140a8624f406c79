package discordtest

import (
	"fmt"
	"time"
)

// lastingKinds are the faults that stay in force for a Duration.
var lastingKinds = map[FaultKind]bool{
	FaultStallACKs: true, FaultDelayACKs: true, FaultOutage: true, FaultWithholdHello: true,
	FaultStallDispatches: true, FaultShedIdentify: true, FaultRESTLatency: true,
	FaultRESTErrors: true, FaultRESTRateLimit: true, FaultCloudflareBan: true,
	FaultLatencySpike: true, FaultGuildOutage: true,
}

// Inject applies a fault now. Lasting faults stay in force for
// f.Duration (until ClearFaults when 0); the others act once on the
// connections and sessions there are.
func (s *Server) Inject(f Fault) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("discordtest: inject: %w", err)
	}
	if s.isClosed() {
		return fmt.Errorf("discordtest: inject %s: %w", f.Kind, ErrClosed)
	}
	s.log.Info("fault", "kind", f.Kind, "shards", f.Shards, "duration", f.Duration)
	if lastingKinds[f.Kind] {
		if f.Kind == FaultOutage && f.Mode == "" {
			f.Mode = OutageRefuse
		}
		now := s.clk.Now()
		var until time.Time
		if f.Duration > 0 {
			until = now.Add(f.Duration)
		}
		if f.Kind == FaultGuildOutage {
			for _, ss := range s.sessionsFor(f.Shards) {
				for _, g := range ss.guilds {
					ss.dispatch("GUILD_DELETE", map[string]any{"id": g.ID, "unavailable": true})
				}
			}
		}
		id := s.faults.add(f, until)
		if f.Duration > 0 {
			t := s.clk.AfterFunc(f.Duration, func() { s.endFault(id) })
			s.mu.Lock()
			s.faultTimers = append(s.faultTimers, t)
			s.mu.Unlock()
		}
		return nil
	}
	switch f.Kind {
	case FaultDrop:
		for _, c := range s.connsFor(f.Shards) {
			c.teardown(DroppedByServer, 0)
		}
	case FaultClose:
		for _, c := range s.connsFor(f.Shards) {
			c.closeWith(f.Code, "discordtest fault")
		}
	case FaultMassDisconnect:
		for _, c := range s.connsFor(nil) {
			if f.Code == 0 {
				c.teardown(DroppedByServer, 0)
			} else {
				c.closeWith(f.Code, "discordtest fault")
			}
		}
	case FaultReconnect:
		for _, c := range s.connsFor(f.Shards) {
			c.sendOp(OpReconnect, nil)
		}
	case FaultHeartbeatRequest:
		for _, c := range s.connsFor(f.Shards) {
			c.sendOp(OpHeartbeat, nil)
		}
	case FaultInvalidSession:
		for _, c := range s.connsFor(f.Shards) {
			if c.session() != nil {
				c.invalidSession(f.Resumable, "invalid_session fault")
			}
		}
	case FaultInvalidateSessions:
		for _, c := range s.connsFor(nil) {
			if c.session() != nil {
				c.invalidSession(false, "all sessions invalidated")
			}
		}
		for _, ss := range s.sessionsFor(nil) {
			ss.end("all sessions invalidated")
		}
	case FaultDispatch:
		n := f.Count
		if n == 0 {
			n = 1
		}
		for _, ss := range s.sessionsFor(f.Shards) {
			for i := 0; i < n; i++ {
				ss.emitGeneratedMessage()
			}
		}
	}
	return nil
}

// endFault ends a lasting fault when its duration is over.
func (s *Server) endFault(id uint64) {
	if a, ok := s.faults.remove(id); ok {
		s.afterFault(a)
	}
}

// afterFault undoes what a lasting fault held back.
func (s *Server) afterFault(a activeFault) {
	if s.isClosed() {
		return
	}
	switch a.Kind {
	case FaultStallDispatches:
		for _, ss := range s.sessionsFor(a.Shards) {
			ss.flush()
		}
	case FaultGuildOutage:
		now := s.clk.Now()
		for _, ss := range s.sessionsFor(a.Shards) {
			for _, g := range ss.guilds {
				ss.dispatch("GUILD_CREATE", guildCreateData(g, now))
			}
		}
	}
}

// ClearFaults ends every lasting fault now.
func (s *Server) ClearFaults() {
	for _, a := range s.faults.clear() {
		s.afterFault(a)
	}
}

// stopFaultTimers stops the timers of lasting faults (on Close).
func (s *Server) stopFaultTimers() {
	s.mu.Lock()
	ts := s.faultTimers
	s.faultTimers = nil
	s.mu.Unlock()
	for _, t := range ts {
		t.Stop()
	}
}

// StallACKs stops heartbeat ACKs on the shards (all when none given) for
// d, so their connections look like zombies.
func (s *Server) StallACKs(d time.Duration, shards ...int) error {
	return s.Inject(Fault{Kind: FaultStallACKs, Duration: d, Shards: shardList(shards)})
}

// DelayACKs sends every ACK on the shards delay late, for d.
func (s *Server) DelayACKs(delay, d time.Duration, shards ...int) error {
	return s.Inject(Fault{Kind: FaultDelayACKs, Delay: delay, Duration: d, Shards: shardList(shards)})
}

// DropConnections cuts the shards' TCP connections without a close frame.
func (s *Server) DropConnections(shards ...int) error {
	return s.Inject(Fault{Kind: FaultDrop, Shards: shardList(shards)})
}

// CloseConnections closes the shards' connections with code.
func (s *Server) CloseConnections(code int, shards ...int) error {
	return s.Inject(Fault{Kind: FaultClose, Code: code, Shards: shardList(shards)})
}

// SendReconnect sends op 7 RECONNECT on the shards' connections.
func (s *Server) SendReconnect(shards ...int) error {
	return s.Inject(Fault{Kind: FaultReconnect, Shards: shardList(shards)})
}

// SendInvalidSession sends op 9 with d=resumable on the shards'
// connections.
func (s *Server) SendInvalidSession(resumable bool, shards ...int) error {
	return s.Inject(Fault{Kind: FaultInvalidSession, Resumable: resumable, Shards: shardList(shards)})
}

// RequestHeartbeat sends op 1 on the shards' connections.
func (s *Server) RequestHeartbeat(shards ...int) error {
	return s.Inject(Fault{Kind: FaultHeartbeatRequest, Shards: shardList(shards)})
}

// Outage refuses (OutageRefuse) or black-holes (OutageBlackhole) new
// gateway connections for d.
func (s *Server) Outage(mode OutageMode, d time.Duration) error {
	return s.Inject(Fault{Kind: FaultOutage, Mode: mode, Duration: d})
}

// WithholdHello sends no HELLO on new connections for d.
func (s *Server) WithholdHello(d time.Duration) error {
	return s.Inject(Fault{Kind: FaultWithholdHello, Duration: d})
}

// StallDispatches holds the shards' dispatches back for d while ACKs go
// on; they are sent when the stall ends.
func (s *Server) StallDispatches(d time.Duration, shards ...int) error {
	return s.Inject(Fault{Kind: FaultStallDispatches, Duration: d, Shards: shardList(shards)})
}

// InvalidateAllSessions ends every session (op 9 d=false where connected).
func (s *Server) InvalidateAllSessions() error {
	return s.Inject(Fault{Kind: FaultInvalidateSessions})
}

// ShedIdentify answers every IDENTIFY with op 9 d=false for d.
func (s *Server) ShedIdentify(d time.Duration) error {
	return s.Inject(Fault{Kind: FaultShedIdentify, Duration: d})
}

// RESTLatency delays every REST response by delay, for d.
func (s *Server) RESTLatency(delay, d time.Duration) error {
	return s.Inject(Fault{Kind: FaultRESTLatency, Delay: delay, Duration: d})
}

// RESTErrors fails a rate share of REST requests with status (500 when 0),
// for d.
func (s *Server) RESTErrors(rate float64, status int, d time.Duration) error {
	return s.Inject(Fault{Kind: FaultRESTErrors, Rate: rate, Status: status, Duration: d})
}

// RESTRateLimitStorm answers every REST request with 429 for d.
func (s *Server) RESTRateLimitStorm(global bool, retryAfter, d time.Duration) error {
	return s.Inject(Fault{Kind: FaultRESTRateLimit, Global: global, RetryAfter: retryAfter, Duration: d})
}

// CloudflareBan answers every REST request with Cloudflare's 1015 page for
// d.
func (s *Server) CloudflareBan(d time.Duration) error {
	return s.Inject(Fault{Kind: FaultCloudflareBan, Duration: d})
}

// LatencySpike delays every gateway frame sent and every REST response by
// delay, for d.
func (s *Server) LatencySpike(delay, d time.Duration) error {
	return s.Inject(Fault{Kind: FaultLatencySpike, Delay: delay, Duration: d})
}

// MassDisconnect ends every gateway connection at once: dropped when code
// is 0, else closed with code.
func (s *Server) MassDisconnect(code int) error {
	return s.Inject(Fault{Kind: FaultMassDisconnect, Code: code})
}

// GuildOutage makes the shards' guilds unavailable (GUILD_DELETE) and
// brings them back (GUILD_CREATE) after d.
func (s *Server) GuildOutage(d time.Duration, shards ...int) error {
	return s.Inject(Fault{Kind: FaultGuildOutage, Duration: d, Shards: shardList(shards)})
}

func shardList(shards []int) []int {
	if len(shards) == 0 {
		return nil
	}
	return append([]int(nil), shards...)
}
