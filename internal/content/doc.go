// Package content is the one versioned format of what members say to each
// other inside MLS application messages: text, replies, reactions, edits,
// deletes, receipts, attachment references and expiry.
//
// # The MIMI subset
//
// A message is the mimiContent structure of the IETF MIMI content format
// (draft-ietf-mimi-content), CBOR encoded (RFC 8949):
//
//	mimiContent = [salt, replaces, topicId, expires, inReplyTo, extensions, nestedPart]
//	nestedPart  = [disposition, language, cardinality, ...]
//
// What each use looks like:
//
//   - Text: a single part of media type "text/plain;charset=utf-8",
//     disposition render. A reply is text with inReplyTo set.
//   - Reaction: a single text part with disposition reaction, inReplyTo
//     naming the message reacted to.
//   - Edit: replaces names the edited message, the part is the new text.
//   - Delete: replaces names the deleted message, the part is a null part.
//   - Receipt: a single part of media type "application/mimi-message-status"
//     after draft-mahy-mimi-message-status: [timestamp, [* [messageId,
//     status]]], status 1 delivered, 2 read (the others are kept).
//   - Attachment: an external part (MIMI's reference to encrypted content
//     stored elsewhere): media type, location, size, AEAD algorithm, key,
//     nonce, AAD, hash algorithm, hash, description and file name. A
//     caption makes it a multipart (processAll) of text and attachment.
//   - Expiry: MIMI's expires, [relative, seconds].
//   - Timer: a control message that sets the group's disappearing-messages
//     timer (extension "qpq-disappear-after", seconds, 0 for off; at most
//     MaxTimer), with a null body. It travels encrypted like any message,
//     so only the members know it.
//
// # Where it differs from MIMI
//
//   - Version: extension "qpq-version" (a uint, Version) is required;
//     a message without it or with another value is ErrVersion. MIMI
//     leaves versioning to MLS content-type negotiation, which this
//     project does not use. A later version that cannot keep this shape
//     will start with another CBOR major type than an array.
//   - Timer: extension "qpq-disappear-after" (above); MIMI has no such
//     control message.
//   - Timestamp: extension "qpq-sent-at", Unix nanoseconds, the sender's
//     clock (MIMI takes time from the hub, which this project does not
//     have).
//   - Message ids are not carried: a MessageID names another message and
//     is 16 to 32 bytes (MIMI: 32, a SHA-256 over sender, room and
//     content; the daemon uses the first 16 bytes of the SHA-256 of the
//     MLS message, which no member can choose).
//   - Not interpreted (kept and re-encoded as they came): topicId, the
//     MIMI extensions senderUri and roomUri, language tags, multipart
//     chooseOne/singleUnit semantics.
//   - Encoding is strict: definite lengths only, no CBOR tags, no
//     duplicate map keys, text strings valid UTF-8, no trailing bytes,
//     exactly the fields above. Encoding is deterministic (RFC 8949
//     core deterministic).
//
// # Unknown parts
//
// Extensions this package does not know, parts of unknown dispositions
// and parts of unknown media types are preserved (Append writes them back)
// and reported by Message.Unknown; a reader shows them as unsupported
// instead of dropping them.
//
// # Bounds
//
// Parse refuses input above MaxSize before decoding, and the decoder is
// limited in nesting, array length and map size, so hostile input costs
// at most a small multiple of its own size. Errors are *Error values that
// match ErrTooLarge, ErrSyntax, ErrDuplicateKey, ErrInvalid or ErrVersion
// with errors.Is.
package content
