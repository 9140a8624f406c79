package bench

import (
	"os"
	"testing"
)

// TestMain runs the benchmarks, or, when the test binary is re-run as a
// child process by one of them, that child's server: the fake Discord of
// the idle-cost benchmark (idleFakeEnv) or the bare gRPC server of the
// plugin rows (bareGRPCEnv).
func TestMain(m *testing.M) {
	if v := os.Getenv(idleFakeEnv); v != "" {
		os.Exit(serveIdleFake(v))
	}
	if v := os.Getenv(bareGRPCEnv); v != "" {
		os.Exit(serveBareGRPC(v))
	}
	os.Exit(m.Run())
}
