package devid

import (
	"bytes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// This file is the identity backup: the user identity key sealed under a
// passphrase, so that a person who loses their last device keeps their
// identity (and every safety number) on a new one.
//
// A backup is one PEM block of type "QUICPROQUO IDENTITY BACKUP" whose
// bytes are
//
//	version  1 byte   (1)
//	kdf      1 byte   (1: Argon2id, RFC 9106)
//	time     4 bytes  Argon2id passes, big-endian
//	memory   4 bytes  Argon2id memory in KiB, big-endian
//	threads  1 byte   Argon2id lanes
//	salt     16 bytes random
//	nonce    24 bytes random (XChaCha20-Poly1305)
//	sealed   the rest: XChaCha20-Poly1305 of the payload under the
//	         Argon2id key of the passphrase, with everything above as
//	         associated data
//
//	payload  = seed (32 bytes, RFC 8032 private key) || created (8 bytes,
//	           Unix nanoseconds, big-endian)
//
// The header is authenticated, so a changed parameter fails like a wrong
// passphrase. Parameters read from a file are hostile: only those within
// fixed bounds are tried, so a crafted file cannot ask for gigabytes.

// BackupPEMType is the PEM block type of a backup.
const BackupPEMType = "QUICPROQUO IDENTITY BACKUP"

const (
	backupVersion = 1
	kdfArgon2id   = 1
	saltSize      = 16
	headerSize    = 1 + 1 + 4 + 4 + 1 + saltSize + chacha20poly1305.NonceSizeX
	payloadSize   = ed25519.SeedSize + 8
	backupSize    = headerSize + payloadSize + chacha20poly1305.Overhead
	// MaxBackupFile bounds the file a restore reads.
	MaxBackupFile = 4096
	// MinPassphrase is the shortest passphrase accepted for an export.
	MinPassphrase = 8
)

// KDFParams are the Argon2id parameters of a backup.
type KDFParams struct {
	Time    uint32
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultKDF is RFC 9106's second recommended option (64 MiB, 3 passes,
// 4 lanes): about a fifth of a second on a laptop.
var DefaultKDF = KDFParams{Time: 3, Memory: 64 * 1024, Threads: 4}

// The bounds of parameters a backup may ask for.
var (
	minKDF = KDFParams{Time: 1, Memory: 8 * 1024, Threads: 1}
	maxKDF = KDFParams{Time: 16, Memory: 256 * 1024, Threads: 16}
)

// The refusals of OpenBackup (and SealBackup).
var (
	// ErrBackupFormat: not a backup, or a version or KDF this build does
	// not know.
	ErrBackupFormat = errors.New("devid: not an identity backup")
	// ErrBackupParams: KDF parameters outside the accepted bounds.
	ErrBackupParams = errors.New("devid: identity backup KDF parameters out of bounds")
	// ErrWrongPassphrase: the passphrase does not open the backup (or
	// the backup was changed).
	ErrWrongPassphrase = errors.New("devid: wrong passphrase for the identity backup")
	// ErrWeakPassphrase: a passphrase too short to export under.
	ErrWeakPassphrase = errors.New("devid: passphrase too short")
)

// Identity is what a backup holds: the identity key and when it was made.
type Identity struct {
	Key     ed25519.PrivateKey
	Created time.Time
}

// Wipe clears the private key.
func (id *Identity) Wipe() { clear(id.Key) }

// SealBackup seals id under passphrase with parameters p (DefaultKDF if
// zero) and returns the PEM text.
func SealBackup(id Identity, passphrase []byte, p KDFParams) ([]byte, error) {
	if len(id.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: identity key has %d bytes", ErrInvalidKey, len(id.Key))
	}
	if len(passphrase) < MinPassphrase {
		return nil, fmt.Errorf("%w: want at least %d bytes", ErrWeakPassphrase, MinPassphrase)
	}
	if p == (KDFParams{}) {
		p = DefaultKDF
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	b := make([]byte, headerSize, backupSize)
	b[0], b[1] = backupVersion, kdfArgon2id
	binary.BigEndian.PutUint32(b[2:], p.Time)
	binary.BigEndian.PutUint32(b[6:], p.Memory)
	b[10] = p.Threads
	if _, err := rand.Read(b[11:headerSize]); err != nil {
		return nil, fmt.Errorf("devid: backup salt and nonce: %w", err)
	}
	payload := make([]byte, payloadSize)
	defer clear(payload)
	copy(payload, id.Key.Seed())
	binary.BigEndian.PutUint64(payload[ed25519.SeedSize:], uint64(id.Created.UnixNano()))
	aead, err := backupAEAD(passphrase, b)
	if err != nil {
		return nil, err
	}
	b = aead.Seal(b, b[headerSize-chacha20poly1305.NonceSizeX:headerSize], payload, b[:headerSize])
	return pem.EncodeToMemory(&pem.Block{Type: BackupPEMType, Bytes: b}), nil
}

// OpenBackup opens a backup made by SealBackup. The caller wipes the
// returned identity when done.
func OpenBackup(text, passphrase []byte) (Identity, error) {
	if len(text) > MaxBackupFile {
		return Identity{}, fmt.Errorf("%w: %d bytes, limit %d", ErrBackupFormat, len(text), MaxBackupFile)
	}
	blk, rest := pem.Decode(text)
	if blk == nil || blk.Type != BackupPEMType || len(bytes.TrimSpace(rest)) != 0 {
		return Identity{}, fmt.Errorf("%w: want one PEM block %q", ErrBackupFormat, BackupPEMType)
	}
	b := blk.Bytes
	if len(b) != backupSize {
		return Identity{}, fmt.Errorf("%w: %d bytes, want %d", ErrBackupFormat, len(b), backupSize)
	}
	if b[0] != backupVersion || b[1] != kdfArgon2id {
		return Identity{}, fmt.Errorf("%w: version %d, KDF %d (this build reads version %d, Argon2id)", ErrBackupFormat, b[0], b[1], backupVersion)
	}
	p := KDFParams{Time: binary.BigEndian.Uint32(b[2:]), Memory: binary.BigEndian.Uint32(b[6:]), Threads: b[10]}
	if err := p.check(); err != nil {
		return Identity{}, err
	}
	aead, err := backupAEAD(passphrase, b)
	if err != nil {
		return Identity{}, err
	}
	payload, err := aead.Open(nil, b[headerSize-chacha20poly1305.NonceSizeX:headerSize], b[headerSize:], b[:headerSize])
	if err != nil {
		return Identity{}, ErrWrongPassphrase
	}
	defer clear(payload)
	return Identity{
		Key:     ed25519.NewKeyFromSeed(payload[:ed25519.SeedSize]),
		Created: time.Unix(0, int64(binary.BigEndian.Uint64(payload[ed25519.SeedSize:]))),
	}, nil
}

func (p KDFParams) check() error {
	if p.Time < minKDF.Time || p.Time > maxKDF.Time || p.Memory < minKDF.Memory || p.Memory > maxKDF.Memory ||
		p.Threads < minKDF.Threads || p.Threads > maxKDF.Threads {
		return fmt.Errorf("%w: %+v, bounds %+v to %+v", ErrBackupParams, p, minKDF, maxKDF)
	}
	return nil
}

// backupAEAD derives the key of the header's parameters and salt and
// returns its cipher; the key is wiped once the cipher holds it.
func backupAEAD(passphrase, header []byte) (cipher.AEAD, error) {
	t, m, th := binary.BigEndian.Uint32(header[2:]), binary.BigEndian.Uint32(header[6:]), header[10]
	key := argon2.IDKey(passphrase, header[11:11+saltSize], t, m, th, chacha20poly1305.KeySize)
	defer clear(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("devid: backup cipher: %w", err)
	}
	return aead, nil
}
