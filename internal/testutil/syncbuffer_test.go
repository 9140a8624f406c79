package testutil_test

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/lifeline-bot/lifeline/internal/testutil"
)

// TestSyncBufferConcurrentWrites: writers on several goroutines and a
// reader at the same time (run with -race); every write arrives whole.
func TestSyncBufferConcurrentWrites(t *testing.T) {
	tests := []struct {
		name             string
		writers, perEach int
	}{
		{"one writer", 1, 200},
		{"eight writers", 8, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf testutil.SyncBuffer
			var w io.Writer = &buf
			var wg sync.WaitGroup
			for i := range tt.writers {
				wg.Go(func() {
					for j := range tt.perEach {
						if n, err := fmt.Fprintf(w, "<%d:%d>\n", i, j); err != nil || n == 0 {
							t.Errorf("Write = %d, %v", n, err)
						}
					}
				})
			}
			// A reader meanwhile, until the writers are done.
			stop, read := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(read)
				for {
					select {
					case <-stop:
						return
					default:
						_ = buf.String()
					}
				}
			}()
			wg.Wait()
			close(stop)
			<-read
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			seen := map[string]bool{}
			for _, l := range lines {
				if !strings.HasPrefix(l, "<") || !strings.HasSuffix(l, ">") || seen[l] {
					t.Fatalf("torn or repeated write %q", l)
				}
				seen[l] = true
			}
			if len(seen) != tt.writers*tt.perEach {
				t.Fatalf("%d distinct writes, want %d", len(seen), tt.writers*tt.perEach)
			}
		})
	}
}

// TestSyncBufferZeroValue: the zero value reads as empty.
func TestSyncBufferZeroValue(t *testing.T) {
	var buf testutil.SyncBuffer
	if got := buf.String(); got != "" {
		t.Fatalf("zero value String = %q", got)
	}
}

// ExampleSyncBuffer collects a goroutine's output for a test to read.
func ExampleSyncBuffer() {
	var out testutil.SyncBuffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		fmt.Fprintln(&out, "written elsewhere")
	}()
	<-done
	fmt.Print(out.String())
	// Output: written elsewhere
}
