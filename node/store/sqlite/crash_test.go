package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// The crash test re-runs this test binary as a writer process. The writer
// enqueues as fast as it can from several goroutines and prints one line per
// Enqueue that returned; the parent kills it with SIGKILL once it has seen
// enough lines, reopens the database and checks that every message the
// writer was told is stored is there, in order, with its bytes.
const crashChildEnv = "QPQ_SQLITE_CRASH_CHILD_DB"

const (
	crashWriters  = 4
	crashKillAt   = 300 // lines seen before the kill
	crashPayloadN = 1500
)

func crashRecipient(w int) []byte { return storetest.Key(fmt.Sprint("crash recipient ", w)) }

func crashPayload(w int, i int) []byte {
	p := bytes.Repeat([]byte{byte(w), byte(i)}, crashPayloadN/2)
	return append(p, fmt.Sprintf("writer %d message %d", w, i)...)
}

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if path := os.Getenv(numbersChildEnv); path != "" {
		numbersChild(path)
		return
	}
	if path := os.Getenv(crashBatchChildEnv); path != "" {
		crashBatchChild(path)
		return
	}
	os.Exit(m.Run())
}

// crashChild is the writer process. It never returns normally: it writes
// until it is killed (or gives up after a minute).
func crashChild(path string) {
	ctx := context.Background()
	s, err := Open(ctx, path, store.Limits{MaxQueueDepth: 1 << 20}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for w := range crashWriters {
		go func() {
			for i := 0; ; i++ {
				// Every other message carries a client message id.
				var id []byte
				if i%2 == 0 {
					id = []byte(fmt.Sprint("m", i))
				}
				seq, dup, err := s.Enqueue(ctx, crashRecipient(w), storetest.Key("crash sender"), id, crashPayload(w, i))
				if err != nil || dup {
					fmt.Fprintln(os.Stderr, "enqueue:", err, dup)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "stored %d %d %d\n", w, i, seq)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Minute)
	os.Exit(4)
}

func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a writer process")
	}
	for round := range 3 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) { crashRound(t) })
	}
}

func crashRound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// acked[w] lists, in the order the writer saw them, the seqs of messages
	// it was told were stored, with the message index.
	type stored struct{ i, seq int }
	acked := make([][]stored, crashWriters)
	sc := bufio.NewScanner(stdout)
	lines := 0
	for lines < crashKillAt && sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "stored" {
			t.Fatalf("writer printed %q", sc.Text())
		}
		w, _ := strconv.Atoi(f[1])
		i, _ := strconv.Atoi(f[2])
		seq, _ := strconv.Atoi(f[3])
		acked[w] = append(acked[w], stored{i, seq})
		lines++
	}
	// Kill right after the last line read: the writer is mid-flight.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Lines already in the pipe were also acknowledged to the writer.
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			continue // a line cut by the kill
		}
		w, _ := strconv.Atoi(f[1])
		i, _ := strconv.Atoi(f[2])
		seq, _ := strconv.Atoi(f[3])
		acked[w] = append(acked[w], stored{i, seq})
		lines++
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("writer did not die of SIGKILL: %v; stderr: %s", err, stderr.String())
	}
	if lines < crashKillAt {
		t.Fatalf("writer stopped after %d lines; stderr: %s", lines, stderr.String())
	}

	s := openTestStore(t, path, store.Limits{MaxQueueDepth: 1 << 20})
	ctx := context.Background()
	total := 0
	for w := range crashWriters {
		got, err := s.Receive(ctx, crashRecipient(w), 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		// Messages are numbered 1, 2, ... in the order the writer enqueued
		// them; the ones stored but not yet reported may follow.
		if len(got) < len(acked[w]) {
			t.Fatalf("writer %d: %d messages after the crash, %d were acknowledged", w, len(got), len(acked[w]))
		}
		for k, a := range acked[w] {
			if a.i != k || a.seq != k+1 {
				t.Fatalf("writer %d: acknowledgement %d was for message %d with seq %d", w, k, a.i, a.seq)
			}
			m := got[k]
			if m.Seq != uint64(a.seq) || !bytes.Equal(m.Payload, crashPayload(w, a.i)) {
				t.Fatalf("writer %d: acknowledged message %d (seq %d) is seq %d with %d bytes after the crash",
					w, a.i, a.seq, m.Seq, len(m.Payload))
			}
		}
		for k, m := range got {
			if m.Seq != uint64(k+1) || !bytes.Equal(m.Payload, crashPayload(w, k)) {
				t.Fatalf("writer %d: message %d after the crash is seq %d, not what was written", w, k, m.Seq)
			}
		}
		// A retried enqueue of an acknowledged message is still a duplicate.
		// (Under heavy load a writer may have had no acknowledgement yet.)
		if n := len(acked[w]); n > 0 && acked[w][n-1].i%2 == 0 {
			last := acked[w][n-1]
			seq, dup, err := s.Enqueue(ctx, crashRecipient(w), storetest.Key("crash sender"), []byte(fmt.Sprint("m", last.i)), crashPayload(w, last.i))
			if err != nil || !dup || seq != uint64(last.seq) {
				t.Fatalf("writer %d: retry of message %d = (%d, %v, %v), want (%d, true, nil)", w, last.i, seq, dup, err, last.seq)
			}
		}
		total += len(got)
	}
	t.Logf("%d enqueues acknowledged before SIGKILL, %d messages found after reopen", lines, total)
}
