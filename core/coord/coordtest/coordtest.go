package coordtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/coord"
)

// Harness describes the store under test.
type Harness struct {
	// Open returns a fresh, empty store for one subtest.
	Open func(t *testing.T) coord.Store
	// TTL is the bucket TTL the expiry subtest uses. Default: 1s.
	TTL time.Duration
	// Pass lets d go by for the store: a fake clock advances, a real one
	// sleeps. Required.
	Pass func(d time.Duration)
	// Settle bounds how long an expired value may stay visible after its
	// TTL has passed (a server expires on its own timer). The suite polls
	// for at most this long. Default: 5s.
	Settle time.Duration
}

// RunKV runs the store conformance suite as subtests of t.
func RunKV(t *testing.T, h Harness) {
	t.Helper()
	if h.TTL <= 0 {
		h.TTL = time.Second
	}
	if h.Settle <= 0 {
		h.Settle = 5 * time.Second
	}
	ctx := context.Background()

	t.Run("create-get-update-delete", func(t *testing.T) {
		kv := bucket(t, h, "crud", 0)
		if _, err := kv.Get(ctx, "a"); !errors.Is(err, coord.ErrNotFound) {
			t.Fatalf("Get of a missing key: err = %v, want ErrNotFound", err)
		}
		r1, err := kv.Create(ctx, "a", []byte("one"))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if _, err := kv.Create(ctx, "a", []byte("two")); !errors.Is(err, coord.ErrExists) {
			t.Fatalf("second Create: err = %v, want ErrExists", err)
		}
		e, err := kv.Get(ctx, "a")
		if err != nil || string(e.Value) != "one" || e.Revision != r1 || e.Key != "a" {
			t.Fatalf("Get = %+v, %v; want value one at revision %d", e, err, r1)
		}
		r2, err := kv.Update(ctx, "a", []byte("two"), r1)
		if err != nil || r2 <= r1 {
			t.Fatalf("Update = %d, %v; want a revision after %d", r2, err, r1)
		}
		if _, err := kv.Update(ctx, "a", []byte("three"), r1); !errors.Is(err, coord.ErrConflict) {
			t.Fatalf("Update with a stale revision: err = %v, want ErrConflict", err)
		}
		if err := kv.Delete(ctx, "a", r1); !errors.Is(err, coord.ErrConflict) {
			t.Fatalf("Delete with a stale revision: err = %v, want ErrConflict", err)
		}
		if err := kv.Delete(ctx, "a", r2); err != nil {
			t.Fatalf("Delete at the current revision: %v", err)
		}
		if _, err := kv.Get(ctx, "a"); !errors.Is(err, coord.ErrNotFound) {
			t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
		}
		if _, err := kv.Update(ctx, "a", []byte("x"), r2); !errors.Is(err, coord.ErrNotFound) && !errors.Is(err, coord.ErrConflict) {
			t.Fatalf("Update of a deleted key: err = %v, want ErrNotFound or ErrConflict", err)
		}
		if err := kv.Delete(ctx, "a", 0); err != nil {
			t.Fatalf("unconditional Delete of a missing key: %v", err)
		}
		// A deleted key can be created again.
		if _, err := kv.Create(ctx, "a", []byte("again")); err != nil {
			t.Fatalf("Create after Delete: %v", err)
		}
		r, err := kv.Put(ctx, "a", []byte("put"))
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		if e, err := kv.Get(ctx, "a"); err != nil || string(e.Value) != "put" || e.Revision != r {
			t.Fatalf("Get after Put = %+v, %v", e, err)
		}
	})

	t.Run("list", func(t *testing.T) {
		kv := bucket(t, h, "list", 0)
		for _, k := range []string{"owner.2", "owner.10", "plan", "owner.1"} {
			if _, err := kv.Put(ctx, k, []byte(k)); err != nil {
				t.Fatalf("Put %s: %v", k, err)
			}
		}
		if err := kv.Delete(ctx, "owner.10", 0); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		got, err := kv.List(ctx, "owner.")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if want := []string{"owner.1", "owner.2"}; !sameKeys(got, want) {
			t.Fatalf("List(owner.) = %v, want %v", keys(got), want)
		}
		for _, e := range got {
			if string(e.Value) != e.Key || e.Revision == 0 {
				t.Fatalf("List entry %+v: value or revision wrong", e)
			}
		}
		all, err := kv.List(ctx, "")
		if err != nil || len(all) != 3 {
			t.Fatalf("List(\"\") = %v, %v; want 3 entries", keys(all), err)
		}
		empty, err := kv.List(ctx, "nothing.")
		if err != nil || len(empty) != 0 {
			t.Fatalf("List(nothing.) = %v, %v; want none", keys(empty), err)
		}
	})

	t.Run("ttl", func(t *testing.T) {
		kv := bucket(t, h, "ttl", h.TTL)
		r, err := kv.Create(ctx, "lease", []byte("x"))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if _, err := kv.Create(ctx, "kept", []byte("x")); err != nil {
			t.Fatalf("Create: %v", err)
		}
		// Refresh "kept" halfway: it lives a TTL from the refresh.
		h.Pass(h.TTL / 2)
		kr, err := kv.Get(ctx, "kept")
		if err != nil {
			t.Fatalf("Get before the TTL: %v", err)
		}
		if _, err := kv.Update(ctx, "kept", []byte("y"), kr.Revision); err != nil {
			t.Fatalf("Update (refresh): %v", err)
		}
		h.Pass(h.TTL/2 + h.TTL/10)
		if !eventually(h, func() bool {
			_, err := kv.Get(ctx, "lease")
			return errors.Is(err, coord.ErrNotFound)
		}) {
			t.Fatalf("lease still there %v after its TTL %v", h.Settle, h.TTL)
		}
		if _, err := kv.Get(ctx, "kept"); err != nil {
			t.Fatalf("a value refreshed by Update expired early: %v", err)
		}
		if _, err := kv.Update(ctx, "lease", []byte("z"), r); err == nil {
			t.Fatalf("Update of an expired key succeeded")
		}
		if _, err := kv.Create(ctx, "lease", []byte("new")); err != nil {
			t.Fatalf("Create after expiry: %v", err)
		}
		list, err := kv.List(ctx, "")
		if err != nil || !sameKeys(list, []string{"kept", "lease"}) {
			t.Fatalf("List = %v, %v", keys(list), err)
		}
	})

	t.Run("bucket-config", func(t *testing.T) {
		s := h.Open(t)
		if _, err := s.Bucket(ctx, "cfg", h.TTL); err != nil {
			t.Fatalf("Bucket: %v", err)
		}
		if _, err := s.Bucket(ctx, "cfg", h.TTL); err != nil {
			t.Fatalf("reopening with the same TTL: %v", err)
		}
		if _, err := s.Bucket(ctx, "cfg", 2*h.TTL); !errors.Is(err, coord.ErrBucketConfig) {
			t.Fatalf("reopening with another TTL: err = %v, want ErrBucketConfig", err)
		}
		if _, err := s.Bucket(ctx, "bad name", 0); err == nil {
			t.Fatalf("a bucket name with a space was accepted")
		}
	})

	t.Run("invalid-key", func(t *testing.T) {
		kv := bucket(t, h, "keys", 0)
		for _, k := range []string{"", "a b", "a..b", ".a", "a.", "a*", "a>"} {
			if _, err := kv.Put(ctx, k, nil); err == nil {
				t.Errorf("Put(%q) accepted an invalid key", k)
			}
		}
	})

	t.Run("concurrent-create", func(t *testing.T) {
		kv := bucket(t, h, "race", 0)
		const n = 8
		results := make(chan error, n)
		for i := range n {
			go func() {
				_, err := kv.Create(ctx, "slot", []byte(fmt.Sprint(i)))
				results <- err
			}()
		}
		won := 0
		for range n {
			err := <-results
			switch {
			case err == nil:
				won++
			case !errors.Is(err, coord.ErrExists):
				t.Errorf("Create: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d concurrent Creates won, want exactly 1", won, n)
		}
	})
}

func bucket(t *testing.T, h Harness, name string, ttl time.Duration) coord.KV {
	t.Helper()
	kv, err := h.Open(t).Bucket(context.Background(), name, ttl)
	if err != nil {
		t.Fatalf("Bucket(%s): %v", name, err)
	}
	return kv
}

// eventually polls cond until it holds or Settle (real time) has passed;
// between tries it lets a little time pass for the store too.
func eventually(h Harness, cond func() bool) bool {
	deadline := time.Now().Add(h.Settle)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		h.Pass(h.TTL / 20)
	}
}

func keys(es []coord.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Key
	}
	return out
}

func sameKeys(es []coord.Entry, want []string) bool {
	if len(es) != len(want) {
		return false
	}
	for i := range es {
		if es[i].Key != want[i] {
			return false
		}
	}
	return true
}
