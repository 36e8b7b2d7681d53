package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/quicproquo/quicproquo/internal/content"
	"github.com/quicproquo/quicproquo/internal/s3test"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// attachmentSize is the file of the attachment tests: 200 MiB, or
// QPQ_ATTACH_MB mebibytes.
func attachmentSize(t *testing.T) int64 {
	mb := int64(200)
	if s := os.Getenv("QPQ_ATTACH_MB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("QPQ_ATTACH_MB=%q", s)
		}
		mb = n
	}
	return mb << 20
}

// memoryBound is the most any process may hold at its peak (VmHWM)
// while a file of attachmentSize goes through it: far below the file
// itself, so a process that buffered the file would fail.
const memoryBound = 100 << 20

// writeRandomFile writes size pseudo-random bytes to path, streaming,
// and returns their SHA-256.
func writeRandomFile(t *testing.T, path string, size int64) []byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	r := mrand.NewChaCha8([32]byte{1, 2, 3})
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, size)); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

func fileHash(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

// peakMemory is a process's peak resident memory (VmHWM) in bytes.
func peakMemory(t *testing.T, p *proc) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
	return 0
}

func checkPeak(t *testing.T, what string, p *proc) {
	t.Helper()
	m := peakMemory(t, p)
	t.Logf("peak memory of %s: %d MiB", what, m>>20)
	if m > memoryBound {
		t.Errorf("%s peaked at %d MiB, bound %d MiB", what, m>>20, memoryBound>>20)
	}
}

// blobBackend is where the node under test keeps blob chunks.
type blobBackend struct {
	nodeFlags []string
	// corrupt flips a byte of chunk index of blob id.
	corrupt func(t *testing.T, n *node, id []byte, index int)
}

// A file goes from Alice through the node to Bob with bounded memory in
// all three processes; Bob's copy is the same; a corrupted blob is
// refused and leaves no file; a non-member is refused the blob.
func TestAttachment(t *testing.T) {
	testAttachment(t, blobBackend{corrupt: corruptSQLiteChunk})
}

// The same with the chunks in a real S3 server.
func TestAttachmentS3(t *testing.T) {
	endpoint, bucket := s3test.Endpoint(t), s3test.Bucket(t)
	testAttachment(t, blobBackend{
		nodeFlags: []string{"--s3-endpoint", endpoint, "--s3-bucket", bucket, "--s3-prefix", "b/", "--s3-insecure"},
		corrupt: func(t *testing.T, _ *node, id []byte, index int) {
			url := fmt.Sprintf("http://%s/%s/b/%s/%08x", endpoint, bucket, hex.EncodeToString(id), index)
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || len(data) == 0 {
				t.Fatalf("get chunk: %s, %d bytes, %v", resp.Status, len(data), err)
			}
			data[len(data)/2] ^= 1
			req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(data))
			resp, err = http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("put chunk: %v %v", resp, err)
			}
			resp.Body.Close()
		},
	})
}

func testAttachment(t *testing.T, backend blobBackend) {
	root := tempDir(t)
	n := startNode(t, root, "127.0.0.1:0", backend.nodeFlags...)
	alice, bob := newUser(t, root, "alice", n.addr), newUser(t, root, "bob", n.addr)
	alice.register(t)
	bob.register(t)
	group := alice.createGroup(t, "team")
	alice.must(t, "invite", "--group-id", "team", "--peer-key", bob.id)
	bob.join(t, group, "team")

	size := attachmentSize(t)
	src := filepath.Join(root, "holiday.bin")
	want := writeRandomFile(t, src, size)
	start := time.Now()
	r := alice.run(t, "send", "--group", "team", "--attach", src, "--msg", "the whole trip")
	if r.code != 0 {
		t.Fatalf("send --attach: exit %d: %s", r.code, r.stderr)
	}
	t.Logf("sent %d MiB in %v", size>>20, time.Since(start))
	if !strings.Contains(r.stderr, "sending holiday.bin: 100%") {
		t.Errorf("no progress on stderr: %q", r.stderr)
	}
	msgs := bob.recvUntil(t, group, 1)
	if !strings.Contains(msgs[0].Text, `[attachment "holiday.bin", application/octet-stream, `+strconv.FormatInt(size, 10)+` bytes]`) ||
		!strings.Contains(msgs[0].Text, "the whole trip") {
		t.Fatalf("bob sees %q", msgs[0].Text)
	}
	seq := strconv.FormatUint(msgs[0].GroupSeq, 10)
	out := filepath.Join(root, "downloads")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	r = bob.run(t, "save", "--group", "team", "#"+seq, out)
	if r.code != 0 {
		t.Fatalf("save: exit %d: %s", r.code, r.stderr)
	}
	t.Logf("saved %d MiB in %v", size>>20, time.Since(start))
	saved := filepath.Join(out, "holiday.bin")
	if !bytes.Equal(fileHash(t, saved), want) {
		t.Fatal("bob's copy differs from alice's file")
	}
	checkPeak(t, "alice's qpd", alice.p)
	checkPeak(t, "qpnode", n.p)
	checkPeak(t, "bob's qpd", bob.p)

	// A second save does not overwrite.
	bob.must(t, "save", "--group", "team", seq, out)
	if _, err := os.Stat(filepath.Join(out, "holiday (1).bin")); err != nil {
		t.Fatalf("second save: %v", err)
	}

	id := blobID(t, n)
	// The node never had the key: it is in Bob's database, nowhere in
	// the node's files.
	key := attachmentKey(t, bob)
	if findInFiles(t, bob.dir, key) == "" {
		t.Fatal("the search does not find the key in Bob's files either")
	}
	if f := findInFiles(t, filepath.Join(n.dir, "data"), key); f != "" {
		t.Fatalf("the attachment's key is in the node's %s", f)
	}
	// A stranger who learned the blob id gets nothing.
	stranger(t, n, id)

	// The node (or its object store) changes a chunk: the save fails
	// and leaves nothing behind.
	backend.corrupt(t, n, id, 1)
	r = bob.run(t, "save", "--group", "team", seq, out)
	if r.code == 0 || !strings.Contains(r.stderr, "corrupt") {
		t.Fatalf("save of a corrupted blob: exit %d: %s", r.code, r.stderr)
	}
	t.Logf("the corrupted blob: %s", strings.TrimSpace(r.stderr))
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("after the refused save the folder holds %d files: %v", len(entries), entries)
	}
}

// attachmentKey reads the key of the one attachment reference in u's
// database.
func attachmentKey(t *testing.T, u *user) []byte {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(u.dir, "qpd.db")+"?_pragma=busy_timeout(10000)&mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ref []byte
	if err := db.QueryRow(`SELECT ref FROM attachments`).Scan(&ref); err != nil {
		t.Fatalf("attachment reference: %v", err)
	}
	m, err := content.Parse(ref)
	if err != nil || len(m.Attachments()) != 1 || len(m.Attachments()[0].Key) != 32 {
		t.Fatalf("attachment reference: %v", err)
	}
	return m.Attachments()[0].Key
}

// findInFiles names a file under dir that holds b, or returns "".
func findInFiles(t *testing.T, dir string, b []byte) string {
	t.Helper()
	var found string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		buf := make([]byte, 1<<20+len(b))
		keep := 0
		for {
			n, err := io.ReadFull(f, buf[keep:])
			if bytes.Contains(buf[:keep+n], b) {
				found = path
				return nil
			}
			if err != nil {
				return nil
			}
			keep = copy(buf, buf[keep+n-len(b):keep+n])
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// blobID is the one blob the node's store knows.
func blobID(t *testing.T, n *node) []byte {
	t.Helper()
	db := openNodeDB(t, n)
	var id []byte
	if err := db.QueryRow(`SELECT id FROM blobs`).Scan(&id); err != nil {
		t.Fatalf("blob id: %v", err)
	}
	return id
}

func openNodeDB(t *testing.T, n *node) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(n.dir, "data", "node.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func corruptSQLiteChunk(t *testing.T, n *node, id []byte, index int) {
	t.Helper()
	db := openNodeDB(t, n)
	var data []byte
	if err := db.QueryRow(`SELECT data FROM blob_chunks WHERE blob_id = ? AND idx = ?`, id, index).Scan(&data); err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if _, err := db.Exec(`UPDATE blob_chunks SET data = ? WHERE blob_id = ? AND idx = ?`, data, id, index); err != nil {
		t.Fatal(err)
	}
}

// stranger registers a fresh identity at the node and asks for the blob.
func stranger(t *testing.T, n *node, id []byte) {
	t.Helper()
	cert, err := os.ReadFile(filepath.Join(n.dir, "data", "server-cert.der"))
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := nodeclient.Dial(ctx, n.addr, nodeclient.Config{Identity: priv, PinnedCert: cert})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Register(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BlobInfo(ctx, id); !errors.Is(err, nodeclient.ErrUnauthorized) {
		t.Fatalf("a stranger's BlobInfo: %v", err)
	}
	if err := c.DownloadBlob(ctx, id, 1, io.Discard, nil); !errors.Is(err, nodeclient.ErrUnauthorized) {
		t.Fatalf("a stranger's download: %v", err)
	}
}
