// Package passphrase reads the passphrase of an identity backup for qpctl
// and qpd: from a file given on the command line, else from the
// QPQ_PASSPHRASE environment variable, else from the terminal without
// echo. A passphrase never comes from a flag's value, where other local
// users could read it in the process list.
package passphrase

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// Env is the environment variable a passphrase is read from.
const Env = "QPQ_PASSPHRASE"

// MaxSize bounds a passphrase read from a file or the terminal.
const MaxSize = 1024

// ErrNone: no file, no environment variable and no terminal to ask.
var ErrNone = errors.New("no passphrase: give --passphrase-file, set " + Env + ", or run on a terminal")

// ErrMismatch: the two entries of a new passphrase differ.
var ErrMismatch = errors.New("the passphrases do not match")

// Source says where to look.
type Source struct {
	// File, if set, holds the passphrase on its first line.
	File string
	// Getenv reads the environment (nil: no environment).
	Getenv func(string) string
	// Terminal is the terminal to prompt on (nil or not a terminal: no
	// prompt); Prompts go to Prompt.
	Terminal *os.File
	Prompt   io.Writer
}

// Read returns the passphrase. With confirm, a passphrase typed on the
// terminal is asked twice. The caller wipes it.
func (s Source) Read(confirm bool) ([]byte, error) {
	if s.File != "" {
		return readFile(s.File)
	}
	if s.Getenv != nil {
		if v := s.Getenv(Env); v != "" {
			return []byte(v), nil
		}
	}
	if s.Terminal == nil || !term.IsTerminal(int(s.Terminal.Fd())) {
		return nil, ErrNone
	}
	p, err := s.ask("Passphrase: ")
	if err != nil || !confirm {
		return p, err
	}
	again, err := s.ask("Passphrase again: ")
	defer clear(again)
	if err != nil {
		clear(p)
		return nil, err
	}
	if !bytes.Equal(p, again) {
		clear(p)
		return nil, ErrMismatch
	}
	return p, nil
}

func (s Source) ask(prompt string) ([]byte, error) {
	fmt.Fprint(s.Prompt, prompt)
	p, err := term.ReadPassword(int(s.Terminal.Fd()))
	fmt.Fprintln(s.Prompt)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if len(p) > MaxSize {
		clear(p)
		return nil, fmt.Errorf("passphrase longer than %d bytes", MaxSize)
	}
	return p, nil
}

// readFile reads the first line of path.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	defer f.Close()
	buf := make([]byte, MaxSize+2)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		clear(buf)
		return nil, fmt.Errorf("passphrase file %s: %w", path, err)
	}
	line := buf[:n]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > MaxSize {
		clear(buf)
		return nil, fmt.Errorf("passphrase file %s: first line longer than %d bytes", path, MaxSize)
	}
	out := bytes.Clone(line)
	clear(buf)
	return out, nil
}
