package mls

import (
	"crypto/hmac"
	"fmt"
)

// This file is the transcript hashes and confirmation tag of RFC 9420 §8.2
// and §6.1.
//
// Each Commit extends two running hashes:
//
//	confirmed_transcript_hash[n] = Hash(interim_transcript_hash[n-1] ||
//	                                    ConfirmedTranscriptHashInput[n])
//	interim_transcript_hash[n]   = Hash(confirmed_transcript_hash[n] ||
//	                                    InterimTranscriptHashInput[n])
//
// where ConfirmedTranscriptHashInput is {wire_format, content, signature} of
// the Commit's AuthenticatedContent and InterimTranscriptHashInput is its
// confirmation tag. The confirmation tag is
// MAC(confirmation_key, confirmed_transcript_hash) of the new epoch.

// ConfirmedTranscriptHash returns the confirmed transcript hash after the
// commit in ac, given the interim transcript hash before it (empty for a
// group's first epoch).
func ConfirmedTranscriptHash(s Suite, interimBefore []byte, ac *AuthenticatedContent) ([]byte, error) {
	if ac.Content.ContentType != ContentCommit {
		return nil, fmt.Errorf("%w: transcript hash over %v content, want commit", ErrInvalidMessage, ac.Content.ContentType)
	}
	in := append([]byte{}, interimBefore...)
	in = AppendUint16(in, uint16(ac.WireFormat))
	in = ac.Content.append(in)
	in = AppendOpaque(in, ac.Auth.Signature)
	return s.Hash(in), nil
}

// InterimTranscriptHash returns the interim transcript hash that follows
// confirmed, the confirmed transcript hash of the same commit, whose
// confirmation tag is confirmationTag.
func InterimTranscriptHash(s Suite, confirmed, confirmationTag []byte) []byte {
	in := append([]byte{}, confirmed...)
	in = AppendOpaque(in, confirmationTag)
	return s.Hash(in)
}

// ConfirmationTag returns MAC(confirmationKey, confirmedTranscriptHash).
func ConfirmationTag(s Suite, confirmationKey, confirmedTranscriptHash []byte) []byte {
	return s.MAC(confirmationKey, confirmedTranscriptHash)
}

// VerifyConfirmationTag checks tag in constant time; a mismatch matches
// ErrInvalidTag.
func VerifyConfirmationTag(s Suite, confirmationKey, confirmedTranscriptHash, tag []byte) error {
	if !hmac.Equal(ConfirmationTag(s, confirmationKey, confirmedTranscriptHash), tag) {
		return fmt.Errorf("%w: confirmation tag", ErrInvalidTag)
	}
	return nil
}
