// Package bench holds lifeline's side-by-side benchmarks that span more than
// one package (policy reload through a real file system watch; the end-to-end
// rows against the fake Discord: zombie detection, drop → RESUMED, an outage
// of many shards, the idle cost of 1,000 shards next to plain discordgo
// Sessions), and, under internal/report, the generator that turns the raw
// output of `make bench` into docs/benchmarks.md.
//
// The package has no product code: everything here is in _test.go files or
// in the generator, and nothing in the product imports it, so comparison
// libraries used here stay test-only.
//
// Run the whole suite with `make bench` (it writes docs/benchmarks.txt, the
// raw benchstat-compatible output, then docs/benchmarks.md from it). `make
// bench-smoke` runs every benchmark of the table once with -benchtime=1x so
// the harness cannot rot; it asserts no timings. The idle-cost benchmark
// takes its scale from flags (-idle.shards, -idle.heartbeat) whose defaults
// keep bench-smoke quick; make bench passes 1,000 shards and Discord's
// heartbeat interval.
package bench
