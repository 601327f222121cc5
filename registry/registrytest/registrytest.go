// Package registrytest holds the conformance tests every registry.Store backend must pass, so the
// in-memory store and the Redis store (with its client-side cache) behave the same.
package registrytest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/sseedge/sseedge/registry"
)

// Function returns a valid, normalized function called name, for tests.
func Function(t testing.TB, name string) registry.Function {
	t.Helper()
	fn, err := registry.Function{
		Name:     name,
		Endpoint: "http://127.0.0.1:9000/" + name,
		Headers:  map[string]string{"X-Api-Key": "k-" + name, "X-Team": "a"},
	}.Normalize()
	if err != nil {
		t.Fatalf("normalize %q: %v", name, err)
	}
	return fn
}

// Run runs the Store contract against fresh stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) registry.Store) {
	ctx := context.Background()

	t.Run("PutGetRoundTrip", func(t *testing.T) {
		s := newStore(t)
		want := Function(t, "alpha")
		if err := s.Put(ctx, want); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, err := s.Get(ctx, "alpha")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Get = %+v, want %+v", got, want)
		}
	})

	t.Run("GetReturnsCopy", func(t *testing.T) {
		s := newStore(t)
		if err := s.Put(ctx, Function(t, "alpha")); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, _ := s.Get(ctx, "alpha")
		got.Headers["X-Team"] = "changed"
		got.Retry.Statuses[0] = 400
		again, _ := s.Get(ctx, "alpha")
		if again.Headers["X-Team"] != "a" || again.Retry.Statuses[0] == 400 {
			t.Fatalf("store shares memory with callers: %+v", again)
		}
	})

	t.Run("PutReplaces", func(t *testing.T) {
		s := newStore(t)
		fn := Function(t, "alpha")
		if err := s.Put(ctx, fn); err != nil {
			t.Fatalf("Put: %v", err)
		}
		fn.Description = "second"
		if err := s.Put(ctx, fn); err != nil {
			t.Fatalf("Put again: %v", err)
		}
		got, _ := s.Get(ctx, "alpha")
		if got.Description != "second" {
			t.Fatalf("Description = %q, want second", got.Description)
		}
	})

	t.Run("PutRejectsInvalid", func(t *testing.T) {
		s := newStore(t)
		err := s.Put(ctx, registry.Function{Name: "bad name"})
		var fe *registry.FieldError
		if !errors.As(err, &fe) || fe.Field != "name" {
			t.Fatalf("Put(invalid) = %v, want a FieldError on name", err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Get(ctx, "missing"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "missing"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("Delete(missing) = %v, want ErrNotFound", err)
		}
	})

	t.Run("ListSortedAndDelete", func(t *testing.T) {
		s := newStore(t)
		for _, n := range []string{"gamma", "alpha", "beta"} {
			if err := s.Put(ctx, Function(t, n)); err != nil {
				t.Fatalf("Put %s: %v", n, err)
			}
		}
		if err := s.Delete(ctx, "beta"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		list, err := s.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		var names []string
		for _, f := range list {
			names = append(names, f.Name)
		}
		if !reflect.DeepEqual(names, []string{"alpha", "gamma"}) {
			t.Fatalf("List names = %v, want [alpha gamma]", names)
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Put(cctx, Function(t, "alpha")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Put(canceled) = %v, want context.Canceled", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				name := fmt.Sprintf("fn-%d", i)
				for range 50 {
					if err := s.Put(ctx, Function(t, name)); err != nil {
						t.Errorf("Put: %v", err)
						return
					}
					if _, err := s.Get(ctx, name); err != nil {
						t.Errorf("Get: %v", err)
					}
					if _, err := s.List(ctx); err != nil {
						t.Errorf("List: %v", err)
					}
				}
			})
		}
		wg.Wait()
		list, _ := s.List(ctx)
		if len(list) != 8 {
			t.Fatalf("List has %d functions, want 8", len(list))
		}
	})
}
