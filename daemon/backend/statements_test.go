package backend

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/content"
	"github.com/quicproquo/quicproquo/internal/testnode"
)

// Every statement of a send or receive transaction costs 10–30 µs of the
// message's latency. These tests hold the two transactions of a text
// message in a warm two-member group to the statements they need.

// sendStatements is what Alice's send transaction needs: the group row,
// the message's seq and its row, its event, the group's new state, the
// outbox item.
const sendStatements = 6

// receiveStatements is what Bob's receiving transaction needs: the cursor,
// the group row, the message's seq and its row, its event, the group's new
// state, the cursor advance, the owed receipt. A lone envelope takes no
// savepoint; the identity and the merged direct chats are the store's once
// read.
const receiveStatements = 8

func TestSendStatements(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	_, gid := groupsForm(t, "statements", alice, bob)
	ctx := context.Background()
	for _, text := range []string{"a", "b"} { // statements get prepared
		if _, err := alice.b.Send(ctx, gid, text, nil); err != nil {
			t.Fatal(err)
		}
	}
	id, err := alice.b.identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	alice.b.gmu.Lock()
	err = alice.b.update(ctx, func(tx *store.Tx) error {
		n0 := alice.b.st.WriteStatements()
		_, err := alice.b.sendLocked(tx, id, gid, freshClientID(t), textComposer("c"), true, nil)
		n = alice.b.st.WriteStatements() - n0
		return err
	})
	alice.b.gmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if n > sendStatements {
		t.Errorf("send transaction ran %d statements, want at most %d", n, sendStatements)
	}
	groupsWait(t, "the message at Bob", func() bool { return len(groupsTexts(t, bob, gid)) == 3 })
}

func TestReceiveStatements(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice := groupsStart(t, node)
	bob := groupsStartWith(t, node, Config{ReceiptDelay: time.Hour}) // no receipt transaction in the count
	_, gid := groupsForm(t, "statements", alice, bob)
	ctx := context.Background()
	for i, text := range []string{"a", "b", "c"} {
		n0 := bob.b.st.WriteStatements()
		if _, err := alice.b.Send(ctx, gid, text, nil); err != nil {
			t.Fatal(err)
		}
		groupsWait(t, "the message at Bob", func() bool { return len(groupsTexts(t, bob, gid)) == i+1 })
		n := bob.b.st.WriteStatements() - n0
		if i == 0 {
			continue // statements get prepared
		}
		if n > receiveStatements {
			t.Errorf("message %d: receiving transaction ran %d statements, want at most %d", i, n, receiveStatements)
		}
	}
}

func freshClientID(t *testing.T) []byte {
	t.Helper()
	cid := make([]byte, 18)
	copy(cid, "m:")
	if _, err := rand.Read(cid[2:]); err != nil {
		t.Fatal(err)
	}
	return cid
}

func textComposer(text string) composer {
	return func(*store.Tx, store.Group) (*content.Message, error) { return content.NewText(text), nil }
}

// The send's identity is read in its transaction; before registering, a
// send still says so.
func TestSendBeforeRegister(t *testing.T) {
	b := backendNew(t, Config{Groups: true})
	if _, err := b.Send(context.Background(), strings.Repeat("0a", store.GroupIDSize), "hi", nil); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("Send before register: %v", err)
	}
}
