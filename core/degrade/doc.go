// Package degrade makes degradation levels change what a bot actually does,
// and undoes those changes cleanly when conditions improve.
//
// # Levels
//
// There are five levels, NONE < MINIMAL < MODERATE < SEVERE < CRITICAL
// (Level, the policy's own type). A policy's degradation block declares
// some of them, each with a condition and a list of actions (a Plan); each
// tick the policy's Decision names the most severe level whose condition
// holds (the Target) and whether its recover condition holds.
//
// # Going up, going down: hysteresis
//
// The Engine climbs at once: when the Target is above the current level,
// every declared level up to it is entered in the same call and their
// actions applied, least severe level first, each level's actions in the
// order the policy lists them. An action named by several levels is applied
// once, for the lowest.
//
// It comes down slowly, one level at a time:
//
//	step down when   Target.Level < current level
//	            and  Recover has held on every Apply since time t0
//	            and  now - t0 >= RecoveryDelay
//
// Stepping down leaves the highest entered level only: its actions are
// rolled back in the reverse of the order they were applied (an action
// still named by a lower level stays). t0 then restarts at the step, so
// each further level needs RecoveryDelay of its own. An Apply where Recover
// is false, or where the Target is back at or above the current level,
// resets t0: a condition that flaps faster than RecoveryDelay never steps
// the level down. Time comes from Settings.Clock.
//
// # Manual control
//
// Activate(level, actions, reason) puts the engine at level now, in either
// direction, and holds it there: Apply keeps recording the policy's Target
// but does not follow it until Deactivate, which rolls back every action
// (manual or not) and hands control back to the policy. Both publish an
// event even when the level does not move, so every operator action is
// on record.
//
// # Failures, retries and what the level means
//
// An Action's Apply or Rollback that returns an error (or panics) is
// reported: an ERROR_OCCURRED event (source "degrade", kind "action_apply"
// or "action_rollback"), a WARN log line and an *ActionError in the
// Result. It is then retried by later calls (Apply, ApplyDecision, Tick,
// Activate, Deactivate, Retry), never dropped: after the n-th consecutive
// failure the next attempt waits RetryInterval·2^(n-1), at most
// MaxRetryInterval. The other actions do not wait for it: a failed action
// does not stop the rest of its level (or higher levels) from applying,
// and a failed rollback does not stop the other rollbacks of the level.
// A level being left blocks further steps down until its rollbacks have
// all succeeded, so levels are always left in order.
//
// The engine's Level is consistent with the actions in effect, in this
// sense: going up, a level is reached only when every action of it and of
// every level below it has been applied; going down, a level is left only
// when every action it applied has been rolled back. So Level never claims
// more protection than is in place on the way up, nor less degradation than
// remains on the way down. Target (in Result and Diagnostics) is where the
// engine is heading; Diagnostics lists the actions in effect and the
// failed operations awaiting a retry.
//
// # Events and history
//
// A call that applies actions or raises the level publishes
// DEGRADATION_ACTIVATED; one that rolls back actions or lowers the level
// publishes DEGRADATION_DEACTIVATED (before ACTIVATED when a call does
// both). The data (events.Degradation) carries the levels before and after,
// the actions that changed in that call in the order they ran, the reason
// (the policy condition, the hysteresis step or the operator's words) and
// whether manual control caused it. History keeps the last HistorySize
// levels reached, each with its reason, its actions, when it started and
// how long it lasted.
//
// # The built-in actions
//
// Each acts on a real component, which a Kit builds:
//
//	reduce_logging_level             raises an hclog.Logger's level (default WARN); restores it
//	disable_analytics                Features: ClassAnalytics off
//	increase_timeouts                Timeouts: multiplier = factor (default 2), read by Transport
//	disable_non_critical_features    Features: ClassOptional and ClassAnalytics off
//	reduce_concurrent_requests       Transport: at most N requests at once (default 4)
//	enable_aggressive_caching        Transport: GETs served from a bounded TTL cache
//	enable_read_only_mode            Transport: POST/PUT/PATCH/DELETE refused with ErrReadOnly unless Essential
//	shutdown_non_essential_services  Services: non-essential services stopped; restarted on rollback
//
// # Wiring
//
// The orchestrator builds a Kit and an Engine once, puts Kit.Transport in
// front of its observing REST transport (so refused and cached requests
// never count as Discord's answers), and drives the Engine from its tick:
//
//	kit := degrade.NewKit(degrade.KitSettings{Logger: logger,
//		Transport: degrade.TransportSettings{Next: observingREST, Clock: clk}})
//	eng, _ := degrade.New(degrade.Settings{Clock: clk, Events: bus, Logger: logger,
//		Policy: watcher.Policy, Actions: kit.Actions()})
//	connConfig.RESTTransport = kit.Transport
//
//	// each tick
//	rec.SetDegradation(eng.View())
//	snap := rec.Build()
//	d := pol.Evaluate(&snap)
//	eng.ApplyDecision(ctx, pol, d) // or eng.Tick(ctx, &snap)
//
// The bot declares its features (Features.Register) and background
// services (Services.Register), asks Features.Enabled before optional work,
// and marks the REST calls that must go through with Essential (and, if it
// likes, a Priority) on the context it passes to discordgo with
// discordgo.WithContext.
package degrade
