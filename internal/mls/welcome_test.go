package mls

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
)

type welcomeCase struct {
	CipherSuite CipherSuite `json:"cipher_suite"`
	InitPriv    hexBytes    `json:"init_priv"`
	SignerPub   hexBytes    `json:"signer_pub"`
	KeyPackage  hexBytes    `json:"key_package"`
	Welcome     hexBytes    `json:"welcome"`
}

// welcomeJoin runs the cryptographic part of joining from w: it opens the
// GroupSecrets for kp, the GroupInfo, verifies the GroupInfo signature with
// signerPub and recomputes the confirmation tag from the key schedule.
func welcomeJoin(t *testing.T, s Suite, w *Welcome, kp *KeyPackage, initPriv, signerPub []byte) (*GroupSecrets, *GroupInfo) {
	t.Helper()
	gs, err := w.DecryptGroupSecrets(s, kp, initPriv)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs.PSKs) != 0 {
		t.Fatalf("GroupSecrets names %d PSKs, the vector has none", len(gs.PSKs))
	}
	gi, err := w.DecryptGroupInfo(s, gs.JoinerSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	if gi.GroupContext.CipherSuite != s.ID() {
		t.Fatalf("GroupInfo cipher suite %v", gi.GroupContext.CipherSuite)
	}
	if err := gi.VerifySignature(s, signerPub); err != nil {
		t.Fatal(err)
	}
	es, err := DeriveEpochSecrets(s, gs.JoinerSecret, nil, gi.GroupContext.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := gi.VerifyConfirmationTag(s, es.ConfirmationKey); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ConfirmationTag(s, es.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash), gi.ConfirmationTag) {
		t.Fatal("recomputed confirmation tag differs")
	}
	return gs, gi
}

func TestVectorsWelcome(t *testing.T) {
	runVectors(t, "welcome.json", func(t *testing.T, tc *welcomeCase) {
		s, err := LookupSuite(tc.CipherSuite)
		if err != nil {
			t.Skipf("suite %v: %v", tc.CipherSuite, err)
		}
		km, err := ParseMLSMessage(tc.KeyPackage)
		if err != nil {
			t.Fatal(err)
		}
		wm, err := ParseMLSMessage(tc.Welcome)
		if err != nil {
			t.Fatal(err)
		}
		if km.WireFormat != WireFormatKeyPackage || wm.WireFormat != WireFormatWelcome {
			t.Fatalf("wire formats %v, %v", km.WireFormat, wm.WireFormat)
		}
		kp, w := km.KeyPackage, wm.Welcome
		// The vectors carry no clock, so the lifetime is not checked.
		if err := ValidateKeyPackage(kp, tc.CipherSuite, time.Time{}); err != nil {
			t.Fatalf("ValidateKeyPackage: %v", err)
		}
		if err := kp.VerifySignature(s); err != nil {
			t.Fatal(err)
		}
		if err := kp.LeafNode.VerifySignature(s, nil, 0); err != nil {
			t.Fatal(err)
		}
		if w.Find(kp.Ref(s)) == nil {
			t.Fatal("no Welcome entry for the KeyPackage ref")
		}
		gs, gi := welcomeJoin(t, s, w, kp, tc.InitPriv, tc.SignerPub)

		// A tampered GroupInfo signature does not verify.
		bad := *gi
		bad.Signer++
		if err := bad.VerifySignature(s, tc.SignerPub); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("changed signer: got %v, want ErrInvalidSignature", err)
		}
		// Another init key cannot open the secrets.
		otherPriv, _, err := s.GenerateKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.DecryptGroupSecrets(s, kp, otherPriv); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("wrong init key: got %v, want ErrDecrypt", err)
		}
		// A Welcome without our entry is refused.
		none := *w
		none.Secrets = nil
		if _, err := none.DecryptGroupSecrets(s, kp, tc.InitPriv); !errors.Is(err, ErrInvalidMessage) {
			t.Fatalf("no entry: got %v, want ErrInvalidMessage", err)
		}
		// The wrong joiner secret cannot open the GroupInfo.
		if _, err := w.DecryptGroupInfo(s, make([]byte, len(gs.JoinerSecret)), nil); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("wrong joiner secret: got %v, want ErrDecrypt", err)
		}

		// Our own Welcome of the same GroupInfo, through the wire encoding.
		var path []byte
		if gs.PathSecret != nil {
			path = gs.PathSecret.PathSecret
		}
		own, err := NewWelcome(s, gi, gs.JoinerSecret, nil, nil, []WelcomeRecipient{{KeyPackage: kp, PathSecret: path}})
		if err != nil {
			t.Fatal(err)
		}
		raw := (&MLSMessage{Version: MLS10, WireFormat: WireFormatWelcome, Welcome: own}).Marshal()
		back, err := ParseMLSMessage(raw)
		if err != nil {
			t.Fatal(err)
		}
		gs2, gi2 := welcomeJoin(t, s, back.Welcome, kp, tc.InitPriv, tc.SignerPub)
		if !bytes.Equal(gs2.Marshal(), gs.Marshal()) || !bytes.Equal(gi2.Marshal(), gi.Marshal()) {
			t.Fatal("own Welcome carries different secrets or GroupInfo")
		}
	})
}

// TestValidateKeyPackageWelcomeSuite7 validates the KeyPackage of the
// welcome.json case for suite 7, whose capabilities do not list suite 7:
// RFC 9420 does not require a KeyPackage to list its own cipher suite.
func TestValidateKeyPackageWelcomeSuite7(t *testing.T) {
	const cs = MLS_256_DHKEMP384_AES256GCM_SHA384_P384
	found := false
	runVectors(t, "welcome.json", func(t *testing.T, tc *welcomeCase) {
		if tc.CipherSuite != cs {
			t.Skip("another suite")
		}
		found = true
		m, err := ParseMLSMessage(tc.KeyPackage)
		if err != nil {
			t.Fatal(err)
		}
		if m.WireFormat != WireFormatKeyPackage {
			t.Fatalf("wire format %v", m.WireFormat)
		}
		kp := m.KeyPackage
		if slices.Contains(kp.LeafNode.Capabilities.CipherSuites, cs) {
			t.Fatalf("capabilities list %v; the case no longer covers an unlisted suite", cs)
		}
		if err := ValidateKeyPackage(kp, cs, time.Time{}); err != nil {
			t.Fatalf("ValidateKeyPackage: %v", err)
		}
		// The same KeyPackage is refused for a group of another suite.
		if err := ValidateKeyPackage(kp, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, time.Time{}); !errors.Is(err, ErrInvalidKeyPackage) {
			t.Fatalf("other suite: got %v, want ErrInvalidKeyPackage", err)
		}
	})
	if !found {
		t.Fatalf("welcome.json has no case for %v", cs)
	}
}
