package backend

import (
	"context"
	"errors"
	"testing"

	"github.com/quicproquo/quicproquo/internal/devid"
)

// An export opens on a fresh state as the same identity; a wrong
// passphrase, a weak one, an unregistered state and a restore over
// another identity are typed errors.
func TestExportRestoreIdentity(t *testing.T) {
	ctx := context.Background()
	old := backupKDF
	backupKDF = devid.KDFParams{Time: 1, Memory: 8 * 1024, Threads: 1}
	t.Cleanup(func() { backupKDF = old })

	a := backendNew(t, Config{})
	if _, _, err := a.ExportIdentity(ctx, []byte("long enough")); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("export before register: %v", err)
	}
	reg, err := a.Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.ExportIdentity(ctx, []byte("short")); !errors.Is(err, ErrInvalidArgument) || !errors.Is(err, devid.ErrWeakPassphrase) {
		t.Fatalf("weak passphrase: %v", err)
	}
	text, pub, err := a.ExportIdentity(ctx, []byte("long enough"))
	if err != nil || !pub.Equal(reg.Identity) {
		t.Fatalf("export: %x, %v", pub, err)
	}

	fresh := backendNew(t, Config{})
	if _, err := fresh.RestoreIdentity(ctx, text, []byte("long enougH")); !errors.Is(err, devid.ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := fresh.IdentityKey(ctx); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("a refused restore left an identity: %v", err)
	}
	got, err := fresh.RestoreIdentity(ctx, text, []byte("long enough"))
	if err != nil || !got.Equal(reg.Identity) {
		t.Fatalf("restore: %x, %v", got, err)
	}
	if k, err := fresh.IdentityKey(ctx); err != nil || !k.Equal(reg.Identity) {
		t.Fatalf("restored identity %x, %v", k, err)
	}
	if _, err := fresh.RestoreIdentity(ctx, text, []byte("long enough")); err != nil {
		t.Fatalf("restoring the same identity again: %v", err)
	}
	other := backendNew(t, Config{})
	if _, err := other.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := other.RestoreIdentity(ctx, text, []byte("long enough")); !errors.Is(err, ErrIdentityExists) {
		t.Fatalf("restore over another identity: %v", err)
	}
}
