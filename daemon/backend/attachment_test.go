package backend

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/attach"
	"github.com/quicproquo/quicproquo/internal/content"
)

// A hostile member names its file to escape the folder, hide, or drive
// the terminal: the saved name stays a plain name inside the folder.
func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"photo.jpg":              "photo.jpg",
		"../../etc/passwd":       "passwd",
		"a/b\\c":                 "b_c",
		"..":                     "attachment",
		".bashrc":                "bashrc",
		"":                       "attachment",
		"x\x1b[2Jy":              "x_[2Jy",
		"/":                      "attachment",
		strings.Repeat("é", 300): strings.Repeat("é", 100),
	} {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func sampleRef() content.Attachment {
	return content.Attachment{ContentType: "image/png", Location: blobLocation + "00112233445566778899aabbccddeeff", Size: 5,
		EncAlg: attach.EncAlg, Key: bytes.Repeat([]byte{1}, attach.KeySize), Nonce: bytes.Repeat([]byte{2}, attach.PrefixSize),
		HashAlg: content.HashSHA256, Hash: bytes.Repeat([]byte{3}, attach.HashSize), Name: "p.png"}
}

// References this daemon cannot open are refused before any download.
func TestParseBlobRef(t *testing.T) {
	a := sampleRef()
	if id, s, err := parseBlobRef(&a); err != nil || len(id) != 16 || s.CipherSize != attach.CiphertextSize(5) {
		t.Fatalf("parseBlobRef = %x, %+v, %v", id, s, err)
	}
	for name, mutate := range map[string]func(*content.Attachment){
		"another store": func(a *content.Attachment) { a.Location = "https://example.com/x" },
		"not hex":       func(a *content.Attachment) { a.Location = blobLocation + "zz" },
		"other cipher":  func(a *content.Attachment) { a.EncAlg = 29 },
		"other hash":    func(a *content.Attachment) { a.HashAlg = 7 },
		"too large":     func(a *content.Attachment) { a.Size = MaxAttachmentSize + 1 },
	} {
		a := sampleRef()
		mutate(&a)
		if _, _, err := parseBlobRef(&a); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzParseAppMessage reads application contents of every version: never
// a panic, and a version 3 content with attachments keeps them.
func FuzzParseAppMessage(f *testing.F) {
	v3, err := appendAttachContent(content.NewAttachment(sampleRef(), "caption"), bytes.Repeat([]byte{9}, 32))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v3)
	f.Add(appendAppContentAuth(time.Unix(1, 2), "hello", bytes.Repeat([]byte{9}, 32)))
	f.Add([]byte{appContentAttach, appAuthSize})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseAppMessage(b)
		if err != nil {
			return
		}
		for _, r := range m.refs {
			c, err := content.Parse(r)
			if err != nil || len(c.Attachments()) != 1 {
				t.Fatalf("stored reference does not read back: %v", err)
			}
		}
	})
}
