// Package link is the exchange that adds a device to a person: a one-use
// code shown on a primary device (one that holds the user identity key U)
// and typed or scanned on the new one, and the two sealed messages the
// devices pass each other through the node's link rendezvous.
//
// # The code
//
// A code is 16 random bytes s (NewCode), shown as "qpq-link-" followed by
// their base32 (RFC 4648 alphabet, lower case, no padding) in groups of
// four separated by '-':
//
//	qpq-link-abcd-efgh-ijkl-mnop-qrst-uvwx-yz
//
// ParseCode accepts upper or lower case and ignores '-' and white space;
// anything else fails with ErrCode. There is no checksum: a mistyped code
// derives another slot, and the new device finds nothing there.
//
// # What the node sees
//
// Derive turns s into the slot id (HKDF-SHA256, info "qpq-link-slot") the
// devices meet at, and two keys, one per direction (infos
// "qpq-link-request" and "qpq-link-response"). Each message is sealed with
// XChaCha20-Poly1305 under its direction's key, with the slot and the box
// number as associated data (Seal, Open). The node learns the slot and the
// sizes and times of two messages; with 128 bits of s it can neither read
// them nor find s, and a message it changes, moves to another slot or box,
// or makes up fails Open with ErrSealed.
//
// # The messages
//
// Request (box 0, new device to primary) names the new device's signature
// key D and its label, signed by D over the slot: a request is valid for
// this code only, so a request replayed from another exchange fails its
// signature (ErrRequest).
//
// Response (box 1, primary to new device) carries the user key U, the
// device certificate chain U issued for D (internal/devid), U's signed
// device list, and the person's contacts and groups. CheckChain is the new
// device's check that the chain is issued by the U of the response and
// names D; the device list is checked by the caller with
// devid.ParseDeviceList. Every decoder is bounded (MaxPayload, counts,
// lengths) and returns ErrMalformed for anything it does not read exactly.
package link
