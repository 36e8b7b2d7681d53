// Package devid separates the person from the device. A user identity is
// a long-term Ed25519 key U; each device has its own Ed25519 signature key
// D, its MLS leaf key. U certifies D, and the proof travels in the MLS
// credential, so every member checks, for every leaf, that "the leaf's
// credential chains to user U and names this leaf's signature key".
//
// # The credential: RFC 9420 x509
//
// The proof is an X.509 chain in the x509 credential type of RFC 9420
// (§5.3, type 2), leaf first:
//
//	[0] device certificate: subject key D, issued and signed by U,
//	    not a CA, key usage digitalSignature only, a bounded validity
//	[1] user certificate:   subject key U, self-signed by U, a CA
//	    (path length 0), key usage certSign only
//
// Both are Ed25519 (PureEd25519 signatures), made and parsed with Go's
// crypto/x509. The chain is exactly these two certificates: there is no
// outside root, no intermediate and no name matching. The user is the key
// U itself (what safety numbers are computed from), not a name in a
// certificate: a chain is trusted for U because U signed it, and which U a
// person is stays a matter of contacts and safety numbers, as today.
//
// Why x509 and not a private-use credential type: x509 is a registered
// type every RFC 9420 implementation can carry and decode (OpenMLS, mls-rs
// and ts-mls parse its certificate list), so a group with peers that do
// not know our rule still parses, and those peers can check the chain with
// any X.509 library. A private-use type (0xF000 and up) has no length
// prefix known to others: a peer that does not know it cannot even decode
// the leaf (RFC 9420 credentials are not skippable). The cost of x509 is
// certificate parsing at a trust boundary; Verify bounds it (MaxCertSize,
// exactly two certificates) and a fuzz target covers it.
//
// Basic credentials stay: a leaf whose basic credential identity is its
// own signature key is the single-device case, where U and D are one key.
// The interop server and the ts-mls cross test keep using them, and every
// identity made before devices existed keeps working unchanged: Rule
// accepts both forms and reports the same user U for either.
//
// # What a member checks
//
// Verify takes the certificates of a credential and the leaf's signature
// key and returns the Device (user U, device key D, validity) or a typed
// error: ErrMalformed (not two bounded, parseable Ed25519 certificates),
// ErrNotIssuedByUser (the device certificate is not signed by the user
// certificate's key, or the user certificate is not self-signed),
// ErrWrongKey (the device certificate names another key than the leaf's),
// ErrExpired (outside a validity window) and ErrWrongUsage (a device
// certificate that is a CA or may sign certificates, a user certificate
// that is not a CA). Rule is the IdentityProvider of internal/mls built on
// it: ValidateLeaf applies the rule, ValidSuccessor keeps a leaf's
// replacement on the same user.
//
// # Device lists
//
// A DeviceList is the set of a user's current devices at a version,
// signed by U (label "qpq-device-list-v1", see devlist.go for the bytes).
// The node stores the latest list per user and hands it out with
// KeyPackages; a device that leaves the list is revoked for ever.
// ParseDeviceList checks the signature, bounds (1 to MaxDevices devices,
// MaxDeviceListSize bytes) and the canonical form, with typed errors
// (ErrListMalformed, ErrListSignature, ErrListBounds). A user who never
// published a list has the implicit list {U} (ImplicitDeviceList).
package devid
