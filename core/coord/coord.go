package coord

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
)

// ErrShardCount is returned (wrapped) by NewFleet when the fleet in the
// store runs another shard count than Settings.ShardCount.
var ErrShardCount = errors.New("coord: the fleet runs another shard count")

// ErrNotStarted is returned by Ownership.Leave when Run was never called.
var ErrNotStarted = errors.New("coord: ownership not started")

// ErrDuplicateProcess is what a Fleet reports (ERROR_OCCURRED kind
// "duplicate_process", and the log) while another live process of the
// fleet uses this process's ID; Ownership.Run then waits, joining once that
// process's lease expires (a restarted StatefulSet pod with the same name
// waits out its predecessor's lease; a second copy is a hot standby).
var ErrDuplicateProcess = errors.New("coord: another live process has this process ID")

// Coordinator is everything one lifeline process shares with the other
// processes running the same bot. Local serves a process alone (the
// default); Fleet serves many processes over a shared Store (NATS JetStream
// in production, see core/coord/natscoord).
type Coordinator interface {
	// Identify is the identify queue every shard of this process waits in
	// before an IDENTIFY (conn.Config.IdentifyQueue).
	Identify() IdentifyQueue
	// Ownership decides which shards this process runs.
	Ownership() Ownership
	// Resume stores each shard's session so that another process (or this
	// one after a restart) can RESUME it instead of IDENTIFYing.
	Resume() ResumeStore
	// Health publishes this process's health and reads the fleet's.
	Health() HealthBoard
	// Close releases what the coordinator holds (not the Store's
	// connection, which the caller opened). It does not stop shards:
	// call Ownership().Leave first for a graceful handover.
	Close() error
}

// IdentifyQueue is a conn.IdentifyQueue shared by every shard of the bot:
// Wait returns only when the shard's identify bucket (shard %
// max_concurrency) has a free slot in the current window and one session
// start was taken from the daily budget. Remaining and CheckBudget have the
// shapes core/shard looks for, so a Manager checks the budget at Start.
type IdentifyQueue interface {
	conn.IdentifyQueue
	// Remaining returns the session starts left and when the budget
	// resets, as last known (a fleet queue reads the store, with a short
	// timeout, and falls back to the last value it read).
	Remaining() (int, time.Time)
	// CheckBudget returns an error wrapping conn.ErrSessionStartLimit when
	// fewer than n starts remain.
	CheckBudget(n int) error
}

// ShardHandler starts and stops the shards the coordinator gives to this
// process; core/shard's Manager is the intended implementation (see the
// package documentation for the integration).
type ShardHandler interface {
	// StartShard starts running shard: this process now owns it. It must
	// not block for long (start the connection in the background); the
	// shard should RESUME from the ResumeStore when a state is there. An
	// error gives the shard back.
	StartShard(ctx context.Context, shard int) error
	// StopShard stops shard and returns when its connection has ended:
	// close with a resumable code (4000) and save its state in the
	// ResumeStore first, so the next owner RESUMEs. Only after it
	// returns nil does another process get the shard.
	StopShard(ctx context.Context, shard int) error
}

// Ownership gives every shard to exactly one process at a time.
type Ownership interface {
	// Run takes part in the fleet until ctx ends or Leave is called: it
	// calls h.StartShard for each shard this process gets and
	// h.StopShard for each it must give up. It returns nil after Leave,
	// ctx's error when ctx ends (shards are then left running and their
	// leases expire), or an error when the process cannot join.
	Run(ctx context.Context, h ShardHandler) error
	// Leave hands every shard of this process over at once (each is
	// stopped, then taken by another process) and then makes Run return.
	// It returns when the shards are handed over or ctx ends.
	Leave(ctx context.Context) error
	// Owned returns the shards this process runs now, in order.
	Owned() []int
	// Holds reports whether this process runs shard and its lease is
	// valid: only then may the shard connect (RESUME or IDENTIFY).
	Holds(shard int) bool
	// Assignments returns the fleet's plan: the process each shard is
	// assigned to ("" while none is), index = shard ID.
	Assignments(ctx context.Context) ([]string, error)
}

// ResumeState is what a process needs to RESUME a shard's session that
// another process (or an earlier run) opened. It holds no secret: the
// token is never stored.
type ResumeState struct {
	// Shard is the shard ID.
	Shard int `json:"shard"`
	// SessionID is READY's session_id.
	SessionID string `json:"session_id"`
	// Sequence is the last dispatch sequence number the shard received.
	Sequence int64 `json:"seq"`
	// ResumeURL is READY's resume_gateway_url.
	ResumeURL string `json:"resume_url"`
	// User is READY's user object (the bot's own user), which the next
	// owner shows its bot in the READY it makes for the resumed session
	// (conn.SavedSession.User). Empty when unknown.
	User json.RawMessage `json:"user,omitempty"`
	// Process is the process that saved it.
	Process string `json:"process"`
	// SavedAt is when it was saved (the saving process's clock).
	SavedAt time.Time `json:"saved_at"`
}

// ResumeStore keeps the latest ResumeState per shard.
type ResumeStore interface {
	// Save stores s as shard s.Shard's state, replacing the previous one.
	Save(ctx context.Context, s ResumeState) error
	// Load returns shard's state; ok is false when none is stored.
	Load(ctx context.Context, shard int) (s ResumeState, ok bool, err error)
	// Delete forgets shard's state (its session ended for good).
	Delete(ctx context.Context, shard int) error
}

// ProcessHealth is what one process publishes about itself.
type ProcessHealth struct {
	// Shards is how many shards the process runs; Ready how many of
	// them are READY; Unhealthy how many are unhealthy (core/shard's
	// Classify).
	Shards    int `json:"shards"`
	Ready     int `json:"ready"`
	Unhealthy int `json:"unhealthy"`
	// WorstAckAge is the largest heartbeat ACK age among its connected
	// shards.
	WorstAckAge time.Duration `json:"worst_ack_age"`
	// Degradation is the process's degradation level ("" or "normal"
	// when none).
	Degradation string `json:"degradation,omitempty"`
	// HealthScore is the process's lowest shard health score (0-100).
	HealthScore float64 `json:"health_score"`
}

// ProcessView is one process as the fleet sees it.
type ProcessView struct {
	// ID is the process ID.
	ID string `json:"id"`
	// Leader is true for the process that assigns shards.
	Leader bool `json:"leader"`
	// Leaving is true while the process hands its shards over.
	Leaving bool `json:"leaving,omitempty"`
	// Owned is the shards the process runs.
	Owned []int `json:"owned"`
	// Health is what the process last published.
	Health ProcessHealth `json:"health"`
}

// FleetView is the whole fleet, the figures a policy reads as `fleet.*`.
type FleetView struct {
	// Processes is the number of live processes; List each of them,
	// sorted by ID.
	Processes int           `json:"processes"`
	List      []ProcessView `json:"list"`
	// Leader is the leader's ID ("" when none is known).
	Leader string `json:"leader"`
	// Shards is the shard count; Owned how many have a live owner; Ready
	// the READY shards summed over the processes.
	Shards int `json:"shards"`
	Owned  int `json:"owned"`
	Ready  int `json:"ready"`
	// Unhealthy sums the processes' unhealthy shards; UnhealthyRatio is
	// Unhealthy/Shards, counting a shard with no live owner as unhealthy
	// too (0 when Shards is 0).
	Unhealthy      int     `json:"unhealthy"`
	UnhealthyRatio float64 `json:"unhealthy_ratio"`
	// WorstAckAge is the largest WorstAckAge published.
	WorstAckAge time.Duration `json:"worst_ack_age"`
	// Degraded counts the processes whose Degradation is set and not
	// "normal".
	Degraded int `json:"degraded"`
}

// HealthBoard publishes this process's health and reads the fleet's.
type HealthBoard interface {
	// Publish records h as this process's health; a fleet sends it with
	// the next heartbeat.
	Publish(h ProcessHealth)
	// View returns the fleet's health. A fleet reads the store; it
	// returns an error wrapping ErrUnavailable when the store is
	// unreachable.
	View(ctx context.Context) (FleetView, error)
}
