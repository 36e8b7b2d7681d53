package mls

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

type cryptoBasicsVector struct {
	CipherSuite CipherSuite `json:"cipher_suite"`
	RefHash     struct {
		Label string   `json:"label"`
		Value hexBytes `json:"value"`
		Out   hexBytes `json:"out"`
	} `json:"ref_hash"`
	ExpandWithLabel struct {
		Secret  hexBytes `json:"secret"`
		Label   string   `json:"label"`
		Context hexBytes `json:"context"`
		Length  int      `json:"length"`
		Out     hexBytes `json:"out"`
	} `json:"expand_with_label"`
	DeriveSecret struct {
		Secret hexBytes `json:"secret"`
		Label  string   `json:"label"`
		Out    hexBytes `json:"out"`
	} `json:"derive_secret"`
	DeriveTreeSecret struct {
		Secret     hexBytes `json:"secret"`
		Label      string   `json:"label"`
		Generation uint32   `json:"generation"`
		Length     int      `json:"length"`
		Out        hexBytes `json:"out"`
	} `json:"derive_tree_secret"`
	SignWithLabel struct {
		Priv      hexBytes `json:"priv"`
		Pub       hexBytes `json:"pub"`
		Content   hexBytes `json:"content"`
		Label     string   `json:"label"`
		Signature hexBytes `json:"signature"`
	} `json:"sign_with_label"`
	EncryptWithLabel struct {
		Priv       hexBytes `json:"priv"`
		Pub        hexBytes `json:"pub"`
		Label      string   `json:"label"`
		Context    hexBytes `json:"context"`
		Plaintext  hexBytes `json:"plaintext"`
		KEMOutput  hexBytes `json:"kem_output"`
		Ciphertext hexBytes `json:"ciphertext"`
	} `json:"encrypt_with_label"`
}

// cryptoSuite returns the suite of a vector case, skipping the case if the
// suite is not implemented.
func cryptoSuite(t *testing.T, id CipherSuite) Suite {
	t.Helper()
	s, err := LookupSuite(id)
	if errors.Is(err, ErrUnsupportedSuite) {
		t.Skipf("cipher suite %v not supported", id)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestVectorsCryptoBasics checks every labeled function against the vectors,
// then signs, encrypts and decrypts fresh values of its own.
func TestVectorsCryptoBasics(t *testing.T) {
	runVectors(t, "crypto-basics.json", func(t *testing.T, tc *cryptoBasicsVector) {
		s := cryptoSuite(t, tc.CipherSuite)

		rh := tc.RefHash
		if got := RefHash(s, rh.Label, rh.Value); !bytes.Equal(got, rh.Out) {
			t.Errorf("RefHash = %x, want %x", got, rh.Out)
		}

		ew := tc.ExpandWithLabel
		got, err := ExpandWithLabel(s, ew.Secret, ew.Label, ew.Context, ew.Length)
		if err != nil || !bytes.Equal(got, ew.Out) {
			t.Errorf("ExpandWithLabel = %x, %v, want %x", got, err, ew.Out)
		}

		ds := tc.DeriveSecret
		got, err = DeriveSecret(s, ds.Secret, ds.Label)
		if err != nil || !bytes.Equal(got, ds.Out) {
			t.Errorf("DeriveSecret = %x, %v, want %x", got, err, ds.Out)
		}

		dt := tc.DeriveTreeSecret
		got, err = DeriveTreeSecret(s, dt.Secret, dt.Label, dt.Generation, dt.Length)
		if err != nil || !bytes.Equal(got, dt.Out) {
			t.Errorf("DeriveTreeSecret = %x, %v, want %x", got, err, dt.Out)
		}

		sw := tc.SignWithLabel
		if err := VerifyWithLabel(s, sw.Pub, sw.Label, sw.Content, sw.Signature); err != nil {
			t.Errorf("VerifyWithLabel(vector signature): %v", err)
		}
		if err := VerifyWithLabel(s, sw.Pub, sw.Label+"x", sw.Content, sw.Signature); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("VerifyWithLabel with another label: %v, want ErrInvalidSignature", err)
		}
		sig, err := SignWithLabel(s, sw.Priv, sw.Label, sw.Content)
		if err != nil {
			t.Fatalf("SignWithLabel: %v", err)
		}
		if err := VerifyWithLabel(s, sw.Pub, sw.Label, sw.Content, sig); err != nil {
			t.Errorf("VerifyWithLabel(own signature): %v", err)
		}
		bad := bytes.Clone(sw.Content)
		bad[0] ^= 1
		if err := VerifyWithLabel(s, sw.Pub, sw.Label, bad, sig); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("VerifyWithLabel over changed content: %v, want ErrInvalidSignature", err)
		}

		el := tc.EncryptWithLabel
		pt, err := DecryptWithLabel(s, el.Priv, el.Label, el.Context, el.KEMOutput, el.Ciphertext)
		if err != nil || !bytes.Equal(pt, el.Plaintext) {
			t.Errorf("DecryptWithLabel(vector) = %x, %v, want %x", pt, err, el.Plaintext)
		}
		kemOut, ct, err := EncryptWithLabel(s, el.Pub, el.Label, el.Context, el.Plaintext)
		if err != nil {
			t.Fatalf("EncryptWithLabel: %v", err)
		}
		pt, err = DecryptWithLabel(s, el.Priv, el.Label, el.Context, kemOut, ct)
		if err != nil || !bytes.Equal(pt, el.Plaintext) {
			t.Errorf("DecryptWithLabel(own) = %x, %v, want %x", pt, err, el.Plaintext)
		}
		ct[len(ct)-1] ^= 1
		if _, err := DecryptWithLabel(s, el.Priv, el.Label, el.Context, kemOut, ct); !errors.Is(err, ErrDecrypt) {
			t.Errorf("DecryptWithLabel(tampered) = %v, want ErrDecrypt", err)
		}
		if _, err := DecryptWithLabel(s, el.Priv, el.Label, append(bytes.Clone(el.Context), 0), el.KEMOutput, el.Ciphertext); !errors.Is(err, ErrDecrypt) {
			t.Errorf("DecryptWithLabel(other context) = %v, want ErrDecrypt", err)
		}
	})
}

// cryptoLoadVectors reads testdata/<file> into v, for seeding fuzz targets.
func cryptoLoadVectors(file string, v any) error {
	raw, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}
