package policy

import "github.com/lifeline-bot/lifeline/core/metrics"

// FleetVars are the `fleet.*` variables: every lifeline process running
// the bot, as the coordinator last showed them (metrics.Fleet). Without a
// coordination block the process is a fleet of one. A condition such as
// `fleet.unhealthy_ratio > 0.3` lets every process of a fleet degrade
// together during a Discord-wide incident.
type FleetVars struct {
	Processes      int     `expr:"processes" unit:"count" doc:"live processes of the fleet (1 without a coordination block)"`
	Shards         int     `expr:"shards" unit:"count" doc:"the bot's shard count"`
	ShardsOwned    int     `expr:"shards_owned" unit:"count" doc:"shards some live process runs"`
	ShardsReady    int     `expr:"shards_ready" unit:"count" doc:"shards READY, over every process"`
	Unhealthy      int     `expr:"unhealthy" unit:"count" doc:"unhealthy shards over every process (shards nobody runs not included)"`
	UnhealthyRatio float64 `expr:"unhealthy_ratio" unit:"fraction" doc:"(unhealthy + shards nobody runs) / shards, 0 to 1"`
	WorstAckAge    float64 `expr:"worst_ack_age" unit:"ms" doc:"longest time since a HEARTBEAT_ACK any process reports"`
	Degraded       int     `expr:"degraded_processes" unit:"count" doc:"processes whose degradation level is above NONE"`
	Coordinated    bool    `expr:"coordinated" unit:"bool" doc:"true when a coordination block is in force"`
	Available      bool    `expr:"available" unit:"bool" doc:"false while the coordinator cannot be reached (the figures are then the last known)"`
}

func (e *Env) fillFleet(s *metrics.Snapshot) {
	f := &s.Fleet
	e.Fleet = FleetVars{
		Processes: f.Processes, Shards: f.Shards, ShardsOwned: f.Owned, ShardsReady: f.Ready,
		Unhealthy: f.Unhealthy, UnhealthyRatio: f.UnhealthyRatio, WorstAckAge: ms(f.WorstAckAge),
		Degraded: f.Degraded, Coordinated: f.Coordinated, Available: f.Available,
	}
}
