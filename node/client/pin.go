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

// pinFingerprint checks that certDER has the pinned SHA-256 fingerprint.
func pinFingerprint(pinned []byte) func(certDER []byte) error {
	return func(certDER []byte) error {
		sum := sha256.Sum256(certDER)
		if subtle.ConstantTimeCompare(sum[:], pinned) == 1 {
			return nil
		}
		return fmt.Errorf("%w: pinned sha256 %x, node presents sha256 %s; if the node's certificate was replaced on purpose, pin the new fingerprint",
			ErrServerCertChanged, pinned, Fingerprint(certDER))
	}
}

// TOFUFile trusts the first certificate a node presents and remembers it in
// path (DER, mode 0600); later it accepts only that certificate. To re-pin
// after an intended change, delete the file and connect again.
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
		if subtle.ConstantTimeCompare(pinned, certDER) == 1 {
			return nil
		}
		return fmt.Errorf("%w: pinned sha256 %s (in %s), node presents sha256 %s; if the node's certificate was replaced on purpose, delete %s to trust the new one",
			ErrServerCertChanged, Fingerprint(pinned), path, Fingerprint(certDER), path)
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
