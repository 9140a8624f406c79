package orchestrator

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// The fleet's Prometheus metrics, served on /metrics beside the
// telemetry's own when the process has a coordination block.
var (
	descFleetProcesses = prometheus.NewDesc("lifeline_fleet_processes",
		"Live processes of the fleet, as this process last read it.", nil, nil)
	descFleetShards = prometheus.NewDesc("lifeline_fleet_shards",
		"Shards of the bot by fleet-wide status: owned (a live process runs it), ready, unhealthy.", []string{"status"}, nil)
	descFleetUnhealthyRatio = prometheus.NewDesc("lifeline_fleet_unhealthy_ratio",
		"Share of the bot's shards unhealthy or run by no live process, 0 to 1.", nil, nil)
	descFleetProcessShards = prometheus.NewDesc("lifeline_fleet_process_shards",
		"Shards each live process of the fleet owns.", []string{"process"}, nil)
	descFleetShardOwner = prometheus.NewDesc("lifeline_fleet_shard_owner",
		"1 for each shard and the process that owns it (who owns which shard).", []string{"shard", "process"}, nil)
	descFleetLeader = prometheus.NewDesc("lifeline_fleet_leader",
		"1 while this process is the fleet's leader (it assigns the shards).", nil, nil)
	descFleetLeaseValid = prometheus.NewDesc("lifeline_fleet_lease_valid",
		"1 while this process's lease is valid (its heartbeat reached the store in time).", nil, nil)
	descFleetStoreAvailable = prometheus.NewDesc("lifeline_fleet_store_available",
		"1 while the coordination store (NATS) answers.", nil, nil)
	descFleetStoreOutages = prometheus.NewDesc("lifeline_fleet_store_outages_total",
		"Times the coordination store became unreachable.", nil, nil)
	descFleetStoreErrors = prometheus.NewDesc("lifeline_fleet_store_errors_total",
		"Failed calls to the coordination store.", nil, nil)
	descFleetIdentifyWaiting = prometheus.NewDesc("lifeline_fleet_identify_waiting",
		"Shards of this process waiting in the fleet's identify queue.", nil, nil)
	descFleetIdentifySlots = prometheus.NewDesc("lifeline_fleet_identify_slots_total",
		"Identify slots this process took from the fleet's queue.", nil, nil)
	descFleetShardMoves = prometheus.NewDesc("lifeline_fleet_shard_moves_total",
		"Shards this process acquired, released (handed over) and lost (taken after its lease expired).", []string{"kind"}, nil)
	descFleetResumeSaves = prometheus.NewDesc("lifeline_fleet_resume_saves_total",
		"Shard sessions saved for a next owner by the regular save, by result.", []string{"result"}, nil)
)

// fleetCollector reads the fleet's state at each scrape.
type fleetCollector struct{ fp *fleetPart }

// Describe implements prometheus.Collector.
func (c fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFleetProcesses, descFleetShards, descFleetUnhealthyRatio, descFleetProcessShards,
		descFleetShardOwner, descFleetLeader, descFleetLeaseValid, descFleetStoreAvailable, descFleetStoreOutages,
		descFleetStoreErrors, descFleetIdentifyWaiting, descFleetIdentifySlots, descFleetShardMoves, descFleetResumeSaves} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c fleetCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.fp.fleet.Load()
	if f == nil {
		return // not joined yet
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	st := f.Stats()
	gauge(descFleetLeader, b2f(st.Leader))
	gauge(descFleetLeaseValid, b2f(st.LeaseValid))
	gauge(descFleetStoreAvailable, b2f(!st.Unavailable))
	counter(descFleetStoreOutages, st.Outages)
	counter(descFleetStoreErrors, st.StoreErrors)
	gauge(descFleetIdentifyWaiting, float64(st.IdentifyWaiting))
	counter(descFleetIdentifySlots, st.IdentifySlots)
	counter(descFleetShardMoves, st.Acquired, "acquired")
	counter(descFleetShardMoves, st.Released, "released")
	counter(descFleetShardMoves, st.Lost, "lost")
	counter(descFleetResumeSaves, c.fp.saves.Load(), "saved")
	counter(descFleetResumeSaves, c.fp.saveErrors.Load(), "failed")
	s := c.fp.state.Load()
	if s == nil || !s.ok {
		return
	}
	v := &s.view
	gauge(descFleetProcesses, float64(v.Processes))
	gauge(descFleetShards, float64(v.Owned), "owned")
	gauge(descFleetShards, float64(v.Ready), "ready")
	gauge(descFleetShards, float64(v.Unhealthy), "unhealthy")
	gauge(descFleetUnhealthyRatio, v.UnhealthyRatio)
	for _, p := range v.List {
		gauge(descFleetProcessShards, float64(len(p.Owned)), p.ID)
		for _, id := range p.Owned {
			gauge(descFleetShardOwner, 1, strconv.Itoa(id), p.ID)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// fleetGatherers returns the registry of the fleet's metrics, none without
// a coordination block.
func (o *Orchestrator) fleetGatherers() []prometheus.Gatherer {
	if o.fleet == nil {
		return nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(fleetCollector{o.fleet})
	return []prometheus.Gatherer{reg}
}
