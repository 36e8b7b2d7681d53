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

	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

// The numbering crash test re-runs this test binary as a process that fans
// out, receives, acknowledges and enqueues directly, printing every number
// it is handed ("seen <queue> <seq>"); the parent kills it with SIGKILL and
// checks, after reopening, that every queue numbers on above all of them.
const numbersChildEnv = "QPQ_SQLITE_NUMBERS_CHILD_DB"

var (
	numbersGroup  = storetest.GroupID("numbers")
	numbersSender = storetest.Key("numbers sender")
)

func numbersRecipients() [][]byte {
	return [][]byte{storetest.Key("numbers a"), storetest.Key("numbers b"), storetest.Key("numbers c")}
}

// numbersChild never returns normally: it works until it is killed.
func numbersChild(path string) {
	ctx := context.Background()
	fail := func(what string, err error) {
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(3)
	}
	s, err := Open(ctx, path, store.Limits{MaxQueueDepth: 1 << 20}, nil)
	if err != nil {
		fail("open", err)
	}
	rs := numbersRecipients()
	if err := s.CreateGroup(ctx, numbersGroup, numbersSender, 0, []byte("view"), append([][]byte{numbersSender}, rs...)); err != nil {
		fail("create group", err)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	seen := func(r int, seq uint64) {
		mu.Lock()
		fmt.Fprintf(out, "seen %d %d\n", r, seq)
		out.Flush()
		mu.Unlock()
	}
	go func() { // direct enqueues beside the fan-outs
		for i := 0; ; i++ {
			seq, _, err := s.Enqueue(ctx, rs[i%len(rs)], numbersSender, []byte(fmt.Sprint("d", i)), []byte("direct"))
			if err != nil {
				fail("enqueue", err)
			}
			seen(i%len(rs), seq)
		}
	}()
	cursor := make([]uint64, len(rs))
	for i := 0; ; i++ {
		if _, err := s.FanOut(ctx, numbersGroup, numbersSender, []byte(fmt.Sprint("f", i)), []byte("fanned out"), nil); err != nil {
			fail("fan out", err)
		}
		for r, q := range rs {
			msgs, err := s.Receive(ctx, q, cursor[r], 1000)
			if err != nil {
				fail("receive", err)
			}
			for _, m := range msgs {
				seen(r, m.Seq)
				cursor[r] = m.Seq
			}
			if i%3 != r { // acks of some queues, at different times
				if _, err := s.Ack(ctx, q, cursor[r]); err != nil {
					fail("ack", err)
				}
			}
		}
		if i%50 == 49 {
			if _, err := s.Drain(ctx, rs[i%len(rs)]); err != nil {
				fail("drain", err)
			}
		}
	}
}

func TestQueueNumbersAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a writer process")
	}
	for round := range 2 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) { numbersRound(t) })
	}
}

func numbersRound(t *testing.T) {
	const killAt = 600
	path := filepath.Join(t.TempDir(), "node.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), numbersChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rs := numbersRecipients()
	high := make([]uint64, len(rs))
	lines := 0
	read := func(line string) {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "seen" {
			return // a line cut by the kill
		}
		r, _ := strconv.Atoi(f[1])
		seq, _ := strconv.ParseUint(f[2], 10, 64)
		high[r] = max(high[r], seq)
		lines++
	}
	sc := bufio.NewScanner(stdout)
	for lines < killAt && sc.Scan() {
		read(sc.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		read(sc.Text())
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("writer did not die of SIGKILL: %v; stderr: %s", err, stderr.String())
	}
	if lines < killAt {
		t.Fatalf("writer stopped after %d lines; stderr: %s", lines, stderr.String())
	}

	s := openTestStore(t, path, store.Limits{MaxQueueDepth: 1 << 20})
	ctx := context.Background()
	for r, q := range rs {
		last, depth, entries := queueOnDisk(t, s, q)
		if uint64(last) < high[r] || depth != entries {
			t.Fatalf("queue %d after the kill: last %d, depth %d, %d entries; %d was handed out", r, last, depth, entries, high[r])
		}
	}
	if _, err := s.FanOut(ctx, numbersGroup, numbersSender, []byte("after"), []byte("after the kill"), nil); err != nil {
		t.Fatal(err)
	}
	for r, q := range rs {
		msgs, err := s.Receive(ctx, q, 0, 1<<20)
		if err != nil || len(msgs) == 0 {
			t.Fatalf("queue %d after the kill: %d messages, %v", r, len(msgs), err)
		}
		for k := 1; k < len(msgs); k++ {
			if msgs[k].Seq <= msgs[k-1].Seq {
				t.Fatalf("queue %d: number %d after %d", r, msgs[k].Seq, msgs[k-1].Seq)
			}
		}
		if m := msgs[len(msgs)-1]; m.Seq <= high[r] || string(m.Payload) != "after the kill" {
			t.Fatalf("queue %d: fan-out after the kill got number %d, not above %d", r, m.Seq, high[r])
		}
		seq, _, err := s.Enqueue(ctx, q, numbersSender, []byte("after"), []byte("direct after the kill"))
		if err != nil || seq != msgs[len(msgs)-1].Seq+1 {
			t.Fatalf("queue %d: enqueue after the kill = %d, %v; want %d", r, seq, err, msgs[len(msgs)-1].Seq+1)
		}
	}
	t.Logf("%d numbers seen before SIGKILL (highest %v)", lines, high)
}
