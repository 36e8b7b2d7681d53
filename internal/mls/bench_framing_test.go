package mls

import (
	"bytes"
	"testing"
)

// benchFraming holds a suite-1 epoch with two members and a signed 1 KiB
// application message from leaf 0.
type benchFraming struct {
	s        Suite
	gc       *GroupContext
	priv     []byte
	pub      []byte
	secret   []byte
	sds      []byte
	content  *FramedContent
	ac       *AuthenticatedContent
	nMembers uint32
}

func newBenchFraming(b *testing.B) *benchFraming {
	b.Helper()
	s, err := LookupSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		b.Fatal(err)
	}
	priv, pub, err := s.GenerateSignatureKey()
	if err != nil {
		b.Fatal(err)
	}
	bf := &benchFraming{
		s: s, priv: priv, pub: pub, nMembers: 2,
		secret: bytes.Repeat([]byte{1}, s.HashSize()),
		sds:    bytes.Repeat([]byte{2}, s.HashSize()),
		gc: &GroupContext{Version: MLS10, CipherSuite: s.ID(), GroupID: bytes.Repeat([]byte{3}, 16), Epoch: 42,
			TreeHash: bytes.Repeat([]byte{4}, 32), ConfirmedTranscriptHash: bytes.Repeat([]byte{5}, 32), Extensions: []Extension{}},
	}
	bf.content = &FramedContent{GroupID: bf.gc.GroupID, Epoch: bf.gc.Epoch, Sender: MemberSender(0),
		AuthenticatedData: []byte{}, ContentType: ContentApplication, ApplicationData: bytes.Repeat([]byte{'m'}, 1024)}
	if bf.ac, err = SignFramedContent(s, priv, WireFormatPrivateMessage, bf.content, bf.gc); err != nil {
		b.Fatal(err)
	}
	return bf
}

// messages protects n messages in sending order and returns their wire
// encodings.
func (bf *benchFraming) messages(b *testing.B, n int) [][]byte {
	st := NewSecretTree(bf.s, bf.secret, bf.nMembers)
	out := make([][]byte, n)
	for i := range out {
		pm, err := ProtectPrivate(bf.s, bf.ac, st, bf.sds, 0)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = (&MLSMessage{Version: MLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: pm}).Marshal()
	}
	return out
}

// BenchmarkPrivateMessageProtect encrypts an already signed 1 KiB
// application message and encodes it, advancing the sender's ratchet.
func BenchmarkPrivateMessageProtect(b *testing.B) {
	bf := newBenchFraming(b)
	st := NewSecretTree(bf.s, bf.secret, bf.nMembers)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		pm, err := ProtectPrivate(bf.s, bf.ac, st, bf.sds, 0)
		if err != nil {
			b.Fatal(err)
		}
		_ = (&MLSMessage{Version: MLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: pm}).Marshal()
	}
}

// BenchmarkPrivateMessageSignProtect adds the Ed25519 signature to
// BenchmarkPrivateMessageProtect: the full cost of sending.
func BenchmarkPrivateMessageSignProtect(b *testing.B) {
	bf := newBenchFraming(b)
	st := NewSecretTree(bf.s, bf.secret, bf.nMembers)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		ac, err := SignFramedContent(bf.s, bf.priv, WireFormatPrivateMessage, bf.content, bf.gc)
		if err != nil {
			b.Fatal(err)
		}
		pm, err := ProtectPrivate(bf.s, ac, st, bf.sds, 0)
		if err != nil {
			b.Fatal(err)
		}
		_ = (&MLSMessage{Version: MLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: pm}).Marshal()
	}
}

// BenchmarkPrivateMessageUnprotect decodes and decrypts 1 KiB application
// messages received in order, advancing the receiver's ratchet.
func BenchmarkPrivateMessageUnprotect(b *testing.B) { benchFramingReceive(b, false) }

// BenchmarkPrivateMessageUnprotectVerify adds the signature check to
// BenchmarkPrivateMessageUnprotect: the full cost of receiving.
func BenchmarkPrivateMessageUnprotectVerify(b *testing.B) { benchFramingReceive(b, true) }

// benchFramingReceive receives b.N messages, checking their signatures if
// verify is set.
func benchFramingReceive(b *testing.B, verify bool) {
	bf := newBenchFraming(b)
	msgs := bf.messages(b, b.N)
	st := NewSecretTree(bf.s, bf.secret, bf.nMembers)
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := ParseMLSMessage(msgs[i])
		if err != nil {
			b.Fatal(err)
		}
		ac, err := UnprotectPrivate(bf.s, m.PrivateMessage, st, bf.sds)
		if err != nil {
			b.Fatal(err)
		}
		if verify {
			if err := ac.VerifySignature(bf.s, bf.pub, bf.gc); err != nil {
				b.Fatal(err)
			}
		}
	}
}
