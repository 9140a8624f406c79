package conn

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/bwmarrin/discordgo"
)

// SavedSession is a gateway session a connection can RESUME without having
// opened it: READY's session_id and resume_gateway_url, the last sequence
// the bot was handed, and READY's user object. Another process of a fleet
// (or this process before a restart) saves it when it stops a shard with a
// resumable close code; the next owner starts from it (Config.Resume) and
// RESUMEs instead of spending an IDENTIFY. It holds no secret: the token is
// never part of it.
type SavedSession struct {
	// SessionID is READY's session_id.
	SessionID string `json:"session_id"`
	// Sequence is the last dispatch sequence delivered to the bot: the
	// RESUME asks Discord to replay everything after it.
	Sequence int64 `json:"seq"`
	// ResumeURL is READY's resume_gateway_url ("" to resume on the
	// gateway URL).
	ResumeURL string `json:"resume_url,omitempty"`
	// User is READY's user object (the bot's own user), shown to the
	// bot's discordgo Session in the READY lifeline gives it when it
	// starts from a saved session (Session.State.User). Default: an
	// empty user.
	User json.RawMessage `json:"user,omitempty"`
}

// Valid reports whether the saved session can be resumed at all: it needs
// a session ID.
func (s SavedSession) Valid() bool { return s.SessionID != "" }

// SavedSession returns the connection's session as a later connection
// needs it to RESUME: ok is false when there is none (never READY yet, or
// the session ended for good: op 9 d=false, a close code that ends it, a
// re-identify pending). Read it after Stop, which closes with a resumable
// code (4000): the sequence is then the last dispatch the bot got, so the
// next owner's RESUME replays exactly what this one did not deliver.
func (c *Connection) SavedSession() (SavedSession, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil || c.session.id == "" {
		return SavedSession{}, false
	}
	s := SavedSession{SessionID: c.session.id, Sequence: c.session.seq, ResumeURL: c.session.resumeURL}
	if len(c.session.user) > 0 {
		s.User = append(json.RawMessage(nil), c.session.user...)
	}
	return s, true
}

// startFromSaved prepares a connection configured with Config.Resume: the
// first attempt RESUMEs the saved session, and the discordgo Session is
// attached to the relay at once with a READY made from the saved session
// (its user, its session ID, no guilds), so that the dispatches Discord
// replays before RESUMED reach the bot's handlers. If Discord refuses the
// RESUME (op 9 d=false, or a close code that ends the session), the loop
// IDENTIFYs through the identify queue as usual and the Session gets that
// real READY as a new session.
func (c *Connection) startFromSaved(s SavedSession) error {
	user := s.User
	if len(user) == 0 || !json.Valid(user) {
		user = json.RawMessage(`{}`)
	}
	c.mu.Lock()
	c.session = &sessionInfo{id: s.SessionID, resumeURL: s.ResumeURL, seq: s.Sequence, user: append(json.RawMessage(nil), user...)}
	c.mu.Unlock()
	ready, err := savedReady(s, user, c.cfg.ShardID, c.cfg.ShardCount)
	if err != nil {
		return err
	}
	if err := c.relay.SetReady(context.Background(), ready); err != nil {
		return fmt.Errorf("conn: READY for the saved session: %w", err)
	}
	return c.openSession()
}

// savedReady builds the READY dispatch the bot's Session is given when the
// connection starts from a saved session.
func savedReady(s SavedSession, user json.RawMessage, shard, count int) ([]byte, error) {
	v, err := strconv.Atoi(discordgo.APIVersion)
	if err != nil {
		v = 10
	}
	d := struct {
		V                int             `json:"v"`
		SessionID        string          `json:"session_id"`
		ResumeGatewayURL string          `json:"resume_gateway_url,omitempty"`
		User             json.RawMessage `json:"user"`
		Guilds           []struct{}      `json:"guilds"`
		PrivateChannels  []struct{}      `json:"private_channels"`
		Shard            [2]int          `json:"shard"`
	}{V: v, SessionID: s.SessionID, ResumeGatewayURL: s.ResumeURL, User: user,
		Guilds: []struct{}{}, PrivateChannels: []struct{}{}, Shard: [2]int{shard, count}}
	frame := struct {
		Op int    `json:"op"`
		S  int64  `json:"s"`
		T  string `json:"t"`
		D  any    `json:"d"`
	}{Op: 0, S: s.Sequence, T: "READY", D: d}
	b, err := json.Marshal(frame)
	if err != nil {
		return nil, fmt.Errorf("conn: READY for the saved session: %w", err)
	}
	return b, nil
}
