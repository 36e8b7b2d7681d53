package client

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/quicproquo/quicproquo/internal/transport"
)

// Fingerprint is the SHA-256 of a DER certificate, as hex: how pins are
// written and shown.
func Fingerprint(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	return hex.EncodeToString(sum[:])
}

// ParseFingerprint reads a SHA-256 fingerprint written as 64 hex digits
// (colons and spaces allowed between bytes).
func ParseFingerprint(s string) ([]byte, error) {
	clean := bytes.Map(func(r rune) rune {
		if r == ':' || r == ' ' {
			return -1
		}
		return r
	}, []byte(s))
	b, err := hex.DecodeString(string(clean))
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("fingerprint %q: want 64 hex digits (SHA-256)", s)
	}
	return b, nil
}

// pinFingerprint checks that certDER has the pinned SHA-256 fingerprint,
// of its public key (transport.KeyFingerprint, which survives the node's
// renewals) or of the whole certificate (which does not).
func pinFingerprint(pinned []byte) func(certDER []byte) error {
	return func(certDER []byte) error {
		sum := sha256.Sum256(certDER)
		kfp, err := transport.KeyFingerprint(certDER)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(kfp[:], pinned)|subtle.ConstantTimeCompare(sum[:], pinned) == 1 {
			return nil
		}
		return fmt.Errorf("%w: pinned sha256 %x, node presents key sha256 %x (certificate sha256 %s); if the node's key was replaced on purpose, pin the new fingerprint",
			ErrServerCertChanged, pinned, kfp, Fingerprint(certDER))
	}
}

// pinKey checks that certDER carries the public key of the pinned
// certificate: a certificate the node renewed with its key matches.
func pinKey(pinnedDER []byte) func(certDER []byte) error {
	return func(certDER []byte) error {
		if transport.SameKey(pinnedDER, certDER) {
			return nil
		}
		return fmt.Errorf("%w: the pinned certificate (sha256 %s) has another key than the node's (sha256 %s); if the node's key was replaced on purpose, pin the new fingerprint or certificate",
			ErrServerCertChanged, Fingerprint(pinnedDER), Fingerprint(certDER))
	}
}

// TOFUFile trusts the first certificate a node presents and remembers it in
// path (DER, mode 0600); later it accepts only certificates with the same
// public key, and remembers the newest (a renewal). To re-pin after an
// intended key change, delete the file and connect again.
func TOFUFile(path string) func(certDER []byte) error {
	return func(certDER []byte) error {
		pinned, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			if err := writePin(path, certDER); err != nil {
				return fmt.Errorf("trust on first use: %w", err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("trust on first use: read pinned certificate: %w", err)
		}
		if !transport.SameKey(pinned, certDER) {
			return fmt.Errorf("%w: pinned sha256 %s (in %s), node presents sha256 %s with another key; if the node's key was replaced on purpose, delete %s to trust the new one",
				ErrServerCertChanged, Fingerprint(pinned), path, Fingerprint(certDER), path)
		}
		if !bytes.Equal(pinned, certDER) {
			if err := writePin(path, certDER); err != nil {
				return fmt.Errorf("trust on first use: remember the renewed certificate: %w", err)
			}
		}
		return nil
	}
}

func writePin(path string, der []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, der, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
