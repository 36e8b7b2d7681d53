package mls

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// runVectors loads testdata/<file> (a JSON array of cases), runs fn on each
// case as a subtest named by its index, and logs one summary line:
//
//	vectors <file>: <passed>/<total> passed, <skipped> skipped
//
// A case that calls t.Skip (e.g. for a cipher suite the package does not
// support) is counted as skipped, never as passed. A failing case fails the
// test.
func runVectors[T any](t *testing.T, file string, fn func(t *testing.T, tc *T)) {
	t.Helper()
	runVectorsFrom(t, filepath.Join("testdata", file), fn)
}

// runVectorsFrom is runVectors for a file at any path.
func runVectorsFrom[T any](t *testing.T, path string, fn func(t *testing.T, tc *T)) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	var cases []T
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	if len(cases) == 0 {
		t.Fatalf("%s has no cases", path)
	}
	passed, skipped := 0, 0
	for i := range cases {
		var wasSkipped bool
		ok := t.Run(fmt.Sprint(i), func(t *testing.T) {
			defer func() { wasSkipped = t.Skipped() }()
			fn(t, &cases[i])
		})
		switch {
		case wasSkipped:
			skipped++
		case ok:
			passed++
		}
	}
	t.Logf("vectors %s: %d/%d passed, %d skipped", filepath.Base(path), passed, len(cases), skipped)
}

// hexBytes is a JSON hex string; null decodes as nil.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}
