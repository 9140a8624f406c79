// Package conn runs lifeline's connection to Discord over discordgo: one
// managed connection per shard around a *discordgo.Session. This file
// describes the building blocks the connection loop stands on; each is
// usable and tested on its own.
//
// # Gateway tap (tap.go, frame.go, scan.go, observer.go)
//
// discordgo v0.29.0 does not report close codes, op 7, op 9, heartbeat
// ACK times or dial errors. The tap makes them observable without forking
// it: Tap.Dialer returns a *websocket.Dialer for Session.Dialer whose
// connections pass every byte through unchanged while parsing a copy.
//
//   - Framing follows RFC 6455: FIN, RSV, opcode, MASK, 7/16/64-bit
//     lengths, client masking, fragmented messages with control frames
//     between the fragments, and close frames with their status code
//     (1005 when a close frame has none). Protocol violations (unmasked
//     client frames, masked server frames, reserved opcodes, long or
//     fragmented control frames, stray continuations) are reported as
//     KindMalformed and parsing goes on; only a 64-bit length with its top
//     bit set, an upgrade header over 64 KiB or a refused upgrade stop
//     parsing for that direction. The bytes are never changed or delayed
//     either way.
//   - Text messages are read by a streaming scanner that neither buffers
//     the payload nor allocates (except a dispatch name the first time a
//     connection sees it, and strings it reports): it extracts op, s, t
//     and d, and inside d only heartbeat_interval, session_id,
//     resume_gateway_url, seq, intents, shard and compress. The IDENTIFY
//     and RESUME token is skipped byte by byte and never copied.
//   - Binary messages (discordgo's zlib compression, off in lifeline:
//     Identify.Compress = false) are counted as KindBinary, not decoded.
//   - For wss:// the tap does the TLS handshake itself (NetDialTLSContext)
//     and wraps the *tls.Conn, so it reads plaintext frames; ws:// (the
//     fake Discord) is wrapped directly. The Dialer uses no proxy and no
//     permessage-deflate.
//
// Each finding goes to an Observer as an Observation (KindHello,
// KindHeartbeat, KindHeartbeatAck with its latency, KindDispatch,
// KindReady with session id and resume URL, KindResumed, KindReconnect,
// KindInvalidSession with its d, KindIdentify, KindResume, KindClose with
// the code and who sent it, KindConnEnd, ...), numbered by connection so
// that late writes from a stale discordgo goroutine can be told apart.
// Observe runs on the connection's goroutine; AsyncObserver puts a
// bounded, dropping queue in between for observers that may block.
//
// # REST transport (transport.go)
//
// Transport is the http.RoundTripper for Session.Client: it reports each
// request's method, sanitized route, status, latency, 429 details
// (retry_after, global, scope, bucket, and whether it looks like a
// Cloudflare ban) or transport error to a RESTObserver, and can send
// requests aimed at Discord's hosts to another base URL (the fake
// Discord), keeping path and query. It never reads the Authorization
// header, refuses plain-http base URLs to non-loopback hosts, and by
// default clones http.DefaultTransport so each Session has its own
// connection pool.
//
// # Intents by name (intents.go)
//
// ParseIntents maps names such as "Guilds", "GUILD_MESSAGES" or
// "IntentMessageContent" to discordgo.Intent; an unknown name is an
// *UnknownIntentError naming the closest valid name and listing all of
// them. IntentNames and FormatIntents go the other way; PrivilegedIn picks
// out GuildMembers, GuildPresences and MessageContent.
//
// # Close codes (closecodes.go)
//
// ClassifyClose maps every Discord gateway close code and the RFC 6455
// codes to an action: ActionResume, ActionNewSession (4007, 4009) or
// ActionFatal (4004, 4010-4014), with an operator-facing hint. A
// *CloseError for a fatal code matches its sentinel (ErrAuthenticationFailed,
// ErrInvalidShard, ErrShardingRequired, ErrInvalidAPIVersion,
// ErrInvalidIntents, ErrDisallowedIntents) and ErrFatalClose with
// errors.Is. Unknown codes resume with backoff. The connection loop
// forgets its session on a new-session code, or on op 9 d=false, only
// when the connection had sent its IDENTIFY or RESUME: one that arrives
// before (a connection still waiting for HELLO) cannot be about the
// session the loop holds, which it RESUMEs next.
//
// # Backoff (backoff.go)
//
// Backoff is capped exponential backoff with jitter:
//
//	ceiling(n) = min(Max, Base * Multiplier^n)
//	lo(n)      = max(Floor, MinShare * ceiling(n))
//	wait(n)    = lo(n) + r * (ceiling(n) - lo(n)),  r uniform in [0, 1)
//
// with n the attempts since the last Reset. The connection loop uses
// MinShare 0.5 by default (Config.BackoffMinShare): each wait is at least
// half its ceiling, so an outage of 10s with a 5s first step sees at most
// three failed attempts (at 0, after >= 2.5s, after >= 7.5s) and cannot
// open a breaker that needs five. Envelope(n) returns the allowed
// [lo(n), ceiling(n)] so tests can check that no attempt ever
// comes sooner or later than allowed. The random source is injectable.
//
// # Watchdog (watchdog.go)
//
// Watchdog.Run calls a function that may hang (Session.Open waits forever
// for a HELLO that never comes; Session.Close sleeps holding the session
// lock) under a deadline from the injected clock. On timeout it returns
// ErrWatchdogTimeout and abandons the call: Go cannot stop a goroutine, so
// it keeps running, counted by Abandoned and Lingering until it returns.
// The caller must never touch what the abandoned call was working on
// again (for a Session: build a new one).
//
// # Starting from a saved session (resume.go)
//
// Connection.SavedSession returns what a RESUME needs (session_id, the last
// sequence delivered to the bot, resume_gateway_url, READY's user) once the
// connection has been READY; after Stop, which closes with 4000, it is the
// state another process needs to carry the shard on. A Connection whose
// Config.Resume holds such a SavedSession RESUMEs it on its first attempt
// instead of IDENTIFYing: no identify slot and no session start are spent.
// Because discordgo must be attached before Discord replays the missed
// dispatches (they come before RESUMED), the bot's Session is shown a READY
// built from the saved session at Start: its session ID, its user, and no
// guilds (Discord does not send GUILD_CREATEs again on a RESUME, so a
// state cache starts empty in the new process). When Discord refuses the
// RESUME (op 9 d=false, or a close code that ends the session) the loop
// IDENTIFYs through the identify queue as after any lost session, and the
// Session gets that session's READY.
package conn
