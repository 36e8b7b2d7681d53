// Package util provides the small helpers that capnproto.org/go/capnp/v3 needs
// from zenhack.net/go/util: Chkfatal and Idempotent.
package util

import "sync"

// Chkfatal panics if err is not nil. It is meant for tests and for conditions
// that indicate a programming error.
func Chkfatal(err error) {
	if err != nil {
		panic(err)
	}
}

// Idempotent returns a function that calls f the first time it is called and
// does nothing on later calls. It is safe for concurrent use.
func Idempotent(f func()) func() {
	var once sync.Once
	return func() { once.Do(f) }
}
