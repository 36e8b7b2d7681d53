package passphrase

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadOrder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pass")
	if err := os.WriteFile(file, []byte("from the file\r\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == Env {
			return "from the environment"
		}
		return ""
	}
	for _, c := range []struct {
		src  Source
		want string
		err  error
	}{
		{Source{File: file, Getenv: env}, "from the file", nil},
		{Source{Getenv: env}, "from the environment", nil},
		{Source{Getenv: func(string) string { return "" }}, "", ErrNone},
		{Source{}, "", ErrNone},
	} {
		got, err := c.src.Read(true)
		if string(got) != c.want || !errors.Is(err, c.err) {
			t.Errorf("%+v: %q, %v; want %q, %v", c.src, got, err, c.want, c.err)
		}
	}
	// A file that is not a terminal is never prompted on.
	stdin, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if _, err := (Source{Terminal: stdin}).Read(false); !errors.Is(err, ErrNone) {
		t.Fatalf("non-terminal: %v", err)
	}
}

func TestReadFileBounded(t *testing.T) {
	dir := t.TempDir()
	long := filepath.Join(dir, "long")
	if err := os.WriteFile(long, []byte(strings.Repeat("x", MaxSize+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (Source{File: long}).Read(false); err == nil {
		t.Fatal("an over-long passphrase was read")
	}
	exact := filepath.Join(dir, "exact")
	if err := os.WriteFile(exact, []byte(strings.Repeat("x", MaxSize)+"\n"+strings.Repeat("y", 5000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := (Source{File: exact}).Read(false); err != nil || len(p) != MaxSize {
		t.Fatalf("%d bytes, %v", len(p), err)
	}
	if _, err := (Source{File: filepath.Join(dir, "missing")}).Read(false); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
