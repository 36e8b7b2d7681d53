// Package pow is the proof of work a node asks of a new identity under its
// open registration policy: find a nonce such that
//
//	SHA-256("qpq-register-v1" || challenge || identity || nonce)
//
// starts with difficulty zero bits. The challenge is the node's, fresh per
// connection, so work cannot be done ahead of time or reused; the identity
// is in the hash, so one proof registers one key. Each extra bit doubles
// the expected work (2^difficulty hashes on average): 20 bits is about a
// million hashes, a fraction of a second for a user once, and the same for
// every throwaway identity an attacker wants.
package pow

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"
)

// MaxDifficulty bounds what a node may ask (and a client will try).
const MaxDifficulty = 32

// MaxNonceSize bounds the nonce a node accepts.
const MaxNonceSize = 16

var label = []byte("qpq-register-v1")

// ErrTooHard: the difficulty is above MaxDifficulty.
var ErrTooHard = errors.New("pow: difficulty above the maximum")

// Check reports whether nonce proves difficulty bits of work for identity
// under challenge.
func Check(challenge, identity, nonce []byte, difficulty int) bool {
	if len(nonce) > MaxNonceSize || difficulty > MaxDifficulty {
		return false
	}
	h := sha256.New()
	h.Write(label)
	h.Write(challenge)
	h.Write(identity)
	h.Write(nonce)
	var sum [sha256.Size]byte
	return leadingZeros(h.Sum(sum[:0])) >= difficulty
}

// Solve finds a nonce for Check, or returns ctx's error when it ends first.
func Solve(ctx context.Context, challenge, identity []byte, difficulty int) ([]byte, error) {
	if difficulty > MaxDifficulty {
		return nil, ErrTooHard
	}
	prefix := make([]byte, 0, len(label)+len(challenge)+len(identity))
	prefix = append(append(append(prefix, label...), challenge...), identity...)
	var (
		nonce [8]byte
		sum   [sha256.Size]byte
	)
	for i := uint64(0); ; i++ {
		if i%(1<<16) == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		binary.BigEndian.PutUint64(nonce[:], i)
		h := sha256.New()
		h.Write(prefix)
		h.Write(nonce[:])
		if leadingZeros(h.Sum(sum[:0])) >= difficulty {
			return append([]byte(nil), nonce[:]...), nil
		}
	}
}

func leadingZeros(b []byte) int {
	n := 0
	for _, x := range b {
		if x != 0 {
			return n + bits.LeadingZeros8(x)
		}
		n += 8
	}
	return n
}
