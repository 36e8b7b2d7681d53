package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/quicproquo/quicproquo/daemon/store"
)

// keyWithPrefix is a 32-byte identity key whose hex form starts with p.
func keyWithPrefix(t *testing.T, p string, fill byte) ed25519.PublicKey {
	t.Helper()
	k, err := hex.DecodeString(p + strings.Repeat(hex.EncodeToString([]byte{fill}), 32-len(p)/2))
	if err != nil || len(k) != 32 {
		t.Fatalf("key with prefix %s: %v", p, err)
	}
	return k
}

// The one resolver: a whole key, a contact's key prefix of 8+ hex digits,
// or a contact's exact name; a name can never read as a key prefix, and
// hostile names are refused.
func TestResolvePeerRules(t *testing.T) {
	b, _ := receiveUser(t, nil)
	ctx := context.Background()
	dad := keyWithPrefix(t, "dad00000", 1)
	cafe1 := keyWithPrefix(t, "cafe000111", 2)
	cafe2 := keyWithPrefix(t, "cafe000122", 3)
	for _, c := range []struct {
		k    ed25519.PublicKey
		name string
	}{{dad, "dad"}, {cafe1, "Zoë"}, {cafe2, "cafe"}} {
		if _, _, err := b.AddContact(ctx, c.k, c.name); err != nil {
			t.Fatalf("AddContact %q: %v", c.name, err)
		}
	}
	stranger := keyWithPrefix(t, "dad00001", 4)
	for _, tc := range []struct {
		ref  string
		want ed25519.PublicKey
		err  error
	}{
		{FormatKey(stranger), stranger, nil}, // a whole key: no contact needed
		{strings.ToUpper(FormatKey(dad)), dad, nil},
		{"dad", dad, nil},                    // a short all-hex word is a name
		{"cafe", cafe2, nil},                 // ... even if it starts other keys
		{"dad00000", dad, nil},               // 8 hex digits: a key prefix, not a name
		{"DAD00000", dad, nil},               // any case
		{" Zoë ", cafe1, nil},                // surrounding space is ignored
		{"cafe000111", cafe1, nil},           // unique prefix
		{"cafe000", nil, ErrContactNotFound}, // 7 digits: a name, and none has it
		{"cafe00", nil, ErrContactNotFound},
		{"cafe0", nil, ErrContactNotFound},
		{"cafe0001", nil, ErrAmbiguousPeer},
		{"dad00001", nil, ErrContactNotFound}, // a stranger's prefix: give the whole key
		{"zoë", nil, ErrContactNotFound},      // names are exact
		{"", nil, ErrInvalidArgument},
		{"a\x1b[2Jb", nil, ErrInvalidArgument},
		{"bob\u202egnp.exe", nil, ErrInvalidArgument},
		{FormatKey(dad) + "00", nil, ErrInvalidArgument},
	} {
		got, err := b.ResolvePeer(ctx, tc.ref)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("ResolvePeer(%q) = %x, %v; want %v", tc.ref, got, err, tc.err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("ResolvePeer(%q) = %x, %v; want %x", tc.ref, got, err, tc.want)
		}
	}
	// Names that would compete with keys, or hide on a terminal, are refused.
	other := keyWithPrefix(t, "0123", 5)
	for _, name := range []string{"deadbeef", "DeadBeef00", FormatKey(other), "a\tb", "x\u200by", "left\u2066", "\u00a0pad", " sp", "nul\x00", strings.Repeat("n", MaxContactName+1)} {
		if _, _, err := b.AddContact(ctx, other, name); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("AddContact name %q: %v, want ErrInvalidArgument", name, err)
		}
		if _, err := b.RenameContact(ctx, "dad", name); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("RenameContact to %q: %v, want ErrInvalidArgument", name, err)
		}
	}
	// Rename, and the other references follow.
	if c, err := b.RenameContact(ctx, "dad00000", "father"); err != nil || c.Name != "father" || !bytes.Equal(c.Identity, dad) {
		t.Fatalf("RenameContact = %+v, %v", c, err)
	}
	if _, err := b.ResolvePeer(ctx, "dad"); !errors.Is(err, ErrContactNotFound) {
		t.Fatalf("old name after rename: %v", err)
	}
	if _, err := b.RenameContact(ctx, "father", "cafe"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("rename to a taken name: %v, want store.ErrExists", err)
	}
	if _, err := b.RenameContact(ctx, FormatKey(stranger), "x"); !errors.Is(err, ErrContactNotFound) {
		t.Fatalf("rename a stranger: %v", err)
	}
	if err := b.RemoveContact(ctx, "father"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ResolvePeer(ctx, "father"); !errors.Is(err, ErrContactNotFound) {
		t.Fatalf("removed contact: %v", err)
	}
}

// FuzzResolvePeer: any reference resolves to a 32-byte key or a typed
// error, never a panic; a name qpd accepts never reads as a key prefix
// and holds only printable characters.
func FuzzResolvePeer(f *testing.F) {
	b, _ := receiveUser(f, nil)
	ctx := context.Background()
	dad := bytes.Repeat([]byte{0xda}, 32)
	if _, _, err := b.AddContact(ctx, dad, "dad"); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"dad", "dadadada", FormatKey(dad), strings.ToUpper(FormatKey(dad)), "", " dad ", "bob\u202e", "deadbeef", FormatKey(dad) + "0", "zoë"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		k, err := b.ResolvePeer(ctx, ref)
		switch {
		case err == nil && len(k) != ed25519.PublicKeySize:
			t.Fatalf("ResolvePeer(%q) = %d bytes", ref, len(k))
		case err != nil && !errors.Is(err, ErrInvalidArgument) && !errors.Is(err, ErrContactNotFound) && !errors.Is(err, ErrAmbiguousPeer):
			t.Fatalf("ResolvePeer(%q): untyped error %v", ref, err)
		}
		if validContactName(ref) {
			if looksLikeKey(ref) {
				t.Fatalf("name %q reads as a key prefix", ref)
			}
			for _, r := range ref {
				if r != ' ' && !unicode.IsPrint(r) {
					t.Fatalf("name %q holds %U", ref, r)
				}
			}
		}
	})
}
