package mls

// Randomness. Everything this package draws at random comes from one source,
// randSource, which is crypto/rand's Reader: HPKE key pairs (RFC 9180
// DeriveKeyPair of random input keying material), signature key pairs,
// UpdatePath secrets, the reuse guards of PrivateMessages, group IDs, init
// secrets, PSK nonces and the ephemeral keys of X448 HPKE. Tests replace
// randSource with a fixed stream to make the package's output reproducible.
//
// Two draws happen inside the standard library, which since Go 1.26 takes no
// randomness from its callers: the ephemeral key of HPKE encapsulation for
// the crypto/hpke suites and the ECDSA signature nonce. Both come from
// crypto/rand as well; a test that needs them fixed uses
// testing/cryptotest.SetGlobalRandom. Where this package encapsulates by
// itself (suite_hpkeinfo.go: the X25519 suites, and a Welcome's or
// UpdatePath's many encryptions for the NIST curves) it draws the
// ephemeral key from crypto/rand's Reader directly too, as crypto/hpke
// does: those draws run on several goroutines at once.

import (
	"crypto/rand"
	"fmt"
	"io"
)

// randSource is the randomness source of the package. Production code never
// changes it.
var randSource io.Reader = rand.Reader

// readRandom fills b from randSource.
func readRandom(b []byte) error {
	if _, err := io.ReadFull(randSource, b); err != nil {
		return fmt.Errorf("mls: randomness: %w", err)
	}
	return nil
}

// randomBytes returns n bytes from randSource.
func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if err := readRandom(b); err != nil {
		return nil, err
	}
	return b, nil
}
