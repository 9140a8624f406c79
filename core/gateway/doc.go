// Package gateway speaks Discord's gateway protocol on lifeline's behalf.
//
// lifeline does not let discordgo talk to Discord's gateway directly: the
// measured gaps in discordgo v0.29.0 (zombie detection after five heartbeat
// intervals, fatal close codes retried forever, op 9 answered without
// reading its flag, a deadlock when op 7 arrives during Open, an Open
// without a deadline, stale heartbeat goroutines, no resume_gateway_url)
// all live in its gateway loop. Instead, this package holds the two halves
// of a relay:
//
//   - Conn is lifeline's own connection to Discord (the upstream): it dials,
//     reads HELLO under a deadline, IDENTIFYs or RESUMEs, heartbeats with
//     jitter, detects a zombie connection from the age of the last ACK,
//     and reports how the connection ended (close code, op 7, op 9 and its
//     flag, zombie, read error) so the caller can choose the recovery.
//   - Relay is the gateway discordgo sees (the downstream): an in-process
//     WebSocket server reached through the Session's own websocket.Dialer
//     over an in-memory connection. It answers HELLO, IDENTIFY (with the
//     READY lifeline received upstream) and heartbeats locally, delivers
//     every dispatch exactly once and in order, and forwards the bot's own
//     sends (presence, voice state, member requests) upstream. It runs no
//     goroutine: what the Session writes is parsed and answered within its
//     write, and what the relay sends waits in a queue the Session's
//     reader drains (dispatches until it has read them, which is the
//     back-pressure lifeline's reader feels).
//
// The discordgo Session therefore keeps one healthy connection for its
// whole life while lifeline resumes, re-identifies and backs off behind it;
// the bot's handlers stay on the one Session it was given.
package gateway
