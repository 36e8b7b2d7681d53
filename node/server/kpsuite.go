package server

// KeyPackages per cipher suite. A member can only add someone with a
// KeyPackage in the group's suite, so the directory keeps each identity's
// packages per suite: a fetch names the suite (1 when it does not), an
// upload files the package under its own cipher_suite. Each (identity,
// suite) directory has the store's rules and limits of one identity —
// consumed once, one last-resort package, MaxKeyPackages — and lives in the
// store under directoryKey. Only the suites in Config.KeyPackageSuites are
// kept, which bounds what one identity may store to that many directories.

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
)

// DefaultKeyPackageSuites are suite 1 (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
// and the X-Wing suite MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519 at its
// private-use code point (internal/mls suite_pq.go).
var DefaultKeyPackageSuites = []uint16{0x0001, 0xF001}

// defaultSuite is the suite of a fetch or count that names none; its
// directory is the identity key itself, as before suites were told apart.
const defaultSuite = 0x0001

// directoryKey is the store key of identity's KeyPackages in suite: the
// identity for suite 1, else SHA-256 over a label, the identity and the
// suite, which no identity key collides with.
func directoryKey(identity []byte, suite uint16) []byte {
	if suite == defaultSuite {
		return identity
	}
	h := sha256.New()
	h.Write([]byte("quicproquo KeyPackage directory\x00"))
	h.Write(identity)
	h.Write(binary.BigEndian.AppendUint16(nil, suite))
	return h.Sum(nil)
}

// keepsSuite reports whether the directory keeps packages of suite.
func (s *Server) keepsSuite(suite uint16) bool { return slices.Contains(s.cfg.KeyPackageSuites, suite) }

// keyPackageSuite is the cipher_suite of a KeyPackage that
// keyPackageIdentity accepted (so it has at least 4 bytes).
func keyPackageSuite(b []byte) uint16 { return binary.BigEndian.Uint16(b[2:4]) }

func suiteList(suites []uint16) string {
	out := ""
	for i, cs := range suites {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("0x%04x", cs)
	}
	return out
}
