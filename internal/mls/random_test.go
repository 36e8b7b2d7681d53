package mls

import (
	"bytes"
	"crypto/rand"
	"errors"
	mathrand "math/rand/v2"
	"testing"
	"time"
)

// randTestFixed makes randSource a fixed stream for the rest of the test.
func randTestFixed(t *testing.T, seed byte) {
	t.Helper()
	old := randSource
	t.Cleanup(func() { randSource = old })
	randSource = mathrand.NewChaCha8([32]byte{seed})
}

// randTestFailing makes randSource fail for the rest of the test.
func randTestFailing(t *testing.T) {
	t.Helper()
	old := randSource
	t.Cleanup(func() { randSource = old })
	randSource = randTestBrokenReader{}
}

var errRandTestBroken = errors.New("randomness source broken")

type randTestBrokenReader struct{}

func (randTestBrokenReader) Read([]byte) (int, error) { return 0, errRandTestBroken }

// randTestRun draws, through the public API, everything a client makes at
// random in a suite-1 group: a signature key, a KeyPackage, a group ID and
// init secret, an UpdatePath with a new leaf key, and a reuse guard. With
// one member the commit encrypts nothing, so no randomness is drawn inside
// crypto/hpke, and Ed25519 signatures are deterministic.
func randTestRun(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	signer, err := NewSigner(scSuite, []byte("rand"))
	if err != nil {
		t.Fatal(err)
	}
	out["signature key"] = signer.SignaturePub
	kp, _, err := GenerateKeyPackage(scSuite, signer, &KeyPackageParams{})
	if err != nil {
		t.Fatal(err)
	}
	out["KeyPackage init key"] = kp.InitKey
	out["KeyPackage encryption key"] = kp.LeafNode.EncryptionKey
	g, err := CreateGroup(scSuite, nil, signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	out["group ID"] = g.GroupID()
	out["first epoch authenticator"] = g.EpochAuthenticator()
	res, err := g.SelfUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	out["commit"] = res.Message
	if _, err := g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	out["second epoch authenticator"] = g.EpochAuthenticator()
	msg, err := g.Protect([]byte("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	out["PrivateMessage"] = msg
	// Every suite's key generation.
	for _, id := range SupportedSuites() {
		s, err := LookupSuite(id)
		if err != nil {
			t.Fatal(err)
		}
		_, pub, err := s.GenerateKeyPair()
		if err != nil {
			t.Fatalf("%v GenerateKeyPair: %v", id, err)
		}
		out[id.String()+" HPKE key"] = pub
		_, pub, err = s.GenerateSignatureKey()
		if err != nil {
			t.Fatalf("%v GenerateSignatureKey: %v", id, err)
		}
		out[id.String()+" signature key"] = pub
	}
	// X448 HPKE encapsulates with circl, which takes the package source.
	s, err := LookupSuite(MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448)
	if err != nil {
		t.Fatal(err)
	}
	_, pub, err := s.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	enc, _, err := s.HPKESeal(pub, nil, nil, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	out["X448 kem output"] = enc
	return out
}

// TestRandomSourceFixed shows that the package draws its randomness from
// randSource: two runs on the same fixed stream agree on every random
// value, and runs on crypto/rand (the default) differ from them.
func TestRandomSourceFixed(t *testing.T) {
	if defaultRandSourceForTest != rand.Reader {
		t.Fatal("the package does not start on crypto/rand")
	}
	// CreateGroup stamps its leaf's lifetime with the wall clock in whole
	// seconds, so the two runs on one stream must fall in the same second.
	var first, second map[string][]byte
	for try := 0; ; try++ {
		start := time.Now().Unix()
		randTestFixed(t, 7)
		first = randTestRun(t)
		randTestFixed(t, 7)
		second = randTestRun(t)
		if time.Now().Unix() == start || try == 4 {
			break
		}
	}
	randTestFixed(t, 8)
	otherSeed := randTestRun(t)
	for name, v := range first {
		if len(v) == 0 {
			t.Fatalf("%s: empty", name)
		}
		if !bytes.Equal(v, second[name]) {
			t.Errorf("%s differs on the same fixed stream", name)
		}
		if bytes.Equal(v, otherSeed[name]) {
			t.Errorf("%s is the same on another fixed stream", name)
		}
	}
	randSource = defaultRandSourceForTest
	fresh := randTestRun(t)
	for name, v := range first {
		if bytes.Equal(v, fresh[name]) {
			t.Errorf("%s: crypto/rand gave the fixed value", name)
		}
	}
}

// TestRandomSourceFailure checks that a failing randomness source gives
// errors, never a panic or a silent zero value, and leaves a group as it
// was.
func TestRandomSourceFailure(t *testing.T) {
	signer, err := NewSigner(scSuite, []byte("rand"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := CreateGroup(scSuite, []byte("group"), signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	epoch, auth := g.Epoch(), g.EpochAuthenticator()

	randTestFailing(t)
	for _, id := range SupportedSuites() {
		s, err := LookupSuite(id)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.GenerateKeyPair(); !errors.Is(err, errRandTestBroken) {
			t.Errorf("%v GenerateKeyPair: got %v", id, err)
		}
		if _, _, err := s.GenerateSignatureKey(); !errors.Is(err, errRandTestBroken) {
			t.Errorf("%v GenerateSignatureKey: got %v", id, err)
		}
	}
	if _, err := NewSigner(scSuite, []byte("x")); !errors.Is(err, errRandTestBroken) {
		t.Errorf("NewSigner: got %v", err)
	}
	if _, _, err := GenerateKeyPackage(scSuite, signer, nil); !errors.Is(err, errRandTestBroken) {
		t.Errorf("GenerateKeyPackage: got %v", err)
	}
	if _, err := CreateGroup(scSuite, nil, signer, nil); !errors.Is(err, errRandTestBroken) {
		t.Errorf("CreateGroup: got %v", err)
	}
	if _, err := g.SelfUpdate(nil); !errors.Is(err, errRandTestBroken) {
		t.Errorf("SelfUpdate: got %v", err)
	}
	if _, err := g.Protect([]byte("hello"), nil); !errors.Is(err, errRandTestBroken) {
		t.Errorf("Protect: got %v", err)
	}
	if g.HasPendingCommit() || g.Epoch() != epoch || !bytes.Equal(g.EpochAuthenticator(), auth) {
		t.Fatal("the group changed after failed draws")
	}

	// With the source back, the same calls succeed.
	randSource = defaultRandSourceForTest
	if _, err := g.Protect([]byte("hello"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := g.SelfUpdate(nil); err != nil {
		t.Fatal(err)
	}
}

// defaultRandSourceForTest is randSource as the package starts.
var defaultRandSourceForTest = randSource
