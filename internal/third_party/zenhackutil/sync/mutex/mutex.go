// Package mutex provides Mutex, a sync.Mutex that owns the value it protects,
// so the value can only be reached while the lock is held.
package mutex

import "sync"

// Mutex protects a value of type T. The zero value holds T's zero value and is
// unlocked. A Mutex must not be copied after first use.
type Mutex[T any] struct {
	mu  sync.Mutex
	val T
}

// New returns a Mutex holding val.
func New[T any](val T) Mutex[T] {
	return Mutex[T]{val: val}
}

// Locked is the proof that a Mutex is held; it gives access to the value.
type Locked[T any] struct {
	m *Mutex[T]
}

// Lock acquires the mutex and returns the handle that reaches the value.
func (m *Mutex[T]) Lock() *Locked[T] {
	m.mu.Lock()
	return &Locked[T]{m: m}
}

// TryLock acquires the mutex if it is free and reports whether it did.
func (m *Mutex[T]) TryLock() (*Locked[T], bool) {
	if !m.mu.TryLock() {
		return nil, false
	}
	return &Locked[T]{m: m}, true
}

// Value returns a pointer to the protected value. It must not be used after
// Unlock.
func (l *Locked[T]) Value() *T {
	return &l.m.val
}

// Unlock releases the mutex. Calling Unlock twice panics.
func (l *Locked[T]) Unlock() {
	if l.m == nil {
		panic("mutex: Unlock of an already unlocked Locked")
	}
	m := l.m
	l.m = nil
	m.mu.Unlock()
}

// With calls f with the value while holding the lock.
func (m *Mutex[T]) With(f func(*T)) {
	l := m.Lock()
	defer l.Unlock()
	f(l.Value())
}

// With1 calls f with the value while holding the lock and returns its result.
func With1[T, A any](m *Mutex[T], f func(*T) A) A {
	l := m.Lock()
	defer l.Unlock()
	return f(l.Value())
}

// With2 is like With1 for a function of two results.
func With2[T, A, B any](m *Mutex[T], f func(*T) (A, B)) (A, B) {
	l := m.Lock()
	defer l.Unlock()
	return f(l.Value())
}

// With3 is like With1 for a function of three results.
func With3[T, A, B, C any](m *Mutex[T], f func(*T) (A, B, C)) (A, B, C) {
	l := m.Lock()
	defer l.Unlock()
	return f(l.Value())
}

// With4 is like With1 for a function of four results.
func With4[T, A, B, C, D any](m *Mutex[T], f func(*T) (A, B, C, D)) (A, B, C, D) {
	l := m.Lock()
	defer l.Unlock()
	return f(l.Value())
}
