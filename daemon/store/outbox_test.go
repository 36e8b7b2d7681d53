package store

import (
	"bytes"
	"testing"
)

func FuzzUnpackRecipients(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{1}, 32))
	f.Add(bytes.Repeat([]byte{2}, 33))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := unpackRecipients(b)
		if err != nil {
			if len(b)%recipientsSize == 0 {
				t.Fatalf("valid length %d refused: %v", len(b), err)
			}
			return
		}
		back, err := packRecipients(rs)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("round trip: %x -> %x (%v)", b, back, err)
		}
	})
}
