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

// The batch crash test is the crash test for FanOutBatch: the writer
// process fans out batches of group messages and prints one line per batch
// that returned; after SIGKILL every message of those batches must be in
// the recipient's queue, in order, with its group number.
const crashBatchChildEnv = "QPQ_SQLITE_CRASH_BATCH_CHILD_DB"

const crashBatchSize = 8

func crashBatchSender() []byte { return storetest.Key("crash batch sender") }

func crashBatchGroup(w int) []byte { return storetest.GroupID(fmt.Sprint("crash batch ", w)) }

func crashBatchItems(w, first int) []store.FanOutItem {
	items := make([]store.FanOutItem, crashBatchSize)
	for k := range items {
		i := first + k
		items[k] = store.FanOutItem{GroupID: crashBatchGroup(w), ClientMsgID: []byte(fmt.Sprint("m", i)), Payload: crashPayload(w, i)}
	}
	return items
}

// crashBatchChild is the writer process; it never returns normally.
func crashBatchChild(path string) {
	ctx := context.Background()
	s, err := Open(ctx, path, store.Limits{MaxQueueDepth: 1 << 20}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	for w := range crashWriters {
		roster := [][]byte{crashBatchSender(), crashRecipient(w)}
		if err := s.CreateGroup(ctx, crashBatchGroup(w), crashBatchSender(), 0, []byte("view"), roster); err != nil {
			fmt.Fprintln(os.Stderr, "create group:", err)
			os.Exit(3)
		}
	}
	fmt.Println("ready")
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for w := range crashWriters {
		go func() {
			for first := 0; ; first += crashBatchSize {
				res, err := s.FanOutBatch(ctx, crashBatchSender(), crashBatchItems(w, first))
				if err != nil || len(res) != crashBatchSize || res[0].Duplicate {
					fmt.Fprintln(os.Stderr, "fan out batch:", err, len(res))
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "stored %d %d %d\n", w, first, res[0].GroupSeq)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Minute)
	os.Exit(4)
}

func TestCrashDurabilityFanOutBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a writer process")
	}
	path := filepath.Join(t.TempDir(), "node.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashBatchChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := make([]int, crashWriters) // messages acknowledged per writer
	parse := func(line string) bool {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "stored" {
			return false
		}
		w, _ := strconv.Atoi(f[1])
		first, _ := strconv.Atoi(f[2])
		seq, _ := strconv.Atoi(f[3])
		if first != acked[w] || seq != first+1 {
			t.Errorf("writer %d: batch from message %d acknowledged with group seq %d, after %d messages", w, first, seq, acked[w])
		}
		acked[w] = first + crashBatchSize
		return true
	}
	sc := bufio.NewScanner(stdout)
	lines := 0
	for lines < crashKillAt/crashBatchSize*2 && sc.Scan() {
		if sc.Text() == "ready" {
			continue
		}
		if !parse(sc.Text()) {
			t.Fatalf("writer printed %q", sc.Text())
		}
		lines++
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		if parse(sc.Text()) {
			lines++
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("writer did not die of SIGKILL: %v; stderr: %s", err, stderr.String())
	}
	s := openTestStore(t, path, store.Limits{MaxQueueDepth: 1 << 20})
	ctx := context.Background()
	for w := range crashWriters {
		got, err := s.Receive(ctx, crashRecipient(w), 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < acked[w] || len(got)%crashBatchSize != 0 {
			t.Fatalf("writer %d: %d messages after the crash, %d acknowledged (batches of %d)", w, len(got), acked[w], crashBatchSize)
		}
		for k, m := range got {
			if m.GroupSeq != uint64(k+1) || !bytes.Equal(m.Payload, crashPayload(w, k)) {
				t.Fatalf("writer %d: message %d after the crash has group seq %d, not what was written", w, k, m.GroupSeq)
			}
		}
		// A retried batch that was acknowledged is all duplicates.
		if acked[w] > 0 {
			first := acked[w] - crashBatchSize
			res, err := s.FanOutBatch(ctx, crashBatchSender(), crashBatchItems(w, first))
			if err != nil || len(res) != crashBatchSize || !res[0].Duplicate || res[0].GroupSeq != uint64(first+1) {
				t.Fatalf("writer %d: retry of the batch from %d = %+v, %v", w, first, res, err)
			}
		}
	}
	t.Logf("%d batches acknowledged before SIGKILL", lines)
}
