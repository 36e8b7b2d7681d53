package mls

import (
	"bytes"
	"errors"
	"testing"
)

type transcriptCase struct {
	CipherSuite                  CipherSuite `json:"cipher_suite"`
	ConfirmationKey              hexBytes    `json:"confirmation_key"`
	AuthenticatedContent         hexBytes    `json:"authenticated_content"`
	InterimTranscriptHashBefore  hexBytes    `json:"interim_transcript_hash_before"`
	ConfirmedTranscriptHashAfter hexBytes    `json:"confirmed_transcript_hash_after"`
	InterimTranscriptHashAfter   hexBytes    `json:"interim_transcript_hash_after"`
}

func TestVectorsTranscriptHashes(t *testing.T) {
	runVectors(t, "transcript-hashes.json", func(t *testing.T, tc *transcriptCase) {
		s, err := LookupSuite(tc.CipherSuite)
		if err != nil {
			t.Skipf("suite %v: %v", tc.CipherSuite, err)
		}
		ac, err := ParseAuthenticatedContent(tc.AuthenticatedContent)
		if err != nil {
			t.Fatal(err)
		}
		if got := ac.Marshal(); !bytes.Equal(got, tc.AuthenticatedContent) {
			t.Fatalf("AuthenticatedContent re-encodes as %x", got)
		}
		confirmed, err := ConfirmedTranscriptHash(s, tc.InterimTranscriptHashBefore, ac)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(confirmed, tc.ConfirmedTranscriptHashAfter) {
			t.Fatalf("confirmed transcript hash\n got %x\nwant %x", confirmed, tc.ConfirmedTranscriptHashAfter)
		}
		if err := VerifyConfirmationTag(s, tc.ConfirmationKey, confirmed, ac.Auth.ConfirmationTag); err != nil {
			t.Fatal(err)
		}
		bad := append([]byte{}, ac.Auth.ConfirmationTag...)
		bad[len(bad)-1] ^= 1
		if err := VerifyConfirmationTag(s, tc.ConfirmationKey, confirmed, bad); !errors.Is(err, ErrInvalidTag) {
			t.Fatalf("bad confirmation tag: got %v, want ErrInvalidTag", err)
		}
		interim := InterimTranscriptHash(s, confirmed, ac.Auth.ConfirmationTag)
		if !bytes.Equal(interim, tc.InterimTranscriptHashAfter) {
			t.Fatalf("interim transcript hash\n got %x\nwant %x", interim, tc.InterimTranscriptHashAfter)
		}
	})
}
