package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skip2/go-qrcode"
)

// parseQR reads keyQR's half-block drawing back into modules (true: dark).
func parseQR(t *testing.T, s string) [][]bool {
	t.Helper()
	var rows [][]bool
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		top, bottom := []bool{}, []bool{}
		for _, r := range line {
			// Drawn: light. Blank: dark.
			switch r {
			case '█':
				top, bottom = append(top, false), append(bottom, false)
			case ' ':
				top, bottom = append(top, true), append(bottom, true)
			case '▀':
				top, bottom = append(top, false), append(bottom, true)
			case '▄':
				top, bottom = append(top, true), append(bottom, false)
			default:
				t.Fatalf("unexpected rune %q in the QR drawing", r)
			}
		}
		rows = append(rows, top, bottom)
	}
	return rows
}

// The terminal QR code is the library's matrix, module for module, and
// (with zbarimg installed) it scans back to the key.
func TestWhoamiQRDecodes(t *testing.T) {
	key := strings.Repeat("3f9a01bc", 8)
	drawn, err := keyQR(key)
	if err != nil {
		t.Fatal(err)
	}
	q, err := qrcode.New(key, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	want := q.Bitmap()
	got := parseQR(t, drawn)
	if len(want)%2 == 1 {
		// The last half line's lower half is the background.
		got = got[:len(got)-1]
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows drawn, matrix has %d", len(got), len(want))
	}
	for y := range want {
		if len(got[y]) != len(want[y]) {
			t.Fatalf("row %d: %d modules drawn, matrix has %d", y, len(got[y]), len(want[y]))
		}
		for x := range want[y] {
			if got[y][x] != want[y][x] {
				t.Fatalf("module (%d,%d) drawn %v, matrix %v", x, y, got[y][x], want[y][x])
			}
		}
	}
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Log("zbarimg not installed: the drawing is not scanned")
		return
	}
	// Scan an image made from the drawing itself.
	const scale = 8
	img := image.NewGray(image.Rect(0, 0, len(got[0])*scale, len(got)*scale))
	for y := range got {
		for x := range got[y] {
			c := color.Gray{Y: 255}
			if got[y][x] {
				c = color.Gray{}
			}
			for i := range scale * scale {
				img.SetGray(x*scale+i%scale, y*scale+i/scale, c)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(zbar, "--quiet", "--raw", path).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v", err)
	}
	if s := strings.TrimSpace(string(out)); s != key {
		t.Fatalf("scanned %q, want %q", s, key)
	}
}
