package transport

import "time"

// A caller's Finish (which lets the peer drop a call's answer) leaves right
// after the Return it finishes, and the caller's next call right after that:
// written apart they make two QUIC packets, and two sends and receives at
// each end. So a Finish waits, up to finishDelay, for the next message to
// share its write; with nothing after it the timer writes it alone. Every
// message carries the waiting Finish frames ahead of it, so the wait never
// raises the peer's count of our open calls (its MaxAnswers) when we call
// again. Waiting Finish bytes count as held, and at most maxPending of them
// (about six Finish messages) wait. The delay is a few milliseconds because
// a busy caller's next call can be that far behind its last answer.
const (
	finishDelay = 5 * time.Millisecond
	maxPending  = 256
)

// holdFinish keeps buf, the waiting Finish frames with one more of size
// bytes at its end, to go out with the next write. t.writeMu is held.
func (t *RPCTransport) holdFinish(buf []byte, size int) {
	t.h.force(int64(size))
	t.pending = buf
	if !t.flushArmed {
		t.flushArmed = true
		if t.flushTimer == nil {
			t.flushTimer = time.AfterFunc(finishDelay, t.flushPending)
		} else {
			t.flushTimer.Reset(finishDelay)
		}
	}
}

// takePending returns the waiting Finish frames (nil: none), uncounted and
// no longer waiting. t.writeMu is held.
func (t *RPCTransport) takePending() []byte {
	if len(t.pending) == 0 {
		return nil
	}
	if t.flushArmed && t.flushTimer.Stop() {
		t.flushArmed = false
	}
	p := t.pending
	t.h.release(int64(len(p)))
	t.pending = nil
	return p
}

// flushPending writes the waiting Finish frames (the timer's function).
func (t *RPCTransport) flushPending() {
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	t.flushArmed = false
	if t.closed.Load() {
		return
	}
	if p := t.takePending(); p != nil {
		// A failed write leaves the stream broken: the reader sees it too.
		t.writeLocked(len(p), p)
	}
}
