package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/quicproquo/quicproquo/node/store"
)

func kp(label string, i int) []byte { return []byte(fmt.Sprintf("key package %s %d", label, i)) }

func testKPPutTakeCount(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	id := Key("alice")
	wantCount(t, ctx, s, id, 0, false)
	_, err := s.TakeKeyPackage(ctx, id)
	wantErr(t, "TakeKeyPackage on empty directory", err, store.ErrNoKeyPackage)

	want := map[string]bool{}
	for i := range 3 {
		_, err := s.PutKeyPackage(ctx, id, kp("a", i), false)
		noErr(t, "PutKeyPackage", err)
		want[string(kp("a", i))] = true
	}
	wantCount(t, ctx, s, id, 3, false)
	for n := 2; n >= 0; n-- {
		got, err := s.TakeKeyPackage(ctx, id)
		noErr(t, "TakeKeyPackage", err)
		if !want[string(got)] {
			t.Fatalf("TakeKeyPackage = %q: not stored or already taken", got)
		}
		delete(want, string(got))
		wantCount(t, ctx, s, id, n, false)
	}
	_, err = s.TakeKeyPackage(ctx, id)
	wantErr(t, "TakeKeyPackage after taking all", err, store.ErrNoKeyPackage)
}

func testKPFingerprint(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	for _, lr := range []bool{false, true} {
		pkg := kp("fp", 1)
		if lr {
			pkg = kp("fp-lr", 1)
		}
		fp, err := s.PutKeyPackage(ctx, Key("fp"), pkg, lr)
		noErr(t, "PutKeyPackage", err)
		if fp != sha256.Sum256(pkg) {
			t.Fatalf("fingerprint (last resort %v) = %x, want SHA-256 %x", lr, fp, sha256.Sum256(pkg))
		}
	}
}

func testKPSameBytesTwice(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	id := Key("twice")
	fp1, err := s.PutKeyPackage(ctx, id, kp("t", 0), false)
	noErr(t, "PutKeyPackage", err)
	fp2, err := s.PutKeyPackage(ctx, id, kp("t", 0), false)
	noErr(t, "PutKeyPackage again", err)
	if fp1 != fp2 {
		t.Fatalf("fingerprints differ for the same bytes: %x %x", fp1, fp2)
	}
	wantCount(t, ctx, s, id, 1, false)
	_, err = s.TakeKeyPackage(ctx, id)
	noErr(t, "TakeKeyPackage", err)
	_, err = s.TakeKeyPackage(ctx, id)
	wantErr(t, "second TakeKeyPackage", err, store.ErrNoKeyPackage)

	// The same bytes under another identity are another package.
	_, err = s.PutKeyPackage(ctx, Key("twice-other"), kp("t", 0), false)
	noErr(t, "PutKeyPackage for another identity", err)
	wantCount(t, ctx, s, Key("twice-other"), 1, false)
}

func testKPLastResort(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	id := Key("lr")
	_, err := s.PutKeyPackage(ctx, id, kp("lr", 1), true)
	noErr(t, "PutKeyPackage last resort 1", err)
	wantCount(t, ctx, s, id, 0, true)
	_, err = s.PutKeyPackage(ctx, id, kp("lr", 2), true)
	noErr(t, "PutKeyPackage last resort 2", err)
	wantCount(t, ctx, s, id, 0, true)

	_, err = s.PutKeyPackage(ctx, id, kp("c", 1), false)
	noErr(t, "PutKeyPackage consumable", err)
	_, err = s.PutKeyPackage(ctx, id, kp("c", 2), false)
	noErr(t, "PutKeyPackage consumable", err)
	wantCount(t, ctx, s, id, 2, true)

	// Consumable packages go first.
	seen := map[string]bool{}
	for range 2 {
		got, err := s.TakeKeyPackage(ctx, id)
		noErr(t, "TakeKeyPackage", err)
		if !bytes.Equal(got, kp("c", 1)) && !bytes.Equal(got, kp("c", 2)) {
			t.Fatalf("TakeKeyPackage = %q before the consumable packages were gone", got)
		}
		if seen[string(got)] {
			t.Fatalf("TakeKeyPackage returned %q twice", got)
		}
		seen[string(got)] = true
	}
	wantCount(t, ctx, s, id, 0, true)
	// Then the newest last-resort package, again and again, never consumed.
	for range 3 {
		got, err := s.TakeKeyPackage(ctx, id)
		noErr(t, "TakeKeyPackage last resort", err)
		if !bytes.Equal(got, kp("lr", 2)) {
			t.Fatalf("TakeKeyPackage = %q, want the replacing last-resort package %q", got, kp("lr", 2))
		}
		wantCount(t, ctx, s, id, 0, true)
	}
	// A new consumable package is preferred again.
	_, err = s.PutKeyPackage(ctx, id, kp("c", 3), false)
	noErr(t, "PutKeyPackage consumable", err)
	got, err := s.TakeKeyPackage(ctx, id)
	noErr(t, "TakeKeyPackage", err)
	if !bytes.Equal(got, kp("c", 3)) {
		t.Fatalf("TakeKeyPackage = %q, want the new consumable package", got)
	}
}

func testKPIdentitiesSeparate(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	a, b := Key("sep-a"), Key("sep-b")
	_, err := s.PutKeyPackage(ctx, a, kp("a", 1), false)
	noErr(t, "PutKeyPackage", err)
	_, err = s.PutKeyPackage(ctx, b, kp("b", 1), true)
	noErr(t, "PutKeyPackage", err)
	wantCount(t, ctx, s, a, 1, false)
	wantCount(t, ctx, s, b, 0, true)
	got, err := s.TakeKeyPackage(ctx, b)
	noErr(t, "TakeKeyPackage b", err)
	if !bytes.Equal(got, kp("b", 1)) {
		t.Fatalf("TakeKeyPackage(b) = %q, want b's own last-resort package", got)
	}
	got, err = s.TakeKeyPackage(ctx, a)
	noErr(t, "TakeKeyPackage a", err)
	if !bytes.Equal(got, kp("a", 1)) {
		t.Fatalf("TakeKeyPackage(a) = %q", got)
	}
	_, err = s.TakeKeyPackage(ctx, a)
	wantErr(t, "TakeKeyPackage a again", err, store.ErrNoKeyPackage)
}

func testKPLimit(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	id := Key("limit")
	max := Limits().MaxKeyPackages
	for i := range max {
		_, err := s.PutKeyPackage(ctx, id, kp("l", i), false)
		noErr(t, fmt.Sprintf("PutKeyPackage %d of %d", i+1, max), err)
	}
	_, err := s.PutKeyPackage(ctx, id, kp("l", max), false)
	wantErr(t, "PutKeyPackage beyond the limit", err, store.ErrLimit)
	wantCount(t, ctx, s, id, max, false)
	// Repeating stored bytes stores nothing, so it is not over the limit.
	_, err = s.PutKeyPackage(ctx, id, kp("l", 0), false)
	noErr(t, "PutKeyPackage of stored bytes at the limit", err)
	// The last-resort package does not count.
	_, err = s.PutKeyPackage(ctx, id, kp("l-lr", 0), true)
	noErr(t, "PutKeyPackage last resort at the limit", err)
	wantCount(t, ctx, s, id, max, true)
	// Another identity has its own allowance.
	_, err = s.PutKeyPackage(ctx, Key("limit-other"), kp("l", max), false)
	noErr(t, "PutKeyPackage for another identity", err)
	// Taking one makes room for one.
	_, err = s.TakeKeyPackage(ctx, id)
	noErr(t, "TakeKeyPackage", err)
	_, err = s.PutKeyPackage(ctx, id, kp("l", max), false)
	noErr(t, "PutKeyPackage after a take", err)
	_, err = s.PutKeyPackage(ctx, id, kp("l", max+1), false)
	wantErr(t, "PutKeyPackage beyond the limit again", err, store.ErrLimit)
}

func badKeys() map[string][]byte {
	return map[string][]byte{
		"nil":      nil,
		"empty":    {},
		"31 bytes": make([]byte, 31),
		"33 bytes": make([]byte, 33),
		"64 bytes": make([]byte, 64),
	}
}

func testKPInvalid(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	for name, k := range badKeys() {
		_, err := s.PutKeyPackage(ctx, k, kp("x", 0), false)
		wantErr(t, "PutKeyPackage with identity "+name, err, store.ErrInvalid)
		_, err = s.PutKeyPackage(ctx, k, kp("x", 0), true)
		wantErr(t, "PutKeyPackage last resort with identity "+name, err, store.ErrInvalid)
		_, err = s.TakeKeyPackage(ctx, k)
		wantErr(t, "TakeKeyPackage with identity "+name, err, store.ErrInvalid)
		_, err = s.CountKeyPackages(ctx, k)
		wantErr(t, "CountKeyPackages with identity "+name, err, store.ErrInvalid)
	}
	_, err := s.PutKeyPackage(ctx, Key("x"), nil, false)
	wantErr(t, "PutKeyPackage of an empty package", err, store.ErrInvalid)
	wantCount(t, ctx, s, Key("x"), 0, false)
}

// concurrentTake runs 50 takers of id at once and returns what each got.
func concurrentTake(t *testing.T, s store.Store, id []byte) (pkgs [][]byte, errs []error) {
	ctx := testCtx(t)
	const takers = 50
	pkgs = make([][]byte, takers)
	errs = make([]error, takers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range takers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			pkgs[i], errs[i] = s.TakeKeyPackage(ctx, id)
		}()
	}
	close(start)
	wg.Wait()
	return pkgs, errs
}

func testKPConcurrentWithLastResort(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	id := Key("concurrent-lr")
	n := Limits().MaxKeyPackages
	for i := range n {
		_, err := s.PutKeyPackage(ctx, id, kp("cc", i), false)
		noErr(t, "PutKeyPackage", err)
	}
	lr := kp("cc-lr", 0)
	_, err := s.PutKeyPackage(ctx, id, lr, true)
	noErr(t, "PutKeyPackage last resort", err)

	pkgs, errs := concurrentTake(t, s, id)
	seen := map[string]bool{}
	lastResort := 0
	for i := range pkgs {
		noErr(t, "concurrent TakeKeyPackage", errs[i])
		if bytes.Equal(pkgs[i], lr) {
			lastResort++
			continue
		}
		if seen[string(pkgs[i])] {
			t.Fatalf("package %q handed out twice", pkgs[i])
		}
		seen[string(pkgs[i])] = true
	}
	if len(seen) != n || lastResort != len(pkgs)-n {
		t.Fatalf("got %d distinct consumable packages and %d last-resort, want %d and %d", len(seen), lastResort, n, len(pkgs)-n)
	}
	wantCount(t, ctx, s, id, 0, true)
}

func testKPConcurrentWithoutLastResort(t *testing.T, s store.Store) {
	ctx := testCtx(t)
	id := Key("concurrent")
	n := Limits().MaxKeyPackages
	for i := range n {
		_, err := s.PutKeyPackage(ctx, id, kp("c", i), false)
		noErr(t, "PutKeyPackage", err)
	}
	pkgs, errs := concurrentTake(t, s, id)
	seen := map[string]bool{}
	none := 0
	for i := range pkgs {
		if errors.Is(errs[i], store.ErrNoKeyPackage) {
			none++
			continue
		}
		noErr(t, "concurrent TakeKeyPackage", errs[i])
		if seen[string(pkgs[i])] {
			t.Fatalf("package %q handed out twice", pkgs[i])
		}
		seen[string(pkgs[i])] = true
	}
	if len(seen) != n || none != len(pkgs)-n {
		t.Fatalf("got %d distinct packages and %d ErrNoKeyPackage, want %d and %d", len(seen), none, n, len(pkgs)-n)
	}
	wantCount(t, ctx, s, id, 0, false)
}
