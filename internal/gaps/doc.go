// Package gaps documents, as tests, how plain discordgo v0.29.0 fails the
// scenarios that lifeline's connection loop passes. It holds no code a
// program can import: only this comment and the tests beside it.
//
// Each test runs a real discordgo Session with its own reconnect on (the
// default, ShouldReconnectOnError = true), pointed at the fake Discord of
// package discordtest through the Session's own http.Client and
// websocket.Dialer, or, where the fake cannot stage the situation, at a
// small scripted gateway on 127.0.0.1 inside the test. The fake's ledger (or
// the scripted gateway's own record) then shows what discordgo did on the
// wire, and the test asserts the failure. Each test's comment names the
// lifeline test that passes the same scenario, so the difference is shown,
// not claimed; README.md in this folder has the table.
//
// The gaps, as measured on v0.29.0 (wsapi.go):
//
//   - Zombie connections: heartbeat() reconnects only when the last ACK is
//     more than 5 heartbeat intervals old (FailedHeartbeatAcks), checked
//     when the next heartbeat is sent; it then closes with 1000, which
//     ends the session, so the reconnect cannot RESUME.
//   - Fatal close codes: listen() answers any read error, 4004 and
//     4010-4014 included, with Close and reconnect(), whose loop retries
//     forever (waits 1 s, 2 s, 4 s ... up to 600 s, no jitter, no context).
//     When the RESUME is answered with op 9, Open counts the handshake as a
//     success, so the loop restarts from scratch and never backs off.
//   - Server closes: listen() answers the server's close frame, whatever
//     its code, with Close(), which sends 1000; the fake, applying
//     Discord's rule that a 1000 close invalidates the session, ends it,
//     so even after 4000 discordgo cannot RESUME.
//   - op 9: onEvent() answers INVALID_SESSION with an immediate IDENTIFY on
//     the same connection, whatever its d says: it never RESUMEs when
//     d=true and never waits the 1-5 s Discord asks for when d=false.
//   - op 7 during Open: Open() holds the Session lock while it reads the
//     first packets; onEvent() answers op 7 with CloseWithCode(), which
//     takes the same lock: the goroutine waits for itself, forever.
//   - HELLO withheld: Open() reads with no deadline, holding the Session
//     lock, until the server closes the connection.
//   - resume_gateway_url: the Ready event has no such field and Open()
//     always dials the URL it cached from GET /gateway.
//   - Close codes: a bot's handlers get Disconnect{}, an empty struct; op
//     7, op 9 and close frames never reach them.
//   - Stale heartbeat goroutine: a heartbeat goroutine that woke for its
//     tick before Close() took the lock writes on the closed connection
//     afterwards, and answers the failed write with Close() and
//     reconnect() on the Session: a Session the bot closed comes back.
//
// The goroutine deadlocked by op 7 cannot be stopped, so the package uses
// no goroutine-leak checker; every test still ends by itself, and every
// other Session is closed before its server.
package gaps
