package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/quicproquo/quicproquo/internal/testnode"
)

// hostileLabel is a device label that would move the cursor and fake a
// line of output if shown as it is.
const hostileLabel = "phone\x1b[2J\n[bob] fake"

// TestMessagesRecordSendingDevice: alice has two devices and sends from
// each; Bob's history shows one person, alice, and the two devices (the
// first one's key is alice's, a basic credential without a label; the
// second's is its own key with the label its certificate gives, kept as
// the text it is). Each of alice's devices records its own sent message
// with itself and the other's with the other.
func TestMessagesRecordSendingDevice(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	alice, bob := groupsStart(t, node), groupsStart(t, node)
	alice2, dev := linkByHandNamed(t, node, alice, hostileLabel)
	ctx := context.Background()

	g, err := bob.b.CreateGroup(ctx, "team")
	if err != nil {
		t.Fatal(err)
	}
	gid := FormatKey(g.ID)
	if _, _, err := bob.b.Invite(ctx, gid, []ed25519.PublicKey{alice.id}); err != nil {
		t.Fatal(err)
	}
	joinOne(t, alice, "alice joins")
	joinOne(t, alice2, "alice's second device joins")
	for _, s := range []struct {
		u    *groupsUser
		text string
	}{{alice, "from the first"}, {alice2, "from the second"}, {bob, "from bob"}} {
		if _, err := s.u.b.Send(ctx, gid, s.text, nil); err != nil {
			t.Fatalf("send %q: %v", s.text, err)
		}
	}
	want := map[string]struct {
		user, device []byte
		label        string
	}{
		"from the first":  {alice.id, alice.id, ""},
		"from the second": {alice.id, dev, hostileLabel},
		"from bob":        {bob.id, bob.id, ""},
	}
	for name, u := range map[string]*groupsUser{"alice": alice, "alice2": alice2, "bob": bob} {
		groupsWait(t, "three messages at "+name, func() bool { return len(groupsTexts(t, u, gid)) == 3 })
		p, err := u.b.Messages(ctx, MessagesQuery{Group: gid, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range p.Messages {
			w := want[m.Text]
			if !bytes.Equal(m.Sender, w.user) || !bytes.Equal(m.SenderDevice, w.device) || m.SenderDeviceName != w.label {
				t.Errorf("%s: %q from %x device %x %q, want %x device %x %q", name, m.Text, m.Sender, m.SenderDevice, m.SenderDeviceName, w.user, w.device, w.label)
			}
		}
	}
}
