package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/pgtest"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// blackhole is a Unix-socket proxy in front of the test cluster. Until cut
// it forwards; once cut, nothing more passes in either direction and new
// connections are accepted and never answered, as when the database's host
// stops answering (no refusal, only silence).
type blackhole struct {
	ln   net.Listener
	mu   sync.Mutex
	cut  bool
	held []net.Conn
}

// newBlackhole proxies the database of conn (a pgtest connection string)
// and returns the connection string that goes through the proxy.
func newBlackhole(t *testing.T, conn string) (*blackhole, string) {
	t.Helper()
	m := regexp.MustCompile(`host='([^']*)'`).FindStringSubmatch(conn)
	if m == nil {
		t.Fatalf("no host in %q", conn)
	}
	target := filepath.Join(m[1], ".s.PGSQL.5432")
	dir, err := os.MkdirTemp("", "pgproxy")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, ".s.PGSQL.5432"))
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, c := range b.held {
			c.Close()
		}
		b.mu.Unlock()
		os.RemoveAll(dir)
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.held = append(b.held, c)
			cut := b.cut
			b.mu.Unlock()
			if cut {
				continue
			}
			up, err := net.Dial("unix", target)
			if err != nil {
				c.Close()
				continue
			}
			b.mu.Lock()
			b.held = append(b.held, up)
			b.mu.Unlock()
			go b.pipe(up, c)
			go b.pipe(c, up)
		}
	}()
	return b, regexp.MustCompile(`host='[^']*'`).ReplaceAllLiteralString(conn, "host='"+dir+"'")
}

// pipe copies from src to dst until the proxy is cut; then it holds what
// it reads.
func (b *blackhole) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		b.mu.Lock()
		cut := b.cut
		b.mu.Unlock()
		if cut {
			io.Copy(io.Discard, src)
			return
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (b *blackhole) cutOff() {
	b.mu.Lock()
	b.cut = true
	b.mu.Unlock()
}

// TestCloseWithDatabaseUnreachable: a node shutting down while its
// database has stopped answering closes its store in a few seconds, not
// after the timeouts of every background task (announcements, pruning,
// listening).
func TestCloseWithDatabaseUnreachable(t *testing.T) {
	ctx := testCtx(t)
	b, conn := newBlackhole(t, pgtest.NewDatabase(t))
	s, err := Open(ctx, conn, storetest.Limits(), pgTestLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	n := newNotes()
	listening := make(chan error, 1)
	go func() { listening <- s.Notifications(ctx, n.fn) }()
	n.waitFor(t, "the first fn(nil)", func(n *notes) bool { return n.all == 1 })
	alice := storetest.Key("alice")
	if _, _, err := s.Enqueue(ctx, alice, nil, []byte("x"), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, "alice's notification", func(n *notes) bool { return n.has(alice) })

	b.cutOff()
	// Calls under way when the database went silent.
	var calls sync.WaitGroup
	for i := range 4 {
		calls.Add(1)
		go func() {
			defer calls.Done()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			s.Enqueue(cctx, storetest.Key("bob"), nil, []byte{byte(i)}, []byte("lost"))
		}()
	}
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		buf := make([]byte, 1<<20)
		os.Stderr.Write(buf[:runtime.Stack(buf, true)])
		t.Fatal("Close still waiting after 20 s")
	}
	took := time.Since(start)
	t.Logf("Close took %v", took)
	if took > closeBound {
		t.Fatalf("Close took %v with the database unreachable; want at most %v", took, closeBound)
	}
	if err := <-listening; !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Notifications after Close = %v; want ErrClosed", err)
	}
	calls.Wait()
}

// closeBound is how long Close may take with the database unreachable.
const closeBound = 5 * time.Second
