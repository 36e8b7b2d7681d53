package mls

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

type keyScheduleVector struct {
	CipherSuite       CipherSuite `json:"cipher_suite"`
	GroupID           hexBytes    `json:"group_id"`
	InitialInitSecret hexBytes    `json:"initial_init_secret"`
	Epochs            []struct {
		TreeHash                hexBytes `json:"tree_hash"`
		CommitSecret            hexBytes `json:"commit_secret"`
		PSKSecret               hexBytes `json:"psk_secret"`
		ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`

		GroupContext       hexBytes `json:"group_context"`
		JoinerSecret       hexBytes `json:"joiner_secret"`
		WelcomeSecret      hexBytes `json:"welcome_secret"`
		InitSecret         hexBytes `json:"init_secret"`
		SenderDataSecret   hexBytes `json:"sender_data_secret"`
		EncryptionSecret   hexBytes `json:"encryption_secret"`
		ExporterSecret     hexBytes `json:"exporter_secret"`
		EpochAuthenticator hexBytes `json:"epoch_authenticator"`
		ExternalSecret     hexBytes `json:"external_secret"`
		ConfirmationKey    hexBytes `json:"confirmation_key"`
		MembershipKey      hexBytes `json:"membership_key"`
		ResumptionPSK      hexBytes `json:"resumption_psk"`
		ExternalPub        hexBytes `json:"external_pub"`
		Exporter           struct {
			// Label is used as literal text, not hex-decoded.
			Label   string   `json:"label"`
			Context hexBytes `json:"context"`
			Length  int      `json:"length"`
			Secret  hexBytes `json:"secret"`
		} `json:"exporter"`
	} `json:"epochs"`
}

// TestVectorsKeySchedule chains the key schedule over the vector epochs and
// checks the GroupContext encoding and every derived secret.
func TestVectorsKeySchedule(t *testing.T) {
	runVectors(t, "key-schedule.json", func(t *testing.T, tc *keyScheduleVector) {
		s := cryptoSuite(t, tc.CipherSuite)
		initSecret := []byte(tc.InitialInitSecret)
		for n, ep := range tc.Epochs {
			gc := GroupContext{
				Version:                 MLS10,
				CipherSuite:             tc.CipherSuite,
				GroupID:                 tc.GroupID,
				Epoch:                   uint64(n),
				TreeHash:                ep.TreeHash,
				ConfirmedTranscriptHash: ep.ConfirmedTranscriptHash,
				Extensions:              []Extension{},
			}
			gcBytes := gc.Marshal()
			if !bytes.Equal(gcBytes, ep.GroupContext) {
				t.Fatalf("epoch %d: GroupContext = %x, want %x", n, gcBytes, ep.GroupContext)
			}
			parsed, err := ParseGroupContext(ep.GroupContext)
			if err != nil {
				t.Fatalf("epoch %d: ParseGroupContext: %v", n, err)
			}
			if !reflect.DeepEqual(*parsed, gc) {
				t.Fatalf("epoch %d: parsed GroupContext %+v, want %+v", n, *parsed, gc)
			}

			joiner, err := DeriveJoinerSecret(s, initSecret, ep.CommitSecret, gcBytes)
			if err != nil {
				t.Fatalf("epoch %d: %v", n, err)
			}
			if !bytes.Equal(joiner, ep.JoinerSecret) {
				t.Fatalf("epoch %d: joiner_secret = %x, want %x", n, joiner, ep.JoinerSecret)
			}
			es, err := DeriveEpochSecrets(s, joiner, ep.PSKSecret, gcBytes)
			if err != nil {
				t.Fatalf("epoch %d: %v", n, err)
			}
			for _, c := range []struct {
				name      string
				got, want []byte
			}{
				{"joiner_secret", es.JoinerSecret, ep.JoinerSecret},
				{"welcome_secret", es.WelcomeSecret, ep.WelcomeSecret},
				{"init_secret", es.InitSecret, ep.InitSecret},
				{"sender_data_secret", es.SenderDataSecret, ep.SenderDataSecret},
				{"encryption_secret", es.EncryptionSecret, ep.EncryptionSecret},
				{"exporter_secret", es.ExporterSecret, ep.ExporterSecret},
				{"epoch_authenticator", es.EpochAuthenticator, ep.EpochAuthenticator},
				{"external_secret", es.ExternalSecret, ep.ExternalSecret},
				{"confirmation_key", es.ConfirmationKey, ep.ConfirmationKey},
				{"membership_key", es.MembershipKey, ep.MembershipKey},
				{"resumption_psk", es.ResumptionPSK, ep.ResumptionPSK},
			} {
				if !bytes.Equal(c.got, c.want) {
					t.Errorf("epoch %d: %s = %x, want %x", n, c.name, c.got, c.want)
				}
			}
			_, pub, err := ExternalKeyPair(s, es.ExternalSecret)
			if err != nil || !bytes.Equal(pub, ep.ExternalPub) {
				t.Errorf("epoch %d: external_pub = %x, %v, want %x", n, pub, err, ep.ExternalPub)
			}
			x := ep.Exporter
			exp, err := Export(s, es.ExporterSecret, x.Label, x.Context, x.Length)
			if err != nil || !bytes.Equal(exp, x.Secret) {
				t.Errorf("epoch %d: exporter = %x, %v, want %x", n, exp, err, x.Secret)
			}

			// The stored form reads back to the same secrets.
			back, err := ParseEpochSecrets(es.Marshal())
			if err != nil || !reflect.DeepEqual(back, es) {
				t.Errorf("epoch %d: EpochSecrets round trip: %v", n, err)
			}
			initSecret = es.InitSecret
		}
	})
}

func TestKeyScheduleDetails(t *testing.T) {
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	gc := (&GroupContext{Version: MLS10, CipherSuite: s.ID(), GroupID: []byte("g")}).Marshal()
	init := bytes.Repeat([]byte{1}, 32)
	zero := make([]byte, 32)

	// A nil commit_secret and psk_secret are the all-zero vector.
	a, _ := DeriveJoinerSecret(s, init, nil, gc)
	b, _ := DeriveJoinerSecret(s, init, zero, gc)
	if !bytes.Equal(a, b) {
		t.Fatal("nil commit_secret differs from the zero vector")
	}
	e1, _ := DeriveEpochSecrets(s, a, nil, gc)
	e2, _ := DeriveEpochSecrets(s, a, zero, gc)
	if !reflect.DeepEqual(e1, e2) {
		t.Fatal("nil psk_secret differs from the zero vector")
	}
	// A different GroupContext changes the epoch.
	gc2 := (&GroupContext{Version: MLS10, CipherSuite: s.ID(), GroupID: []byte("h")}).Marshal()
	e3, _ := DeriveEpochSecrets(s, a, nil, gc2)
	if bytes.Equal(e1.EpochSecret, e3.EpochSecret) || !bytes.Equal(e1.WelcomeSecret, e3.WelcomeSecret) {
		t.Fatal("epoch_secret must depend on the GroupContext and welcome_secret must not")
	}

	key, nonce, err := WelcomeKeyNonce(s, e1.WelcomeSecret)
	if err != nil || len(key) != s.AEADKeySize() || len(nonce) != s.AEADNonceSize() {
		t.Fatalf("WelcomeKeyNonce: %d/%d bytes, %v", len(key), len(nonce), err)
	}

	if _, err := ParseEpochSecrets(e1.Marshal()[:5]); !errors.Is(err, ErrDecode) {
		t.Fatalf("truncated EpochSecrets: %v", err)
	}
	e1.Clear()
	if e1.EpochSecret != nil || e1.InitSecret != nil {
		t.Fatal("Clear left secrets behind")
	}
}

func TestGroupContextRejects(t *testing.T) {
	gc := GroupContext{Version: MLS10, CipherSuite: 1, GroupID: []byte{1, 2}, Epoch: 7,
		TreeHash: []byte{3}, ConfirmedTranscriptHash: []byte{4}, Extensions: []Extension{{Type: 0xff00, Data: []byte{5}}}}
	b := gc.Marshal()
	for i := range len(b) {
		if _, err := ParseGroupContext(b[:i]); !errors.Is(err, ErrDecode) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	if _, err := ParseGroupContext(append(bytes.Clone(b), 0)); !errors.Is(err, ErrDecode) {
		t.Fatalf("trailing byte: %v", err)
	}
	bad := bytes.Clone(b)
	bad[1] = 2 // protocol version 2
	if _, err := ParseGroupContext(bad); !errors.Is(err, ErrDecode) {
		t.Fatalf("version 2: %v", err)
	}
}

// FuzzGroupContext checks that the decoder never panics and that whatever it
// accepts re-encodes to the same bytes.
func FuzzGroupContext(f *testing.F) {
	f.Add([]byte{})
	f.Add((&GroupContext{Version: MLS10, CipherSuite: 1, GroupID: []byte("group"), Epoch: 3,
		TreeHash: make([]byte, 32), ConfirmedTranscriptHash: make([]byte, 32),
		Extensions: []Extension{{Type: ExtensionExternalSenders, Data: []byte{0}}}}).Marshal())
	var cases []keyScheduleVector
	if cryptoLoadVectors("key-schedule.json", &cases) == nil {
		for _, c := range cases {
			for _, ep := range c.Epochs {
				f.Add([]byte(ep.GroupContext))
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		gc, err := ParseGroupContext(b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error does not match ErrDecode: %v", err)
			}
			return
		}
		if got := gc.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, b)
		}
	})
}

// FuzzEpochSecrets checks that reading stored epoch secrets never panics and
// that accepted input re-encodes to the same bytes.
func FuzzEpochSecrets(f *testing.F) {
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		f.Fatal(err)
	}
	gc := (&GroupContext{Version: MLS10, CipherSuite: s.ID(), GroupID: []byte("g")}).Marshal()
	js, _ := DeriveJoinerSecret(s, make([]byte, 32), nil, gc)
	es, _ := DeriveEpochSecrets(s, js, nil, gc)
	f.Add(es.Marshal())
	f.Add((&EpochSecrets{}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := ParseEpochSecrets(b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error does not match ErrDecode: %v", err)
			}
			return
		}
		if got := es.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, b)
		}
	})
}
