// Package mls implements the Messaging Layer Security protocol, RFC 9420.
//
// # Files follow the RFC
//
// codec.go is the TLS presentation language with the variable-length headers
// of §2.1.2: a Reader with a sticky error for parsing and Append functions for
// encoding, so every wire type has a parse/append pair and nothing uses
// reflection. Decoding is strict: non-minimal varints, truncated input,
// trailing bytes and unknown enum values whose bodies have no length prefix are
// errors matching ErrDecode.
//
// Cryptography is reached only through the Suite interface (ciphersuite.go);
// LookupSuite returns one value per RFC 9420 suite (1 to 7), assembled from a
// hash, an AEAD, an HPKE binding (Go's crypto/hpke, or circl for X448) and a
// signature scheme, so a post-quantum suite such as X-Wing is one more value.
// For the DHKEMs over X25519 and the NIST curves the RFC 9180 key schedule
// is also written out (suite_hpkeinfo.go), so that the many encryptions of
// a Welcome or an UpdatePath hash their shared info once, and X25519 there
// is circl's assembly, faster than crypto/ecdh's.
// crypto.go holds the labeled functions of §5, keyschedule.go the epoch
// schedule of §8 (EpochSecrets, the exporter, the external key pair), psk.go
// the PSK ids and psk_secret, and secrettree.go the per-sender ratchets of §9.
// The secret tree zeroes each secret once it has been used and keeps skipped
// keys only within a bounded window (MaxForwardDistance, OutOfOrderTolerance).
//
// The ratchet tree (§4, §7) is RatchetTree: ParseRatchetTree and Marshal for
// the ratchet_tree extension, Resolution and FilteredDirectPath, TreeHash
// (§7.8), VerifyParentHashes and Validate (§7.9.2, §12.4.3.1), and AddLeaf,
// UpdateLeaf and RemoveLeaf for proposals (§12.1). TreeKEM (§7.4–7.6): a
// committer calls GeneratePath, builds the provisional GroupContext with the
// new tree hash, then EncryptPath; members call MergeUpdatePath, then
// TreePrivateKeys.DecryptPath for the commit secret; joiners call
// ImportPathSecret with the secret from PathUpdate.PathSecretFor. A tree
// keeps its tree hashes, resolutions and an index of its keys and updates
// them along the changed path only, and Clone shares its nodes until one of
// the copies changes them (treecache.go, treeindex.go, nodearray.go), so a
// commit in a group of N costs O(log N) beyond its cryptography; the
// independent HPKE encryptions of a commit and its Welcome run on all cores
// (parallel.go).
//
// keypackage.go, proposals.go, commit.go, welcome.go, groupinfo.go and
// framing.go hold the wire structures of §6, §7.6, §10 and §12. Content is
// signed into an AuthenticatedContent (SignFramedContent), then protected as a
// PublicMessage (ProtectPublic: membership tag) or a PrivateMessage
// (ProtectPrivate: secret-tree key with a reuse guard, encrypted sender data,
// zero padding). A receiver runs UnprotectPublic or UnprotectPrivate and then
// checks the signature with the sender's key. transcript.go advances the
// transcript hashes and computes confirmation tags.
//
// # Groups
//
// A Group is one client's state of one group (group*.go). GenerateKeyPackage
// makes a KeyPackage and its private half, which the client stores before
// publishing. CreateGroup starts a one-member group. Commit — or AddMembers,
// RemoveMembers, SelfUpdate, UpdateGroupContextExtensions — builds the next
// epoch on a copy and keeps it pending: send CommitResult.Message to the group
// and CommitResult.Welcome to the new members, then call MergePendingCommit
// once the delivery service accepted the commit, or DiscardPendingCommit if it
// refused; a winning commit from another member drops it too. New members call
// JoinFromWelcome; outsiders may JoinExternal with a GroupInfo, and a party
// the group lists in its external_senders extension (ExternalSendersExtension,
// WithExternalSender) sends proposals with ExternalProposal (externalsender.go,
// RFC 9420 §12.1.8.1) that members then commit by reference. A commit of a
// ReInit proposal (ProposeReInit; alone in its commit, §12.2) closes the
// group: it then refuses to send or accept anything of its last epoch
// (ErrReInitialized). A member creates the successor with
// CreateReInitGroup (the proposal's group id, version, suite and
// extensions, every member's KeyPackage in the new suite, and a resumption
// PSK of usage reinit from the old group's last epoch, §11.2) and the
// others follow with JoinReInit, which checks the Welcome's PSK and the new
// group against the proposal and the old membership. CreateBranch and
// JoinBranch do the same for a subgroup of some of the members with a
// resumption PSK of usage branch (§11.3); both are in reinit.go and fail
// with ErrResumptionMismatch when the new group does not fit. ProcessMessage
// handles everything a member receives and reports it in a Received; a commit
// for another epoch fails with ErrWrongEpoch. Protect encrypts application
// data. A failed operation leaves the group unchanged, and
// MarshalBinary/UnmarshalGroup store and restore it whole (group_wipe.go
// says which secrets stay in memory and which are zeroed). A Group is not
// safe for concurrent use; a ContentSigner (presign.go) is, and signs
// application content of one epoch outside the application's lock, for
// ProtectSigned to encrypt.
//
// # The application's decisions
//
// RFC 9420 leaves it to the application who may be a member and which
// changes it accepts (§5.3.1, §12.1.8, §16.10). A Policy (policy.go) holds
// those decisions; give it in CreateOptions, JoinOptions or
// ExternalJoinOptions, and again after UnmarshalGroup (SetPolicy or
// UnmarshalGroupWithPolicy: it is a runtime value, never stored).
//
//   - Identity, an IdentityProvider, sees every leaf that enters or changes
//     — Adds proposed, committed or received, Updates, a committer's
//     UpdatePath leaf, external commits, every leaf of a tree joined — as a
//     LeafInfo (credential, signature key, leaf index, origin), and with
//     ValidSuccessor every leaf that replaces a member's (an Update, a
//     commit's path, a resync): it must be the same client.
//   - Proposals, a ProposalFilter, decides which received proposals are
//     kept for a later commit, by sender type. The default keeps members'
//     proposals and external commits and refuses external senders' and
//     new members' proposals, which anyone knowing the group id could send.
//   - Commits, a CommitInspector, sees a StagedCommit — committer, adds,
//     removes, leaf changes with old and new credential, new extensions —
//     before a received commit merges, and may refuse it.
//   - Lifetimes bounds received KeyPackages' lifetimes (clock, skew,
//     maximum).
//
// A refusal is an error matching ErrCredentialRefused, ErrProposalRefused
// or ErrCommitRefused, and the group stays as it was. A commit this client
// makes covers only pending proposals that are still valid and that the
// policy accepts (§12.2: an invalid proposal by reference is left out),
// and never an Add that would bring back a member it removes. For example,
// to bind each basic credential to a known signature key:
//
//	type contacts map[string][]byte // identity → signature key
//
//	func (c contacts) ValidateLeaf(l *mls.LeafInfo) error {
//		if k, ok := c[string(l.Credential.Identity)]; !ok || !bytes.Equal(k, l.SignatureKey) {
//			return errors.New("unknown identity or key")
//		}
//		return nil
//	}
//
//	func (c contacts) ValidSuccessor(prev mls.Member, next *mls.LeafInfo) error {
//		if !bytes.Equal(prev.SignatureKey, next.SignatureKey) {
//			return errors.New("not the same client")
//		}
//		return nil
//	}
//
//	g.SetPolicy(mls.Policy{Identity: contacts{...}})
//
// ExamplePolicy runs it.
//
// # Conformance
//
// The official IETF test vectors live in testdata/ and run as subtests, one
// summary line per file:
//
//	go test -count=1 -v -run '^TestVectors' ./internal/mls/ | grep 'vectors '
//
// Set MLS_EXTRA_VECTORS to a folder of passive-client vector files to run
// those too. Every decoder has a fuzz target beside it.
package mls
