package interop

import (
	"bytes"
	"context"
	"crypto/rand"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quicproquo/quicproquo/internal/mls"
	pb "github.com/quicproquo/quicproquo/internal/mls/interop/mlsclientpb"
)

// Reinitialization (RFC 9420 §11.2) and branching (§11.3) over MLSClient.
// A member that merged or processed a ReInit commit gets a reinit_id: the
// closed group plus a KeyPackage of its own in the new suite, which the
// runner hands to the welcomer. The welcomer creates the new group from its
// reinit_id (ReInitWelcome), the others join it from theirs
// (HandleReInitWelcome). A branch needs no such step: CreateBranch takes
// the members' fresh KeyPackages, and HandleBranch joins with a pending
// KeyPackage (CreateKeyPackage) and the member's state in the old group.

// pendingReInit is a member between a ReInit commit and the new group.
type pendingReInit struct {
	old *mls.Group // closed by the ReInit commit
	kp  *mls.KeyPackagePrivate
	cfg mls.Config
}

// ReInitProposal proposes to reinitialize the group with a cipher suite
// (the group's if 0), a group id (the group's if empty) and extensions.
func (s *Server) ReInitProposal(_ context.Context, req *pb.ReInitProposalRequest) (*pb.ProposalResponse, error) {
	exts, err := mlsExtensions(req.Extensions)
	if err != nil {
		return nil, err
	}
	var cs mls.CipherSuite
	if req.CipherSuite != 0 {
		if cs, err = suiteOf(req.CipherSuite); err != nil {
			return nil, err
		}
	}
	return s.propose("ReInitProposal", req.StateId, func(g *mls.Group) ([]byte, error) {
		suite, groupID := cs, bytes.Clone(req.GroupId)
		if suite == 0 {
			suite = g.CipherSuite()
		}
		if len(groupID) == 0 {
			groupID = g.GroupID()
		}
		return g.ProposeReInit(groupID, suite, exts)
	})
}

// ReInitCommit commits a ReInit proposal (by reference or by value; it
// must be the commit's only proposal) and keeps the commit pending.
func (s *Server) ReInitCommit(_ context.Context, req *pb.CommitRequest) (*pb.CommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commit("ReInitCommit", req)
}

// HandlePendingReInitCommit merges the state's own pending ReInit commit
// and starts the reinitialization.
func (s *Server) HandlePendingReInitCommit(_ context.Context, req *pb.HandlePendingCommitRequest) (*pb.HandleReInitCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.StateId)
	if err != nil {
		return nil, err
	}
	if st.group.HasPendingCommit() && !pendingReInitCommit(st.group) {
		return nil, status.Error(codes.FailedPrecondition, "HandlePendingReInitCommit: the pending commit carries no ReInit proposal")
	}
	if _, err := st.group.MergePendingCommit(); err != nil {
		return nil, grpcError("HandlePendingReInitCommit", err)
	}
	return s.startReInit("HandlePendingReInitCommit", st)
}

// pendingReInitCommit reports whether g's pending commit closes the group.
func pendingReInitCommit(g *mls.Group) bool {
	pc := g.PendingCommit()
	if pc == nil {
		return false
	}
	// Merge a stored copy to see what the commit does.
	b, err := g.MarshalBinary()
	if err != nil {
		return false
	}
	c, err := mls.UnmarshalGroup(b)
	if err != nil {
		return false
	}
	if _, err := c.MergePendingCommit(); err != nil {
		return false
	}
	_, ok := c.ReInit()
	return ok
}

// HandleReInitCommit processes the proposals by reference and then a
// commit that must close the group with a ReInit, and starts the
// reinitialization.
func (s *Server) HandleReInitCommit(_ context.Context, req *pb.HandleCommitRequest) (*pb.HandleReInitCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.StateId)
	if err != nil {
		return nil, err
	}
	// Work on a copy so that a commit without a ReInit changes nothing.
	b, err := st.group.MarshalBinary()
	if err != nil {
		return nil, grpcError("HandleReInitCommit", err)
	}
	g, err := mls.UnmarshalGroupWithPolicy(b, interopPolicy)
	if err != nil {
		return nil, grpcError("HandleReInitCommit", err)
	}
	tmp := &memberState{group: g, signer: st.signer, cfg: st.cfg, own: st.own}
	if err := takeProposals("HandleReInitCommit", tmp, req.Proposal); err != nil {
		return nil, err
	}
	rec, err := g.ProcessMessage(req.Commit)
	if err != nil {
		return nil, grpcError("HandleReInitCommit", err)
	}
	if rec.Kind != mls.KindCommit || rec.ReInit == nil {
		return nil, status.Errorf(codes.InvalidArgument, "HandleReInitCommit: the message is no commit of a ReInit proposal (%v)", rec.Kind)
	}
	st.group = g
	return s.startReInit("HandleReInitCommit", st)
}

// startReInit makes the member's KeyPackage in the new suite (same
// identity, a new signature key) and records the reinitialization.
func (s *Server) startReInit(op string, st *memberState) (*pb.HandleReInitCommitResponse, error) {
	r, ok := st.group.ReInit()
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "%s: the commit did not reinitialize the group", op)
	}
	signer, err := mls.NewSigner(r.CipherSuite, st.signer.Credential.Identity)
	if err != nil {
		return nil, grpcError(op, err)
	}
	var types []mls.ExtensionType
	for _, e := range r.Extensions {
		types = append(types, e.Type)
	}
	kp, priv, err := mls.GenerateKeyPackage(r.CipherSuite, signer, &mls.KeyPackageParams{ExtensionTypes: types})
	if err != nil {
		return nil, grpcError(op, err)
	}
	id := s.newID()
	s.reinits[id] = &pendingReInit{old: st.group, kp: priv, cfg: st.cfg}
	s.log.Debug(op, "reinit", id, "suite", r.CipherSuite)
	msg := &mls.MLSMessage{Version: mls.MLS10, WireFormat: mls.WireFormatKeyPackage, KeyPackage: kp}
	return &pb.HandleReInitCommitResponse{ReinitId: id, KeyPackage: msg.Marshal(), EpochAuthenticator: st.group.EpochAuthenticator()}, nil
}

func (s *Server) reinit(id uint32) (*pendingReInit, error) {
	p, ok := s.reinits[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no reinitialization %d", id)
	}
	return p, nil
}

func parseKeyPackages(in [][]byte) ([]*mls.KeyPackage, error) {
	out := make([]*mls.KeyPackage, len(in))
	for i, b := range in {
		kp, err := parseKeyPackage(b)
		if err != nil {
			return nil, err
		}
		out[i] = kp
	}
	return out, nil
}

// subgroupResponse describes a new group this server created.
func (s *Server) subgroupResponse(g *mls.Group, signer *mls.Signer, cfg mls.Config, welcome []byte, externalTree bool) *pb.CreateSubgroupResponse {
	out := &pb.CreateSubgroupResponse{StateId: s.addState(g, signer, cfg), Welcome: welcome, EpochAuthenticator: g.EpochAuthenticator()}
	if externalTree {
		out.RatchetTree = g.RatchetTree()
	}
	return out
}

// ReInitWelcome creates the new group of a reinitialization with the other
// members' KeyPackages and returns its Welcome.
func (s *Server) ReInitWelcome(_ context.Context, req *pb.ReInitWelcomeRequest) (*pb.CreateSubgroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.reinit(req.ReinitId)
	if err != nil {
		return nil, err
	}
	kps, err := parseKeyPackages(req.KeyPackage)
	if err != nil {
		return nil, err
	}
	signer := p.kp.Signer()
	g, res, err := p.old.CreateReInitGroup(signer, kps, &mls.ResumeOptions{ForcePath: req.ForcePath, OmitRatchetTree: req.ExternalTree, Config: p.cfg})
	if err != nil {
		return nil, grpcError("ReInitWelcome", err)
	}
	delete(s.reinits, req.ReinitId)
	out := s.subgroupResponse(g, signer, p.cfg, res.Welcome, req.ExternalTree)
	s.log.Debug("ReInitWelcome", "reinit", req.ReinitId, "state", out.StateId)
	return out, nil
}

// HandleReInitWelcome joins the new group of a reinitialization.
func (s *Server) HandleReInitWelcome(_ context.Context, req *pb.HandleReInitWelcomeRequest) (*pb.JoinGroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.reinit(req.ReinitId)
	if err != nil {
		return nil, err
	}
	g, err := p.old.JoinReInit(req.Welcome, p.kp, &mls.JoinOptions{RatchetTree: req.RatchetTree, Config: p.cfg})
	if err != nil {
		return nil, grpcError("HandleReInitWelcome", err)
	}
	delete(s.reinits, req.ReinitId)
	id := s.addState(g, p.kp.Signer(), p.cfg)
	s.log.Debug("HandleReInitWelcome", "reinit", req.ReinitId, "state", id)
	return &pb.JoinGroupResponse{StateId: id, EpochAuthenticator: g.EpochAuthenticator()}, nil
}

// CreateBranch creates a subgroup of the state's group with the given
// members' KeyPackages (group id random if empty) and returns its Welcome.
// The old group stays as it is.
func (s *Server) CreateBranch(_ context.Context, req *pb.CreateBranchRequest) (*pb.CreateSubgroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.StateId)
	if err != nil {
		return nil, err
	}
	exts, err := mlsExtensions(req.Extensions)
	if err != nil {
		return nil, err
	}
	kps, err := parseKeyPackages(req.KeyPackages)
	if err != nil {
		return nil, err
	}
	groupID := bytes.Clone(req.GroupId)
	if len(groupID) == 0 {
		groupID = make([]byte, 16)
		if _, err := rand.Read(groupID); err != nil {
			return nil, status.Errorf(codes.Internal, "CreateBranch: %v", err)
		}
	}
	g, res, err := st.group.CreateBranch(groupID, exts, st.signer, kps, &mls.ResumeOptions{ForcePath: req.ForcePath, OmitRatchetTree: req.ExternalTree, Config: st.cfg})
	if err != nil {
		return nil, grpcError("CreateBranch", err)
	}
	out := s.subgroupResponse(g, st.signer, st.cfg, res.Welcome, req.ExternalTree)
	s.log.Debug("CreateBranch", "state", req.StateId, "branch", out.StateId)
	return out, nil
}

// HandleBranch joins a subgroup of the state's group with the KeyPackage
// of a transaction.
func (s *Server) HandleBranch(_ context.Context, req *pb.HandleBranchRequest) (*pb.HandleBranchResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.StateId)
	if err != nil {
		return nil, err
	}
	j, ok := s.joins[req.TransactionId]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no transaction %d", req.TransactionId)
	}
	g, err := st.group.JoinBranch(req.Welcome, j.kp, &mls.JoinOptions{RatchetTree: req.RatchetTree, PSKs: j.psks, Config: st.cfg})
	if err != nil {
		return nil, grpcError("HandleBranch", err)
	}
	delete(s.joins, req.TransactionId)
	id := s.addState(g, j.kp.Signer(), st.cfg)
	s.log.Debug("HandleBranch", "state", req.StateId, "branch", id)
	return &pb.HandleBranchResponse{StateId: id, EpochAuthenticator: g.EpochAuthenticator()}, nil
}
