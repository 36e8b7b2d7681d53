package content

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParse: whatever Parse accepts, Append writes again, and what Append
// writes parses to the same message and re-encodes to the same bytes.
func FuzzParse(f *testing.F) {
	for _, m := range samples() {
		b, err := m.Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0}, "old"...))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		enc, err := m.Append(nil)
		if err != nil {
			t.Fatalf("Append of a parsed message: %v", err)
		}
		m2, err := Parse(enc)
		if err != nil {
			t.Fatalf("Parse of Append: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("unstable:\n%+v\n%+v", m, m2)
		}
		enc2, err := m2.Append(nil)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding differs: %v\n%x\n%x", err, enc, enc2)
		}
		_, _, _, _ = m.Kind(), m.Text(), m.Attachments(), m.Unknown()
	})
}
