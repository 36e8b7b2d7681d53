package transport

import "time"

// A caller's Finish (which lets the peer drop a call's answer) leaves right
// after the Return it finishes, and the caller's next call right after that:
// written apart they make two QUIC packets, and two sends and receives at
// each end. So a Finish waits, up to finishDelay, for the next message to
// share its write; with nothing after it the timer writes it alone. Waiting
// Finish bytes count as held, and at most maxPending of them wait (about six
// Finish messages): the peer's count of our unfinished calls (its
// MaxAnswers) grows by no more than that. The delay is a few milliseconds
// because a busy caller's next call can be that far behind its last answer.
const (
	finishDelay = 5 * time.Millisecond
	maxPending  = 256
)

// holdFinish keeps the frame b of a Finish to go out with the next write,
// and reports whether it did (false: write it now). t.writeMu is held.
func (t *RPCTransport) holdFinish(b []byte) bool {
	if len(t.pending)+len(b) > maxPending {
		return false
	}
	t.h.force(int64(len(b)))
	t.pending = append(t.pending, b...)
	if !t.flushArmed {
		t.flushArmed = true
		if t.flushTimer == nil {
			t.flushTimer = time.AfterFunc(finishDelay, t.flushPending)
		} else {
			t.flushTimer.Reset(finishDelay)
		}
	}
	return true
}

// withPending returns the waiting Finish frames followed by b, and
// uncounts them; b itself when none wait. t.writeMu is held.
func (t *RPCTransport) withPending(b []byte) []byte {
	if len(t.pending) == 0 {
		return b
	}
	if t.flushArmed && t.flushTimer.Stop() {
		t.flushArmed = false
	}
	p := append(t.pending, b...)
	t.h.release(int64(len(t.pending)))
	t.pending = nil
	return p
}

// flushPending writes the waiting Finish frames (the timer's function).
func (t *RPCTransport) flushPending() {
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	t.flushArmed = false
	if len(t.pending) == 0 || t.closed.Load() {
		return
	}
	// A failed write leaves the stream broken: the reader sees it too.
	n := len(t.pending)
	t.writeLocked(n, t.withPending(nil))
}
