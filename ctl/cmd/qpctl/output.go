package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// Terminal safety. Group names, message texts, errors and everything else
// that comes from the daemon may come from another group member: printed
// raw, a newline would let them forge a line ("[team #5] alice: your PIN
// please"), an escape sequence could clear the screen or set the terminal
// title, and a bidi override could reorder what is shown. In text output
// every such character is therefore shown as a visible escape (\n, \r,
// \x1b, \u202e, ...); message texts keep their lines, but each line after
// the first is printed as a continuation, indented and marked with "| ",
// so that no message text can start a line of its own. --json output is
// byte-exact instead: JSON escapes control characters itself.

// unsafeRune reports whether r must not reach a terminal as it is.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f: // C0 controls (ESC, CR, LF, BEL, ...) and DEL
		return true
	case r >= 0x80 && r <= 0x9f: // C1 controls (CSI, OSC, ...)
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	case r == 0x200e, r == 0x200f, r == 0x061c: // bidi marks
		return true
	case r == 0x2028, r == 0x2029, r == 0xfeff: // line and paragraph separators, BOM
		return true
	}
	return false
}

// escapeRune writes r as a visible escape.
func escapeRune(b *strings.Builder, r rune) {
	switch r {
	case '\n':
		b.WriteString(`\n`)
	case '\r':
		b.WriteString(`\r`)
	case '\t':
		b.WriteString(`\t`)
	default:
		if r < 0x100 {
			fmt.Fprintf(b, `\x%02x`, r)
		} else {
			fmt.Fprintf(b, `\u%04x`, r)
		}
	}
}

// escapeLine makes s safe to print as (part of) one terminal line.
func escapeLine(s string) string {
	if !needsEscape(s, false) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r):
			escapeRune(&b, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// needsEscape reports whether s holds anything escapeLine changes; with
// keepTabs, tabs are allowed.
func needsEscape(s string, keepTabs bool) bool {
	for _, r := range s {
		if r == utf8.RuneError || (unsafeRune(r) && !(keepTabs && r == '\t')) {
			return true
		}
	}
	return false
}

// continuation starts each line of a multi-line text after the first.
const continuation = "\n    | "

// escapeText makes a message text safe to print: its lines are kept, as
// continuation lines; everything else unsafe is escaped. Tabs stay.
func escapeText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if needsEscape(l, true) {
			parts := strings.Split(l, "\t")
			for j := range parts {
				parts[j] = escapeLine(parts[j])
			}
			l = strings.Join(parts, "\t")
		}
		lines[i] = l
	}
	return strings.Join(lines, continuation)
}

// writeJSON writes v as one line of JSON, without HTML escaping, so that
// a decoded string is byte for byte what the daemon sent.
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func (a *app) printJSON(v any) error { return writeJSON(a.stdout, v) }

// printf prints to stdout with every string argument escaped for the
// terminal (see escapeLine).
func (a *app) printf(format string, args ...any) error {
	_, err := fmt.Fprintf(a.stdout, format, escapeArgs(args)...)
	return err
}

// escapeArgs escapes the string arguments of a format call in place.
func escapeArgs(args []any) []any {
	for i, v := range args {
		if s, ok := v.(string); ok {
			args[i] = escapeLine(s)
		}
	}
	return args
}

func timeString(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().UTC().Format(time.RFC3339Nano)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// stderrf prints a note to stderr, escaped like printf.
func (a *app) stderrf(format string, args ...any) {
	fmt.Fprintf(a.stderr, format, escapeArgs(args)...)
}
