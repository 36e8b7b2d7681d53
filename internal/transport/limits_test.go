package transport

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"capnproto.org/go/capnp/v3"
	rpccp "capnproto.org/go/capnp/v3/std/capnp/rpc"
	"github.com/quic-go/quic-go"
)

// streamPair opens a QUIC connection on loopback and returns the client's
// stream and the node's end of it.
func streamPair(t *testing.T) (client, server *quic.Stream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	certDER, keyDER, err := NewServerCert()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFileAtomic(dir+"/c", certDER, 0o600)
	writeFileAtomic(dir+"/k", keyDER, 0o600)
	cert, err := LoadServerCert(dir+"/c", dir+"/k")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", ServerTLSConfig(cert), QUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	id, _ := ClientCertificate(priv)
	conf, _ := ClientTLSConfig(&id, func([]byte) error { return nil })
	cc, err := quic.DialAddr(ctx, ln.Addr().String(), conf, QUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.CloseWithError(0, "") })
	client, err = cc.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client.Write(testFrame(t, func(m rpccp.Message) error { _, err := m.NewUnimplemented(); return err }))
	sc, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.CloseWithError(0, "") })
	server, err = sc.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Drop the opening message.
	io.ReadFull(server, make([]byte, len(testFrame(t, func(m rpccp.Message) error { _, err := m.NewUnimplemented(); return err }))))
	return client, server
}

func testFrame(t testing.TB, build func(m rpccp.Message) error) []byte {
	msg, seg, err := capnp.NewMessage(capnp.SingleSegment(nil))
	if err != nil {
		t.Fatal(err)
	}
	m, err := rpccp.NewRootMessage(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := build(m); err != nil {
		t.Fatal(err)
	}
	b, err := msg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bootstrapMsg(t testing.TB, qid uint32) []byte {
	return testFrame(t, func(m rpccp.Message) error {
		b, err := m.NewBootstrap()
		b.SetQuestionId(qid)
		return err
	})
}

func finishMsg(t testing.TB, qid uint32) []byte {
	return testFrame(t, func(m rpccp.Message) error {
		f, err := m.NewFinish()
		f.SetQuestionId(qid)
		return err
	})
}

// callMsg is a call whose cap table names the peer's capabilities ids, and
// whose params carry a Data of pad bytes.
func callMsg(t testing.TB, qid uint32, pad int, ids ...uint32) []byte {
	return testFrame(t, func(m rpccp.Message) error {
		c, err := m.NewCall()
		if err != nil {
			return err
		}
		c.SetQuestionId(qid)
		tgt, _ := c.NewTarget()
		tgt.SetImportedCap(0)
		p, _ := c.NewParams()
		d, err := capnp.NewData(p.Segment(), make([]byte, pad))
		if err != nil {
			return err
		}
		p.SetContent(d.ToPtr())
		list, _ := p.NewCapTable(int32(len(ids)))
		for i, id := range ids {
			list.At(i).SetSenderHosted(id)
		}
		return nil
	})
}

func wantLimit(t *testing.T, what string, err error, kind string) {
	t.Helper()
	var le *LimitError
	if !errors.As(err, &le) || le.Kind != kind || !errors.Is(err, ErrLimit) {
		t.Fatalf("%s: %v, want a %s limit", what, err, kind)
	}
}

func recv(t *testing.T, tr *RPCTransport) {
	t.Helper()
	in, err := tr.RecvMessage()
	if err != nil {
		t.Fatalf("RecvMessage: %v", err)
	}
	in.Release()
}

// A message announced larger than MaxFrame, or with more segments than
// capnp allows, is refused at its header, before its body is sent.
func TestRPCTransportFrameSize(t *testing.T) {
	for name, hdr := range map[string][]byte{
		"2 MiB body":   {0, 0, 0, 0, 0, 0, 4, 0},
		"600 segments": {0x57, 2, 0, 0},
	} {
		c, s := streamPair(t)
		tr := NewRPCTransport(StreamRWC(s), Limits{MaxFrame: 1 << 20})
		c.Write(hdr)
		_, err := tr.RecvMessage()
		wantLimit(t, name, err, LimitFrameSize)
		if tr.Err() == nil {
			t.Fatal("Err does not report the limit")
		}
	}
}

// A frame's body is allocated as it arrives: a peer that announces 512 KiB
// and sends 100 KiB makes the node hold at most a few times what it sent,
// and the frame must be complete within FrameTimeout.
func TestRPCTransportHalfSentFrame(t *testing.T) {
	c, s := streamPair(t)
	tr := NewRPCTransport(StreamRWC(s), Limits{MaxFrame: 1 << 20, FrameTimeout: 500 * time.Millisecond})
	hdr := make([]byte, 8)
	binary.LittleEndian.PutUint32(hdr[4:], 512<<10/8)
	c.Write(hdr)
	c.Write(make([]byte, 100<<10))
	errc := make(chan error, 1)
	go func() { _, err := tr.RecvMessage(); errc <- err }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if held, _ := tr.Held(); held >= 100<<10 {
			break
		}
		if time.Now().After(deadline) {
			held, _ := tr.Held()
			t.Fatalf("holds %d bytes after 100 KiB arrived", held)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, peak := tr.Held(); peak > 4*(100<<10)+inOverhead+64 {
		t.Fatalf("peak of %d bytes held for 100 KiB received of a 512 KiB frame", peak)
	}
	wantLimit(t, "stalled frame", <-errc, LimitFrameTimeout)
	// The refusal itself gives the partial frame back, before Close.
	if held, _ := tr.Held(); held != 0 {
		t.Fatalf("%d bytes held after the stalled frame was refused", held)
	}
	tr.Close()
	if held, _ := tr.Held(); held != 0 {
		t.Fatalf("%d bytes held after Close", held)
	}
}

// Questions the peer does not finish count against MaxAnswers; Finish
// gives them back.
func TestRPCTransportOpenAnswers(t *testing.T) {
	c, s := streamPair(t)
	tr := NewRPCTransport(StreamRWC(s), Limits{MaxAnswers: 3})
	for q := range uint32(3) {
		c.Write(bootstrapMsg(t, q))
		recv(t, tr)
	}
	c.Write(finishMsg(t, 1))
	recv(t, tr)
	c.Write(bootstrapMsg(t, 5))
	recv(t, tr)
	c.Write(callMsg(t, 6, 0))
	_, err := tr.RecvMessage()
	wantLimit(t, "fourth open question", err, LimitAnswers)
	if held, _ := tr.Held(); held != 0 {
		t.Fatalf("%d bytes held after the refused message", held)
	}
	if _, err := tr.RecvMessage(); !errors.Is(err, ErrLimit) {
		t.Fatalf("after the limit: %v", err)
	}
}

// A message with more capabilities than MaxCapsPerMessage is refused before
// the RPC layer builds them; the peer's capabilities held at once are
// bounded by MaxImports, and our Release messages give them back.
func TestRPCTransportCapabilities(t *testing.T) {
	c, s := streamPair(t)
	tr := NewRPCTransport(StreamRWC(s), Limits{MaxCapsPerMessage: 2, MaxImports: 2})
	c.Write(callMsg(t, 1, 0, 10, 11))
	recv(t, tr)
	c.Write(callMsg(t, 2, 0, 10)) // a second reference to an import
	recv(t, tr)
	// Release import 10 (both references): room for another.
	out, err := tr.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := out.Message().NewRelease()
	rel.SetId(10)
	rel.SetReferenceCount(2)
	if err := out.Send(); err != nil {
		t.Fatal(err)
	}
	out.Release()
	c.Write(callMsg(t, 3, 0, 12))
	recv(t, tr)
	c.Write(callMsg(t, 4, 0, 13))
	_, err = tr.RecvMessage()
	wantLimit(t, "third import", err, LimitImports)

	c2, s2 := streamPair(t)
	tr2 := NewRPCTransport(StreamRWC(s2), Limits{MaxCapsPerMessage: 2})
	c2.Write(callMsg(t, 1, 0, 1, 2, 3))
	_, err = tr2.RecvMessage()
	wantLimit(t, "three capabilities in a message", err, LimitCapTable)
	if held, _ := tr2.Held(); held != 0 {
		t.Fatalf("%d bytes held after the refused message", held)
	}
}

// Messages count as held until released: past MaxHeld, or past the budget
// that connections share, the next one is refused. A connection's first
// 64 KiB are always granted, so a small call gets through a full budget.
func TestRPCTransportHeldAndBudget(t *testing.T) {
	budget := NewBudget(300 << 10)
	lim := Limits{MaxHeld: 1 << 20, Budget: budget}
	ca, sa := streamPair(t)
	cb, sb := streamPair(t)
	a, b := NewRPCTransport(StreamRWC(sa), lim), NewRPCTransport(StreamRWC(sb), lim)

	ca.Write(callMsg(t, 1, 200<<10))
	held, err := a.RecvMessage() // kept, as a call's arguments are while it runs
	if err != nil {
		t.Fatal(err)
	}
	if budget.Used() < 200<<10 {
		t.Fatalf("budget used %d with a 200 KiB message held", budget.Used())
	}
	cb.Write(callMsg(t, 1, 1<<10))
	recv(t, b) // within the floor
	cb.Write(callMsg(t, 2, 200<<10))
	_, err = b.RecvMessage()
	wantLimit(t, "second 200 KiB message", err, LimitBudget)
	held.Release()

	cc, sc := streamPair(t)
	c := NewRPCTransport(StreamRWC(sc), Limits{MaxHeld: 250 << 10, Budget: budget})
	cc.Write(callMsg(t, 1, 100<<10))
	first, err := c.RecvMessage()
	if err != nil {
		t.Fatal(err)
	}
	cc.Write(callMsg(t, 2, 100<<10))
	_, err = c.RecvMessage()
	wantLimit(t, "two 100 KiB messages held", err, LimitHeldBytes)
	first.Release()
	// Released messages and refused ones are given back while the
	// connections stay open.
	if budget.Used() != 0 {
		t.Fatalf("budget used %d with nothing held on three open connections", budget.Used())
	}
	a.Close()
	b.Close()
	c.Close()
	if budget.Used() != 0 {
		t.Fatalf("budget used %d after every connection closed", budget.Used())
	}
}

// Outgoing messages count from their first allocation: a reply larger than
// the connection may hold fails to build, and the connection is closed.
func TestRPCTransportOutgoingHeld(t *testing.T) {
	_, s := streamPair(t)
	tr := NewRPCTransport(StreamRWC(s), Limits{MaxHeld: 128 << 10})
	out, err := tr.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	ret, _ := out.Message().NewReturn()
	res, _ := ret.NewResults()
	_, err = capnp.NewData(res.Segment(), make([]byte, 256<<10))
	wantLimit(t, "256 KiB reply", err, LimitHeldBytes)
	out.Release()
	if _, err := tr.RecvMessage(); !errors.Is(err, ErrLimit) {
		t.Fatalf("RecvMessage after the limit: %v", err)
	}
}

// With nothing imported, a connection that sends nothing for IdleTimeout
// is ended; one that holds a capability of its peer's (a subscription's
// sink) may stay quiet.
func TestRPCTransportIdle(t *testing.T) {
	_, s := streamPair(t)
	tr := NewRPCTransport(StreamRWC(s), Limits{IdleTimeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := tr.RecvMessage()
	wantLimit(t, "idle connection", err, LimitIdle)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("ended after %v", d)
	}

	c, s := streamPair(t)
	tr = NewRPCTransport(StreamRWC(s), Limits{IdleTimeout: 200 * time.Millisecond})
	c.Write(callMsg(t, 1, 0, 7))
	recv(t, tr)
	got := make(chan error, 1)
	go func() {
		in, err := tr.RecvMessage()
		if err == nil {
			in.Release()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("a connection holding a capability ended while quiet: %v", err)
	case <-time.After(600 * time.Millisecond):
	}
	c.Write(finishMsg(t, 1))
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// RecvMessage decodes what capnp's own decoder does, and large messages
// written segment by segment arrive whole.
func TestRPCTransportRoundTrip(t *testing.T) {
	c, s := streamPair(t)
	tr := NewRPCTransport(StreamRWC(s), Limits{})
	back := NewRPCTransport(StreamRWC(c), Limits{})
	for _, size := range []int{0, 100, 70 << 10, 3 << 20} {
		out, err := back.NewMessage()
		if err != nil {
			t.Fatal(err)
		}
		call, _ := out.Message().NewCall()
		call.SetQuestionId(uint32(size))
		p, _ := call.NewParams()
		d, _ := capnp.NewData(p.Segment(), bytes.Repeat([]byte{7}, size))
		p.SetContent(d.ToPtr())
		sent := make(chan error, 1)
		go func() { err := out.Send(); out.Release(); sent <- err }()
		in, err := tr.RecvMessage()
		if err != nil {
			t.Fatal(err)
		}
		gotCall, _ := in.Message().Call()
		gp, _ := gotCall.Params()
		content, _ := gp.Content()
		if gotCall.QuestionId() != uint32(size) || len(content.Data()) != size {
			t.Fatalf("size %d: got question %d with %d bytes", size, gotCall.QuestionId(), len(content.Data()))
		}
		in.Release()
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	}
	if held, _ := back.Held(); held != 0 {
		t.Fatalf("sender holds %d bytes after releasing everything", held)
	}
}

// rwc is a byte stream for the fuzz target.
type rwc struct{ io.Reader }

func (rwc) Write(p []byte) (int, error) { return len(p), nil }
func (rwc) Close() error                { return nil }

// Any bytes give messages or a clear error, never a panic or a hold past
// the limits.
func FuzzRPCTransport(f *testing.F) {
	f.Add(append(bootstrapMsg(f, 0), callMsg(f, 1, 10, 3)...))
	f.Add(append(callMsg(f, 1, 0, 1, 2, 3), finishMsg(f, 1)...))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 4, 0})
	f.Add([]byte{0x57, 2, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0}) // an empty first segment: capnp-go panics on its root
	f.Fuzz(func(t *testing.T, data []byte) {
		budget := NewBudget(1 << 17)
		tr := NewRPCTransport(rwc{bytes.NewReader(data)}, Limits{MaxFrame: 1 << 16, MaxAnswers: 4, MaxImports: 4, MaxCapsPerMessage: 4, MaxHeld: 1 << 18, Budget: budget})
		for range 64 {
			in, err := tr.RecvMessage()
			if err != nil {
				break
			}
			in.Release()
		}
		// Every path, refusals and malformed input included, gives
		// back what it took, to the connection and to the budget,
		// without Close.
		if held, peak := tr.Held(); held != 0 || peak > 1<<18 || budget.Used() != 0 {
			t.Fatalf("held %d, peak %d, budget used %d", held, peak, budget.Used())
		}
	})
}
