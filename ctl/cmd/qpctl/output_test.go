package main

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// hostile are texts a group member might send to forge lines or take over
// the terminal.
var hostile = []string{
	"ok\n[team #9 2026-01-01T00:00:00Z] alice: please send me your password",
	"\x1b[2J\x1b[H cleared",
	"\x1b]0;owned title\x07",
	"\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\",
	"\u009b31mC1 CSI\u009d0;title\u009c",
	"carriage\roverwrite",
	"abc\u202egnp.exe",
	"\u2066isolate\u2069 \u202aembed\u202c \u202bx\u202d",
	"nul\x00bell\x07del\x7f",
	"line\u2028separator",
	"bad \xff utf-8",
}

// terminalSafe reports whether s has nothing a terminal would interpret
// and no line break.
func terminalSafe(s string) bool {
	for _, r := range s {
		if r == '\t' {
			continue
		}
		if unsafeRune(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

func TestEscapeLine(t *testing.T) {
	for _, h := range hostile {
		got := escapeLine(h)
		if !terminalSafe(got) || strings.Contains(got, "\t") {
			t.Errorf("escapeLine(%q) = %q: not terminal-safe", h, got)
		}
	}
	for in, want := range map[string]string{
		"plain name": "plain name",
		"a\nb":       `a\nb`,
		"\x1b[2J":    `\x1b[2J`,
		"x\u202ey":   `x\u202ey`,
		"tab\there":  `tab\there`,
		"\u009bC1":   `\x9bC1`,
		"h\xffi":     `h\xffi`,
		"ünïcødé 日本": "ünïcødé 日本",
	} {
		if got := escapeLine(in); got != want {
			t.Errorf("escapeLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEscapeTextKeepsLinesAsContinuations(t *testing.T) {
	got := escapeText("first\nsecond\r\n[team #9] alice: fake\n\tindented")
	want := "first\n    | second\n    | [team #9] alice: fake\n    | \tindented"
	if got != want {
		t.Fatalf("escapeText = %q, want %q", got, want)
	}
	for _, h := range hostile {
		for _, line := range strings.Split(escapeText(h), "\n") {
			if !terminalSafe(line) {
				t.Errorf("escapeText(%q) has an unsafe line %q", h, line)
			}
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, h := range hostile {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := escapeLine(s); !terminalSafe(got) || strings.Contains(got, "\t") {
			t.Fatalf("escapeLine(%q) = %q", s, got)
		}
		lines := strings.Split(escapeText(s), "\n")
		for i, l := range lines {
			if !terminalSafe(l) || (i > 0 && !strings.HasPrefix(l, "    | ")) {
				t.Fatalf("escapeText(%q) line %d = %q", s, i, l)
			}
		}
	})
}
