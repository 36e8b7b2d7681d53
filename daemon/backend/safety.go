package backend

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
)

// This file is key verification. Two people compare a safety number, in
// person or over a channel they already trust; when it matches, each holds
// the other's real identity key (nobody, the node included, gave them
// another), and each may mark the other verified. A contact whose key
// changes loses the mark and is reported loudly (contacts.go).
//
// The number is derived from both identity keys only, so it is the same on
// both sides and stays the same until a key changes:
//
//	fingerprint(key) = the first 30 bytes of H^5200, where
//	    H^0 = SHA-512(0x0001 || key || "quicproquo safety number v1")
//	    H^i = SHA-512(H^(i-1) || key)
//	digits(fp)       = six 5-digit groups, each a 5-byte big-endian
//	                   chunk of fp mod 100000
//	safety number    = digits of the lower key's fingerprint, then the
//	                   other's (keys compared as bytes): 60 digits
//
// The iterations make a key whose fingerprint matches a chosen one in many
// digits costly to find (as in Signal's numeric fingerprints). The QR code
// payload is "QPQSN" 0x01 followed by the two fingerprints in the same
// order: a scanner compares it with its own computation.

const (
	safetyIterations = 5200
	safetyLabel      = "quicproquo safety number v1"
	safetyFPSize     = 30
)

func safetyFingerprint(key []byte) []byte {
	h := sha512.New()
	h.Write([]byte{0, 1})
	h.Write(key)
	h.Write([]byte(safetyLabel))
	sum := h.Sum(nil)
	for range safetyIterations {
		h.Reset()
		h.Write(sum)
		h.Write(key)
		sum = h.Sum(sum[:0])
	}
	return sum[:safetyFPSize]
}

func safetyDigits(fp []byte, out *strings.Builder) {
	for i := 0; i+5 <= len(fp); i += 5 {
		var b [8]byte
		copy(b[3:], fp[i:i+5])
		if out.Len() > 0 {
			out.WriteByte(' ')
		}
		fmt.Fprintf(out, "%05d", binary.BigEndian.Uint64(b[:])%100000)
	}
}

// SafetyNumber is what two people compare.
type SafetyNumber struct {
	// Digits are 60 digits in 12 groups of 5, separated by spaces.
	Digits string
	// QR is the QR code payload.
	QR      []byte
	Contact Contact
}

// safetyNumber computes the number of two keys.
func safetyNumber(a, b []byte) (string, []byte) {
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	fa, fb := safetyFingerprint(a), safetyFingerprint(b)
	var sb strings.Builder
	safetyDigits(fa, &sb)
	safetyDigits(fb, &sb)
	qr := append(append(append([]byte("QPQSN"), 1), fa...), fb...)
	return sb.String(), qr
}

// SafetyNumber returns the safety number shared with a contact (by hex
// key or name).
func (b *Backend) SafetyNumber(ctx context.Context, ref string) (SafetyNumber, error) {
	id, err := b.identity(ctx)
	if err != nil {
		return SafetyNumber{}, err
	}
	var c Contact
	if err := b.view(ctx, func(tx *store.Tx) (err error) { c, err = resolveContact(tx, ref); return }); err != nil {
		return SafetyNumber{}, fmt.Errorf("backend: safety number: %w", err)
	}
	// Per person: the user keys, the same on every device of either.
	digits, qr := safetyNumber(id.UserPublicKey(), c.Identity)
	return SafetyNumber{Digits: digits, QR: qr, Contact: c}, nil
}

// Verify marks a contact verified (now) or unverified.
func (b *Backend) Verify(ctx context.Context, ref string, verified bool) (Contact, error) {
	var c Contact
	err := b.update(ctx, func(tx *store.Tx) (err error) {
		if c, err = resolveContact(tx, ref); err != nil {
			return err
		}
		if c.Blocked {
			return fmt.Errorf("%w: %s is blocked", ErrInvalidArgument, FormatKey(c.Identity))
		}
		c.VerifiedAt = time.Time{}
		if verified {
			c.VerifiedAt = tx.Now()
		}
		return tx.PutContact(c)
	})
	if err != nil {
		return Contact{}, fmt.Errorf("backend: verify: %w", err)
	}
	return c, nil
}
