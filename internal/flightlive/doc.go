// Package flightlive holds the end-to-end tests of core/flight: a live run
// of a whole lifeline system (core/orchestrator) against the fake Discord,
// recorded through orchestrator.Config.OnTick, replays to the same
// decisions and levels; and the incidents shipped under testdata/incidents/
// (recorded by internal/cmd/record-incidents) replay with
// policies/medium.hcl to the levels they must show and pass the assertions
// beside them. They live outside core/ because core packages must not
// import core/orchestrator, not even in tests. The package has no API.
package flightlive
