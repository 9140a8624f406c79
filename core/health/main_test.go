package health

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// monitor loop, run and check call a test starts must have ended.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
