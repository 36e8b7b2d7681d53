package mls

import (
	"errors"
	"fmt"
	"slices"
)

// This file checks a ratchet tree received from others, as a joiner does
// (RFC 9420 §12.4.3.1) and as members do after a Commit.

// ErrInvalidTree is matched (errors.Is) by every failure to validate a
// ratchet tree or to apply a change to it.
var ErrInvalidTree = errors.New("mls: invalid ratchet tree")

// defaultExtension reports whether an extension type is a default one,
// which capabilities do not list (RFC 9420 §7.2).
func defaultExtension(t ExtensionType) bool { return t >= 1 && t <= 5 }

// CheckCapabilities checks that ln's capabilities list its credential type
// and every non-default extension it carries (RFC 9420 §7.2, §7.3).
func (ln *LeafNode) CheckCapabilities() error {
	if !slices.Contains(ln.Capabilities.Credentials, ln.Credential.Type) {
		return fmt.Errorf("leaf credential type %v not in its capabilities", ln.Credential.Type)
	}
	for _, e := range ln.Extensions {
		if !defaultExtension(e.Type) && !slices.Contains(ln.Capabilities.Extensions, e.Type) {
			return fmt.Errorf("leaf extension %d not in its capabilities", e.Type)
		}
	}
	return nil
}

// Validate checks the integrity of a tree for the group groupID (RFC 9420
// §12.4.3.1): every non-blank parent node is parent-hash valid, every leaf
// is signed by its own key (with groupID and its index where the leaf's
// source requires it) and lists its credential type and extensions in its
// capabilities, every credential type in use is supported by every member,
// unmerged leaves are consistent, and no HPKE or signature key appears
// twice. It does not compare the tree hash with a GroupInfo's, which is the
// caller's job, nor leaf lifetimes.
func (t *RatchetTree) Validate(s Suite, groupID []byte) error {
	if err := t.VerifyParentHashes(s); err != nil {
		return err
	}
	if err := t.VerifyLeaves(s, groupID); err != nil {
		return err
	}
	if err := t.verifyUnmergedLeaves(); err != nil {
		return err
	}
	if err := t.verifyHPKEKeys(s); err != nil {
		return err
	}
	return t.verifyUniqueKeys()
}

// verifyHPKEKeys checks that every node's HPKE public key is valid for the
// suite (RFC 9420 §7.3).
func (t *RatchetTree) verifyHPKEKeys(s Suite) error {
	for x := range t.nodes.len() {
		n := t.nodes.at(NodeIndex(x))
		if n.Blank() {
			continue
		}
		if err := s.CheckHPKEPublicKey(n.EncryptionKey()); err != nil {
			return fmt.Errorf("%w: node %d: %w", ErrInvalidTree, x, err)
		}
	}
	return nil
}

// VerifyLeaves checks the signature and capabilities of every non-blank
// leaf, and that every member supports every credential type in use.
func (t *RatchetTree) VerifyLeaves(s Suite, groupID []byte) error {
	var credTypes []CredentialType
	for _, i := range t.Members() {
		ln := t.LeafNode(i)
		if err := ln.VerifySignature(s, groupID, i); err != nil {
			return fmt.Errorf("%w: leaf %d: %w", ErrInvalidTree, i, err)
		}
		if err := ln.CheckCapabilities(); err != nil {
			return fmt.Errorf("%w: leaf %d: %w", ErrInvalidTree, i, err)
		}
		if !slices.Contains(credTypes, ln.Credential.Type) {
			credTypes = append(credTypes, ln.Credential.Type)
		}
	}
	return t.checkCredentialTypes(credTypes)
}

// checkCredentialTypes checks that every member supports every credential
// type of types (all types in use if nil).
func (t *RatchetTree) checkCredentialTypes(types []CredentialType) error {
	if types == nil {
		for _, i := range t.Members() {
			if ct := t.LeafNode(i).Credential.Type; !slices.Contains(types, ct) {
				types = append(types, ct)
			}
		}
	}
	for _, i := range t.Members() {
		for _, ct := range types {
			if !slices.Contains(t.LeafNode(i).Capabilities.Credentials, ct) {
				return fmt.Errorf("%w: leaf %d does not support credential type %v in use", ErrInvalidTree, i, ct)
			}
		}
	}
	return nil
}

// checkChangedCredentialTypes is checkCredentialTypes(nil) for t, the tree
// after a commit changed the leaves in changed (added, updated, the
// committer's path leaf), where old, the tree before it, passed that check
// (every commit and every join checks it). An unchanged member then
// supports every type that was in use, and every such type is listed by
// every old member's capabilities. So when each changed leaf has the
// credential type of one old member, ref, and supports every type ref
// supports, the rule still holds, and only the changed leaves were looked
// at; otherwise the whole tree is checked, so the result is exactly the
// rule's (RFC 9420 §7.3, §12.4.2).
func (t *RatchetTree) checkChangedCredentialTypes(old *RatchetTree, changed []LeafIndex) error {
	ref := old.firstLeaf()
	if ref == nil {
		return t.checkCredentialTypes(nil)
	}
	for _, l := range changed {
		ln := t.LeafNode(l)
		if ln == nil {
			continue
		}
		if ln.Credential.Type != ref.Credential.Type || !supportsAll(ln.Capabilities.Credentials, ref.Capabilities.Credentials) {
			return t.checkCredentialTypes(nil)
		}
	}
	return nil
}

// firstLeaf returns the leftmost non-blank leaf, or nil.
func (t *RatchetTree) firstLeaf() *LeafNode {
	for x := 0; x < t.nodes.len(); x += 2 {
		if ln := t.nodes.at(NodeIndex(x)).Leaf; ln != nil {
			return ln
		}
	}
	return nil
}

// supportsAll reports whether have lists every type of want.
func supportsAll(have, want []CredentialType) bool {
	for _, ct := range want {
		if !slices.Contains(have, ct) {
			return false
		}
	}
	return true
}

// verifyUnmergedLeaves checks that each unmerged leaf of a parent node P is
// a non-blank leaf below P, and that every non-blank node between the leaf
// and P lists it too.
func (t *RatchetTree) verifyUnmergedLeaves() error {
	n := t.NumLeaves()
	for x := range t.nodes.len() {
		p := t.nodes.at(NodeIndex(x)).Parent
		if p == nil {
			continue
		}
		px := NodeIndex(x)
		if err := t.checkUnmergedShape(px, p); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidTree, err)
		}
		for _, l := range p.UnmergedLeaves {
			if t.LeafNode(l) == nil {
				return fmt.Errorf("%w: unmerged leaf %d of node %d is blank", ErrInvalidTree, l, px)
			}
			for _, y := range DirectPath(l.Node(), n) {
				if y == px {
					break
				}
				if q := t.nodes.at(y).Parent; q != nil && !slices.Contains(q.UnmergedLeaves, l) {
					return fmt.Errorf("%w: leaf %d unmerged at node %d but not at node %d below it", ErrInvalidTree, l, px, y)
				}
			}
		}
	}
	return nil
}

// verifyUniqueKeys checks that no HPKE key appears in two nodes and no
// signature key in two leaves.
func (t *RatchetTree) verifyUniqueKeys() error {
	if t.keyIndex().dups == 0 {
		return nil
	}
	enc := make(map[string]NodeIndex)
	sig := make(map[string]NodeIndex)
	for x := range t.nodes.len() {
		n := t.nodes.at(NodeIndex(x))
		if n.Blank() {
			continue
		}
		k := string(n.EncryptionKey())
		if y, dup := enc[k]; dup {
			return fmt.Errorf("%w: nodes %d and %d share an encryption key", ErrInvalidTree, y, x)
		}
		enc[k] = NodeIndex(x)
		if n.Leaf != nil {
			k := string(n.Leaf.SignatureKey)
			if y, dup := sig[k]; dup {
				return fmt.Errorf("%w: nodes %d and %d share a signature key", ErrInvalidTree, y, x)
			}
			sig[k] = NodeIndex(x)
		}
	}
	return nil
}

// publicKeys returns the set of every HPKE key of the tree's nodes and
// every leaf's signature key.
func (t *RatchetTree) publicKeys() map[string]bool {
	keys := map[string]bool{}
	for x := range t.nodes.len() {
		n := t.nodes.at(NodeIndex(x))
		if n.Blank() {
			continue
		}
		keys[string(n.EncryptionKey())] = true
		if n.Leaf != nil {
			keys[string(n.Leaf.SignatureKey)] = true
		}
	}
	return keys
}
