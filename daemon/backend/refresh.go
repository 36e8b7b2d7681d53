package backend

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
)

// Capability refresh. A member's leaf lists the credential types its
// client supports (RFC 9420 §7.2), and a group takes a client only when
// every member supports its credential type (§12.1.1). Leaves made before
// linked devices list the basic type only, so a group made then cannot
// take a device's x509 credential until each member renews its leaf. qpd
// does so itself: once connected, and before it adds devices to a group,
// it commits one self-update (the update intent, which gives the new leaf
// the credential types of its signer now) in every group where a leaf of
// this device lacks one. When another member's leaf lacks the type, an
// Add fails with a MembersMustUpdateError naming them: their qpd does the
// same refresh once it runs code that knows linked devices.

// ErrMembersMustUpdate is matched by a MembersMustUpdateError.
var ErrMembersMustUpdate = errors.New("group members must update first")

// MembersMustUpdateError tells that devices could not be added to a group
// because some members' leaves do not support their credential type.
type MembersMustUpdateError struct {
	Group []byte
	Type  mls.CredentialType
	// Devices are the leaves' signature keys, People the persons they
	// speak for (in the same order).
	Devices [][]byte
	People  []ed25519.PublicKey
	// Self tells that one of them is this device.
	Self bool
}

func (e *MembersMustUpdateError) Error() string {
	names := make([]string, len(e.People))
	for i, p := range e.People {
		names[i] = FormatKey(p)
		if !bytes.Equal(p, e.Devices[i]) {
			names[i] += " (device " + FormatKey(e.Devices[i]) + ")"
		}
	}
	return fmt.Sprintf("%v: in group %s, %s must run a qpd that supports %v credentials (linked devices); it updates its membership itself once connected",
		ErrMembersMustUpdate, FormatKey(e.Group), strings.Join(names, ", "), e.Type)
}

// Unwrap makes the error match ErrMembersMustUpdate and, like any Add the
// group refuses, ErrInvalidArgument.
func (e *MembersMustUpdateError) Unwrap() []error {
	return []error{ErrMembersMustUpdate, ErrInvalidArgument}
}

// membersMustUpdate returns a MembersMustUpdateError when a member of g
// lacks the credential type of one of kps, else nil.
func membersMustUpdate(g *mls.Group, kps []*mls.KeyPackage) error {
	for _, kp := range kps {
		t := kp.LeafNode.Credential.Type
		e := &MembersMustUpdateError{Group: g.GroupID(), Type: t}
		for _, m := range g.Members() {
			if types, _ := g.CredentialTypesOf(m.Leaf); slices.Contains(types, t) {
				continue
			}
			e.Devices = append(e.Devices, m.SignatureKey)
			u := userOf(m)
			if u == nil {
				u = m.SignatureKey
			}
			e.People = append(e.People, u)
			e.Self = e.Self || m.Leaf == g.OwnLeaf()
		}
		if len(e.Devices) > 0 {
			return e
		}
	}
	return nil
}

// basicOnlySigner makes single-device signers list the basic credential
// type only, as qpd did before linked devices: tests make groups as older
// qpd made them.
var basicOnlySigner atomic.Bool

// ownCredentialTypes are the further credential types this device's
// signer supports now (mls.Signer.CredentialTypes).
func (b *Backend) ownCredentialTypes(ctx context.Context) ([]mls.CredentialType, error) {
	id, err := b.identity(ctx)
	if err != nil {
		return nil, err
	}
	s, err := signer(id)
	if err != nil {
		return nil, err
	}
	clear(s.SignaturePriv)
	types := []mls.CredentialType{mls.CredentialBasic, s.Credential.Type}
	return append(types, s.CredentialTypes...), nil
}

// staleLeaf reports whether this device's leaf in g lacks one of types.
func staleLeaf(g *mls.Group, types []mls.CredentialType) bool {
	have, ok := g.CredentialTypesOf(g.OwnLeaf())
	if !ok || !g.Active() {
		return false
	}
	for _, t := range types {
		if !slices.Contains(have, t) {
			return true
		}
	}
	return false
}

// staleGroups lists the groups (all when only is nil) where this device's
// leaf lacks one of types.
func (b *Backend) staleGroups(ctx context.Context, types []mls.CredentialType, only []byte) ([][]byte, error) {
	var out [][]byte
	err := b.view(ctx, func(tx *store.Tx) error {
		var gs []store.Group
		if only != nil {
			sg, err := tx.Group(only)
			if err != nil {
				return err
			}
			gs = []store.Group{sg}
		} else {
			var err error
			if gs, err = tx.Groups(false); err != nil {
				return err
			}
		}
		for _, sg := range gs {
			g, err := unmarshalStored(sg)
			if err != nil {
				continue // a state qpd cannot read has no leaf to renew
			}
			if staleLeaf(g, types) {
				out = append(out, sg.ID)
			}
		}
		return nil
	})
	return out, err
}

// RefreshCapabilities commits a self-update in every group (or only in
// group, a hex id) where this device's leaf lacks a credential type its
// signer supports now, and returns how many it renewed. A group it cannot
// commit in is logged and skipped.
func (b *Backend) RefreshCapabilities(ctx context.Context, group []byte) (int, error) {
	types, err := b.ownCredentialTypes(ctx)
	if err != nil {
		return 0, err
	}
	ids, err := b.staleGroups(ctx, types, group)
	if err != nil {
		return 0, opError("refresh capabilities", err)
	}
	n := 0
	for _, id := range ids {
		if _, _, err := b.runPlan(ctx, FormatKey(id), commitPlan{kind: intentUpdate}, 0); err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			b.log.Warn("leaf capabilities not renewed", "group", FormatKey(id), "err", err)
			continue
		}
		b.log.Info("renewed leaf capabilities", "group", FormatKey(id))
		n++
	}
	return n, nil
}

// refreshBeforeAdd renews this device's leaf in the group ref names when
// it lacks a credential type, so that the Add that follows is not refused
// for this device's own sake. Failures are the Add's to report.
func (b *Backend) refreshBeforeAdd(ctx context.Context, ref string) {
	sg, err := b.ResolveGroup(ctx, ref)
	if err != nil {
		return
	}
	if _, err := b.RefreshCapabilities(ctx, sg.ID); err != nil {
		b.log.Warn("leaf capabilities before an add", "group", FormatKey(sg.ID), "err", err)
	}
}
