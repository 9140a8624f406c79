//go:build race

package main

// raceEnabled is true when the tests run with -race; the binary the process
// tests run is then built with -race too.
const raceEnabled = true
