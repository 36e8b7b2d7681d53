package util_test

import (
	"errors"
	"sync"
	"testing"

	"zenhack.net/go/util"
	"zenhack.net/go/util/deferred"
	"zenhack.net/go/util/sync/mutex"
)

func TestChkfatal(t *testing.T) {
	util.Chkfatal(nil) // must not panic
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("Chkfatal(err) did not panic")
		}
	}()
	util.Chkfatal(errors.New("boom"))
}

func TestIdempotent(t *testing.T) {
	n := 0
	f := util.Idempotent(func() { n++ })
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	wg.Wait()
	f()
	if n != 1 {
		t.Fatalf("called %d times, want 1", n)
	}
}

func TestQueueOrderAndNested(t *testing.T) {
	var q deferred.Queue
	var got []int
	q.Defer(func() { got = append(got, 1) })
	q.Defer(func() {
		got = append(got, 2)
		q.Defer(func() { got = append(got, 4) })
	})
	q.Defer(func() { got = append(got, 3) })
	q.Run()
	want := []int{1, 2, 3, 4}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	q.Run() // empty queue: nothing happens
	if len(got) != 4 {
		t.Fatalf("second Run re-ran functions: %v", got)
	}
}

func TestMutexWith(t *testing.T) {
	m := mutex.New(0)
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.With(func(v *int) { *v++ })
		}()
	}
	wg.Wait()
	if got := mutex.With1(&m, func(v *int) int { return *v }); got != 100 {
		t.Fatalf("value %d, want 100", got)
	}
	a, b := mutex.With2(&m, func(v *int) (int, int) { return *v, *v + 1 })
	c, d, e := mutex.With3(&m, func(v *int) (int, int, int) { return 1, 2, *v })
	w, x, y, z := mutex.With4(&m, func(v *int) (int, int, int, int) { return 1, 2, 3, *v })
	if a != 100 || b != 101 || c != 1 || d != 2 || e != 100 || w != 1 || x != 2 || y != 3 || z != 100 {
		t.Fatal("WithN returned the wrong values")
	}
}

func TestLockedValueAndDoubleUnlock(t *testing.T) {
	m := mutex.New("a")
	l := m.Lock()
	*l.Value() = "b"
	if _, ok := m.TryLock(); ok {
		t.Fatal("TryLock succeeded while held")
	}
	l.Unlock()
	l2, ok := m.TryLock()
	if !ok || *l2.Value() != "b" {
		t.Fatal("value not kept or TryLock failed on a free mutex")
	}
	l2.Unlock()
	defer func() {
		if recover() == nil {
			t.Fatal("double Unlock did not panic")
		}
	}()
	l2.Unlock()
}
