// Package failsafe benchmarks failsafe-go's circuit breaker on the work
// core/breaker's benchmarks give lifeline's breaker and sony/gobreaker, under
// the same benchmark names (sub-benchmark "failsafe"), so `make bench` puts
// the three side by side in docs/benchmarks.md.
//
// It is a module of its own: every failsafe-go release requires a newer
// google.golang.org/grpc than lifeline's, and a comparison must not move the
// product's dependencies. `go test ./...` at the root skips it; `make bench`
// and `make bench-smoke` run it with `go -C bench/failsafe test`.
package failsafe
