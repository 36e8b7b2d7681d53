package mls

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// passiveClientVector is one case of the passive-client-*.json vectors: join
// through a Welcome, then follow the group's commits as a passive member.
type passiveClientVector struct {
	CipherSuite  uint16 `json:"cipher_suite"`
	ExternalPSKs []struct {
		PSKID hexBytes `json:"psk_id"`
		PSK   hexBytes `json:"psk"`
	} `json:"external_psks"`
	KeyPackage                hexBytes `json:"key_package"`
	SignaturePriv             hexBytes `json:"signature_priv"`
	EncryptionPriv            hexBytes `json:"encryption_priv"`
	InitPriv                  hexBytes `json:"init_priv"`
	Welcome                   hexBytes `json:"welcome"`
	RatchetTree               hexBytes `json:"ratchet_tree"`
	InitialEpochAuthenticator hexBytes `json:"initial_epoch_authenticator"`
	Epochs                    []struct {
		Proposals          []hexBytes `json:"proposals"`
		Commit             hexBytes   `json:"commit"`
		EpochAuthenticator hexBytes   `json:"epoch_authenticator"`
	} `json:"epochs"`
}

func runPassiveClient(t *testing.T, tc *passiveClientVector) {
	if _, err := LookupSuite(CipherSuite(tc.CipherSuite)); err != nil {
		t.Skipf("cipher suite %d: %v", tc.CipherSuite, err)
	}
	m, err := ParseMLSMessage(tc.KeyPackage)
	if err != nil || m.WireFormat != WireFormatKeyPackage {
		t.Fatalf("key_package: %v", err)
	}
	if err := ValidateKeyPackage(m.KeyPackage, CipherSuite(tc.CipherSuite), time.Time{}); err != nil {
		t.Fatalf("ValidateKeyPackage: %v", err)
	}
	kp := &KeyPackagePrivate{
		KeyPackage:     *m.KeyPackage,
		InitPriv:       tc.InitPriv,
		EncryptionPriv: tc.EncryptionPriv,
		SignaturePriv:  tc.SignaturePriv,
	}
	opts := &JoinOptions{RatchetTree: tc.RatchetTree}
	for _, p := range tc.ExternalPSKs {
		opts.PSKs = append(opts.PSKs, PSK{ID: p.PSKID, Secret: p.PSK})
	}
	g, err := JoinFromWelcome(tc.Welcome, kp, opts)
	if err != nil {
		t.Fatalf("JoinFromWelcome: %v", err)
	}
	if !bytes.Equal(g.EpochAuthenticator(), tc.InitialEpochAuthenticator) {
		t.Fatalf("initial epoch authenticator %x, want %x", g.EpochAuthenticator(), tc.InitialEpochAuthenticator)
	}
	for i, ep := range tc.Epochs {
		for j, p := range ep.Proposals {
			r, err := g.ProcessMessage(p)
			if err != nil {
				t.Fatalf("epoch %d proposal %d: %v", i, j, err)
			}
			if r.Kind != KindProposal {
				t.Fatalf("epoch %d proposal %d: processed as %v", i, j, r.Kind)
			}
		}
		before := g.Epoch()
		r, err := g.ProcessMessage(ep.Commit)
		if err != nil {
			t.Fatalf("epoch %d commit: %v", i, err)
		}
		if r.Kind != KindCommit || g.Epoch() != before+1 {
			t.Fatalf("epoch %d commit: kind %v, epoch %d -> %d", i, r.Kind, before, g.Epoch())
		}
		if !bytes.Equal(g.EpochAuthenticator(), ep.EpochAuthenticator) {
			t.Fatalf("epoch %d: epoch authenticator %x, want %x", i, g.EpochAuthenticator(), ep.EpochAuthenticator)
		}
		// The same commit again is for an old epoch now.
		if _, err := g.ProcessMessage(ep.Commit); !errors.Is(err, ErrWrongEpoch) {
			t.Fatalf("epoch %d: replayed commit: %v, want ErrWrongEpoch", i, err)
		}
	}
	// The state survives a round trip through its stored form.
	b, err := g.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	g2, err := UnmarshalGroup(b)
	if err != nil {
		t.Fatalf("UnmarshalGroup: %v", err)
	}
	b2, err := g2.MarshalBinary()
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("state round trip differs (%v)", err)
	}
}

func TestVectorsPassiveClientWelcome(t *testing.T) {
	runVectors(t, "passive-client-welcome.json", runPassiveClient)
}

func TestVectorsPassiveClientHandlingCommit(t *testing.T) {
	runVectors(t, "passive-client-handling-commit.json", runPassiveClient)
}

func TestVectorsPassiveClientRandom(t *testing.T) {
	runVectors(t, "passive-client-random.json", runPassiveClient)
}

// TestVectorsPassiveClientExtra runs every *.json file in the folder named
// by MLS_EXTRA_VECTORS as passive-client vectors (for example vectors made
// by other implementations), one summary line per file.
func TestVectorsPassiveClientExtra(t *testing.T) {
	dir := os.Getenv("MLS_EXTRA_VECTORS")
	if dir == "" {
		t.Skip("MLS_EXTRA_VECTORS is not set")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("MLS_EXTRA_VECTORS=%s holds no *.json files", dir)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			runVectorsFrom(t, f, runPassiveClient)
		})
	}
}
