package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The primary asks before it links: qpctl link shows the request (the new
// device's key and label) and, without a yes on its terminal (here its
// input is empty), refuses. The new device is told over the sealed
// channel, keeps no identity, and the device list stays as it was; a
// later link with a yes works as before.
func TestLinkRefusedOnPrimary(t *testing.T) {
	root := tempDir(t)
	n := startNode(t, root, "127.0.0.1:0")
	alice := registeredUsers(t, root, n.addr, "alice")[0]
	laptop := newUser(t, root, "alice-laptop", n.addr)

	lp := startProc(t, "qpctl link", qpctlBin, "--socket", alice.socket, "link", "--json")
	var code string
	waitFor(t, "a link code", func() bool {
		var m struct {
			Code string `json:"code"`
		}
		l, _, _ := strings.Cut(lp.out.String(), "\n")
		if json.Unmarshal([]byte(l), &m) == nil && m.Code != "" {
			code = m.Code
		}
		return code != ""
	})
	r := laptop.run(t, "link", "--accept", code, "--name", "laptop", "--json")
	if r.code == 0 || !strings.Contains(r.stderr, "refused") {
		t.Fatalf("link --accept of a refused request: %+v", r)
	}
	select {
	case <-lp.done:
	case <-time.After(time.Minute):
		t.Fatalf("qpctl link did not end:\n%s", lp.out.String())
	}
	if lp.err == nil || !strings.Contains(lp.out.String(), "refused") {
		t.Fatalf("qpctl link of a refused request ended with %v:\n%s", lp.err, lp.out.String())
	}
	var asked struct {
		Request string `json:"request"`
		Name    string `json:"name"`
	}
	for _, l := range strings.Split(lp.out.String(), "\n") {
		if json.Unmarshal([]byte(l), &asked) == nil && asked.Request != "" {
			break
		}
	}
	if len(asked.Request) != 64 || asked.Name != "laptop" || !strings.Contains(r.stderr, asked.Request) ||
		!strings.Contains(r.stdout, `"this_device":"`+asked.Request+`"`) {
		t.Fatalf("the primary showed %+v; the new device said %q, %q", asked, r.stdout, r.stderr)
	}
	if st := laptop.status(t); st.Identity != "" {
		t.Fatalf("a refused device has the identity %s", st.Identity)
	}
	if d := alice.devices(t); d.Version != 0 || len(d.Devices) != 1 {
		t.Fatalf("alice's devices after a refusal: %+v", d)
	}
	// The same new device, a new code, a yes: linked.
	linkSecond(t, alice, laptop, "laptop", 0)
	if d := alice.devices(t); d.Version != 1 || len(d.Devices) != 2 {
		t.Fatalf("alice's devices after the link: %+v", d)
	}
}
