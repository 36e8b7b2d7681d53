package mls

import (
	"bytes"
	"fmt"
	"slices"
	"time"
)

// This file creates a group (RFC 9420 §11): a one-member group in epoch 0
// with a fresh epoch secret, from which members are added by commits.

// CreateOptions tunes CreateGroup. The zero value is valid.
type CreateOptions struct {
	// Extensions are the initial GroupContext extensions, for example a
	// private-use extension carrying the group's name. Their types are
	// added to the creator's capabilities.
	Extensions []Extension
	// ExtensionTypes are further non-default extension types the creator
	// supports (for extensions added later).
	ExtensionTypes []ExtensionType
	// Config tunes the group.
	Config Config
	// Policy holds the application's decisions for the group.
	Policy Policy
}

// CreateGroup creates a group with id groupID (16 random bytes if nil) in
// cipher suite cs, whose only member is signer.
func CreateGroup(cs CipherSuite, groupID []byte, signer *Signer, opts *CreateOptions) (*Group, error) {
	if opts == nil {
		opts = &CreateOptions{}
	}
	s, err := LookupSuite(cs)
	if err != nil {
		return nil, err
	}
	if groupID == nil {
		if groupID, err = randomBytes(16); err != nil {
			return nil, err
		}
	}
	exts := cloneExtensions(opts.Extensions)
	if err := checkGroupExtensions(s, exts); err != nil {
		return nil, err
	}
	extTypes := append([]ExtensionType{}, opts.ExtensionTypes...)
	for _, e := range exts {
		extTypes = append(extTypes, e.Type)
	}
	encPriv, encPub, err := s.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	leaf := &LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  bytes.Clone(signer.SignaturePub),
		Credential:    *cloneCredential(&signer.Credential),
		Capabilities:  defaultCapabilities(cs, extTypes, signer),
		Source:        LeafNodeSourceKeyPackage,
		Lifetime:      &Lifetime{NotBefore: uint64(now.Add(-time.Hour).Unix()), NotAfter: uint64(now.Add(DefaultKeyPackageLifetime).Unix())},
		Extensions:    []Extension{},
	}
	if err := leaf.Sign(s, signer.SignaturePriv, nil, 0); err != nil {
		return nil, err
	}
	if err := checkRequiredCapabilities(exts, leaf); err != nil {
		return nil, err
	}
	g := &Group{
		suite:  s,
		config: opts.Config,
		policy: opts.Policy,
		ctx: GroupContext{
			Version:                 MLS10,
			CipherSuite:             cs,
			GroupID:                 bytes.Clone(groupID),
			Epoch:                   0,
			ConfirmedTranscriptHash: []byte{},
			Extensions:              exts,
		},
		tree:           NewRatchetTree(leaf),
		self:           0,
		sigPriv:        bytes.Clone(signer.SignaturePriv),
		priv:           NewTreePrivateKeys(0, encPriv),
		resumption:     map[uint64][]byte{},
		psks:           map[string][]byte{},
		pendingUpdates: map[string][]byte{},
	}
	g.ctx.TreeHash = g.tree.TreeHash(s)
	initSecret, err := randomBytes(s.HashSize())
	if err != nil {
		return nil, err
	}
	joiner, err := DeriveJoinerSecret(s, initSecret, nil, g.ctx.Marshal())
	clear(initSecret)
	if err != nil {
		return nil, fmt.Errorf("mls: creating group: %w", err)
	}
	if err := g.installEpoch(joiner, nil); err != nil {
		return nil, err
	}
	// RFC 9420 §11: the confirmation tag over the empty transcript starts
	// the interim transcript hash.
	g.confirmationTag = s.MAC(g.keys.confirmationKey, g.ctx.ConfirmedTranscriptHash)
	g.interim = InterimTranscriptHash(s, g.ctx.ConfirmedTranscriptHash, g.confirmationTag)
	return g, nil
}

// installEpoch derives the secrets of the epoch described by g.ctx from the
// joiner secret and PSK secret and makes them g's current keys. It does not
// touch the past epochs.
func (g *Group) installEpoch(joiner, pskSecret []byte) error {
	es, err := DeriveEpochSecrets(g.suite, joiner, pskSecret, g.ctx.Marshal())
	if err != nil {
		return fmt.Errorf("mls: key schedule: %w", err)
	}
	st := NewSecretTree(g.suite, es.EncryptionSecret, g.tree.NumLeaves())
	g.configureSecretTree(st)
	g.keys = epochKeys{
		initSecret:         es.InitSecret,
		senderDataSecret:   es.SenderDataSecret,
		exporterSecret:     es.ExporterSecret,
		epochAuthenticator: es.EpochAuthenticator,
		externalSecret:     es.ExternalSecret,
		confirmationKey:    es.ConfirmationKey,
		membershipKey:      es.MembershipKey,
		resumptionPSK:      es.ResumptionPSK,
		secretTree:         st,
	}
	clear(es.JoinerSecret)
	clear(es.WelcomeSecret)
	clear(es.EpochSecret)
	clear(es.EncryptionSecret)
	if g.resumption == nil {
		g.resumption = map[uint64][]byte{}
	}
	g.resumption[g.ctx.Epoch] = es.ResumptionPSK
	// Keep the resumption PSKs of a bounded number of recent epochs.
	const keepResumption = 8
	for e := range g.resumption {
		if e+keepResumption < g.ctx.Epoch {
			delete(g.resumption, e)
		}
	}
	return nil
}

// checkGroupExtensions checks a GroupContext extension list: known
// extensions must decode.
func checkGroupExtensions(s Suite, exts []Extension) error {
	seen := map[ExtensionType]bool{}
	for _, e := range exts {
		if seen[e.Type] {
			return fmt.Errorf("%w: duplicate extension %d", ErrInvalidProposal, e.Type)
		}
		seen[e.Type] = true
		switch e.Type {
		case ExtensionRequiredCapabilities:
			if _, err := parseRequiredCapabilities(e.Data); err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidProposal, err)
			}
		case ExtensionRatchetTree, ExtensionExternalPub:
			return fmt.Errorf("%w: extension %d is not a GroupContext extension", ErrInvalidProposal, e.Type)
		case ExtensionExternalSenders:
			if err := checkExternalSenders(s, e.Data); err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidProposal, err)
			}
		}
	}
	return nil
}

// requiredCapabilities is the required_capabilities extension (RFC 9420
// §11.1).
type requiredCapabilities struct {
	Extensions  []ExtensionType
	Proposals   []ProposalType
	Credentials []CredentialType
}

func parseRequiredCapabilities(b []byte) (*requiredCapabilities, error) {
	r := NewReader(b)
	rc := &requiredCapabilities{
		Extensions:  readUint16List[ExtensionType](r),
		Proposals:   readUint16List[ProposalType](r),
		Credentials: readUint16List[CredentialType](r),
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("required_capabilities: %w", err)
	}
	return rc, nil
}

// RequiredCapabilitiesExtension returns a required_capabilities GroupContext
// extension (RFC 9420 §11.1).
func RequiredCapabilitiesExtension(exts []ExtensionType, proposals []ProposalType, creds []CredentialType) Extension {
	b := appendUint16List(nil, exts)
	b = appendUint16List(b, proposals)
	b = appendUint16List(b, creds)
	return Extension{Type: ExtensionRequiredCapabilities, Data: b}
}

// checkRequiredCapabilities checks that ln supports what the GroupContext
// extensions require: everything in required_capabilities, and every
// non-default GroupContext extension type.
func checkRequiredCapabilities(exts []Extension, ln *LeafNode) error {
	for _, e := range exts {
		if !isDefaultExtension(e.Type) && !slices.Contains(ln.Capabilities.Extensions, e.Type) {
			return fmt.Errorf("%w: member does not support group extension %d", ErrInvalidLeafNode, e.Type)
		}
	}
	e, ok := FindExtension(exts, ExtensionRequiredCapabilities)
	if !ok {
		return nil
	}
	rc, err := parseRequiredCapabilities(e.Data)
	if err != nil {
		return err
	}
	for _, t := range rc.Extensions {
		if !isDefaultExtension(t) && !slices.Contains(ln.Capabilities.Extensions, t) {
			return fmt.Errorf("%w: required extension %d not supported", ErrInvalidLeafNode, t)
		}
	}
	for _, t := range rc.Proposals {
		if !isDefaultProposal(t) && !slices.Contains(ln.Capabilities.Proposals, t) {
			return fmt.Errorf("%w: required proposal type %d not supported", ErrInvalidLeafNode, t)
		}
	}
	for _, t := range rc.Credentials {
		if !slices.Contains(ln.Capabilities.Credentials, t) {
			return fmt.Errorf("%w: required credential type %v not supported", ErrInvalidLeafNode, t)
		}
	}
	return nil
}
