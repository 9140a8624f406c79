// Package events defines the events of lifeline's connection system and the
// bus that carries them.
//
// Every part of the core reports what it did as an Event: a connection
// changing state, the health status moving, the breaker tripping, a
// degradation level activating, a recovery being tried, a policy reload, a
// plugin starting, exiting or logging over its limit. Each Event has a Type, a Time, the Shard it
// concerns (NoShard for process-wide events) and typed Data that carries the
// previous and current value where that makes sense.
//
// The Bus never blocks the core: Publish hands the event to each
// subscriber's bounded queue and returns. A subscriber that falls behind
// loses events, and the Bus counts them (Subscription.Dropped and
// Bus.Dropped) so the loss is visible rather than silent. Events reach one
// subscriber in the order they were published.
package events
