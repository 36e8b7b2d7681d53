package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/quicproquo/quicproquo/internal/mls/interop/mlsclientpb"
)

// StepError reports the step at which a script stopped.
type StepError struct {
	Index  int
	Action Action
	Actor  string
	Err    error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %d (%s by %q): %v", e.Index, e.Action, e.Actor, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// Unimplemented reports whether the step stopped because a client answered
// codes.Unimplemented (it does not support the operation), as opposed to
// giving a wrong or failing answer.
func (e *StepError) Unimplemented() bool {
	return status.Code(e.Err) == codes.Unimplemented || errors.Is(e.Err, errUnsupportedAction)
}

var errUnsupportedAction = status.Error(codes.Unimplemented, "action not supported by the runner")

// ScriptRun is one run of a script: a cipher suite, whether handshake
// messages are PrivateMessages, and the client that plays each actor.
type ScriptRun struct {
	Suite            uint32
	EncryptHandshake bool
	Clients          map[string]pb.MLSClientClient

	stateID       map[string]uint32
	transactionID map[string]uint32
	signerID      map[string]uint32 // external signers
	cache         []map[string][]byte
	groupID       []byte // of the group the script works on
	// retired are the states in the old group of members that moved to a
	// reinitialized group or a branch, freed at the end with the others.
	retired []retiredState
}

type retiredState struct {
	actor string
	id    uint32
}

// moveTo records that actor's current state is now id, keeping the old
// one for freeing.
func (r *ScriptRun) moveTo(actor string, id uint32) {
	if old, ok := r.stateID[actor]; ok {
		r.retired = append(r.retired, retiredState{actor, old})
	}
	r.stateID[actor] = id
}

// Run carries out the script step by step and stops at the first failure,
// which it returns as a *StepError. Every commit is checked the way the
// interop runner checks it: the committer, each member that handles it and
// each joiner must report the same epoch authenticator, and every unprotected
// message must give back the plaintext and authenticated data sent.
// At the end every group state the script created is freed.
func (r *ScriptRun) Run(ctx context.Context, s Script) error {
	r.stateID = map[string]uint32{}
	r.transactionID = map[string]uint32{}
	r.signerID = map[string]uint32{}
	r.retired = nil
	r.cache = make([]map[string][]byte, len(s))
	for i := range r.cache {
		r.cache[i] = map[string][]byte{}
	}
	for _, a := range s.Actors() {
		if r.Clients[a] == nil {
			return fmt.Errorf("%w: no client for actor %q", ErrConfig, a)
		}
	}
	for i, st := range s {
		if err := r.step(ctx, i, st); err != nil {
			return &StepError{Index: i, Action: st.Action, Actor: st.Actor, Err: err}
		}
	}
	for actor, id := range r.stateID {
		if _, err := r.Clients[actor].Free(ctx, &pb.FreeRequest{StateId: id}); err != nil && status.Code(err) != codes.Unimplemented {
			return fmt.Errorf("free state of %q: %w", actor, err)
		}
	}
	for _, old := range r.retired {
		if _, err := r.Clients[old.actor].Free(ctx, &pb.FreeRequest{StateId: old.id}); err != nil && status.Code(err) != codes.Unimplemented {
			return fmt.Errorf("free old state of %q: %w", old.actor, err)
		}
	}
	return nil
}

func (r *ScriptRun) put(i int, key string, v []byte) { r.cache[i][key] = v }

func (r *ScriptRun) get(i int, key string) ([]byte, error) {
	v, ok := r.cache[i][key]
	if !ok {
		return nil, fmt.Errorf("%w: step %d holds no %s", ErrConfig, i, key)
	}
	return v, nil
}

func (r *ScriptRun) state(actor string) (uint32, error) {
	id, ok := r.stateID[actor]
	if !ok {
		return 0, fmt.Errorf("%w: %q has no group state yet", ErrConfig, actor)
	}
	return id, nil
}

func (r *ScriptRun) proposals(idx []int) ([][]byte, error) {
	out := make([][]byte, len(idx))
	for k, j := range idx {
		p, err := r.get(j, "proposal")
		if err != nil {
			return nil, err
		}
		out[k] = p
	}
	return out, nil
}

func (r *ScriptRun) describe(pds []ProposalDescription) ([]*pb.ProposalDescription, error) {
	out := make([]*pb.ProposalDescription, len(pds))
	for k, pd := range pds {
		d := &pb.ProposalDescription{ProposalType: []byte(pd.ProposalType)}
		var err error
		switch pd.ProposalType {
		case "add":
			d.KeyPackage, err = r.get(pd.KeyPackage, "key_package")
		case "remove":
			d.RemovedId = []byte(pd.Removed)
		case "externalPSK":
			d.PskId, err = r.get(pd.PSKID, "psk_id")
		case "resumptionPSK":
			d.EpochId = pd.EpochID
		case "groupContextExtensions":
			d.Extensions = pbExtensions(pd.Extensions)
		case "reinit":
			d.Extensions = pbExtensions(pd.Extensions)
			d.CipherSuite = r.Suite
			if pd.ChangeCipherSuite {
				d.CipherSuite = otherSuite(r.Suite)
			}
			if pd.ChangeGroupID {
				d.GroupId = randomBytes(16)
			}
		default:
			return nil, fmt.Errorf("%w: proposal type %q", errUnsupportedAction, pd.ProposalType)
		}
		if err != nil {
			return nil, err
		}
		out[k] = d
	}
	return out, nil
}

// otherSuite picks a cipher suite other than cs for a ReInit that changes
// it.
func otherSuite(cs uint32) uint32 {
	if cs == 1 {
		return 2
	}
	return 1
}

func pbExtensions(exts []Extension) []*pb.Extension {
	out := make([]*pb.Extension, len(exts))
	for i, e := range exts {
		out[i] = &pb.Extension{ExtensionType: e.Type, ExtensionData: e.Data}
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}

// joinAll has each joiner take the Welcome and checks its epoch authenticator.
func (r *ScriptRun) joinAll(ctx context.Context, joiners []string, welcome, tree, auth []byte) error {
	for _, j := range joiners {
		tx, ok := r.transactionID[j]
		if !ok {
			return fmt.Errorf("%w: joiner %q made no KeyPackage", ErrConfig, j)
		}
		resp, err := r.Clients[j].JoinGroup(ctx, &pb.JoinGroupRequest{
			TransactionId: tx, Welcome: welcome, EncryptHandshake: r.EncryptHandshake,
			Identity: []byte(j), RatchetTree: tree,
		})
		if err != nil {
			return fmt.Errorf("JoinGroup by %q: %w", j, err)
		}
		if !bytes.Equal(resp.EpochAuthenticator, auth) {
			return fmt.Errorf("joiner %q disagrees on the epoch authenticator", j)
		}
		r.stateID[j] = resp.StateId
	}
	return nil
}

// handleAll has each member process a commit and checks its epoch authenticator.
func (r *ScriptRun) handleAll(ctx context.Context, members []string, proposals [][]byte, commit, auth []byte) error {
	for _, m := range members {
		id, err := r.state(m)
		if err != nil {
			return err
		}
		resp, err := r.Clients[m].HandleCommit(ctx, &pb.HandleCommitRequest{StateId: id, Proposal: proposals, Commit: commit})
		if err != nil {
			return fmt.Errorf("HandleCommit by %q: %w", m, err)
		}
		if !bytes.Equal(resp.EpochAuthenticator, auth) {
			return fmt.Errorf("member %q disagrees on the epoch authenticator", m)
		}
		r.stateID[m] = resp.StateId
	}
	return nil
}

func (r *ScriptRun) step(ctx context.Context, i int, st Step) error {
	c := r.Clients[st.Actor]
	switch st.Action {
	case ActionCreateGroup:
		groupID := randomBytes(16)
		resp, err := c.CreateGroup(ctx, &pb.CreateGroupRequest{
			GroupId: groupID, CipherSuite: r.Suite, EncryptHandshake: r.EncryptHandshake, Identity: []byte(st.Actor),
		})
		if err != nil {
			return err
		}
		r.stateID[st.Actor] = resp.StateId
		r.put(i, "group_id", groupID)
		r.groupID = groupID
		if len(st.Members) == 0 {
			return nil
		}
		adds := make([]*pb.ProposalDescription, len(st.Members))
		for k, m := range st.Members {
			kp, err := r.Clients[m].CreateKeyPackage(ctx, &pb.CreateKeyPackageRequest{CipherSuite: r.Suite, Identity: []byte(m)})
			if err != nil {
				return fmt.Errorf("CreateKeyPackage by %q: %w", m, err)
			}
			r.transactionID[m] = kp.TransactionId
			adds[k] = &pb.ProposalDescription{ProposalType: []byte("add"), KeyPackage: kp.KeyPackage}
		}
		cr, err := c.Commit(ctx, &pb.CommitRequest{StateId: resp.StateId, ByValue: adds})
		if err != nil {
			return fmt.Errorf("Commit: %w", err)
		}
		hr, err := c.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: resp.StateId})
		if err != nil {
			return fmt.Errorf("HandlePendingCommit: %w", err)
		}
		r.stateID[st.Actor] = hr.StateId
		return r.joinAll(ctx, st.Members, cr.Welcome, nil, hr.EpochAuthenticator)

	case ActionCreateKeyPackage:
		resp, err := c.CreateKeyPackage(ctx, &pb.CreateKeyPackageRequest{CipherSuite: r.Suite, Identity: []byte(st.Actor)})
		if err != nil {
			return err
		}
		r.transactionID[st.Actor] = resp.TransactionId
		r.put(i, "key_package", resp.KeyPackage)
		return nil

	case ActionJoinGroup:
		welcome, err := r.get(st.Welcome, "welcome")
		if err != nil {
			return err
		}
		tx, ok := r.transactionID[st.Actor]
		if !ok {
			return fmt.Errorf("%w: %q made no KeyPackage", ErrConfig, st.Actor)
		}
		resp, err := c.JoinGroup(ctx, &pb.JoinGroupRequest{
			TransactionId: tx, Welcome: welcome, EncryptHandshake: r.EncryptHandshake, Identity: []byte(st.Actor),
		})
		if err != nil {
			return err
		}
		r.stateID[st.Actor] = resp.StateId
		return nil

	case ActionExternalJoin:
		id, err := r.state(st.Actor)
		if err != nil {
			return err
		}
		gi, err := c.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: id, ExternalTree: st.ExternalTreeJ})
		if err != nil {
			return fmt.Errorf("GroupInfo: %w", err)
		}
		r.put(i, "group_info", gi.GroupInfo)
		r.put(i, "ratchet_tree", gi.RatchetTree)
		psks := make([]*pb.PreSharedKey, len(st.PSKs))
		for k, j := range st.PSKs {
			pid, err := r.get(j, "psk_id")
			if err != nil {
				return err
			}
			sec, err := r.get(j, "psk_secret")
			if err != nil {
				return err
			}
			psks[k] = &pb.PreSharedKey{PskId: pid, PskSecret: sec}
		}
		ej, err := r.Clients[st.Joiner].ExternalJoin(ctx, &pb.ExternalJoinRequest{
			GroupInfo: gi.GroupInfo, RatchetTree: gi.RatchetTree, EncryptHandshake: r.EncryptHandshake,
			Identity: []byte(st.Joiner), RemovePrior: st.RemovePrior, Psks: psks,
		})
		if err != nil {
			return fmt.Errorf("ExternalJoin by %q: %w", st.Joiner, err)
		}
		r.stateID[st.Joiner] = ej.StateId
		r.put(i, "commit", ej.Commit)
		r.put(i, "epoch_authenticator", ej.EpochAuthenticator)
		return r.handleAll(ctx, append(append([]string(nil), st.Members...), st.Actor), nil, ej.Commit, ej.EpochAuthenticator)

	case ActionInstallExternalPSK:
		pid, sec := randomBytes(32), randomBytes(32)
		r.put(i, "psk_id", pid)
		r.put(i, "psk_secret", sec)
		for _, cl := range st.Clients {
			id, ok := r.stateID[cl]
			if !ok {
				id = r.transactionID[cl]
			}
			if _, err := r.Clients[cl].StorePSK(ctx, &pb.StorePSKRequest{StateOrTransactionId: id, PskId: pid, PskSecret: sec}); err != nil {
				return fmt.Errorf("StorePSK at %q: %w", cl, err)
			}
		}
		return nil

	case ActionGroupInfo:
		id, err := r.state(st.Actor)
		if err != nil {
			return err
		}
		gi, err := c.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: id, ExternalTree: st.ExternalTreeJ})
		if err != nil {
			return err
		}
		r.put(i, "group_info", gi.GroupInfo)
		r.put(i, "ratchet_tree", gi.RatchetTree)
		return nil

	case ActionAddProposal, ActionUpdateProposal, ActionRemoveProposal, ActionExternalPSKProposal,
		ActionResumptionPSKProposal, ActionGroupContextExtensionsProposal:
		id, err := r.state(st.Actor)
		if err != nil {
			return err
		}
		var resp *pb.ProposalResponse
		switch st.Action {
		case ActionAddProposal:
			kp, err := r.get(st.KeyPackage, "key_package")
			if err != nil {
				return err
			}
			resp, err = c.AddProposal(ctx, &pb.AddProposalRequest{StateId: id, KeyPackage: kp})
			if err != nil {
				return err
			}
		case ActionUpdateProposal:
			resp, err = c.UpdateProposal(ctx, &pb.UpdateProposalRequest{StateId: id})
		case ActionRemoveProposal:
			resp, err = c.RemoveProposal(ctx, &pb.RemoveProposalRequest{StateId: id, RemovedId: []byte(st.Removed)})
		case ActionExternalPSKProposal:
			pid, err := r.get(st.PSKID, "psk_id")
			if err != nil {
				return err
			}
			resp, err = c.ExternalPSKProposal(ctx, &pb.ExternalPSKProposalRequest{StateId: id, PskId: pid})
			if err != nil {
				return err
			}
		case ActionResumptionPSKProposal:
			resp, err = c.ResumptionPSKProposal(ctx, &pb.ResumptionPSKProposalRequest{StateId: id, EpochId: st.EpochID})
		case ActionGroupContextExtensionsProposal:
			resp, err = c.GroupContextExtensionsProposal(ctx, &pb.GroupContextExtensionsProposalRequest{
				StateId: id, Extensions: pbExtensions(st.Extensions),
			})
		}
		if err != nil {
			return err
		}
		r.put(i, "proposal", resp.Proposal)
		return nil

	case ActionFullCommit, ActionCommit:
		id, err := r.state(st.Actor)
		if err != nil {
			return err
		}
		byRef, err := r.proposals(st.ByReference)
		if err != nil {
			return err
		}
		byVal, err := r.describe(st.ByValue)
		if err != nil {
			return err
		}
		cr, err := c.Commit(ctx, &pb.CommitRequest{
			StateId: id, ByReference: byRef, ByValue: byVal, ForcePath: st.ForcePath, ExternalTree: st.ExternalTree,
		})
		if err != nil {
			return fmt.Errorf("Commit: %w", err)
		}
		r.put(i, "commit", cr.Commit)
		r.put(i, "welcome", cr.Welcome)
		var tree []byte
		if st.ExternalTree {
			if len(cr.RatchetTree) == 0 {
				return errors.New("external_tree asked for but the commit came without a ratchet tree")
			}
			tree = cr.RatchetTree
			r.put(i, "ratchet_tree", tree)
		}
		if st.Action == ActionCommit {
			return nil
		}
		hr, err := c.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: id})
		if err != nil {
			return fmt.Errorf("HandlePendingCommit: %w", err)
		}
		r.stateID[st.Actor] = hr.StateId
		r.put(i, "epoch_authenticator", hr.EpochAuthenticator)
		if err := r.handleAll(ctx, st.Members, byRef, cr.Commit, hr.EpochAuthenticator); err != nil {
			return err
		}
		if len(st.Joiners) > 0 && len(cr.Welcome) == 0 {
			return errors.New("commit adds joiners but came without a Welcome")
		}
		return r.joinAll(ctx, st.Joiners, cr.Welcome, tree, hr.EpochAuthenticator)

	case ActionHandleCommit:
		id, err := r.state(st.Actor)
		if err != nil {
			return err
		}
		commit, err := r.get(st.Commit, "commit")
		if err != nil {
			return err
		}
		byRef, err := r.proposals(st.ByReference)
		if err != nil {
			return err
		}
		resp, err := c.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: id, Proposal: byRef, Commit: commit})
		if err != nil {
			return err
		}
		r.stateID[st.Actor] = resp.StateId
		if want, ok := r.cache[st.Commit]["epoch_authenticator"]; ok && !bytes.Equal(want, resp.EpochAuthenticator) {
			return fmt.Errorf("%q disagrees on the epoch authenticator", st.Actor)
		}
		return nil

	case ActionHandlePendingCommit:
		id, err := r.state(st.Actor)
		if err != nil {
			return err
		}
		resp, err := c.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: id})
		if err != nil {
			return err
		}
		r.stateID[st.Actor] = resp.StateId
		return nil

	case ActionProtect:
		id, err := r.state(st.Actor)
		if err != nil {
			return err
		}
		aad, pt := []byte(st.AuthenticatedData), []byte(st.Plaintext)
		resp, err := c.Protect(ctx, &pb.ProtectRequest{StateId: id, AuthenticatedData: aad, Plaintext: pt})
		if err != nil {
			return err
		}
		if len(pt) >= 8 && bytes.Contains(resp.Ciphertext, pt) {
			return errors.New("protected message carries the plaintext in the clear")
		}
		r.put(i, "authenticated_data", aad)
		r.put(i, "plaintext", pt)
		r.put(i, "ciphertext", resp.Ciphertext)
		return nil

	case ActionUnprotect:
		id, err := r.state(st.Actor)
		if err != nil {
			return err
		}
		ct, err := r.get(st.Ciphertext, "ciphertext")
		if err != nil {
			return err
		}
		resp, err := c.Unprotect(ctx, &pb.UnprotectRequest{StateId: id, Ciphertext: ct})
		if err != nil {
			return err
		}
		if !bytes.Equal(resp.Plaintext, r.cache[st.Ciphertext]["plaintext"]) {
			return fmt.Errorf("plaintext %q, want %q", resp.Plaintext, r.cache[st.Ciphertext]["plaintext"])
		}
		if !bytes.Equal(resp.AuthenticatedData, r.cache[st.Ciphertext]["authenticated_data"]) {
			return fmt.Errorf("authenticated data %q, want %q", resp.AuthenticatedData, r.cache[st.Ciphertext]["authenticated_data"])
		}
		return nil

	case ActionNewMemberAddProposal:
		id, err := r.state(st.Actor)
		if err != nil {
			return err
		}
		gi, err := c.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: id})
		if err != nil {
			return fmt.Errorf("GroupInfo: %w", err)
		}
		resp, err := r.Clients[st.Joiner].NewMemberAddProposal(ctx, &pb.NewMemberAddProposalRequest{GroupInfo: gi.GroupInfo, Identity: []byte(st.Joiner)})
		if err != nil {
			return fmt.Errorf("NewMemberAddProposal by %q: %w", st.Joiner, err)
		}
		r.transactionID[st.Joiner] = resp.TransactionId
		r.put(i, "proposal", resp.Proposal)
		return nil

	case ActionAddExternalSigner:
		id, err := r.state(st.Actor)
		if err != nil {
			return err
		}
		cs, err := r.Clients[st.Signer].CreateExternalSigner(ctx, &pb.CreateExternalSignerRequest{CipherSuite: r.Suite, Identity: []byte(st.Signer)})
		if err != nil {
			return fmt.Errorf("CreateExternalSigner by %q: %w", st.Signer, err)
		}
		r.signerID[st.Signer] = cs.SignerId
		resp, err := c.AddExternalSigner(ctx, &pb.AddExternalSignerRequest{StateId: id, ExternalSender: cs.ExternalSender})
		if err != nil {
			return err
		}
		r.put(i, "proposal", resp.Proposal)
		return nil

	case ActionExternalSignerProposal:
		sid, ok := r.signerID[st.Actor]
		if !ok {
			return fmt.Errorf("%w: %q is no external signer", ErrConfig, st.Actor)
		}
		id, err := r.state(st.Member)
		if err != nil {
			return err
		}
		gi, err := r.Clients[st.Member].GroupInfo(ctx, &pb.GroupInfoRequest{StateId: id, ExternalTree: true})
		if err != nil {
			return fmt.Errorf("GroupInfo by %q: %w", st.Member, err)
		}
		desc, err := r.describe([]ProposalDescription{*st.Description})
		if err != nil {
			return err
		}
		resp, err := c.ExternalSignerProposal(ctx, &pb.ExternalSignerProposalRequest{
			SignerId: sid, GroupInfo: gi.GroupInfo, RatchetTree: gi.RatchetTree, Description: desc[0],
		})
		if err != nil {
			return err
		}
		r.put(i, "proposal", resp.Proposal)
		return nil

	case ActionReInit:
		return r.reinit(ctx, i, st)

	case ActionBranch:
		return r.branch(ctx, st)

	default:
		return fmt.Errorf("%w: %s", errUnsupportedAction, st.Action)
	}
}

// others returns the sorted set of names less the ones in but.
func others(names []string, but ...string) []string {
	set := map[string]bool{}
	for _, n := range names {
		if n != "" {
			set[n] = true
		}
	}
	for _, n := range but {
		delete(set, n)
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// reinit carries out a reinit step as the upstream runner does: the
// proposer proposes a ReInit (or the step names an external signer's
// proposal), the committer commits it by reference, every other member
// handles the commit, each one gets a KeyPackage in the new suite, the
// welcomer creates the new group with the others' KeyPackages, and they
// join it. Everyone must agree on the epoch authenticator of the closing
// commit and of the new group. Later steps work on the new group (in the
// new suite, if the step changed it).
func (r *ScriptRun) reinit(ctx context.Context, i int, st Step) error {
	everyone := append([]string{st.Proposer, st.Committer, st.Welcomer}, st.Members...)
	notCommitter := others(everyone, st.Committer)
	notWelcomer := others(everyone, st.Welcomer)
	suite := r.Suite
	if st.ChangeCipherSuite {
		suite = otherSuite(r.Suite)
	}
	groupID := r.groupID
	if st.ChangeGroupID {
		groupID = randomBytes(16)
	}
	var proposal []byte
	if st.Proposer != "" {
		id, err := r.state(st.Proposer)
		if err != nil {
			return err
		}
		resp, err := r.Clients[st.Proposer].ReInitProposal(ctx, &pb.ReInitProposalRequest{
			StateId: id, CipherSuite: suite, GroupId: groupID, Extensions: pbExtensions(st.Extensions),
		})
		if err != nil {
			return fmt.Errorf("ReInitProposal by %q: %w", st.Proposer, err)
		}
		proposal = resp.Proposal
	} else {
		var err error
		if proposal, err = r.get(st.ExternalReinitProposal, "proposal"); err != nil {
			return err
		}
	}
	r.put(i, "proposal", proposal)

	reinitIDs := map[string]uint32{}
	keyPackages := map[string][]byte{}
	cid, err := r.state(st.Committer)
	if err != nil {
		return err
	}
	committer := r.Clients[st.Committer]
	cr, err := committer.ReInitCommit(ctx, &pb.CommitRequest{StateId: cid, ByReference: [][]byte{proposal}})
	if err != nil {
		return fmt.Errorf("ReInitCommit by %q: %w", st.Committer, err)
	}
	r.put(i, "commit", cr.Commit)
	hr, err := committer.HandlePendingReInitCommit(ctx, &pb.HandlePendingCommitRequest{StateId: cid})
	if err != nil {
		return fmt.Errorf("HandlePendingReInitCommit by %q: %w", st.Committer, err)
	}
	reinitIDs[st.Committer], keyPackages[st.Committer] = hr.ReinitId, hr.KeyPackage
	for _, m := range notCommitter {
		id, err := r.state(m)
		if err != nil {
			return err
		}
		resp, err := r.Clients[m].HandleReInitCommit(ctx, &pb.HandleCommitRequest{StateId: id, Proposal: [][]byte{proposal}, Commit: cr.Commit})
		if err != nil {
			return fmt.Errorf("HandleReInitCommit by %q: %w", m, err)
		}
		if !bytes.Equal(resp.EpochAuthenticator, hr.EpochAuthenticator) {
			return fmt.Errorf("member %q disagrees on the epoch authenticator of the ReInit commit", m)
		}
		reinitIDs[m], keyPackages[m] = resp.ReinitId, resp.KeyPackage
	}

	kps := make([][]byte, len(notWelcomer))
	for k, m := range notWelcomer {
		kps[k] = keyPackages[m]
	}
	wr, err := r.Clients[st.Welcomer].ReInitWelcome(ctx, &pb.ReInitWelcomeRequest{
		ReinitId: reinitIDs[st.Welcomer], KeyPackage: kps, ForcePath: st.ForcePathCamel, ExternalTree: st.ExternalTreeJ,
	})
	if err != nil {
		return fmt.Errorf("ReInitWelcome by %q: %w", st.Welcomer, err)
	}
	r.moveTo(st.Welcomer, wr.StateId)
	r.put(i, "welcome", wr.Welcome)
	var tree []byte
	if st.ExternalTreeJ {
		if len(wr.RatchetTree) == 0 {
			return errors.New("externalTree asked for but the reinit Welcome came without a ratchet tree")
		}
		tree = wr.RatchetTree
	}
	for _, m := range notWelcomer {
		resp, err := r.Clients[m].HandleReInitWelcome(ctx, &pb.HandleReInitWelcomeRequest{ReinitId: reinitIDs[m], Welcome: wr.Welcome, RatchetTree: tree})
		if err != nil {
			return fmt.Errorf("HandleReInitWelcome by %q: %w", m, err)
		}
		if !bytes.Equal(resp.EpochAuthenticator, wr.EpochAuthenticator) {
			return fmt.Errorf("member %q disagrees on the epoch authenticator of the new group", m)
		}
		r.moveTo(m, resp.StateId)
	}
	r.groupID = groupID
	r.Suite = suite
	return nil
}

// branch carries out a branch step as the upstream runner does: each
// member makes a KeyPackage, the actor creates the subgroup with them, and
// each member joins it from its state in the old group. Everyone must agree
// on the new group's epoch authenticator.
func (r *ScriptRun) branch(ctx context.Context, st Step) error {
	id, err := r.state(st.Actor)
	if err != nil {
		return err
	}
	txs := map[string]uint32{}
	kps := make([][]byte, len(st.Members))
	for k, m := range st.Members {
		resp, err := r.Clients[m].CreateKeyPackage(ctx, &pb.CreateKeyPackageRequest{CipherSuite: r.Suite, Identity: []byte(m)})
		if err != nil {
			return fmt.Errorf("CreateKeyPackage by %q: %w", m, err)
		}
		txs[m], kps[k] = resp.TransactionId, resp.KeyPackage
	}
	groupID := randomBytes(16)
	br, err := r.Clients[st.Actor].CreateBranch(ctx, &pb.CreateBranchRequest{
		StateId: id, GroupId: groupID, Extensions: pbExtensions(st.Extensions), KeyPackages: kps,
		ForcePath: st.ForcePathCamel, ExternalTree: st.ExternalTreeJ,
	})
	if err != nil {
		return fmt.Errorf("CreateBranch: %w", err)
	}
	var tree []byte
	if st.ExternalTreeJ {
		if len(br.RatchetTree) == 0 {
			return errors.New("externalTree asked for but the branch came without a ratchet tree")
		}
		tree = br.RatchetTree
	}
	r.moveTo(st.Actor, br.StateId)
	for _, m := range st.Members {
		mid, err := r.state(m)
		if err != nil {
			return err
		}
		resp, err := r.Clients[m].HandleBranch(ctx, &pb.HandleBranchRequest{StateId: mid, TransactionId: txs[m], Welcome: br.Welcome, RatchetTree: tree})
		if err != nil {
			return fmt.Errorf("HandleBranch by %q: %w", m, err)
		}
		if !bytes.Equal(resp.EpochAuthenticator, br.EpochAuthenticator) {
			return fmt.Errorf("member %q disagrees on the branch's epoch authenticator", m)
		}
		r.moveTo(m, resp.StateId)
	}
	r.groupID = groupID
	return nil
}
