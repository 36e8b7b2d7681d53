package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Multi-device: a person links a second device, both devices read and
// write in every group, the other person sees one person; a revoked
// device leaves every group and the node refuses it; a restored backup is
// a new device of the same person.

type devicesJSON struct {
	Identity string `json:"identity"`
	Version  uint64 `json:"version"`
	Primary  bool   `json:"primary"`
	Devices  []struct {
		Key        string `json:"key"`
		Name       string `json:"name"`
		ThisDevice bool   `json:"this_device"`
	} `json:"devices"`
}

func (u *user) devices(t testing.TB) devicesJSON {
	t.Helper()
	var d devicesJSON
	if err := json.Unmarshal([]byte(u.must(t, "devices", "--json")), &d); err != nil {
		t.Fatalf("devices --json: %v", err)
	}
	return d
}

// linkSecond links a new, unregistered qpd as a device of primary: the
// primary shows a code (qpctl link), the new one accepts it (qpctl link
// --accept); it returns the new device's key once the primary reports it
// added to every group.
func linkSecond(t *testing.T, primary, second *user, name string, wantGroups int) string {
	t.Helper()
	lp := startProc(t, "qpctl link", qpctlBin, "--socket", primary.socket, "link", "--yes", "--json")
	var code string
	waitFor(t, "a link code", func() bool {
		for _, l := range strings.Split(lp.out.String(), "\n") {
			var m struct {
				Code string `json:"code"`
			}
			if json.Unmarshal([]byte(l), &m) == nil && m.Code != "" {
				code = m.Code
				return true
			}
		}
		return false
	})
	var acc struct {
		Identity string `json:"identity"`
		Device   string `json:"device"`
		Groups   int    `json:"groups"`
	}
	r := second.run(t, "link", "--accept", code, "--name", name, "--json")
	if r.code != 0 {
		t.Fatalf("link --accept: %+v", r)
	}
	// First this device's key (to compare with the primary's screen),
	// last the result.
	out := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var shown struct {
		ThisDevice string `json:"this_device"`
	}
	if len(out) != 2 || json.Unmarshal([]byte(out[0]), &shown) != nil {
		t.Fatalf("link --accept printed %q", r.stdout)
	}
	if err := json.Unmarshal([]byte(out[1]), &acc); err != nil {
		t.Fatal(err)
	}
	if shown.ThisDevice != acc.Device || !strings.Contains(lp.out.String(), `"request":"`+acc.Device+`"`) {
		t.Fatalf("link --accept showed %q, linked %s; the primary asked:\n%s", shown.ThisDevice, acc.Device, lp.out.String())
	}
	if acc.Identity != primary.id || len(acc.Device) != 64 || acc.Device == primary.id || acc.Groups != wantGroups {
		t.Fatalf("link --accept: %+v (primary %s)", acc, primary.id)
	}
	select {
	case <-lp.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("qpctl link did not end:\n%s", lp.out.String())
	}
	var done struct {
		Done         bool     `json:"done"`
		GroupsAdded  int      `json:"groups_added"`
		GroupsFailed []string `json:"groups_failed"`
	}
	lines := strings.Split(strings.TrimSpace(lp.out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &done); err != nil || !done.Done || done.GroupsAdded != wantGroups || len(done.GroupsFailed) != 0 {
		t.Fatalf("qpctl link ended with %v:\n%s", err, lp.out.String())
	}
	second.id = primary.id
	return acc.Device
}

// groupIDs are the ids of the groups u is in.
func (u *user) groupIDs(t testing.TB) []string {
	t.Helper()
	var ids []string
	for _, g := range jsonLines[groupJSON](t, u.must(t, "groups", "--json")) {
		ids = append(ids, g.GroupID)
	}
	slices.Sort(ids)
	return ids
}

// memberDevices are the device keys of person in a group, as u lists them.
func (u *user) memberDevices(t testing.TB, group, person string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(u.must(t, "members", "--group-id", group, "--json")), "\n") {
		var m struct {
			Identity string `json:"identity"`
			Devices  []struct {
				Key string `json:"key"`
			} `json:"devices"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("members --json: %v", err)
		}
		if m.Identity == person {
			for _, d := range m.Devices {
				out = append(out, d.Key)
			}
		}
	}
	slices.Sort(out)
	return out
}

// people are the distinct member identities (persons) of a group.
func people(ms []memberJSON) []string {
	var out []string
	for _, m := range ms {
		if !slices.Contains(out, m.Identity) {
			out = append(out, m.Identity)
		}
	}
	slices.Sort(out)
	return out
}

// Acceptance 1 and 2: linking, every device in every group, one person to
// the others, and revocation.
func TestLinkedDevice(t *testing.T) {
	root := tempDir(t)
	n := startNode(t, root, "127.0.0.1:0")
	users := registeredUsers(t, root, n.addr, "alice", "bob")
	alice, bob := users[0], users[1]
	alice.must(t, "add-contact", bob.id, "--name", "bob")
	bob.must(t, "add-contact", alice.id, "--name", "alice")
	team := alice.createGroup(t, "team")
	alice.must(t, "invite", "--group-id", team, "--peer-key", bob.id)
	bob.join(t, team, "team")
	family := alice.createGroup(t, "family")
	alice.must(t, "invite", "--group-id", family, "--peer-key", bob.id)
	bob.join(t, family, "family")
	alice.must(t, "send", "--group-id", team, "--msg", "before the laptop")
	bob.recvUntil(t, team, 1)

	laptop := newUser(t, root, "alice-laptop", n.addr)
	dev := linkSecond(t, alice, laptop, "laptop", 2)
	waitFor(t, "the laptop in both groups", func() bool {
		return slices.Equal(laptop.groupIDs(t), sorted(team, family))
	})
	d := alice.devices(t)
	if d.Identity != alice.id || d.Version != 1 || len(d.Devices) != 2 || !d.Primary {
		t.Fatalf("alice's devices: %+v", d)
	}
	ld := laptop.devices(t)
	if ld.Identity != alice.id || ld.Primary || len(ld.Devices) != 2 {
		t.Fatalf("the laptop's devices: %+v", ld)
	}
	// The laptop is no primary: it links and revokes nothing.
	if r := laptop.run(t, "devices", "revoke", alice.id[:16]); r.code == 0 || !strings.Contains(r.stderr, "does not hold the identity key") {
		t.Fatalf("revoke on the laptop: %+v", r)
	}

	// Both devices read and send in both groups; bob sees one person.
	for _, g := range []string{team, family} {
		bob.must(t, "send", "--group-id", g, "--msg", "hi both")
		for _, u := range []*user{alice, laptop} {
			got := u.recvUntil(t, g, 1)
			checkMessage(t, got[0], g, bob.id, "hi both")
		}
		laptop.must(t, "send", "--group-id", g, "--msg", "from the laptop")
		got := bob.recvUntil(t, g, 1)
		checkMessage(t, got[0], g, alice.id, "from the laptop")
		// Her other device's message is her own on this one too.
		waitFor(t, "the laptop's message on alice's first device", func() bool {
			return slices.ContainsFunc(alice.history(t, g), func(m messageJSON) bool { return m.Text == "from the laptop" && m.Sender == alice.id })
		})
		// One person alice (with two devices) and bob.
		if p := people(bob.members(t, g)); !slices.Equal(p, sorted(alice.id, bob.id)) {
			t.Fatalf("bob sees the people %v in %s", p, g)
		}
		if d := bob.memberDevices(t, g, alice.id); !slices.Equal(d, sorted(alice.id, dev)) {
			t.Fatalf("bob sees alice's devices %v in %s", d, g)
		}
	}
	// A new group bob makes with the person alice has both her devices.
	fresh := bob.createGroup(t, "fresh")
	bob.must(t, "invite", "--group-id", fresh, "--peer-key", alice.id)
	waitFor(t, "both alice devices in the new group", func() bool {
		return slices.Contains(alice.groupIDs(t), fresh) && slices.Contains(laptop.groupIDs(t), fresh)
	})
	bob.must(t, "send", "--group-id", fresh, "--msg", "new group")
	for _, u := range []*user{alice, laptop} {
		checkMessage(t, u.recvUntil(t, fresh, 1)[0], fresh, bob.id, "new group")
	}

	// Revocation: one commit per group, the laptop reads nothing after,
	// and the node refuses it.
	var rev struct {
		Device  string `json:"device"`
		Version uint64 `json:"version"`
		Groups  int    `json:"groups"`
	}
	if r := alice.run(t, "devices", "revoke", alice.id); r.code == 0 || !strings.Contains(r.stderr, "cannot revoke itself") {
		t.Fatalf("revoke self: %+v", r)
	}
	epochs := map[string]uint64{}
	for _, g := range []string{team, family, fresh} {
		epochs[g] = bob.members(t, g)[0].Epoch
	}
	if err := json.Unmarshal([]byte(alice.must(t, "devices", "revoke", dev[:12], "--json")), &rev); err != nil {
		t.Fatal(err)
	}
	if rev.Device != dev || rev.Version != 2 || rev.Groups != 3 {
		t.Fatalf("revoke: %+v", rev)
	}
	for _, g := range []string{team, family, fresh} {
		waitFor(t, "bob at the removal's epoch", func() bool { return bob.members(t, g)[0].Epoch == epochs[g]+1 })
		if p := people(bob.members(t, g)); !slices.Equal(p, sorted(alice.id, bob.id)) {
			t.Fatalf("after the revocation bob sees %v", p)
		}
		if d := bob.memberDevices(t, g, alice.id); !slices.Equal(d, []string{alice.id}) {
			t.Fatalf("alice's devices after the revocation: %v in %s", d, g)
		}
	}
	before := len(laptop.history(t, team))
	bob.must(t, "send", "--group-id", team, "--msg", "after the revocation")
	checkMessage(t, alice.recvUntil(t, team, 1)[0], team, bob.id, "after the revocation")
	waitFor(t, "the laptop refused by the node", func() bool {
		st := laptop.status(t)
		return st.Node.State != "connected"
	})
	for _, m := range laptop.history(t, team)[before:] {
		if m.Text == "after the revocation" {
			t.Fatalf("the revoked laptop read %+v", m)
		}
	}
	if d := alice.devices(t); d.Version != 2 || len(d.Devices) != 1 || d.Devices[0].Key != alice.id {
		t.Fatalf("alice's devices after the revocation: %+v", d)
	}
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// Acceptance 4: a backup restored on a fresh state folder is a new device
// of the same person, with the same safety number as bob sees it.
func TestRestoreIsNewDevice(t *testing.T) {
	root := tempDir(t)
	n := startNode(t, root, "127.0.0.1:0")
	users := registeredUsers(t, root, n.addr, "alice", "bob")
	alice, bob := users[0], users[1]
	bob.must(t, "add-contact", alice.id, "--name", "alice")
	before := strings.Split(bob.must(t, "safety-number", "alice"), "\n")[0]
	pass := filepath.Join(root, "pass")
	if err := os.WriteFile(pass, []byte("a long enough passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(root, "alice.pem")
	alice.must(t, "identity", "export", "--out", backup, "--passphrase-file", pass)

	restored := newUser(t, root, "alice-new", n.addr, "--restore", backup, "--passphrase-file", pass)
	waitFor(t, "the restored device connected", func() bool { return restored.status(t).Node.State == "connected" })
	d := restored.devices(t)
	var this string
	for _, x := range d.Devices {
		if x.ThisDevice {
			this = x.Key
		}
	}
	if d.Identity != alice.id || !d.Primary || len(d.Devices) != 2 || this == "" || this == alice.id {
		t.Fatalf("restored devices: %+v", d)
	}
	if after := strings.Split(bob.must(t, "safety-number", "alice"), "\n")[0]; after != before {
		t.Fatalf("bob's safety number for alice: %q, before the restore %q", after, before)
	}
	// The new device is a member bob can invite as alice.
	g := bob.createGroup(t, "after-restore")
	bob.must(t, "invite", "--group-id", g, "--peer-key", alice.id)
	waitFor(t, "the restored device in bob's group", func() bool { return slices.Contains(restored.groupIDs(t), g) })
}

// qpd --link CODE on an empty state folder becomes the new device at
// start; a wrong code stops it with a clear error and leaves no identity.
func TestQpdLinkFlag(t *testing.T) {
	root := tempDir(t)
	n := startNode(t, root, "127.0.0.1:0")
	alice := registeredUsers(t, root, n.addr, "alice")[0]
	bad := &user{name: "bad", dir: filepath.Join(root, "bad"), nodeAddr: n.addr}
	bad.socket = filepath.Join(bad.dir, "s")
	out, err := exec.Command(qpdBin, "--state-dir", bad.dir, "--socket", bad.socket, "--server", n.addr,
		"--link", "qpq-link-not-a-code").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a link code") {
		t.Fatalf("qpd --link with a malformed code: %v\n%s", err, out)
	}

	lp := startProc(t, "qpctl link", qpctlBin, "--socket", alice.socket, "link", "--yes", "--json")
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
	phone := newUser(t, root, "phone", n.addr, "--link", code, "--device-name", "phone")
	if st := phone.status(t); st.Identity != alice.id {
		t.Fatalf("the linked qpd's identity %s, want alice's %s", st.Identity, alice.id)
	}
	waitFor(t, "both devices listed", func() bool { return len(phone.devices(t).Devices) == 2 })
	// A restart with the same --link is harmless.
	phone.p.stop(syscall.SIGTERM)
	phone.start(t)
	if st := phone.status(t); st.Identity != alice.id {
		t.Fatalf("after a restart with --link: %s", st.Identity)
	}
}
