package mls

import (
	"bytes"
	"testing"
)

type deserializationVector struct {
	VLBytesHeader hexBytes `json:"vlbytes_header"`
	Length        uint64   `json:"length"`
}

// TestVectorsDeserialization checks the variable-length header decoder and
// that the encoder produces the same (minimal) header.
func TestVectorsDeserialization(t *testing.T) {
	runVectors(t, "deserialization.json", func(t *testing.T, tc *deserializationVector) {
		v, n, err := ParseVarint(tc.VLBytesHeader)
		if err != nil {
			t.Fatalf("ParseVarint(%x): %v", tc.VLBytesHeader, err)
		}
		if v != tc.Length || n != len(tc.VLBytesHeader) {
			t.Fatalf("ParseVarint(%x) = %d (%d bytes), want %d (%d bytes)", tc.VLBytesHeader, v, n, tc.Length, len(tc.VLBytesHeader))
		}
		if got := AppendVarint(nil, tc.Length); !bytes.Equal(got, tc.VLBytesHeader) {
			t.Fatalf("AppendVarint(%d) = %x, want %x", tc.Length, got, tc.VLBytesHeader)
		}
	})
}
