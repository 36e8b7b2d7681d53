package server

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/sqlite"
)

// panickyStore is the SQLite store with a bug planted: GroupState of one
// group id panics, as a defect reached by crafted input would.
type panickyStore struct {
	*sqlite.Store
	trigger []byte
}

func (p panickyStore) GroupState(ctx context.Context, groupID, member []byte) (store.GroupState, error) {
	if bytes.Equal(groupID, p.trigger) {
		var none []int
		_ = none[len(groupID)]
	}
	return p.Store.GroupState(ctx, groupID, member)
}

// TestCallPanicFailsOnlyThatCall: a panic while serving a call fails the
// call with an internal error; the node, and the same connection, go on.
func TestCallPanicFailsOnlyThatCall(t *testing.T) {
	trigger := []byte("boom")
	n := startInternalNode(t, func(st *sqlite.Store) store.Store { return panickyStore{Store: st, trigger: trigger} })
	c, pub, ctx := n.c, n.pub, n.ctx
	if _, err := c.GroupState(ctx, trigger); !errors.Is(err, client.ErrInternal) {
		t.Fatalf("GroupState of the planted id: %v, want ErrInternal", err)
	}
	if _, err := c.GroupState(ctx, []byte("other")); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("GroupState after the panic: %v, want the usual ErrUnauthorized", err)
	}
	if _, _, err := c.Enqueue(ctx, pub, []byte("still here"), nil); err != nil {
		t.Fatalf("enqueue after the panic: %v", err)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after the panic: %v", err)
	}
}
