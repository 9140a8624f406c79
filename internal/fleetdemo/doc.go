// Package fleetdemo runs a fleet of lifeline processes on one machine: a
// fake Discord (discordtest) and an embedded NATS server with JetStream in
// the calling process, on 127.0.0.1, and several `lifeline run` child
// processes sharing them through a policy with a coordination "nats" block.
//
// Cluster is the harness: Spawn, Stop (SIGTERM: a graceful handover), Kill
// (SIGKILL: the shards move when the lease expires), StopNATS and
// StartNATS (an outage of the coordination store), State and Owners (each
// process's /debug/lifeline), WaitSettled. The checks read the fake's
// ledger, what Discord itself would see of the fleet: IDENTIFYs and RESUMEs
// since a Mark, identify-concurrency and budget violations, Overlaps (a
// shard with two live connections, which would mean two processes ran it),
// Lost and Undelivered dispatches.
//
// Run plays the story of `lifeline demo --fleet N`: the processes start
// and share the shards, one is killed with SIGKILL mid-story and its
// shards move to the others and RESUME, a new process joins and takes its
// share by handover, and every process leaves gracefully; the verdict
// comes from the ledger. The process tests in cmd/lifeline use the same
// Cluster.
package fleetdemo
