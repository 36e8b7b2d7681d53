package backend

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/testnode"

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

// FuzzAttachmentRefs reads application contents of every version: never
// a panic, and a content with attachments keeps each as a reference that
// reads back.
func FuzzAttachmentRefs(f *testing.F) {
	v3, err := appendContent(content.NewAttachment(sampleRef(), "caption"), bytes.Repeat([]byte{9}, 32))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v3)
	f.Add(appendAppContentAuth(time.Unix(1, 2), "hello", bytes.Repeat([]byte{9}, 32)))
	f.Add([]byte{appContentV3, appAuthSize})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, _, err := parseContent(b)
		if err != nil {
			return
		}
		refs, err := attachmentRefs(m)
		if err != nil {
			return
		}
		for _, r := range refs {
			c, err := content.Parse(r)
			if err != nil || len(c.Attachments()) != 1 {
				t.Fatalf("stored reference does not read back: %v", err)
			}
		}
	})
}

// A file through a real node between two daemons: saved by the receiver
// (and the sender) as it was; a repeated send with the same client id
// uploads nothing again; a text message has nothing to save; a chunk the
// node changed is refused with ErrAttachmentCorrupt and leaves no file.
func TestAttachmentThroughNode(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	ctx := context.Background()
	_, gid := groupsForm(t, "files", alice, bob)
	src := filepath.Join(t.TempDir(), "notes.txt")
	data := bytes.Repeat([]byte("attachment "), 60000) // 660 kB: three node chunks
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var last uint64
	res, err := alice.b.SendAttachment(ctx, gid, src, "read this", "", []byte("once"), func(_ string, done, _ uint64) { last = done })
	if err != nil {
		t.Fatal(err)
	}
	if last != uint64(len(data)) || !strings.Contains(res.Message.Text, `[attachment "notes.txt", text/plain; charset=utf-8, 660000 bytes] read this`) {
		t.Fatalf("sent %q, progress ended at %d", res.Message.Text, last)
	}
	again, err := alice.b.SendAttachment(ctx, gid, src, "read this", "", []byte("once"), nil)
	if err != nil || again.Message.Seq != res.Message.Seq {
		t.Fatalf("repeated send: %+v, %v", again.Message, err)
	}
	nodeDB, err := sql.Open("sqlite", "file:"+filepath.Join(node.Dir, "node.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer nodeDB.Close()
	var blobs int
	if err := nodeDB.QueryRow(`SELECT count(*) FROM blobs`).Scan(&blobs); err != nil || blobs != 1 {
		t.Fatalf("the node holds %d blobs (%v), want 1", blobs, err)
	}
	groupsWait(t, "bob has the message", func() bool { return len(groupsTexts(t, bob, gid)) == 1 })
	seq := uint64(1)

	dir := t.TempDir()
	files, err := bob.b.SaveAttachments(ctx, gid, seq, dir, nil)
	if err != nil || len(files) != 1 {
		t.Fatalf("SaveAttachments: %+v, %v", files, err)
	}
	if got, err := os.ReadFile(files[0].Path); err != nil || !bytes.Equal(got, data) || files[0].Path != filepath.Join(dir, "notes.txt") {
		t.Fatalf("bob saved %s: %d bytes, %v", files[0].Path, len(got), err)
	}
	if _, err := alice.b.SaveAttachments(ctx, gid, res.Message.Seq, t.TempDir(), nil); err != nil {
		t.Fatalf("the sender's own save: %v", err)
	}
	if _, err := bob.b.SaveAttachments(ctx, gid, seq, "relative", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("relative folder: %v", err)
	}
	if _, err := alice.b.Send(ctx, gid, "plain", nil); err != nil {
		t.Fatal(err)
	}
	groupsWait(t, "bob has the text", func() bool { return len(groupsTexts(t, bob, gid)) == 2 })
	if _, err := bob.b.SaveAttachments(ctx, gid, 2, dir, nil); !errors.Is(err, ErrNoAttachment) {
		t.Fatalf("save of a text message: %v", err)
	}

	// The node zeroes the last chunk.
	if _, err := nodeDB.Exec(`UPDATE blob_chunks SET data = CAST(zeroblob(length(data)) AS BLOB) WHERE idx = 2`); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	if _, err := bob.b.SaveAttachments(ctx, gid, seq, empty, nil); !errors.Is(err, ErrAttachmentCorrupt) {
		t.Fatalf("save of a corrupted blob: %v", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("a refused save left %v", entries)
	}
}
