package gaps

import (
	"flag"
	"os"
	"testing"
)

// TestMain lets more tests run at once than go test's default (GOMAXPROCS):
// these tests spend their time waiting on discordgo's own real-time sleeps
// (a second in every Close, 1-2-4 s between reconnects), not on the CPU.
// An explicit -parallel is kept.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		if err := flag.Set("test.parallel", "12"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
