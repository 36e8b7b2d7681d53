package transport

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrLimit: the peer went past one of an RPC connection's Limits; the
// connection is closed. errors.As finds a *LimitError with the kind.
var ErrLimit = errors.New("transport: rpc limit")

// Kinds of LimitError, also the label values of the node's refusal metric.
const (
	LimitFrameSize    = "frameSize"    // a message larger than MaxFrame was announced
	LimitFrameTimeout = "frameTimeout" // a started message did not arrive within FrameTimeout
	LimitWriteTimeout = "writeTimeout" // the peer did not take a message within FrameTimeout
	LimitAnswers      = "openAnswers"  // more than MaxAnswers calls not finished
	LimitImports      = "imports"      // more than MaxImports capabilities imported
	LimitCapTable     = "capTable"     // more than MaxCapsPerMessage capabilities in one message
	LimitHeldBytes    = "heldBytes"    // the connection would hold more than MaxHeld bytes
	LimitBudget       = "memoryBudget" // all connections together would hold more than the Budget
	LimitIdle         = "idle"         // no message for IdleTimeout and nothing open
)

// LimitError says which limit a connection went past.
type LimitError struct {
	Kind   string
	Detail string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("transport: rpc limit %s: %s", e.Kind, e.Detail)
}

func (e *LimitError) Unwrap() error { return ErrLimit }

func limitErr(kind, format string, args ...any) *LimitError {
	return &LimitError{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// Limits bound what one Cap'n Proto RPC connection may make its end hold.
// capnp-go bounds none of this itself: it allocates a message's announced
// size as soon as it has read the frame header, keeps an answer (and its
// Return message) until the peer sends Finish, and builds a capability for
// every entry of a message's cap table. A zero field means no bound.
//
// The transport enforces them from outside capnp-go: it reads a frame's body
// as it arrives (never allocating more than has been received), inspects
// each message before the RPC layer sees it (questions opened and finished,
// capabilities imported and released, cap-table sizes), and counts the
// bytes of every message alive on the connection — incoming ones until the
// RPC layer releases them (a call's arguments until the call returns),
// outgoing ones from their first allocation until released (a Return stays
// until its Finish). Past a bound, RecvMessage fails with a *LimitError and
// capnp-go aborts the connection with that reason.
type Limits struct {
	MaxFrame          uint64        // bytes of one incoming message, header included
	FrameTimeout      time.Duration // to receive the rest of a message once its header arrived, and to send one
	IdleTimeout       time.Duration // with no call open and no capability imported, to wait for the next message
	MaxAnswers        int           // the peer's questions (bootstraps and calls) not yet finished
	MaxImports        int           // capabilities the peer has given us and we still hold
	MaxCapsPerMessage int           // cap-table entries of one incoming message
	MaxHeld           int64         // bytes of messages alive on the connection
	Budget            *Budget       // shared bound on the bytes of all connections; nil: none

	// OnHeld, if set, is told each change of the bytes this connection holds.
	OnHeld func(delta int64)
}

// Budget is a bound on the bytes that all RPC connections sharing it hold
// together. It is safe for concurrent use.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Used returns the bytes held now.
func (b *Budget) Used() int64 { return b.used.Load() }

// Limit returns the budget's size in bytes.
func (b *Budget) Limit() int64 { return b.limit }

func (b *Budget) reserve(n int64) bool {
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *Budget) release(n int64) { b.used.Add(-n) }

// connFloor is what every connection may hold even when the shared budget
// is used up, so that a connection that holds little (an honest client's
// ping) is not closed for what others hold. The budget can therefore be
// passed by at most MaxConns × connFloor.
const connFloor = 64 << 10

// holder counts the bytes one connection holds against its own bound and
// the shared budget. Once closed it counts nothing more: closeAll has
// returned everything to the budget.
type holder struct {
	lim    *Limits
	mu     sync.Mutex
	held   int64
	peak   int64
	closed bool
}

// reserve takes n bytes, or fails with the limit it would pass.
func (h *holder) reserve(n int64) *LimitError {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	if h.lim.MaxHeld > 0 && h.held+n > h.lim.MaxHeld {
		return limitErr(LimitHeldBytes, "connection would hold %d bytes of messages, limit %d", h.held+n, h.lim.MaxHeld)
	}
	if b := h.lim.Budget; b != nil && h.held+n <= connFloor {
		b.used.Add(n) // a connection's first bytes: see connFloor
	} else if b != nil && !b.reserve(n) {
		return limitErr(LimitBudget, "the node's memory budget of %d bytes for connections is used up", b.limit)
	}
	h.addLocked(n)
	return nil
}

// force takes n bytes even past the bounds (memory already allocated).
func (h *holder) force(n int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if b := h.lim.Budget; b != nil {
		b.used.Add(n)
	}
	h.addLocked(n)
}

func (h *holder) release(n int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if b := h.lim.Budget; b != nil {
		b.release(n)
	}
	h.addLocked(-n)
}

// closeAll returns everything still held and stops counting.
func (h *holder) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if b := h.lim.Budget; b != nil {
		b.release(h.held)
	}
	h.addLocked(-h.held)
	h.closed = true
}

func (h *holder) addLocked(n int64) {
	h.held += n
	h.peak = max(h.peak, h.held)
	if h.lim.OnHeld != nil {
		h.lim.OnHeld(n)
	}
}

// counts returns the bytes held now and the most held at once.
func (h *holder) counts() (now, peak int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held, h.peak
}
