package coord

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// ErrNoBackend is returned by OpenBackend when no backend is registered
// for the kind asked for: the program was built without it (for "nats",
// it does not import core/coord/natscoord).
var ErrNoBackend = errors.New("coord: no backend registered for this coordination kind")

// BackendConfig is what a policy's coordination block says about the
// store a fleet shares.
type BackendConfig struct {
	// URL is the server (or comma-separated servers) to connect to.
	URL string
	// BucketPrefix starts the names of the fleet's buckets.
	BucketPrefix string
	// Replicas is each bucket's replica count when this process creates
	// it.
	Replicas int
	// Memory keeps the buckets in memory rather than on disk.
	Memory bool
	// Credentials is a credentials file for the server ("" for none).
	Credentials string
	// Name names this process's connection in the server's monitoring
	// (the process ID).
	Name string
	// Logger receives the backend's connection logs (disconnected,
	// reconnected). Default: hclog's null logger.
	Logger hclog.Logger
}

// Backend opens the Store of a fleet. The io.Closer it returns releases
// the connection after every coordinator using the Store is closed. A
// backend connects in the background when the server is not reachable
// yet: the fleet's calls then fail with ErrUnavailable until it is.
type Backend func(ctx context.Context, cfg BackendConfig) (Store, io.Closer, error)

var (
	backendsMu sync.RWMutex
	backends   = map[string]Backend{}
)

// RegisterBackend makes a Backend available under kind (the label of a
// policy's coordination block). Backends register themselves when their
// package is imported (core/coord/natscoord registers "nats"), so a
// program pays for a backend's dependencies only if it imports it. It
// panics when kind is registered twice or b is nil, as database/sql's
// Register does.
func RegisterBackend(kind string, b Backend) {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	if b == nil {
		panic("coord: RegisterBackend " + kind + ": nil backend")
	}
	if _, dup := backends[kind]; dup {
		panic("coord: RegisterBackend called twice for " + kind)
	}
	backends[kind] = b
}

// Backends returns the registered kinds, sorted.
func Backends() []string {
	backendsMu.RLock()
	defer backendsMu.RUnlock()
	out := make([]string, 0, len(backends))
	for k := range backends {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// OpenBackend opens the Store of kind with cfg. It fails with an error
// wrapping ErrNoBackend, naming the package to import, when kind is not
// registered.
func OpenBackend(ctx context.Context, kind string, cfg BackendConfig) (Store, io.Closer, error) {
	backendsMu.RLock()
	b := backends[kind]
	backendsMu.RUnlock()
	if b == nil {
		hint := ""
		if kind == "nats" {
			hint = `: import _ "github.com/lifeline-bot/lifeline/core/coord/natscoord" in the program (the lifeline command does)`
		}
		return nil, nil, fmt.Errorf("coord: coordination %q%s: %w", kind, hint, ErrNoBackend)
	}
	return b(ctx, cfg)
}
