package mls

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

type pskSecretVector struct {
	CipherSuite CipherSuite `json:"cipher_suite"`
	PSKs        []struct {
		PSKID    hexBytes `json:"psk_id"`
		PSK      hexBytes `json:"psk"`
		PSKNonce hexBytes `json:"psk_nonce"`
	} `json:"psks"`
	PSKSecret hexBytes `json:"psk_secret"`
}

// TestVectorsPSKSecret combines the vector PSKs (all external) and checks
// psk_secret.
func TestVectorsPSKSecret(t *testing.T) {
	runVectors(t, "psk_secret.json", func(t *testing.T, tc *pskSecretVector) {
		s := cryptoSuite(t, tc.CipherSuite)
		var ids []PreSharedKeyID
		var psks [][]byte
		for _, p := range tc.PSKs {
			id := PreSharedKeyID{Type: PSKTypeExternal, PSKID: p.PSKID, Nonce: p.PSKNonce}
			ids = append(ids, id)
			psks = append(psks, bytes.Clone(p.PSK))

			back, err := ParsePreSharedKeyID(id.Marshal())
			if err != nil || !reflect.DeepEqual(*back, id) {
				t.Fatalf("PreSharedKeyID round trip: %+v, %v", back, err)
			}
		}
		got, err := PSKSecret(s, ids, psks)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tc.PSKSecret) {
			t.Fatalf("psk_secret = %x, want %x", got, tc.PSKSecret)
		}
	})
}

func TestPreSharedKeyIDEncoding(t *testing.T) {
	res := PreSharedKeyID{Type: PSKTypeResumption, Usage: ResumptionPSKBranch,
		GroupID: []byte("group"), Epoch: 9, Nonce: []byte{1, 2, 3}}
	b := res.Marshal()
	want := []byte{2, 3, 5, 'g', 'r', 'o', 'u', 'p', 0, 0, 0, 0, 0, 0, 0, 9, 3, 1, 2, 3}
	if !bytes.Equal(b, want) {
		t.Fatalf("resumption PreSharedKeyID = %x, want %x", b, want)
	}
	back, err := ParsePreSharedKeyID(b)
	if err != nil || !reflect.DeepEqual(*back, res) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	for name, in := range map[string][]byte{
		"type 0":    {0, 0},
		"type 3":    {3, 0},
		"usage 0":   {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"usage 4":   {2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"truncated": b[:len(b)-1],
		"trailing":  append(bytes.Clone(b), 0),
	} {
		if _, err := ParsePreSharedKeyID(in); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: err = %v, want ErrDecode", name, err)
		}
	}

	s, _ := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if _, err := PSKSecret(s, []PreSharedKeyID{res}, nil); err == nil {
		t.Fatal("PSKSecret accepted mismatched ids and keys")
	}
	// The PSK id is bound into the result.
	ext := PreSharedKeyID{Type: PSKTypeExternal, PSKID: []byte("a"), Nonce: make([]byte, 32)}
	a, _ := PSKSecret(s, []PreSharedKeyID{ext}, [][]byte{[]byte("k")})
	ext.PSKID = []byte("b")
	b2, _ := PSKSecret(s, []PreSharedKeyID{ext}, [][]byte{[]byte("k")})
	if bytes.Equal(a, b2) {
		t.Fatal("psk_secret does not depend on the PSK id")
	}
}

// FuzzPreSharedKeyID checks that the decoder never panics and that whatever
// it accepts re-encodes to the same bytes.
func FuzzPreSharedKeyID(f *testing.F) {
	f.Add([]byte{})
	f.Add((&PreSharedKeyID{Type: PSKTypeResumption, Usage: ResumptionPSKApplication,
		GroupID: []byte("g"), Epoch: 1, Nonce: make([]byte, 32)}).Marshal())
	var cases []pskSecretVector
	if cryptoLoadVectors("psk_secret.json", &cases) == nil {
		for _, c := range cases {
			for _, p := range c.PSKs {
				f.Add((&PreSharedKeyID{Type: PSKTypeExternal, PSKID: p.PSKID, Nonce: p.PSKNonce}).Marshal())
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePreSharedKeyID(b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error does not match ErrDecode: %v", err)
			}
			return
		}
		if got := p.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, b)
		}
	})
}
