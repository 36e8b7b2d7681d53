package devid

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"testing"
	"time"
)

// testKDF keeps the tests quick; DefaultKDF is used by one test only.
var testKDF = minKDF

func sealTest(t testing.TB, pass string) (Identity, []byte) {
	t.Helper()
	_, priv := newKey(t)
	id := Identity{Key: priv, Created: t0}
	text, err := SealBackup(id, []byte(pass), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	return id, text
}

func TestBackupRoundTrip(t *testing.T) {
	_, priv := newKey(t)
	id := Identity{Key: priv, Created: t0.Add(123456789)}
	text, err := SealBackup(id, []byte("correct horse battery"), KDFParams{})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(text, priv.Seed()) || !bytes.HasPrefix(text, []byte("-----BEGIN "+BackupPEMType)) {
		t.Fatalf("backup text %q", text)
	}
	got, err := OpenBackup(text, []byte("correct horse battery"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Key.Equal(priv) || !got.Created.Equal(id.Created) {
		t.Fatalf("restored %x at %v, want %x at %v", got.Key.Public(), got.Created, priv.Public(), id.Created)
	}
	got.Wipe()
	if !isZero(got.Key) {
		t.Fatal("Wipe left the key")
	}
	// Two exports of one key differ (fresh salt and nonce).
	again, err := SealBackup(id, []byte("correct horse battery"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again, text) {
		t.Fatal("two backups are identical")
	}
}

func TestBackupWrongPassphrase(t *testing.T) {
	_, text := sealTest(t, "passphrase one")
	for _, pass := range []string{"passphrase two", "", "passphrase one "} {
		if _, err := OpenBackup(text, []byte(pass)); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("passphrase %q: %v, want ErrWrongPassphrase", pass, err)
		}
	}
}

// reseal rewrites the bytes of a backup's PEM block.
func reseal(t *testing.T, text []byte, edit func([]byte) []byte) []byte {
	t.Helper()
	blk, _ := pem.Decode(text)
	blk.Bytes = edit(bytes.Clone(blk.Bytes))
	return pem.EncodeToMemory(blk)
}

// Every byte of the header is authenticated, and parameters outside the
// bounds are refused before any key derivation.
func TestBackupTamperingAndBounds(t *testing.T) {
	_, text := sealTest(t, "passphrase one")
	for i := 0; i < backupSize; i++ {
		changed := reseal(t, text, func(b []byte) []byte { b[i] ^= 0x01; return b })
		_, err := OpenBackup(changed, []byte("passphrase one"))
		if !errors.Is(err, ErrWrongPassphrase) && !errors.Is(err, ErrBackupFormat) && !errors.Is(err, ErrBackupParams) {
			t.Fatalf("byte %d changed: %v", i, err)
		}
		if err == nil {
			t.Fatalf("byte %d changed: opened", i)
		}
	}
	huge := reseal(t, text, func(b []byte) []byte { binary.BigEndian.PutUint32(b[6:], 1<<31); return b })
	start := time.Now()
	if _, err := OpenBackup(huge, []byte("passphrase one")); !errors.Is(err, ErrBackupParams) {
		t.Fatalf("2 TiB of memory: %v, want ErrBackupParams", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("out-of-bounds parameters were tried")
	}
	for name, b := range map[string][]byte{
		"empty":        nil,
		"other PEM":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}),
		"version 2":    reseal(t, text, func(b []byte) []byte { b[0] = 2; return b }),
		"short":        reseal(t, text, func(b []byte) []byte { return b[:len(b)-1] }),
		"long":         reseal(t, text, func(b []byte) []byte { return append(b, 0) }),
		"two blocks":   append(bytes.Clone(text), text...),
		"oversized":    append(bytes.Clone(text), bytes.Repeat([]byte(" "), MaxBackupFile)...),
		"not PEM text": []byte("hello"),
	} {
		if _, err := OpenBackup(b, []byte("passphrase one")); !errors.Is(err, ErrBackupFormat) {
			t.Errorf("%s: %v, want ErrBackupFormat", name, err)
		}
	}
}

func TestSealBackupRefusesBadInput(t *testing.T) {
	_, priv := newKey(t)
	if _, err := SealBackup(Identity{Key: priv}, []byte("short"), testKDF); !errors.Is(err, ErrWeakPassphrase) {
		t.Fatalf("short passphrase: %v", err)
	}
	if _, err := SealBackup(Identity{Key: priv[:3]}, []byte("long enough"), testKDF); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("short key: %v", err)
	}
	if _, err := SealBackup(Identity{Key: priv}, []byte("long enough"), KDFParams{Time: 1, Memory: 1, Threads: 1}); !errors.Is(err, ErrBackupParams) {
		t.Fatalf("weak KDF: %v", err)
	}
}

// FuzzOpenBackup: any file and passphrase give an identity only for the
// real backup and passphrase, otherwise a typed error.
func FuzzOpenBackup(f *testing.F) {
	// A fixed key: the fuzzing workers run this setup again, and the
	// corpus they get is the coordinator's.
	id := Identity{Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)), Created: t0}
	text, err := SealBackup(id, []byte("passphrase one"), testKDF)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(text, []byte("passphrase one"))
	f.Add(text, []byte("passphrase two"))
	f.Add(text[:len(text)/2], []byte("passphrase one"))
	f.Fuzz(func(t *testing.T, text, pass []byte) {
		got, err := OpenBackup(text, pass)
		if err != nil {
			if !errors.Is(err, ErrBackupFormat) && !errors.Is(err, ErrBackupParams) && !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if !got.Key.Equal(id.Key) {
			t.Fatal("opened a backup of another key")
		}
	})
}
