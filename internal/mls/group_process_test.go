package mls

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzGroupSeeds builds a live three-member group as seen by its second
// member, and real messages for it: application data, proposals and
// commits, as PrivateMessage and PublicMessage.
func fuzzGroupSeeds(t testing.TB) (state []byte, seeds [][]byte) {
	sg := scCreate(t, Config{})
	sg.add(sg.members[0], 2, false)
	a, b, c := sg.members[0], sg.members[1], sg.members[2]
	for i := 0; i < 3; i++ {
		m, err := a.g.Protect([]byte("hello"), []byte("ad"))
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, m)
	}
	m, err := c.g.Protect([]byte("from c"), nil)
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, m)
	p, err := a.g.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, p)
	if p, err = c.g.ProposeRemove(a.g.OwnLeaf()); err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, p)
	res, err := a.g.SelfUpdate(&CommitOptions{SkipPending: true})
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, res.Message, res.Welcome, res.GroupInfo)
	if err := a.g.DiscardPendingCommit(); err != nil {
		t.Fatal(err)
	}
	a.g.config.PublicHandshake = true
	if res, err = a.g.SelfUpdate(&CommitOptions{SkipPending: true}); err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, res.Message)
	if p, err = a.g.ProposeUpdate(); err == nil {
		t.Fatal("proposal while a commit is pending")
	}
	_ = a.g.DiscardPendingCommit()
	if p, err = a.g.ProposeRemove(c.g.OwnLeaf()); err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, p)
	if state, err = b.g.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
	return state, seeds
}

// typedGroupError reports whether err matches one of the sentinels a
// caller of ProcessMessage branches on.
func typedGroupError(err error) bool {
	for _, e := range []error{ErrDecode, ErrInvalidMessage, ErrInvalidCommit, ErrInvalidProposal, ErrWrongEpoch,
		ErrWrongGroup, ErrEpochTooOld, ErrNotMember, ErrUnknownPSK, ErrProposalRefused, ErrCredentialRefused, ErrCommitRefused} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzProcessMessage feeds arbitrary bytes to a live group: it must never
// panic, and a message it refuses must leave the state byte for byte as it
// was.
func FuzzProcessMessage(f *testing.F) {
	state, seeds := fuzzGroupSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0, 2})
	f.Fuzz(func(t *testing.T, msg []byte) {
		g, err := UnmarshalGroup(state)
		if err != nil {
			t.Fatal(err)
		}
		h, perr := PeekMessage(msg)
		if _, err := g.ProcessMessage(msg); err == nil {
			if perr != nil || !bytes.Equal(h.GroupID, g.GroupID()) {
				t.Fatalf("accepted message has header %+v (%v)", h, perr)
			}
		} else {
			if !typedGroupError(err) {
				t.Fatalf("untyped error: %v", err)
			}
			after, err2 := g.MarshalBinary()
			if err2 != nil {
				t.Fatal(err2)
			}
			if !bytes.Equal(after, state) {
				t.Fatalf("refused message (%v) changed the state", err)
			}
		}
	})
}

func TestProcessMessageErrorsKeepState(t *testing.T) {
	state, seeds := fuzzGroupSeeds(t)
	accepted := 0
	for i, s := range seeds {
		// Every single-byte change of every real message is refused
		// without a trace, or accepted (a change in a clear field the
		// message does not authenticate cannot happen in MLS).
		for j := 0; j < len(s); j += max(1, len(s)/64) {
			g, err := UnmarshalGroup(state)
			if err != nil {
				t.Fatal(err)
			}
			bad := bytes.Clone(s)
			bad[j] ^= 0x40
			if _, err := g.ProcessMessage(bad); err == nil {
				t.Fatalf("seed %d with byte %d changed was accepted", i, j)
			} else if !typedGroupError(err) {
				t.Fatalf("seed %d byte %d: untyped error: %v", i, j, err)
			}
			after, _ := g.MarshalBinary()
			if !bytes.Equal(after, state) {
				t.Fatalf("seed %d byte %d: refused message changed the state", i, j)
			}
		}
		g, _ := UnmarshalGroup(state)
		if _, err := g.ProcessMessage(s); err == nil {
			accepted++
		}
	}
	if accepted < 6 {
		t.Fatalf("only %d of the real messages were accepted", accepted)
	}
}

func TestProcessMessageWrongGroupAndKinds(t *testing.T) {
	_, a, b, _ := scThree(t, Config{})
	other := scCreate(t, Config{})
	m, err := other.members[0].g.Protect([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.g.ProcessMessage(m); !errors.Is(err, ErrWrongGroup) {
		t.Fatalf("message of another group: %v", err)
	}
	kp, _ := scKeyPackage(t, b)
	kpMsg := (&MLSMessage{Version: MLS10, WireFormat: WireFormatKeyPackage, KeyPackage: kp}).Marshal()
	if _, err := a.g.ProcessMessage(kpMsg); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("KeyPackage as a group message: %v", err)
	}
	if _, err := a.g.ProcessMessage([]byte{1, 2, 3}); !errors.Is(err, ErrDecode) {
		t.Fatalf("garbage: %v", err)
	}
}

// FuzzUnmarshalGroup checks the state decoder on arbitrary bytes.
func FuzzUnmarshalGroup(f *testing.F) {
	state, _ := fuzzGroupSeeds(f)
	f.Add(state)
	f.Add(state[:len(state)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := UnmarshalGroup(b)
		if err != nil {
			return
		}
		out, err := g.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		g2, err := UnmarshalGroup(out)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		out2, _ := g2.MarshalBinary()
		if !bytes.Equal(out, out2) {
			t.Fatal("state encoding is not stable")
		}
	})
}

// FuzzUnmarshalKeyPackagePrivate checks the KeyPackagePrivate decoder.
func FuzzUnmarshalKeyPackagePrivate(f *testing.F) {
	_, priv := scKeyPackage(f, scNewClient(f, "fuzz"))
	b, _ := priv.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := UnmarshalKeyPackagePrivate(b)
		if err != nil {
			return
		}
		out, _ := p.MarshalBinary()
		if _, err := UnmarshalKeyPackagePrivate(out); err != nil {
			t.Fatalf("re-encoded KeyPackagePrivate does not decode: %v", err)
		}
	})
}

// FuzzJoinFromWelcome feeds arbitrary Welcomes to a client.
func FuzzJoinFromWelcome(f *testing.F) {
	sg := scCreate(f, Config{})
	c := scNewClient(f, "joiner")
	kp, priv := scKeyPackage(f, c)
	res, err := sg.members[0].g.AddMembers([]*KeyPackage{kp}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(res.Welcome)
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := JoinFromWelcome(b, priv, nil)
		if err == nil && g.Epoch() != 1 {
			t.Fatalf("joined at epoch %d", g.Epoch())
		}
	})
}

func TestRemovedMemberReadsLateMessages(t *testing.T) {
	sg, a, b, c := scThree(t, Config{})
	late, err := b.g.Protect([]byte("before the removal"), nil)
	if err != nil {
		t.Fatal(err)
	}
	sg.remove(a, c)
	r, err := c.g.ProcessMessage(late)
	if err != nil || string(r.Plaintext) != "before the removal" {
		t.Fatalf("removed member reading a late message: %v", err)
	}
	after, err := b.g.Protect([]byte("after"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.g.ProcessMessage(after); err == nil {
		t.Fatal("removed member read a message of the next epoch")
	}
	// The state of a removed member survives storage.
	st, _ := c.g.MarshalBinary()
	g, err := UnmarshalGroup(st)
	if err != nil {
		t.Fatal(err)
	}
	if g.Active() {
		t.Fatal("restored removed member is active")
	}
	// With no past epochs kept, a late message is lost.
	sg2, a2, b2, _ := scThree(t, Config{MaxPastEpochs: -1})
	late, _ = b2.g.Protect([]byte("late"), nil)
	res, err := a2.g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg2.commitFrom(a2, res)
	if _, err := a2.g.ProcessMessage(late); !errors.Is(err, ErrEpochTooOld) {
		t.Fatalf("late message without past epochs: %v", err)
	}
}

func TestGroupPadding(t *testing.T) {
	sg, a, b, _ := scThree(t, Config{PaddingBlock: 256})
	var lens []int
	for _, n := range []int{1, 10, 100} {
		m, err := a.g.Protect(make([]byte, n), nil)
		if err != nil {
			t.Fatal(err)
		}
		lens = append(lens, len(m))
		r, err := b.g.ProcessMessage(m)
		if err != nil || len(r.Plaintext) != n {
			t.Fatalf("padded message: %v", err)
		}
	}
	if lens[0] != lens[1] || lens[1] != lens[2] {
		t.Fatalf("padded lengths differ: %v", lens)
	}
	_ = sg
}

// FuzzJoinExternal feeds arbitrary GroupInfos to an external joiner.
func FuzzJoinExternal(f *testing.F) {
	sg := scCreate(f, Config{})
	gi, err := sg.members[0].g.GroupInfo()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(gi)
	c := scNewClient(f, "outsider")
	f.Fuzz(func(t *testing.T, b []byte) {
		g, msg, err := JoinExternal(b, c.signer, nil)
		if err == nil && (g.Epoch() == 0 || len(msg) == 0) {
			t.Fatalf("joined at epoch %d", g.Epoch())
		}
	})
}
