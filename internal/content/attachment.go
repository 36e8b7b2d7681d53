package content

import (
	"math"

	"github.com/fxamacker/cbor/v2"
)

// Limits of an attachment reference.
const (
	maxLocationSize    = 2048
	maxKeySize         = 64
	maxNonceSize       = 64
	maxAADSize         = 1024
	maxHashSize        = 64
	maxDescriptionSize = 4096
	maxFileNameSize    = 255
)

// HashSHA256 is the hash algorithm of the IANA Named Information Hash
// Algorithm registry that MIMI uses for contentHash.
const HashSHA256 = 1

// Attachment is MIMI's ExternalPart: a reference to content encrypted
// with its own key and stored elsewhere (the node's blob store).
type Attachment struct {
	ContentType string // media type of the plaintext
	Location    string // MIMI's url: where the ciphertext is (a blob id)
	Expires     uint32 // Unix seconds when the location stops working; 0 if it does not
	Size        uint64 // bytes of the plaintext
	EncAlg      uint16 // AEAD algorithm (IANA AEAD registry)
	Key         []byte
	Nonce       []byte
	AAD         []byte
	HashAlg     uint8  // hash algorithm of Hash (HashSHA256)
	Hash        []byte // hash of what Location holds (qpd: the ciphertext, internal/attach)
	Description string
	Name        string // file name
}

func (a *Attachment) parse(field string, f []cbor.RawMessage) error {
	var err error
	var n uint64
	if a.ContentType, err = textField(field+".contentType", f[0], maxMediaTypeSize); err != nil {
		return err
	}
	if a.Location, err = textField(field+".url", f[1], maxLocationSize); err != nil {
		return err
	}
	if n, err = uintField(field+".expires", f[2], math.MaxUint32); err != nil {
		return err
	}
	a.Expires = uint32(n)
	if a.Size, err = uintField(field+".size", f[3], math.MaxUint64); err != nil {
		return err
	}
	if n, err = uintField(field+".encAlg", f[4], math.MaxUint16); err != nil {
		return err
	}
	a.EncAlg = uint16(n)
	if a.Key, err = bytesField(field+".key", f[5], maxKeySize); err != nil {
		return err
	}
	if a.Nonce, err = bytesField(field+".nonce", f[6], maxNonceSize); err != nil {
		return err
	}
	if a.AAD, err = bytesField(field+".aad", f[7], maxAADSize); err != nil {
		return err
	}
	if n, err = uintField(field+".hashAlg", f[8], math.MaxUint8); err != nil {
		return err
	}
	a.HashAlg = uint8(n)
	if a.Hash, err = bytesField(field+".contentHash", f[9], maxHashSize); err != nil {
		return err
	}
	if a.Description, err = textField(field+".description", f[10], maxDescriptionSize); err != nil {
		return err
	}
	if a.Name, err = textField(field+".filename", f[11], maxFileNameSize); err != nil {
		return err
	}
	return nil
}

func (a *Attachment) marshal() []any {
	return []any{a.ContentType, a.Location, uint64(a.Expires), a.Size, uint64(a.EncAlg),
		nonNil(a.Key), nonNil(a.Nonce), nonNil(a.AAD), uint64(a.HashAlg), nonNil(a.Hash), a.Description, a.Name}
}

// nonNil is b, or an empty byte string for nil (which would encode as
// null).
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
