package metrics

import "time"

// Fleet is the fleet a process belongs to (the `fleet.*` condition
// variables): every lifeline process running the same bot, as the last
// view read from the coordinator (core/coord) showed it. A process without
// a coordination block is a fleet of one: its own shards, Processes 1,
// Coordinated false.
//
// Counts are of the bot's shards (Shards of them) over every live process;
// UnhealthyRatio is a fraction in [0, 1]:
//
//	UnhealthyRatio = min(Unhealthy + Shards - Owned, Shards) / Shards
//
// so a shard no live process runs counts as unhealthy (0 when Shards is 0).
type Fleet struct {
	// Coordinated is true when the process is one of a coordinated fleet
	// (a coordination block is in force).
	Coordinated bool `json:"coordinated"`
	// Available is true when the last view could be read from the
	// coordinator (always true for a fleet of one); while false, the
	// figures are those of the last view that could.
	Available bool `json:"available"`
	// Processes is how many live processes the fleet has.
	Processes int `json:"processes"`
	// Shards is the bot's shard count; Owned how many shards a live
	// process runs; Ready how many of them are READY.
	Shards int `json:"shards"`
	Owned  int `json:"owned"`
	Ready  int `json:"ready"`
	// Unhealthy is the unhealthy shards summed over the processes (not
	// counting shards nobody runs; UnhealthyRatio does).
	Unhealthy      int     `json:"unhealthy"`
	UnhealthyRatio float64 `json:"unhealthy_ratio"`
	// WorstAckAge is the longest time since a HEARTBEAT_ACK any process
	// reports for its connected shards.
	WorstAckAge time.Duration `json:"worst_ack_age"`
	// Degraded counts the processes whose degradation level is above
	// NONE.
	Degraded int `json:"degraded"`
}
