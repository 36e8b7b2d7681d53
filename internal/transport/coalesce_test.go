package transport

import (
	"bytes"
	"io"
	"sync"
	"testing"
	"time"

	"capnproto.org/go/capnp/v3"
	rpccp "capnproto.org/go/capnp/v3/std/capnp/rpc"
)

// writeLog is a stream that records each Write it passes on.
type writeLog struct {
	io.ReadWriteCloser
	mu     sync.Mutex
	writes [][]byte
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, bytes.Clone(p))
	w.mu.Unlock()
	return w.ReadWriteCloser.Write(p)
}

func (w *writeLog) log() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.writes...)
}

// send builds a message with build and sends it on tr.
func send(t *testing.T, tr *RPCTransport, build func(m rpccp.Message) error) {
	t.Helper()
	out, err := tr.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	if err := build(out.Message()); err != nil {
		t.Fatal(err)
	}
	if err := out.Send(); err != nil {
		t.Fatal(err)
	}
}

func buildFinish(qid uint32) func(m rpccp.Message) error {
	return func(m rpccp.Message) error {
		f, err := m.NewFinish()
		f.SetQuestionId(qid)
		return err
	}
}

func buildCall(qid uint32) func(m rpccp.Message) error {
	return func(m rpccp.Message) error {
		c, err := m.NewCall()
		if err != nil {
			return err
		}
		c.SetQuestionId(qid)
		tgt, _ := c.NewTarget()
		tgt.SetImportedCap(0)
		_, err = c.NewParams()
		return err
	}
}

// wantMessages reads len(want) messages from tr and checks their kinds
// and question ids, in order.
func wantMessages(t *testing.T, tr *RPCTransport, want ...func(m rpccp.Message) (bool, uint32)) {
	t.Helper()
	for i, ok := range want {
		in, err := tr.RecvMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if good, _ := ok(in.Message()); !good {
			t.Fatalf("message %d is a %v, not the one sent", i, in.Message().Which())
		}
		in.Release()
	}
}

func isFinish(qid uint32) func(m rpccp.Message) (bool, uint32) {
	return func(m rpccp.Message) (bool, uint32) {
		f, err := m.Finish()
		return m.Which() == rpccp.Message_Which_finish && err == nil && f.QuestionId() == qid, qid
	}
}

func isCall(qid uint32) func(m rpccp.Message) (bool, uint32) {
	return func(m rpccp.Message) (bool, uint32) {
		c, err := m.Call()
		return m.Which() == rpccp.Message_Which_call && err == nil && c.QuestionId() == qid, qid
	}
}

// A Finish waits for the next message and leaves in the same write, ahead
// of it: a caller's Finish of one call and its next call make one stream
// write (and so one QUIC packet), not two.
func TestFinishSharesNextWrite(t *testing.T) {
	c, s := streamPair(t)
	w := &writeLog{ReadWriteCloser: StreamRWC(c)}
	tr := NewRPCTransport(w, Limits{})
	peer := NewRPCTransport(StreamRWC(s), Limits{})

	send(t, tr, buildFinish(1))
	send(t, tr, buildCall(2))
	wantMessages(t, peer, isFinish(1), isCall(2))
	if got := w.log(); len(got) != 1 {
		t.Fatalf("Finish and the next call took %d writes, want 1", len(got))
	}
	if held, _ := tr.Held(); held != 0 {
		t.Fatalf("sender holds %d bytes after both were written", held)
	}
}

// A Finish with nothing after it is still written, soon, and what it held
// is returned.
func TestFinishAloneIsWritten(t *testing.T) {
	c, s := streamPair(t)
	tr := NewRPCTransport(StreamRWC(c), Limits{})
	peer := NewRPCTransport(StreamRWC(s), Limits{})

	start := time.Now()
	send(t, tr, buildFinish(1))
	send(t, tr, buildFinish(2))
	wantMessages(t, peer, isFinish(1), isFinish(2))
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Finish arrived after %v", d)
	}
	deadline := time.Now().Add(time.Second)
	for held, _ := tr.Held(); held != 0; held, _ = tr.Held() {
		if time.Now().After(deadline) {
			t.Fatalf("sender holds %d bytes after its Finish was written", held)
		}
		time.Sleep(time.Millisecond)
	}
}

// Waiting Finish messages are bounded: past maxPending bytes they are
// written at once.
func TestFinishPendingBounded(t *testing.T) {
	c, s := streamPair(t)
	tr := NewRPCTransport(StreamRWC(c), Limits{})
	peer := NewRPCTransport(StreamRWC(s), Limits{})

	n := maxPending/len(finishMsg(t, 1)) + 2
	var want []func(m rpccp.Message) (bool, uint32)
	for i := range n {
		send(t, tr, buildFinish(uint32(i)))
		want = append(want, isFinish(uint32(i)))
		if held, _ := tr.Held(); held > maxPending {
			t.Fatalf("after %d Finish messages %d bytes wait, bound %d", i+1, held, maxPending)
		}
	}
	wantMessages(t, peer, want...)
}

// A waiting Finish goes out ahead of a large message too, which is
// written segment by segment.
func TestFinishBeforeLargeMessage(t *testing.T) {
	c, s := streamPair(t)
	tr := NewRPCTransport(StreamRWC(c), Limits{})
	peer := NewRPCTransport(StreamRWC(s), Limits{})

	send(t, tr, buildFinish(1))
	sent := make(chan error, 1)
	go func() {
		out, err := tr.NewMessage()
		if err != nil {
			sent <- err
			return
		}
		defer out.Release()
		call, _ := out.Message().NewCall()
		call.SetQuestionId(2)
		p, _ := call.NewParams()
		d, _ := capnp.NewData(p.Segment(), make([]byte, 2*oneWrite))
		p.SetContent(d.ToPtr())
		sent <- out.Send()
	}()
	wantMessages(t, peer, isFinish(1), isCall(2))
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}
