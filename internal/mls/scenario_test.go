package mls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// In-process scenarios: whole groups of clients that create, add, remove,
// update, join from outside, talk, and store and restore their state, with
// every member checked to agree on the epoch authenticator.

// scSuite is the suite of the group tests: suite 1, or the suite that
// TestGroupTestsEveryPQSuite names in suiteEnv when it runs them again.
var scSuite = suiteUnderTest()

// scNameExt is the private-use GroupContext extension an application could
// use for the group's name.
const scNameExt ExtensionType = 0xff00

type scClient struct {
	name   string
	signer *Signer
	g      *Group
}

func scNewClient(t testing.TB, name string) *scClient {
	t.Helper()
	s, err := NewSigner(scSuite, []byte(name))
	if err != nil {
		t.Fatal(err)
	}
	return &scClient{name: name, signer: s}
}

func scKeyPackage(t testing.TB, c *scClient) (*KeyPackage, *KeyPackagePrivate) {
	t.Helper()
	kp, priv, err := GenerateKeyPackage(scSuite, c.signer, &KeyPackageParams{ExtensionTypes: []ExtensionType{scNameExt}})
	if err != nil {
		t.Fatal(err)
	}
	// The private half goes through storage, as a client would keep it.
	b, err := priv.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if priv, err = UnmarshalKeyPackagePrivate(b); err != nil {
		t.Fatal(err)
	}
	return kp, priv
}

// scGroup is a set of clients in one group, with helpers that play the
// delivery service.
type scGroup struct {
	t       testing.TB
	members []*scClient
	next    int
}

func scCreate(t testing.TB, cfg Config) *scGroup {
	t.Helper()
	a := scNewClient(t, "member-0")
	g, err := CreateGroup(scSuite, nil, a.signer, &CreateOptions{
		Extensions: []Extension{{Type: scNameExt, Data: []byte("friends")}},
		Config:     cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	a.g = g
	return &scGroup{t: t, members: []*scClient{a}, next: 1}
}

// commitFrom merges committer's pending commit (the delivery service
// accepted it) and has every other member process msg.
func (sg *scGroup) commitFrom(committer *scClient, res *CommitResult) {
	sg.t.Helper()
	if _, err := committer.g.MergePendingCommit(); err != nil {
		sg.t.Fatalf("%s merge: %v", committer.name, err)
	}
	for _, m := range sg.members {
		if m == committer {
			continue
		}
		r, err := m.g.ProcessMessage(res.Message)
		if err != nil {
			sg.t.Fatalf("%s processing commit of %s: %v", m.name, committer.name, err)
		}
		if r.Kind != KindCommit || r.NewEpoch != committer.g.Epoch() {
			sg.t.Fatalf("%s: commit gave kind %v epoch %d", m.name, r.Kind, r.NewEpoch)
		}
	}
}

// add adds n new clients in one commit by committer; they join from the
// Welcome (without the tree in it if omitTree).
func (sg *scGroup) add(committer *scClient, n int, omitTree bool) []*scClient {
	sg.t.Helper()
	var kps []*KeyPackage
	var privs []*KeyPackagePrivate
	var news []*scClient
	for i := 0; i < n; i++ {
		c := scNewClient(sg.t, fmt.Sprintf("member-%d", sg.next))
		sg.next++
		kp, priv := scKeyPackage(sg.t, c)
		kps, privs, news = append(kps, kp), append(privs, priv), append(news, c)
	}
	res, err := committer.g.AddMembers(kps, &CommitOptions{OmitRatchetTree: omitTree})
	if err != nil {
		sg.t.Fatalf("%s AddMembers: %v", committer.name, err)
	}
	if len(res.Added) != n || res.Welcome == nil {
		sg.t.Fatalf("AddMembers added %d, welcome %v", len(res.Added), res.Welcome != nil)
	}
	sg.commitFrom(committer, res)
	var tree []byte
	if omitTree {
		tree = committer.g.RatchetTree()
	}
	for i, c := range news {
		g, err := JoinFromWelcome(res.Welcome, privs[i], &JoinOptions{RatchetTree: tree, Config: committer.g.config})
		if err != nil {
			sg.t.Fatalf("%s JoinFromWelcome: %v", c.name, err)
		}
		if name, ok := g.Extension(scNameExt); !ok || string(name) != "friends" {
			sg.t.Fatalf("%s sees group name %q", c.name, name)
		}
		c.g = g
	}
	sg.members = append(sg.members, news...)
	return news
}

// agree checks that all members are in the same epoch with the same
// epoch authenticator, exporter output and membership.
func (sg *scGroup) agree() {
	sg.t.Helper()
	first := sg.members[0].g
	want := first.EpochAuthenticator()
	exp, err := first.Export("test", []byte("ctx"), 32)
	if err != nil {
		sg.t.Fatal(err)
	}
	for _, m := range sg.members {
		g := m.g
		if g.Epoch() != first.Epoch() || !bytes.Equal(g.EpochAuthenticator(), want) {
			sg.t.Fatalf("%s at epoch %d authenticator %x; %s at epoch %d authenticator %x",
				m.name, g.Epoch(), g.EpochAuthenticator(), sg.members[0].name, first.Epoch(), want)
		}
		e, _ := g.Export("test", []byte("ctx"), 32)
		if !bytes.Equal(e, exp) {
			sg.t.Fatalf("%s exporter differs", m.name)
		}
		if len(g.Members()) != len(sg.members) {
			sg.t.Fatalf("%s sees %d members, want %d", m.name, len(g.Members()), len(sg.members))
		}
		if !bytes.Equal(g.RatchetTree(), first.RatchetTree()) {
			sg.t.Fatalf("%s has another tree", m.name)
		}
	}
}

// talk has every member send a message that every other member reads.
func (sg *scGroup) talk(tag string) {
	sg.t.Helper()
	for _, from := range sg.members {
		text := []byte(fmt.Sprintf("%s from %s", tag, from.name))
		msg, err := from.g.Protect(text, []byte("ad"))
		if err != nil {
			sg.t.Fatalf("%s Protect: %v", from.name, err)
		}
		for _, to := range sg.members {
			if to == from {
				continue
			}
			r, err := to.g.ProcessMessage(msg)
			if err != nil {
				sg.t.Fatalf("%s reading %s: %v", to.name, from.name, err)
			}
			if r.Kind != KindApplication || !bytes.Equal(r.Plaintext, text) || string(r.AuthenticatedData) != "ad" ||
				string(r.Sender.Identity) != from.name || r.Sender.Leaf != from.g.OwnLeaf() {
				sg.t.Fatalf("%s read %q from %q (leaf %d)", to.name, r.Plaintext, r.Sender.Identity, r.Sender.Leaf)
			}
			if _, err := to.g.ProcessMessage(msg); err == nil {
				sg.t.Fatalf("%s read the same message twice", to.name)
			}
		}
	}
}

// reload stores and restores every member's state.
func (sg *scGroup) reload() {
	sg.t.Helper()
	for _, m := range sg.members {
		b, err := m.g.MarshalBinary()
		if err != nil {
			sg.t.Fatal(err)
		}
		g, err := UnmarshalGroup(b)
		if err != nil {
			sg.t.Fatalf("%s UnmarshalGroup: %v", m.name, err)
		}
		b2, _ := g.MarshalBinary()
		if !bytes.Equal(b, b2) {
			sg.t.Fatalf("%s state differs after a round trip", m.name)
		}
		// No aliasing: changing the stored bytes does not change the group.
		clear(b)
		b3, _ := g.MarshalBinary()
		if !bytes.Equal(b2, b3) {
			sg.t.Fatalf("%s state aliases its stored bytes", m.name)
		}
		m.g = g
	}
}

func (sg *scGroup) remove(committer *scClient, victims ...*scClient) {
	sg.t.Helper()
	var leaves []LeafIndex
	for _, v := range victims {
		leaves = append(leaves, v.g.OwnLeaf())
	}
	res, err := committer.g.RemoveMembers(leaves, nil)
	if err != nil {
		sg.t.Fatalf("RemoveMembers: %v", err)
	}
	if _, err := committer.g.MergePendingCommit(); err != nil {
		sg.t.Fatal(err)
	}
	var rest []*scClient
	for _, m := range sg.members {
		if m == committer {
			rest = append(rest, m)
			continue
		}
		r, err := m.g.ProcessMessage(res.Message)
		if err != nil {
			sg.t.Fatalf("%s processing remove: %v", m.name, err)
		}
		if len(r.Removed) != len(victims) {
			sg.t.Fatalf("%s sees %d removed", m.name, len(r.Removed))
		}
		gone := false
		for _, v := range victims {
			if v == m {
				gone = true
			}
		}
		if gone {
			if !r.SelfRemoved || m.g.Active() {
				sg.t.Fatalf("%s not told it was removed", m.name)
			}
			if _, err := m.g.Protect([]byte("x"), nil); !errors.Is(err, ErrNotMember) {
				sg.t.Fatalf("removed %s can still send: %v", m.name, err)
			}
			continue
		}
		rest = append(rest, m)
	}
	sg.members = rest
}

func runScenario(t *testing.T, n int) {
	sg := scCreate(t, Config{})
	alice := sg.members[0]
	if n == 2 {
		sg.add(alice, 1, false)
	} else {
		// One big commit, then several small ones by other members.
		sg.add(alice, n/2, false)
		for len(sg.members) < n {
			k := min(3, n-len(sg.members))
			sg.add(sg.members[len(sg.members)-1], k, len(sg.members)%2 == 0)
		}
	}
	sg.agree()
	sg.talk("hello")
	sg.reload()
	sg.talk("after reload")

	// Self-update by the last member, a commit with an empty proposal list.
	last := sg.members[len(sg.members)-1]
	res, err := last.g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(last, res)
	sg.agree()

	// Remove a member (in a 2-member group, add one first).
	if len(sg.members) == 2 {
		sg.add(alice, 1, false)
	}
	victim := sg.members[1]
	sg.remove(alice, victim)
	sg.agree()
	sg.talk("after remove")

	// External join with a GroupInfo from any member.
	gi, err := sg.members[len(sg.members)-1].g.GroupInfo()
	if err != nil {
		t.Fatal(err)
	}
	ext := scNewClient(t, fmt.Sprintf("member-%d", sg.next))
	sg.next++
	eg, msg, err := JoinExternal(gi, ext.signer, nil)
	if err != nil {
		t.Fatalf("JoinExternal: %v", err)
	}
	ext.g = eg
	for _, m := range sg.members {
		r, err := m.g.ProcessMessage(msg)
		if err != nil {
			t.Fatalf("%s processing external commit: %v", m.name, err)
		}
		if r.SenderType != SenderNewMemberCommit || string(r.Sender.Identity) != ext.name {
			t.Fatalf("external commit seen from %v %q", r.SenderType, r.Sender.Identity)
		}
	}
	sg.members = append(sg.members, ext)
	sg.agree()
	sg.reload()
	sg.talk("after external join")
}

func TestScenario2(t *testing.T)  { runScenario(t, 2) }
func TestScenario10(t *testing.T) { runScenario(t, 10) }
func TestScenario100(t *testing.T) {
	if testing.Short() {
		t.Skip("100 members in -short mode")
	}
	runScenario(t, 100)
}
