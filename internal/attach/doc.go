// Package attach encrypts files for the node's blob store: the sender
// seals a file with a fresh random key, uploads only the ciphertext, and
// puts the key with the ciphertext's size and hash in the message (an
// attachment reference of package content); receivers download, check and
// decrypt. The node holds ciphertext it cannot read.
//
// # Format
//
// The plaintext is cut into chunks of ChunkSize bytes (the last one may be
// shorter; an empty file is one empty chunk). Each chunk is sealed on its
// own with AES-256-GCM under the file's key, with the 12-byte nonce
//
//	prefix (7 random bytes) || chunk index (4 bytes, big endian) || final (1 byte: 1 for the last chunk, else 0)
//
// and the additional data "qpq-attach-v1", after the STREAM construction
// (Hoang, Reyhanitabar, Rogaway, Vizár: "Online Authenticated-Encryption
// and its Nonce-Reuse Misuse-Resistance"). The ciphertext is the sealed
// chunks back to back, CiphertextSize(n) bytes for n bytes of plaintext.
// So a reader detects every change: a chunk moved elsewhere fails its
// index, a file cut at a chunk boundary lacks the final flag, bytes past
// the final chunk are refused, and a changed byte fails its chunk's tag.
// The SHA-256 of the whole ciphertext travels in the reference too, so a
// blob can be checked before a byte of it is decrypted (and a store that
// serves another blob is caught at once).
//
// Both directions stream: memory stays at two chunks whatever the file's
// size. Decrypt writes plaintext as chunks authenticate; a caller that
// must not keep a partial file (qpd's save) writes to a temporary file and
// renames it only when Decrypt returns nil.
package attach
