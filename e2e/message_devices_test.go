package e2e

import (
	"strings"
	"testing"
)

// messageDeviceJSON is the sending device of a message in qpctl --json.
type messageDeviceJSON struct {
	Sender           string `json:"sender"`
	Text             string `json:"text"`
	SenderDevice     string `json:"sender_device"`
	SenderDeviceName string `json:"sender_device_name"`
}

// TestMessagesShowSendingDevice: alice writes from her first device and
// from a linked laptop; bob sees both messages as alice's, and with
// --devices (recv and history) which device sent each; --json carries
// the device always.
func TestMessagesShowSendingDevice(t *testing.T) {
	root := tempDir(t)
	n := startNode(t, root, "127.0.0.1:0")
	users := registeredUsers(t, root, n.addr, "alice", "bob")
	alice, bob := users[0], users[1]
	alice.must(t, "add-contact", bob.id, "--name", "bob")
	bob.must(t, "add-contact", alice.id, "--name", "alice")
	team := alice.createGroup(t, "team")
	alice.must(t, "invite", "--group-id", team, "--peer-key", bob.id)
	bob.join(t, team, "team")
	laptop := newUser(t, root, "alice-laptop", n.addr)
	dev := linkSecond(t, alice, laptop, "laptop", 1)

	alice.must(t, "send", "--group-id", team, "--msg", "from the first")
	bob.recvUntil(t, team, 1)
	laptop.must(t, "send", "--group-id", team, "--msg", "from the laptop")
	// recv --devices prints the new one with its device.
	var got string
	waitFor(t, "bob receives the laptop's message", func() bool {
		got += bob.must(t, "recv", "--group-id", team, "--wait", "5s", "--devices")
		return strings.Contains(got, "from the laptop")
	})
	if want := alice.id + " (device " + dev[:16] + " laptop): from the laptop"; !strings.Contains(got, want) {
		t.Fatalf("recv --devices:\n%s\nwant %q", got, want)
	}

	plain := bob.must(t, "history", "--group-id", team)
	if strings.Contains(plain, "(device ") || strings.Count(plain, alice.id+": from the ") != 2 {
		t.Fatalf("history without --devices:\n%s", plain)
	}
	hist := bob.must(t, "history", "--group-id", team, "--devices")
	for _, want := range []string{
		alice.id + " (device " + alice.id[:16] + "): from the first",
		alice.id + " (device " + dev[:16] + " laptop): from the laptop",
	} {
		if !strings.Contains(hist, want) {
			t.Errorf("history --devices lacks %q:\n%s", want, hist)
		}
	}
	byText := map[string]messageDeviceJSON{}
	for _, m := range jsonLines[messageDeviceJSON](t, bob.must(t, "history", "--group-id", team, "--json")) {
		byText[m.Text] = m
	}
	if m := byText["from the first"]; m.Sender != alice.id || m.SenderDevice != alice.id || m.SenderDeviceName != "" {
		t.Errorf("first device's message: %+v", m)
	}
	if m := byText["from the laptop"]; m.Sender != alice.id || m.SenderDevice != dev || m.SenderDeviceName != "laptop" {
		t.Errorf("laptop's message: %+v", m)
	}
}
