package main

import (
	"context"
	"fmt"
	"os"

	"github.com/lifeline-bot/lifeline/internal/fleetdemo"
)

// maxDemoFleet bounds --fleet: every process runs on this machine.
const maxDemoFleet = 8

// runFleetDemo is `lifeline demo --fleet N`: N lifeline processes (this
// binary, `lifeline run`), an embedded NATS server and the fake Discord on
// this machine; one process is killed mid-story and its shards move and
// RESUME (internal/fleetdemo tells the story and checks the ledger).
func runFleetDemo(ctx context.Context, env *cliEnv, processes, shards int) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(env.Stderr, "lifeline demo --fleet: cannot find this executable to start the processes: %v\n", err)
		return 1
	}
	res, err := fleetdemo.Run(ctx, fleetdemo.DemoOptions{Binary: exe, Processes: processes, Shards: shards, Out: env.Stdout})
	if err != nil {
		fmt.Fprintf(env.Stderr, "lifeline demo --fleet: %v\n", err)
		return 1
	}
	if !res.OK() {
		return 1
	}
	return 0
}
