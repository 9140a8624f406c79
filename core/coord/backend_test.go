package coord_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lifeline-bot/lifeline/core/coord"
)

var registered atomic.Int64

type nopCloser struct{ closed *bool }

func (c nopCloser) Close() error { *c.closed = true; return nil }

// Backends register by kind; an unregistered kind fails with ErrNoBackend,
// and for "nats" the error says which package to import.
func TestBackendRegistry(t *testing.T) {
	if slices.Contains(coord.Backends(), "nats") {
		t.Fatal("core/coord registers nats by itself: the NATS client would be linked into every program")
	}
	_, _, err := coord.OpenBackend(context.Background(), "nats", coord.BackendConfig{URL: "nats://127.0.0.1:4222"})
	if !errors.Is(err, coord.ErrNoBackend) || !strings.Contains(err.Error(), "core/coord/natscoord") {
		t.Fatalf("OpenBackend(nats) without natscoord = %v, want ErrNoBackend naming the package", err)
	}

	closed := false
	var got coord.BackendConfig
	kind := fmt.Sprintf("test-memory-%d", registered.Add(1)) // the registry is global: -count=N registers again
	coord.RegisterBackend(kind, func(_ context.Context, cfg coord.BackendConfig) (coord.Store, io.Closer, error) {
		got = cfg
		return coord.NewMemoryStore(nil), nopCloser{&closed}, nil
	})
	if !slices.Contains(coord.Backends(), kind) {
		t.Fatalf("Backends() = %v", coord.Backends())
	}
	want := coord.BackendConfig{URL: "mem://", BucketPrefix: "bot", Replicas: 3, Name: "p1"}
	store, c, err := coord.OpenBackend(context.Background(), kind, want)
	if err != nil || store == nil || got.URL != want.URL || got.BucketPrefix != "bot" || got.Replicas != 3 || got.Name != "p1" {
		t.Fatalf("OpenBackend = %v, %v; config seen %+v", store, err, got)
	}
	if _, err := coord.NewFleet(context.Background(), store, coord.Settings{Process: "p1", ShardCount: 2}); err != nil {
		t.Fatalf("a fleet on the backend's store: %v", err)
	}
	c.Close()
	if !closed {
		t.Fatal("the backend's Closer was not the one returned")
	}
	for name, f := range map[string]func(){
		"twice": func() {
			coord.RegisterBackend(kind, func(context.Context, coord.BackendConfig) (coord.Store, io.Closer, error) { return nil, nil, nil })
		},
		"nil": func() { coord.RegisterBackend("test-nil", nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterBackend %s did not panic", name)
				}
			}()
			f()
		}()
	}
}
