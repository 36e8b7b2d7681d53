package mls

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// fuzzIdentity checks what the hooks are given and refuses leaves whose
// identity starts with "x", so that fuzzing reaches both outcomes.
type fuzzIdentity struct{ t *testing.T }

func (f fuzzIdentity) ValidateLeaf(l *LeafInfo) error {
	if l.LeafNode == nil || l.Origin < LeafFromKeyPackage || l.Origin > LeafFromTree || !bytes.Equal(l.SignatureKey, l.LeafNode.SignatureKey) {
		f.t.Fatalf("malformed LeafInfo %+v", l)
	}
	if bytes.HasPrefix(l.Credential.Identity, []byte("x")) {
		return errors.New("x")
	}
	return nil
}

func (f fuzzIdentity) ValidSuccessor(prev Member, next *LeafInfo) error {
	if !bytes.Equal(prev.Identity, next.Credential.Identity) {
		return errors.New("another identity")
	}
	return nil
}

// fuzzInspector refuses commits that remove more than one member.
type fuzzInspector struct{ t *testing.T }

func (f fuzzInspector) InspectCommit(c *StagedCommit) error {
	if c.NewEpoch != c.Epoch+1 || (c.SenderType != SenderMember && c.SenderType != SenderNewMemberCommit) {
		f.t.Fatalf("malformed StagedCommit %+v", c)
	}
	if len(c.Removed) > 1 {
		return errors.New("too many removals")
	}
	return nil
}

func fuzzPolicy(t *testing.T) Policy {
	return Policy{Identity: fuzzIdentity{t}, Proposals: KeepAllProposals, Commits: fuzzInspector{t},
		Lifetimes: &LifetimeRules{ClockSkew: time.Hour, MaxLifetime: 366 * 24 * time.Hour}}
}

// FuzzProcessMessagePolicy is FuzzProcessMessage with every hook of a
// Policy in place: the hooks get well-formed input, and a refusal by the
// library or by a hook leaves the state as it was.
func FuzzProcessMessagePolicy(f *testing.F) {
	state, seeds := fuzzGroupSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		g, err := UnmarshalGroupWithPolicy(state, fuzzPolicy(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.ProcessMessage(msg); err != nil {
			if !typedGroupError(err) {
				t.Fatalf("untyped error: %v", err)
			}
			if after, _ := g.MarshalBinary(); !bytes.Equal(after, state) {
				t.Fatalf("refused message (%v) changed the state", err)
			}
		}
	})
}

// FuzzCheckHPKEPublicKey feeds arbitrary keys to every suite's check,
// seeded with real keys: it must not panic and must fail with
// ErrInvalidKey.
func FuzzCheckHPKEPublicKey(f *testing.F) {
	suites := SupportedSuites()
	for i, cs := range suites {
		s, _ := LookupSuite(cs)
		_, pub, err := s.GenerateKeyPair()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), pub)
		f.Add(uint8(i), make([]byte, len(pub)))
	}
	f.Fuzz(func(t *testing.T, i uint8, pub []byte) {
		s, _ := LookupSuite(suites[int(i)%len(suites)])
		if err := s.CheckHPKEPublicKey(pub); err != nil && !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

// FuzzJoinFromWelcomePolicy feeds arbitrary Welcomes to a joiner whose
// IdentityProvider sees the whole tree: seeded with a Welcome it accepts
// and one whose tree holds a member it refuses.
func FuzzJoinFromWelcomePolicy(f *testing.F) {
	c := scNewClient(f, "joiner")
	kp, priv := scKeyPackage(f, c)
	for _, other := range []string{"member-1", "xeno"} {
		sg := scCreate(f, Config{})
		o := scNewClient(f, other)
		okp, _ := scKeyPackage(f, o)
		res, err := sg.members[0].g.AddMembers([]*KeyPackage{okp, kp}, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(res.Welcome)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := JoinFromWelcome(b, priv, &JoinOptions{Policy: fuzzPolicy(t)})
		if err != nil {
			return
		}
		for _, m := range g.Members() {
			if bytes.HasPrefix(m.Identity, []byte("x")) {
				t.Fatalf("joined a group with refused member %q", m.Identity)
			}
		}
	})
}
