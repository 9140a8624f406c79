// Package discordtest is a fake Discord for tests, benchmarks and
// rehearsals: the gateway and a REST subset on one 127.0.0.1 port, faults
// you can inject while clients are connected, scripted outage scenarios,
// and a ledger of everything said on the wire. It is named after
// net/http/httptest and used the same way.
//
// # Quick start
//
//	srv, err := discordtest.NewServer(discordtest.Options{Scale: 100})
//	if err != nil { ... }
//	defer srv.Close()
//
//	s, _ := discordgo.New("Bot " + srv.Token())
//	s.Client = srv.Client()  // every REST request goes to the fake
//	s.Dialer = srv.Dialer()  // a Dialer of its own, no shared default
//	if err := s.Open(); err != nil { ... } // READY from the fake
//
//	srv.DropConnections()    // cut the TCP connection: s RESUMEs
//	lost := srv.Ledger().Lost(srv.Sessions()[0].ID)
//
// No discordgo package variable is touched: discordgo asks
// GET https://discord.com/api/v9/gateway for the gateway URL, the
// Transport behind Client sends that request (like every other) to the
// fake, and the fake answers with its own ws://127.0.0.1:PORT/gateway.
// Clients in other languages use RESTURL and GatewayURL directly.
//
// # REST
//
// Under /api/v9 and /api/v10: GET /gateway, GET /gateway/bot (url,
// shards, session_start_limit with total, remaining, reset_after in ms and
// max_concurrency), GET /users/@me, and POST, GET and PATCH of channel
// messages (a message posted in a guild's channel is also dispatched as
// MESSAGE_CREATE to the shard that holds the guild). Authorization must be
// "Bot <token>" (401 otherwise). Every response carries X-RateLimit-Limit,
// -Remaining, -Reset (epoch seconds), -Reset-After (seconds) and -Bucket.
// Each route has a bucket, limited per major parameter (the channel) to
// RESTBucketLimit requests per RESTBucketWindow, and all routes share
// GlobalLimit per GlobalWindow. A request over a limit gets 429 with
// {"message", "retry_after" (float seconds), "global"} and the
// X-RateLimit-Scope ("user", "global" or "shared"), X-RateLimit-Global and
// Retry-After headers. InvalidRequestLimit invalid requests (401, 403, 429
// except scope shared) within InvalidRequestWindow earn a Cloudflare ban:
// 429 with the HTML body "error code: 1015" and no rate-limit headers.
//
// # Gateway
//
// JSON encoding in text frames. When IDENTIFY has compress=true, every
// later frame the fake sends is one zlib stream in a binary frame (what
// discordgo's default Identify.Compress=true expects); with
// ?compress=zlib-stream the whole connection shares one zlib context with
// a sync flush per message. The fake sends HELLO, then answers:
//
//   - IDENTIFY: a bad token closes with 4004, a shard outside
//     [0, num_shards) with 4010, a shard that would hold more than
//     MaxGuildsPerShard guilds with 4011, unknown or missing intents with
//     4013, a privileged intent not in PrivilegedIntents with 4014. A second
//     IDENTIFY in IdentifyWindow for the same bucket (shard_id %
//     MaxConcurrency) gets op 9 d=false. Otherwise READY (session_id,
//     resume_gateway_url, shard, the shard's guilds as unavailable), then
//     one GUILD_CREATE per guild of the shard, where a guild belongs to
//     shard (guild_id >> 22) % num_shards.
//   - The session-start budget: SessionStartTotal IDENTIFYs per
//     SessionStartReset. As on Discord, the IDENTIFY that exceeds it ends
//     every session and resets the token: every connection closes with
//     4004 and REST answers 401 until ResetSessionStartLimit.
//   - HEARTBEAT: HEARTBEAT_ACK, and the d it carries is recorded as the
//     client's acknowledged sequence. No heartbeat for HeartbeatTimeout
//     ends the session and closes with 4009.
//   - RESUME (on the resume URL or the gateway URL): the dispatches after
//     seq, in order, then RESUMED; a seq the session never reached closes
//     with 4007; a session disconnected longer than SessionExpiry closes
//     with 4009; an unknown or ended session gets op 9 d=false.
//   - More than SendLimit frames within SendLimitWindow closes with 4008;
//     an unknown opcode with 4001, undecodable JSON or a frame over 4096
//     bytes with 4002, an op other than HEARTBEAT before IDENTIFY with 4003,
//     IDENTIFY or RESUME on an authenticated connection with 4005.
//   - A client close with 1000 or 1001 ends the session; any other close or
//     a lost connection leaves it resumable for SessionExpiry.
//   - The fake closing a connection with a code that ends sessions (4004,
//     4007, 4009, 4010-4014) ends the session the connection carries, or,
//     when a RESUME crossed the close on the wire (read after the fake
//     decided to close), the session that RESUME named: the client got the
//     code for an answer to it. A connection that named no session ends
//     none.
//
// Every dispatch, READY and RESUMED included, has the next sequence
// number of its session. DispatchInterval generates a MESSAGE_CREATE per
// session at a steady rate; EmitMessage and Dispatch send one on demand.
//
// # Time scale
//
// Every duration defaults to Discord's value divided by Options.Scale, so
// Scale 1000 covers a minute of Discord time in 60 ms. Options.Clock
// drives every timer and window; with clock.NewFake a test moves time
// itself (session expiry, identify windows, rate-limit resets, fault
// durations) without sleeping. Network I/O deadlines stay on the wall
// clock.
//
// A client's frame is timed when it arrived, before the fake decodes or
// handles it, and that time is what the identify window, the send limit
// and the ledger use. On Linux, with the real clock, it is the kernel's
// receive time of the frame's bytes (SO_TIMESTAMPNS), which on loopback is
// the moment the client sent them; otherwise (a fake clock, another
// system, or bytes the kernel did not stamp) it is the moment the fake
// read the frame. So the fake's own delays, which a busy machine stretches
// to tens of milliseconds whatever the Scale, do not make a client that
// spaced two IDENTIFYs a window apart look faster than it was. The
// identify check compares an IDENTIFY with the nearest of its bucket's
// recent accepted ones, before or after it, since readers of different
// connections may handle frames in another order than they arrived. The
// kernel's time is that of the last bytes a read returned: a frame read
// together with bytes the client sent after it (a reader that fell
// behind) arrived at some time between the frame before it and that time,
// which the ledger records as Frame.ArrivedAfter and
// IdentifyRecord.ArrivedAfter, and the identify check and the send limit
// take the arrival inside those bounds most favourable to the client.
//
// # Faults
//
// Inject applies a Fault; the typed methods (StallACKs, DelayACKs,
// DropConnections, CloseConnections, SendReconnect, SendInvalidSession,
// RequestHeartbeat, Outage, WithholdHello, StallDispatches,
// InvalidateAllSessions, ShedIdentify, RESTLatency, RESTErrors,
// RESTRateLimitStorm, CloudflareBan, LatencySpike, MassDisconnect,
// GuildOutage) are shorthands; the dispatch kind sends MESSAGE_CREATEs on
// demand. Per-shard faults take shard IDs, none
// meaning every shard. Lasting faults end after their Duration, or at
// ClearFaults.
//
// # Scenarios
//
// A scenario file is HCL with one step block per fault, labelled with the
// fault kind, at a time offset:
//
//	name        = "zombie"
//	description = "shard 0 stops getting ACKs, then its TCP connection dies"
//
//	step "stall_acks" {
//	  at       = "10s"
//	  duration = "5m"
//	  shards   = [0]
//	}
//	step "drop" {
//	  at     = "3m"
//	  shards = [0]
//	}
//
// Attributes: at (required), duration, delay, retry_after (duration
// strings), shards (a list of shard IDs; omitted means every shard), code,
// resumable, rate, status, global, mode ("refuse" or "blackhole") and
// count; each fault kind takes only the ones it uses. ParseScenario and
// LoadScenario check a file and report every problem with its file, line,
// column and reason (a *ScenarioError wrapping ErrInvalidScenario);
// Scenario.Run plays it against a Server, dividing offsets, durations and
// delays by the server's Scale. The files under scenarios/ are embedded:
// Scenarios lists them (identify-storm, invalid-session-loop,
// ratelimit-storm, rolling-outage, stalled-sessions, zombie) and
// BuiltinScenario parses one by name.
//
// # Running it standalone
//
// A command that serves the fake needs only this package: NewServer with
// Addr, Token and HeartbeatInterval (or Scale) from its flags, RESTURL and
// GatewayURL to print, LoadScenario or BuiltinScenario and Scenario.Run
// (its onStep callback reports progress) for --scenario, and Close on
// SIGINT.
//
// # Ledger
//
// Ledger records, per connection, every frame sent and received with its
// time (tokens redacted) and how the connection ended; per session, every
// dispatch with the connections it was written on, every sequence the
// client acknowledged and every RESUME with what it replayed; every
// IDENTIFY with its bucket and outcome; every REST request; every limit or
// rule a client broke (Violations). Lost, Unacknowledged and Undelivered
// tell a test whether a dispatch went missing; MaxIdentifiesPerWindow and
// ConnectionsPerShard summarise identify pacing and reconnects.
//
// The ledger keeps everything for the server's lifetime, so a
// long-running fake grows with its traffic. The token is never logged,
// and IDENTIFY and RESUME payloads are stored with it redacted.
package discordtest
