package mls

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// The RFC 9420 checks that keep a hostile member from breaking the group
// for everyone: HPKE keys, credential types, capabilities, GroupContext
// extensions and lifetimes.

// resigned re-signs kp after mutate changed it.
func resigned(t *testing.T, c *scClient, kp *KeyPackage, mutate func(*KeyPackage)) *KeyPackage {
	t.Helper()
	k, err := ParseKeyPackage(kp.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	mutate(k)
	s, _ := LookupSuite(k.CipherSuite)
	if err := k.LeafNode.Sign(s, c.signer.SignaturePriv, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := k.Sign(s, c.signer.SignaturePriv); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestZeroX25519KeyRefused(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 1, false)
	a, b := sg.members[0], sg.members[1]
	d := scNewClient(t, "member-d")
	kp, _ := scKeyPackage(t, d)
	zero := make([]byte, 32)
	for name, mutate := range map[string]func(*KeyPackage){
		"init key":       func(k *KeyPackage) { k.InitKey = bytes.Clone(zero) },
		"encryption key": func(k *KeyPackage) { k.LeafNode.EncryptionKey = bytes.Clone(zero) },
	} {
		bad := resigned(t, d, kp, mutate)
		if err := ValidateKeyPackage(bad, scSuite, time.Now()); !errors.Is(err, ErrInvalidKey) || !errors.Is(err, ErrInvalidKeyPackage) {
			t.Fatalf("%s: ValidateKeyPackage: %v", name, err)
		}
		// A member that proposes it is refused by every other member.
		g := b.g.clone()
		g.proposals = nil
		if _, err := g.propose(Proposal{Type: ProposalAdd, Add: &AddProposal{KeyPackage: *bad}}, nil); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("%s: proposing it: %v", name, err)
		}
		unchangedBy(t, a.g, ErrInvalidKey, func() error {
			_, err := a.g.AddMembers([]*KeyPackage{bad}, nil)
			return err
		})
	}

	// A path with an all-zero parent key.
	s := a.g.suite
	tree := a.g.tree.Clone()
	work := tree.Clone()
	pu, err := work.GeneratePath(s, b.g.self, b.g.tree.LeafNode(b.g.self).Clone(), b.signer.SignaturePriv, a.g.ctx.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	up, err := work.EncryptPath(s, pu, a.g.ctx.Marshal(), nil)
	if err != nil {
		t.Fatal(err)
	}
	up.Nodes[0].EncryptionKey = bytes.Clone(zero)
	if err := tree.MergeUpdatePath(s, b.g.self, up, a.g.ctx.GroupID); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("MergeUpdatePath with a zero parent key: %v", err)
	}
	// And in a tree a joiner receives.
	bad := a.g.tree.Clone()
	bad.LeafNode(b.g.self).EncryptionKey = bytes.Clone(zero)
	if err := bad.verifyHPKEKeys(s); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("tree with a zero leaf key: %v", err)
	}
}

func TestHPKEPublicKeyCheckPerSuite(t *testing.T) {
	for _, cs := range SupportedSuites() {
		s, _ := LookupSuite(cs)
		_, pub, err := s.GenerateKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CheckHPKEPublicKey(pub); err != nil {
			t.Errorf("%v: fresh key refused: %v", cs, err)
		}
		for _, bad := range [][]byte{nil, make([]byte, len(pub)), pub[:len(pub)-1]} {
			if err := s.CheckHPKEPublicKey(bad); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("%v: key %x accepted (%v)", cs, bad, err)
			}
		}
	}
}

// x509Leaf gives a leaf an X.509 credential and lists both types.
func x509Leaf(ln *LeafNode) {
	ln.Credential = Credential{Type: CredentialX509, Certificates: [][]byte{{0x30, 0x00}}}
	ln.Capabilities.Credentials = []CredentialType{CredentialBasic, CredentialX509}
}

func TestUpdatePathCredentialTypeSupportedByAll(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 2, false)
	a, c := sg.members[0], sg.members[2]
	g := c.g.clone()
	x509Leaf(g.tree.LeafNode(g.self))
	// c's own client refuses to make it.
	if _, err := g.SelfUpdate(nil); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("commit with a credential type others do not support: %v", err)
	}
	hostileCommitter = true
	res, err := g.SelfUpdate(nil)
	hostileCommitter = false
	if err != nil {
		t.Fatal(err)
	}
	err = refusedIdentically(t, a.g, res.Message, ErrInvalidCommit)
	if !bytes.Contains([]byte(err.Error()), []byte("credential type")) {
		t.Fatalf("refused for another reason: %v", err)
	}
}

// bothTypesGroup is a group of a and b whose leaves both support the basic
// and the X.509 credential types.
func bothTypesGroup(t *testing.T) (sg *scGroup, a, b *scClient) {
	t.Helper()
	sg = scCreate(t, Config{})
	a = sg.members[0]
	// Every member supports both credential types.
	g := a.g.clone()
	g.tree.LeafNode(g.self).Capabilities.Credentials = []CredentialType{CredentialBasic, CredentialX509}
	res, err := g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	a.g = g
	b = scNewClient(t, "member-1")
	kb, pb := scKeyPackage(t, b)
	kb = resigned(t, b, kb, func(k *KeyPackage) {
		k.LeafNode.Capabilities.Credentials = []CredentialType{CredentialBasic, CredentialX509}
	})
	pb.KeyPackage = *kb
	res, err = a.g.AddMembers([]*KeyPackage{kb}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(a, res)
	if b.g, err = JoinFromWelcome(res.Welcome, pb, nil); err != nil {
		t.Fatal(err)
	}
	sg.members = append(sg.members, b)
	return sg, a, b
}

func TestCredentialTypesAcrossAddsOfOneCommit(t *testing.T) {
	_, a, b := bothTypesGroup(t)
	x, y := scNewClient(t, "x"), scNewClient(t, "y")
	kx, _ := scKeyPackage(t, x)
	ky, _ := scKeyPackage(t, y)
	kx = resigned(t, x, kx, func(k *KeyPackage) { x509Leaf(&k.LeafNode) }) // supports both, uses X.509
	// Each alone fits the group; together y does not support x's type.
	unchangedBy(t, a.g, ErrInvalidCommit, func() error {
		_, err := a.g.AddMembers([]*KeyPackage{kx, ky}, nil)
		return err
	})
	hostileCommitter = true
	res, err := a.g.AddMembers([]*KeyPackage{kx, ky}, nil)
	hostileCommitter = false
	if err != nil {
		t.Fatal(err)
	}
	err = refusedIdentically(t, b.g, res.Message, ErrInvalidCommit)
	if !bytes.Contains([]byte(err.Error()), []byte("credential type")) {
		t.Fatalf("refused for another reason: %v", err)
	}
	if err := a.g.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.g.AddMembers([]*KeyPackage{kx}, nil); err != nil {
		t.Fatalf("the X.509 member alone: %v", err)
	}
}

// tamperedWelcome has a (a hostile committer) add a new client while its
// GroupContext extensions are exts, which it never proposed: the Welcome's
// GroupInfo carries them.
func tamperedWelcome(t *testing.T, a *scClient, exts []Extension, types ...ExtensionType) ([]byte, *KeyPackagePrivate) {
	t.Helper()
	g := a.g.clone()
	g.ctx.Extensions = exts
	j := scNewClient(t, "joiner")
	kp, priv, err := GenerateKeyPackage(scSuite, j.signer, &KeyPackageParams{ExtensionTypes: append([]ExtensionType{scNameExt}, types...)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.AddMembers([]*KeyPackage{kp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Welcome, priv
}

func TestJoinChecksEveryLeafAndTheGroupContext(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 1, false)
	a := sg.members[0]
	// A required extension that member-1 does not support.
	const other ExtensionType = 0xff07
	rc := Extension{Type: ExtensionRequiredCapabilities, Data: appendUint16List(appendUint16List(appendUint16List(nil, []ExtensionType{other}), []ProposalType{}), []CredentialType{})}
	exts := append(a.g.Extensions(), rc)
	w, priv := tamperedWelcome(t, a, exts, other)
	if _, err := JoinFromWelcome(w, priv, nil); !errors.Is(err, ErrInvalidTree) || !bytes.Contains([]byte(err.Error()), []byte("required extension")) {
		t.Fatalf("join into a group whose other members lack a required extension: %v", err)
	}
	// GroupContext extensions that do not decode.
	exts = append(a.g.Extensions(), Extension{Type: ExtensionExternalSenders, Data: []byte{1, 2, 3}})
	w, priv = tamperedWelcome(t, a, exts)
	if _, err := JoinFromWelcome(w, priv, nil); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("join with a malformed external_senders: %v", err)
	}
}

func TestGroupContextExtensionsSkipRemovedMembers(t *testing.T) {
	const t2 ExtensionType = 0xff01
	a := scNewClient(t, "member-0")
	g, err := CreateGroup(scSuite, nil, a.signer, &CreateOptions{Extensions: []Extension{{Type: scNameExt, Data: []byte("friends")}},
		ExtensionTypes: []ExtensionType{t2}})
	if err != nil {
		t.Fatal(err)
	}
	a.g = g
	sg := &scGroup{t: t, members: []*scClient{a}, next: 1}
	b, c := scNewClient(t, "member-1"), scNewClient(t, "member-2")
	kb, pb, err := GenerateKeyPackage(scSuite, b.signer, &KeyPackageParams{ExtensionTypes: []ExtensionType{scNameExt, t2}})
	if err != nil {
		t.Fatal(err)
	}
	kc, pc := scKeyPackage(t, c) // no t2
	res, err := a.g.AddMembers([]*KeyPackage{kb, kc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(a, res)
	for i, cl := range []*scClient{b, c} {
		if cl.g, err = JoinFromWelcome(res.Welcome, []*KeyPackagePrivate{pb, pc}[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	sg.members = append(sg.members, b, c)
	exts := append(a.g.Extensions(), Extension{Type: t2, Data: []byte("x")})
	if _, err := a.g.UpdateGroupContextExtensions(exts, nil); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("extension c does not support: %v", err)
	}
	// Removing c in the same commit makes it valid, for the committer and
	// for the receivers.
	res, err = a.g.UpdateGroupContextExtensions(exts, &CommitOptions{Proposals: []Proposal{{Type: ProposalRemove, Remove: &RemoveProposal{Removed: c.g.OwnLeaf()}}}})
	if err != nil {
		t.Fatalf("with c removed: %v", err)
	}
	sg.commitFrom(a, res)
	sg.members = sg.members[:2]
	sg.agree()
}

func TestReceivedKeyPackageLifetime(t *testing.T) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 1, false)
	a, b := sg.members[0], sg.members[1]
	d := scNewClient(t, "member-d")
	now := time.Now()
	// Default lifetime (90 days), not_before 30 minutes from now.
	kp, _, err := GenerateKeyPackage(scSuite, d.signer, &KeyPackageParams{ExtensionTypes: []ExtensionType{scNameExt}, Now: now.Add(90 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	bg := b.g.clone()
	bg.SetPolicy(Policy{Lifetimes: &LifetimeRules{ClockSkew: time.Hour}})
	msg, err := bg.ProposeAdd(kp)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	for _, tc := range []struct {
		name  string
		rules *LifetimeRules
		ok    bool
	}{
		{"no rules: not checked", nil, true},
		{"no skew", &LifetimeRules{Now: clock}, false},
		{"an hour of skew", &LifetimeRules{Now: clock, ClockSkew: time.Hour}, true},
		{"at most 30 days", &LifetimeRules{Now: clock, ClockSkew: time.Hour, MaxLifetime: 30 * 24 * time.Hour}, false},
		{"at most 100 days", &LifetimeRules{Now: clock, ClockSkew: time.Hour, MaxLifetime: 100 * 24 * time.Hour}, true},
	} {
		g := a.g.clone()
		g.SetPolicy(Policy{Lifetimes: tc.rules})
		if tc.ok {
			if _, err := g.ProcessMessage(msg); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		before, _ := g.MarshalBinary()
		if _, err := g.ProcessMessage(msg); !errors.Is(err, ErrInvalidKeyPackage) {
			t.Errorf("%s: got %v", tc.name, err)
		}
		if after, _ := g.MarshalBinary(); !bytes.Equal(before, after) {
			t.Errorf("%s: refusal changed the group", tc.name)
		}
	}
}

// TestPathLeafSupportsOtherMembersCredentialTypes: a committer's new path
// leaf must support the credential types other members use, not only its
// own, and stops needing one when its last member has left. (Receivers
// look only at the leaves a commit changes when they can; these are the
// cases where they cannot.)
func TestPathLeafSupportsOtherMembersCredentialTypes(t *testing.T) {
	sg, a, b := bothTypesGroup(t)
	x := scNewClient(t, "x")
	kx, _ := scKeyPackage(t, x)
	kx = resigned(t, x, kx, func(k *KeyPackage) { x509Leaf(&k.LeafNode) })
	res, err := a.g.AddMembers([]*KeyPackage{kx}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(a, res)
	xLeaf := res.Added[0]
	// b keeps its basic credential but drops X.509, which x uses.
	basicOnly := func() *Group {
		g := b.g.clone()
		g.tree.LeafNode(g.self).Capabilities.Credentials = []CredentialType{CredentialBasic}
		return g
	}
	g := basicOnly()
	if _, err := g.SelfUpdate(nil); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("path leaf without the X.509 type in use: %v", err)
	}
	hostileCommitter = true
	res, err = basicOnly().SelfUpdate(nil)
	hostileCommitter = false
	if err != nil {
		t.Fatal(err)
	}
	err = refusedIdentically(t, a.g, res.Message, ErrInvalidCommit)
	if !bytes.Contains([]byte(err.Error()), []byte("credential type")) {
		t.Fatalf("refused for another reason: %v", err)
	}
	// Once x is gone X.509 is no longer in use: the same leaf fits, though
	// it supports fewer types than a.
	res, err = a.g.RemoveMembers([]LeafIndex{xLeaf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.commitFrom(a, res)
	g = basicOnly()
	res, err = g.SelfUpdate(nil)
	if err != nil {
		t.Fatalf("path leaf without X.509 after x left: %v", err)
	}
	if _, err := a.g.ProcessMessage(res.Message); err != nil {
		t.Fatalf("receiver: %v", err)
	}
}
