package backend

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

// After 20 epochs and a clean stop, no past epoch's secrets and no used
// KeyPackage private half can be found in qpd.db or its write-ahead log.
func TestPastSecretsLeaveTheDisk(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	ctx := context.Background()
	open := func() (*store.Store, string) {
		dir := t.TempDir()
		st, err := store.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		return st, dir
	}
	ast, adir := open()
	bst, bdir := open()
	alice := groupsStartOn(t, node, Config{}, ast)
	bob := groupsStartOn(t, node, Config{}, bst)

	// Bob's KeyPackage private halves before he joins: the one he joins
	// with is deleted then.
	var before []store.KeyPackageSecret
	if err := bob.b.view(ctx, func(tx *store.Tx) (err error) { before, err = tx.KeyPackages(); return }); err != nil {
		t.Fatal(err)
	}
	_, gid := groupsForm(t, "secrets", alice, bob)

	var auths [][]byte
	record := func() {
		m, err := alice.b.Members(ctx, gid)
		if err != nil {
			t.Fatal(err)
		}
		auths = append(auths, m.EpochAuthenticator)
	}
	record()
	for i := 0; i < 20; i++ {
		u := alice
		if i%2 == 1 {
			u = bob
		}
		if _, err := u.b.Update(ctx, gid); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.b.Send(ctx, gid, "m", nil); err != nil {
			t.Fatal(err)
		}
		record()
	}
	// Bob's last commit reaches Alice through her queue, in her own time.
	var final MembersResult
	groupsWait(t, "alice at epoch 21", func() bool {
		var err error
		final, err = alice.b.Members(ctx, gid)
		return err == nil && final.Epoch == 21
	})
	groupsWait(t, "bob at the last epoch", func() bool {
		m, err := bob.b.Members(ctx, gid)
		return err == nil && bytes.Equal(m.EpochAuthenticator, final.EpochAuthenticator)
	})
	var after []store.KeyPackageSecret
	if err := bob.b.view(ctx, func(tx *store.Tx) (err error) { after, err = tx.KeyPackages(); return }); err != nil {
		t.Fatal(err)
	}
	var used [][]byte
	for _, kp := range before {
		gone := true
		for _, k := range after {
			gone = gone && !bytes.Equal(k.Ref, kp.Ref)
		}
		if gone {
			used = append(used, kp.Secrets)
		}
	}
	if len(used) != 1 {
		t.Fatalf("%d KeyPackage secrets used by the join, want 1", len(used))
	}

	alice.stop()
	bob.stop()
	if err := ast.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bst.Close(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{adir, bdir} {
		for _, name := range []string{store.FileName, store.FileName + "-wal"} {
			raw, err := os.ReadFile(filepath.Join(dir, name))
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			// The current epoch's authenticator is in the state; every
			// earlier one must be gone.
			if !onDisk(raw, final.EpochAuthenticator) && name == store.FileName {
				t.Fatalf("%s of %s: the current epoch authenticator is not found: the search cannot see the state", name, filepath.Base(dir))
			}
			for e, a := range auths[:len(auths)-1] {
				if onDisk(raw, a) {
					t.Errorf("%s of %s: epoch %d's authenticator is still on disk", name, filepath.Base(dir), e+1)
				}
			}
			if dir == bdir && bytes.Contains(raw, used[0]) {
				t.Errorf("%s of bob: the used KeyPackage's private half is still on disk", name)
			}
		}
	}
}

// onDisk reports whether raw holds secret, or either end of it: a value
// in an overflow chain can straddle a page boundary, where SQLite puts
// the next page's number, and then only one of its two ends (the first
// and last 12 bytes, disjoint) stays contiguous.
func onDisk(raw, secret []byte) bool {
	if len(secret) < 24 {
		return bytes.Contains(raw, secret)
	}
	return bytes.Contains(raw, secret[:12]) || bytes.Contains(raw, secret[len(secret)-12:])
}
