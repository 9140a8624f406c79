// Package flightlive holds the end-to-end tests of core/flight that run a
// whole lifeline system (core/orchestrator) against the fake Discord: a live
// run recorded through orchestrator.Config.OnTick replays to the same
// decisions and levels, and the generator of the incidents shipped under
// testdata/incidents/. They live outside core/ because core packages must
// not import core/orchestrator, not even in tests. The package has no API.
package flightlive
