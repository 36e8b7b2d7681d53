package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// Only a typed yes links: no, anything else, the end of the input and
// silence are no.
func TestReadYes(t *testing.T) {
	for in, want := range map[string]bool{"y\n": true, "YES\n": true, " y \n": true, "n\n": false, "yep\n": false, "": false, "\n": false} {
		a := &app{stdin: strings.NewReader(in)}
		if got := a.readYes(time.Second); got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
	r, w := io.Pipe()
	defer w.Close()
	a := &app{stdin: r}
	if a.readYes(100 * time.Millisecond) {
		t.Error("silence taken for yes")
	}
}
