package link

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// This file is the code a person copies from one device to the other.

// SecretSize is the number of random bytes in a code.
const SecretSize = 16

// CodePrefix starts every code.
const CodePrefix = "qpq-link-"

// ErrCode: text that is not a link code.
var ErrCode = errors.New("link: not a link code")

// Secret is the random value behind a code; everything else derives from
// it (Derive).
type Secret [SecretSize]byte

var codeEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// maxCodeText bounds what ParseCode reads (a code is 43 characters; the
// margin is for spaces a person types).
const maxCodeText = 128

// NewCode makes a fresh secret from crypto/rand.
func NewCode() (Secret, error) {
	var s Secret
	if _, err := rand.Read(s[:]); err != nil {
		return Secret{}, fmt.Errorf("link: code: %w", err)
	}
	return s, nil
}

// String is the code as a person sees it.
func (s Secret) String() string {
	enc := strings.ToLower(codeEncoding.EncodeToString(s[:]))
	var b strings.Builder
	b.WriteString(CodePrefix)
	for i := 0; i < len(enc); i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(enc[i:min(i+4, len(enc))])
	}
	return b.String()
}

// ParseCode reads a code as String writes it, in either case, ignoring
// '-' and white space between the characters.
func ParseCode(text string) (Secret, error) {
	if len(text) > maxCodeText {
		return Secret{}, fmt.Errorf("%w: %d characters", ErrCode, len(text))
	}
	t := strings.ToLower(strings.TrimSpace(text))
	if !strings.HasPrefix(t, CodePrefix) {
		return Secret{}, fmt.Errorf("%w: want %q followed by the code", ErrCode, CodePrefix)
	}
	t = strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, t[len(CodePrefix):])
	want := codeEncoding.EncodedLen(SecretSize)
	if len(t) != want {
		return Secret{}, fmt.Errorf("%w: %d code characters, want %d", ErrCode, len(t), want)
	}
	b, err := codeEncoding.DecodeString(strings.ToUpper(t))
	if err != nil || len(b) != SecretSize {
		return Secret{}, fmt.Errorf("%w: characters outside a-z and 2-7", ErrCode)
	}
	// The last character carries 3 bits of padding that must be zero, so
	// that one secret has one code.
	var s Secret
	copy(s[:], b)
	if subtle.ConstantTimeCompare([]byte(s.String()), []byte(CodePrefix+group(t))) != 1 {
		return Secret{}, fmt.Errorf("%w: the last character is not one a code ends with", ErrCode)
	}
	return s, nil
}

func group(t string) string {
	var b strings.Builder
	for i := 0; i < len(t); i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(t[i:min(i+4, len(t))])
	}
	return b.String()
}
