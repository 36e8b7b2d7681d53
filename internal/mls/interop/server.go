package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quicproquo/quicproquo/internal/mls"
	pb "github.com/quicproquo/quicproquo/internal/mls/interop/mlsclientpb"
)

// Name is what the server answers to the Name call.
const Name = "quicproquo"

// Server implements the MLSClient service over our MLS package. Group
// states and pending joins live in memory under the numeric handles the
// service hands out (one counter for both, so StorePSK's
// state_or_transaction_id is never ambiguous); nothing is persisted.
//
// External signers (CreateExternalSigner) and reinitializations in
// progress (reinit_id, from HandleReInitCommit or
// HandlePendingReInitCommit to ReInitWelcome or HandleReInitWelcome) live
// there too, under the same counter. Bad input answers InvalidArgument,
// unknown handles NotFound, and calls out of order FailedPrecondition.
type Server struct {
	pb.UnimplementedMLSClientServer

	log *slog.Logger

	// mu serializes every call: an mls.Group is not safe for concurrent use
	// and interop runs are not about throughput.
	mu      sync.Mutex
	nextID  uint32
	states  map[uint32]*memberState
	joins   map[uint32]*pendingJoin
	signers map[uint32]*mls.Signer // external signers
	reinits map[uint32]*pendingReInit
}

// memberState is one client's group state.
type memberState struct {
	group  *mls.Group
	signer *mls.Signer
	cfg    mls.Config
	// own holds the proposal messages this client sent, with the epoch they
	// were sent in: when the runner hands them back by reference they are
	// already cached in the group and must not be processed again.
	own map[string]uint64
}

// pendingJoin is a KeyPackage waiting for its Welcome.
type pendingJoin struct {
	kp   *mls.KeyPackagePrivate
	psks []mls.PSK
}

// NewServer returns an empty Server. log receives one debug line per call
// and never any secret; nil discards.
func NewServer(log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{log: log, states: map[uint32]*memberState{}, joins: map[uint32]*pendingJoin{}, signers: map[uint32]*mls.Signer{},
		reinits: map[uint32]*pendingReInit{}}
}

// grpcError maps an error of our MLS package to a gRPC status.
func grpcError(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, mls.ErrUnsupportedSuite):
		code = codes.Unimplemented
	case errors.Is(err, mls.ErrPendingCommit), errors.Is(err, mls.ErrNoPendingCommit),
		errors.Is(err, mls.ErrNotMember), errors.Is(err, mls.ErrUnknownPSK), errors.Is(err, mls.ErrEpochTooOld),
		errors.Is(err, mls.ErrNoExternalSenders), errors.Is(err, mls.ErrUnknownExternalSender),
		errors.Is(err, mls.ErrNotReInitialized):
		code = codes.FailedPrecondition
	case errors.Is(err, mls.ErrDecode), errors.Is(err, mls.ErrInvalidMessage), errors.Is(err, mls.ErrInvalidCommit),
		errors.Is(err, mls.ErrInvalidProposal), errors.Is(err, mls.ErrWrongEpoch), errors.Is(err, mls.ErrWrongGroup),
		errors.Is(err, mls.ErrNoMatchingKeyPackage), errors.Is(err, mls.ErrInvalidLeafNode),
		errors.Is(err, mls.ErrInvalidSignature), errors.Is(err, mls.ErrDecrypt), errors.Is(err, mls.ErrResumptionMismatch):
		code = codes.InvalidArgument
	}
	return status.Errorf(code, "%s: %v", op, err)
}

func (s *Server) newID() uint32 {
	s.nextID++
	return s.nextID
}

// state returns the group state named id. Callers hold s.mu.
func (s *Server) state(id uint32) (*memberState, error) {
	st, ok := s.states[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no group state %d", id)
	}
	return st, nil
}

func (s *Server) addState(g *mls.Group, signer *mls.Signer, cfg mls.Config) uint32 {
	g.SetPolicy(interopPolicy)
	id := s.newID()
	s.states[id] = &memberState{group: g, signer: signer, cfg: cfg, own: map[string]uint64{}}
	return id
}

func suiteOf(v uint32) (mls.CipherSuite, error) {
	if v == 0 || v > 0xffff {
		return 0, status.Errorf(codes.InvalidArgument, "cipher suite %d is not a uint16 code point", v)
	}
	cs := mls.CipherSuite(v)
	if _, err := mls.LookupSuite(cs); err != nil {
		return 0, grpcError("cipher suite", err)
	}
	return cs, nil
}

// interopPolicy is the policy of every group the server holds: the test
// scripts commit proposals of external senders and new members, which the
// library's default does not keep.
var interopPolicy = mls.Policy{Proposals: mls.KeepAllProposals}

func groupConfig(encryptHandshake bool) mls.Config {
	return mls.Config{PublicHandshake: !encryptHandshake}
}

// Name answers with the implementation name.
func (s *Server) Name(context.Context, *pb.NameRequest) (*pb.NameResponse, error) {
	return &pb.NameResponse{Name: Name}, nil
}

// SupportedCiphersuites lists the suites our MLS package implements.
func (s *Server) SupportedCiphersuites(context.Context, *pb.SupportedCiphersuitesRequest) (*pb.SupportedCiphersuitesResponse, error) {
	var out []uint32
	for _, cs := range mls.SupportedSuites() {
		out = append(out, uint32(cs))
	}
	return &pb.SupportedCiphersuitesResponse{Ciphersuites: out}, nil
}

// CreateGroup creates a one-member group with a basic credential.
func (s *Server) CreateGroup(_ context.Context, req *pb.CreateGroupRequest) (*pb.CreateGroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, err := suiteOf(req.CipherSuite)
	if err != nil {
		return nil, err
	}
	if len(req.GroupId) == 0 {
		return nil, status.Error(codes.InvalidArgument, "empty group_id")
	}
	signer, err := mls.NewSigner(cs, req.Identity)
	if err != nil {
		return nil, grpcError("CreateGroup", err)
	}
	g, err := mls.CreateGroup(cs, bytes.Clone(req.GroupId), signer, &mls.CreateOptions{Config: groupConfig(req.EncryptHandshake)})
	if err != nil {
		return nil, grpcError("CreateGroup", err)
	}
	id := s.addState(g, signer, groupConfig(req.EncryptHandshake))
	s.log.Debug("CreateGroup", "state", id, "suite", cs)
	return &pb.CreateGroupResponse{StateId: id}, nil
}

// CreateKeyPackage makes a KeyPackage and keeps its private half under a
// transaction id for JoinGroup. The private keys are returned as the
// interface asks (test rigs only).
func (s *Server) CreateKeyPackage(_ context.Context, req *pb.CreateKeyPackageRequest) (*pb.CreateKeyPackageResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, err := suiteOf(req.CipherSuite)
	if err != nil {
		return nil, err
	}
	signer, err := mls.NewSigner(cs, req.Identity)
	if err != nil {
		return nil, grpcError("CreateKeyPackage", err)
	}
	kp, priv, err := mls.GenerateKeyPackage(cs, signer, nil)
	if err != nil {
		return nil, grpcError("CreateKeyPackage", err)
	}
	id := s.newID()
	s.joins[id] = &pendingJoin{kp: priv}
	s.log.Debug("CreateKeyPackage", "transaction", id, "suite", cs)
	msg := &mls.MLSMessage{Version: mls.MLS10, WireFormat: mls.WireFormatKeyPackage, KeyPackage: kp}
	return &pb.CreateKeyPackageResponse{
		TransactionId:  id,
		KeyPackage:     msg.Marshal(),
		InitPriv:       bytes.Clone(priv.InitPriv),
		EncryptionPriv: bytes.Clone(priv.EncryptionPriv),
		SignaturePriv:  bytes.Clone(priv.SignaturePriv),
	}, nil
}

// JoinGroup joins from a Welcome with the KeyPackage of a transaction.
func (s *Server) JoinGroup(_ context.Context, req *pb.JoinGroupRequest) (*pb.JoinGroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.joins[req.TransactionId]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no transaction %d", req.TransactionId)
	}
	g, err := mls.JoinFromWelcome(req.Welcome, j.kp, &mls.JoinOptions{
		RatchetTree: req.RatchetTree, PSKs: j.psks, Config: groupConfig(req.EncryptHandshake),
	})
	if err != nil {
		return nil, grpcError("JoinGroup", err)
	}
	delete(s.joins, req.TransactionId)
	id := s.addState(g, j.kp.Signer(), groupConfig(req.EncryptHandshake))
	s.log.Debug("JoinGroup", "state", id, "epoch", g.Epoch())
	return &pb.JoinGroupResponse{StateId: id, EpochAuthenticator: g.EpochAuthenticator()}, nil
}

// ExternalJoin joins by an external commit.
func (s *Server) ExternalJoin(_ context.Context, req *pb.ExternalJoinRequest) (*pb.ExternalJoinResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	psks := make([]mls.PSK, len(req.Psks))
	for i, p := range req.Psks {
		if len(p.GetPskId()) == 0 {
			return nil, status.Error(codes.InvalidArgument, "empty psk_id")
		}
		psks[i] = mls.PSK{ID: bytes.Clone(p.PskId), Secret: bytes.Clone(p.PskSecret)}
	}
	m, err := mls.ParseMLSMessage(req.GroupInfo)
	if err != nil {
		return nil, grpcError("ExternalJoin", err)
	}
	if m.WireFormat != mls.WireFormatGroupInfo {
		return nil, status.Errorf(codes.InvalidArgument, "group_info is a %v", m.WireFormat)
	}
	signer, err := mls.NewSigner(m.GroupInfo.GroupContext.CipherSuite, req.Identity)
	if err != nil {
		return nil, grpcError("ExternalJoin", err)
	}
	g, commit, err := mls.JoinExternal(req.GroupInfo, signer, &mls.ExternalJoinOptions{
		RatchetTree: req.RatchetTree, Resync: req.RemovePrior, PSKs: psks, Config: groupConfig(req.EncryptHandshake),
	})
	if err != nil {
		return nil, grpcError("ExternalJoin", err)
	}
	id := s.addState(g, signer, groupConfig(req.EncryptHandshake))
	s.log.Debug("ExternalJoin", "state", id, "epoch", g.Epoch())
	return &pb.ExternalJoinResponse{StateId: id, Commit: commit, EpochAuthenticator: g.EpochAuthenticator()}, nil
}

// GroupInfo returns a signed GroupInfo of the current epoch (with
// external_pub), with the ratchet tree inside or, if asked, beside it.
func (s *Server) GroupInfo(_ context.Context, req *pb.GroupInfoRequest) (*pb.GroupInfoResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.StateId)
	if err != nil {
		return nil, err
	}
	gi, err := st.group.GroupInfo()
	if err != nil {
		return nil, grpcError("GroupInfo", err)
	}
	if !req.ExternalTree {
		return &pb.GroupInfoResponse{GroupInfo: gi}, nil
	}
	gi, err = withoutTree(st, gi)
	if err != nil {
		return nil, grpcError("GroupInfo", err)
	}
	return &pb.GroupInfoResponse{GroupInfo: gi, RatchetTree: st.group.RatchetTree()}, nil
}

// withoutTree drops the ratchet_tree extension from a GroupInfo MLSMessage
// and signs it again with the member's key.
func withoutTree(st *memberState, gi []byte) ([]byte, error) {
	m, err := mls.ParseMLSMessage(gi)
	if err != nil {
		return nil, err
	}
	suite, err := mls.LookupSuite(m.GroupInfo.GroupContext.CipherSuite)
	if err != nil {
		return nil, err
	}
	exts := m.GroupInfo.Extensions[:0]
	for _, e := range m.GroupInfo.Extensions {
		if e.Type != mls.ExtensionRatchetTree {
			exts = append(exts, e)
		}
	}
	m.GroupInfo.Extensions = exts
	if err := m.GroupInfo.Sign(suite, st.signer.SignaturePriv); err != nil {
		return nil, err
	}
	return m.Marshal(), nil
}

// StateAuth returns the epoch authenticator.
func (s *Server) StateAuth(_ context.Context, req *pb.StateAuthRequest) (*pb.StateAuthResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.StateId)
	if err != nil {
		return nil, err
	}
	return &pb.StateAuthResponse{StateAuthSecret: st.group.EpochAuthenticator()}, nil
}

// Export runs the MLS exporter.
func (s *Server) Export(_ context.Context, req *pb.ExportRequest) (*pb.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.StateId)
	if err != nil {
		return nil, err
	}
	if req.KeyLength > 0xffff {
		return nil, status.Errorf(codes.InvalidArgument, "key_length %d exceeds 65535", req.KeyLength)
	}
	out, err := st.group.Export(req.Label, req.Context, int(req.KeyLength))
	if err != nil {
		return nil, grpcError("Export", err)
	}
	return &pb.ExportResponse{ExportedSecret: out}, nil
}

// Protect encrypts application data.
func (s *Server) Protect(_ context.Context, req *pb.ProtectRequest) (*pb.ProtectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.StateId)
	if err != nil {
		return nil, err
	}
	ct, err := st.group.Protect(req.Plaintext, req.AuthenticatedData)
	if err != nil {
		return nil, grpcError("Protect", err)
	}
	return &pb.ProtectResponse{Ciphertext: ct}, nil
}

// Unprotect decrypts application data.
func (s *Server) Unprotect(_ context.Context, req *pb.UnprotectRequest) (*pb.UnprotectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.StateId)
	if err != nil {
		return nil, err
	}
	if m, err := mls.ParseMLSMessage(req.Ciphertext); err != nil {
		return nil, grpcError("Unprotect", err)
	} else if m.WireFormat != mls.WireFormatPrivateMessage {
		return nil, status.Errorf(codes.InvalidArgument, "application data must be a PrivateMessage, got %v", m.WireFormat)
	}
	rec, err := st.group.ProcessMessage(req.Ciphertext)
	if err != nil {
		return nil, grpcError("Unprotect", err)
	}
	if rec.Kind != mls.KindApplication {
		return nil, status.Errorf(codes.InvalidArgument, "message carries a %v, not application data", rec.Kind)
	}
	return &pb.UnprotectResponse{AuthenticatedData: rec.AuthenticatedData, Plaintext: rec.Plaintext}, nil
}

// StorePSK makes an external PSK known to a group state or to a pending
// join.
func (s *Server) StorePSK(_ context.Context, req *pb.StorePSKRequest) (*pb.StorePSKResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(req.PskId) == 0 {
		return nil, status.Error(codes.InvalidArgument, "empty psk_id")
	}
	if st, ok := s.states[req.StateOrTransactionId]; ok {
		st.group.AddPSK(req.PskId, req.PskSecret)
		return &pb.StorePSKResponse{}, nil
	}
	if j, ok := s.joins[req.StateOrTransactionId]; ok {
		j.psks = append(j.psks, mls.PSK{ID: bytes.Clone(req.PskId), Secret: bytes.Clone(req.PskSecret)})
		return &pb.StorePSKResponse{}, nil
	}
	return nil, status.Errorf(codes.NotFound, "no state or transaction %d", req.StateOrTransactionId)
}

// propose sends a proposal from a state and remembers it as its own.
func (s *Server) propose(op string, id uint32, make func(g *mls.Group) ([]byte, error)) (*pb.ProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(id)
	if err != nil {
		return nil, err
	}
	msg, err := make(st.group)
	if err != nil {
		return nil, grpcError(op, err)
	}
	epoch := st.group.Epoch()
	for m, e := range st.own {
		if e != epoch {
			delete(st.own, m) // from an epoch that is over
		}
	}
	st.own[string(msg)] = epoch
	return &pb.ProposalResponse{Proposal: msg}, nil
}

func parseKeyPackage(b []byte) (*mls.KeyPackage, error) {
	m, err := mls.ParseMLSMessage(b)
	if err != nil {
		return nil, grpcError("key_package", err)
	}
	if m.WireFormat != mls.WireFormatKeyPackage {
		return nil, status.Errorf(codes.InvalidArgument, "key_package is a %v", m.WireFormat)
	}
	return m.KeyPackage, nil
}

// leafOf finds the member whose basic credential identity is identity.
func leafOf(g *mls.Group, identity []byte) (mls.LeafIndex, error) {
	for _, m := range g.Members() {
		if bytes.Equal(m.Identity, identity) {
			return m.Leaf, nil
		}
	}
	return 0, status.Errorf(codes.NotFound, "no member with identity %q", identity)
}

// AddProposal proposes to add a KeyPackage.
func (s *Server) AddProposal(_ context.Context, req *pb.AddProposalRequest) (*pb.ProposalResponse, error) {
	kp, err := parseKeyPackage(req.KeyPackage)
	if err != nil {
		return nil, err
	}
	return s.propose("AddProposal", req.StateId, func(g *mls.Group) ([]byte, error) { return g.ProposeAdd(kp) })
}

// UpdateProposal proposes a fresh leaf for the sender.
func (s *Server) UpdateProposal(_ context.Context, req *pb.UpdateProposalRequest) (*pb.ProposalResponse, error) {
	return s.propose("UpdateProposal", req.StateId, func(g *mls.Group) ([]byte, error) { return g.ProposeUpdate() })
}

// RemoveProposal proposes to remove the member with a given identity.
func (s *Server) RemoveProposal(_ context.Context, req *pb.RemoveProposalRequest) (*pb.ProposalResponse, error) {
	return s.propose("RemoveProposal", req.StateId, func(g *mls.Group) ([]byte, error) {
		leaf, err := leafOf(g, req.RemovedId)
		if err != nil {
			return nil, err
		}
		return g.ProposeRemove(leaf)
	})
}

// ExternalPSKProposal proposes to inject a stored external PSK.
func (s *Server) ExternalPSKProposal(_ context.Context, req *pb.ExternalPSKProposalRequest) (*pb.ProposalResponse, error) {
	return s.propose("ExternalPSKProposal", req.StateId, func(g *mls.Group) ([]byte, error) { return g.ProposeExternalPSK(req.PskId) })
}

// ResumptionPSKProposal proposes to inject the resumption PSK of an epoch.
func (s *Server) ResumptionPSKProposal(_ context.Context, req *pb.ResumptionPSKProposalRequest) (*pb.ProposalResponse, error) {
	return s.propose("ResumptionPSKProposal", req.StateId, func(g *mls.Group) ([]byte, error) { return g.ProposeResumptionPSK(req.EpochId) })
}

// GroupContextExtensionsProposal proposes new group context extensions.
func (s *Server) GroupContextExtensionsProposal(_ context.Context, req *pb.GroupContextExtensionsProposalRequest) (*pb.ProposalResponse, error) {
	exts, err := mlsExtensions(req.Extensions)
	if err != nil {
		return nil, err
	}
	return s.propose("GroupContextExtensionsProposal", req.StateId, func(g *mls.Group) ([]byte, error) {
		return g.ProposeGroupContextExtensions(exts)
	})
}

func mlsExtensions(in []*pb.Extension) ([]mls.Extension, error) {
	out := make([]mls.Extension, 0, len(in))
	for _, e := range in {
		if e.ExtensionType > 0xffff {
			return nil, status.Errorf(codes.InvalidArgument, "extension type %d is not a uint16", e.ExtensionType)
		}
		out = append(out, mls.Extension{Type: mls.ExtensionType(e.ExtensionType), Data: bytes.Clone(e.ExtensionData)})
	}
	return out, nil
}

// pskNonce returns a fresh PSK nonce of the suite's hash length.
func pskNonce(cs mls.CipherSuite) ([]byte, error) {
	suite, err := mls.LookupSuite(cs)
	if err != nil {
		return nil, err
	}
	n := make([]byte, suite.HashSize())
	if _, err := rand.Read(n); err != nil {
		return nil, err
	}
	return n, nil
}

// groupView is what turning a proposal description into a proposal needs
// to know of a group: a member has its state, an external signer the
// GroupInfo and ratchet tree it was handed.
type groupView struct {
	suite   mls.CipherSuite
	groupID []byte
	leafOf  func(identity []byte) (mls.LeafIndex, error)
}

// memberView is the groupView of a member's state.
func memberView(g *mls.Group) groupView {
	return groupView{suite: g.CipherSuite(), groupID: g.GroupID(), leafOf: func(id []byte) (mls.LeafIndex, error) { return leafOf(g, id) }}
}

// byValue turns proposal descriptions into proposals of the group g.
func byValue(g *mls.Group, descs []*pb.ProposalDescription) ([]mls.Proposal, error) {
	return describedProposals(memberView(g), descs)
}

// describedProposals turns proposal descriptions into proposals of the
// group v describes.
func describedProposals(v groupView, descs []*pb.ProposalDescription) ([]mls.Proposal, error) {
	out := make([]mls.Proposal, 0, len(descs))
	for _, d := range descs {
		var p mls.Proposal
		switch string(d.ProposalType) {
		case "add":
			kp, err := parseKeyPackage(d.KeyPackage)
			if err != nil {
				return nil, err
			}
			p = mls.Proposal{Type: mls.ProposalAdd, Add: &mls.AddProposal{KeyPackage: *kp}}
		case "remove":
			leaf, err := v.leafOf(d.RemovedId)
			if err != nil {
				return nil, err
			}
			p = mls.Proposal{Type: mls.ProposalRemove, Remove: &mls.RemoveProposal{Removed: leaf}}
		case "externalPSK", "resumptionPSK":
			nonce, err := pskNonce(v.suite)
			if err != nil {
				return nil, err
			}
			id := mls.PreSharedKeyID{Type: mls.PSKTypeExternal, PSKID: bytes.Clone(d.PskId), Nonce: nonce}
			if string(d.ProposalType) == "resumptionPSK" {
				id = mls.PreSharedKeyID{Type: mls.PSKTypeResumption, Usage: mls.ResumptionPSKApplication,
					GroupID: bytes.Clone(v.groupID), Epoch: d.EpochId, Nonce: nonce}
			}
			p = mls.Proposal{Type: mls.ProposalPreSharedKey, PreSharedKey: &mls.PreSharedKeyProposal{PSK: id}}
		case "groupContextExtensions":
			exts, err := mlsExtensions(d.Extensions)
			if err != nil {
				return nil, err
			}
			p = mls.Proposal{Type: mls.ProposalGroupContextExtensions, GroupContextExtensions: &mls.GroupContextExtensionsProposal{Extensions: exts}}
		case "reinit":
			r, err := reinitProposal(v, d)
			if err != nil {
				return nil, err
			}
			p = mls.Proposal{Type: mls.ProposalReInit, ReInit: r}
		default:
			return nil, status.Errorf(codes.InvalidArgument, "unknown proposal type %q", d.ProposalType)
		}
		out = append(out, p)
	}
	return out, nil
}

// takeProposals processes the proposals handed in by reference, skipping
// the ones this state sent itself (the group already holds them).
func takeProposals(op string, st *memberState, msgs [][]byte) error {
	for i, msg := range msgs {
		if e, ok := st.own[string(msg)]; ok && e == st.group.Epoch() {
			continue
		}
		rec, err := st.group.ProcessMessage(msg)
		if err != nil {
			return grpcError(fmt.Sprintf("%s: proposal %d", op, i), err)
		}
		if rec.Kind != mls.KindProposal {
			return status.Errorf(codes.InvalidArgument, "%s: proposal %d carries a %v", op, i, rec.Kind)
		}
	}
	return nil
}

// Commit makes a commit of the given proposals and keeps it pending until
// HandlePendingCommit (or HandleCommit of the same message).
func (s *Server) Commit(_ context.Context, req *pb.CommitRequest) (*pb.CommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commit("Commit", req)
}

// commit is Commit (and ReInitCommit). Callers hold s.mu.
func (s *Server) commit(op string, req *pb.CommitRequest) (*pb.CommitResponse, error) {
	st, err := s.state(req.StateId)
	if err != nil {
		return nil, err
	}
	g := st.group
	props, err := byValue(g, req.ByValue)
	if err != nil {
		return nil, err
	}
	if err := takeProposals(op, st, req.ByReference); err != nil {
		return nil, err
	}
	res, err := g.Commit(&mls.CommitOptions{Proposals: props, ForcePath: req.ForcePath, OmitRatchetTree: req.ExternalTree})
	if err != nil {
		return nil, grpcError(op, err)
	}
	out := &pb.CommitResponse{Commit: res.Message, Welcome: res.Welcome}
	if req.ExternalTree {
		m, err := mls.ParseMLSMessage(res.GroupInfo)
		if err != nil {
			return nil, grpcError(op, err)
		}
		tree, ok := mls.FindExtension(m.GroupInfo.Extensions, mls.ExtensionRatchetTree)
		if !ok {
			return nil, status.Error(codes.Internal, op+": the new epoch's GroupInfo has no ratchet tree")
		}
		out.RatchetTree = tree.Data
	}
	s.log.Debug(op, "state", req.StateId, "epoch", res.Epoch)
	return out, nil
}

// HandleCommit processes the proposals by reference and then a commit.
func (s *Server) HandleCommit(_ context.Context, req *pb.HandleCommitRequest) (*pb.HandleCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.StateId)
	if err != nil {
		return nil, err
	}
	if err := takeProposals("HandleCommit", st, req.Proposal); err != nil {
		return nil, err
	}
	rec, err := st.group.ProcessMessage(req.Commit)
	if err != nil {
		return nil, grpcError("HandleCommit", err)
	}
	if rec.Kind != mls.KindCommit {
		return nil, status.Errorf(codes.InvalidArgument, "HandleCommit: message carries a %v", rec.Kind)
	}
	s.log.Debug("HandleCommit", "state", req.StateId, "epoch", rec.NewEpoch)
	return &pb.HandleCommitResponse{StateId: req.StateId, EpochAuthenticator: st.group.EpochAuthenticator()}, nil
}

// HandlePendingCommit merges the state's own pending commit.
func (s *Server) HandlePendingCommit(_ context.Context, req *pb.HandlePendingCommitRequest) (*pb.HandleCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.StateId)
	if err != nil {
		return nil, err
	}
	if _, err := st.group.MergePendingCommit(); err != nil {
		return nil, grpcError("HandlePendingCommit", err)
	}
	return &pb.HandleCommitResponse{StateId: req.StateId, EpochAuthenticator: st.group.EpochAuthenticator()}, nil
}

// Free forgets a group state, a pending join, an external signer or a
// reinitialization in progress.
func (s *Server) Free(_ context.Context, req *pb.FreeRequest) (*pb.FreeResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.states[req.StateId]; ok {
		delete(s.states, req.StateId)
		return &pb.FreeResponse{}, nil
	}
	if _, ok := s.joins[req.StateId]; ok {
		delete(s.joins, req.StateId)
		return &pb.FreeResponse{}, nil
	}
	if _, ok := s.signers[req.StateId]; ok {
		delete(s.signers, req.StateId)
		return &pb.FreeResponse{}, nil
	}
	if _, ok := s.reinits[req.StateId]; ok {
		delete(s.reinits, req.StateId)
		return &pb.FreeResponse{}, nil
	}
	return nil, status.Errorf(codes.NotFound, "no state %d", req.StateId)
}

// NewMemberAddProposal makes a KeyPackage for identity and an Add proposal
// for it signed by the new member itself (sender new_member_proposal,
// RFC 9420 §12.1.8), for the group the GroupInfo describes. The
// KeyPackage waits under the returned transaction id for the Welcome.
func (s *Server) NewMemberAddProposal(_ context.Context, req *pb.NewMemberAddProposalRequest) (*pb.NewMemberAddProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := mls.ParseMLSMessage(req.GroupInfo)
	if err != nil {
		return nil, grpcError("NewMemberAddProposal", err)
	}
	if m.WireFormat != mls.WireFormatGroupInfo {
		return nil, status.Errorf(codes.InvalidArgument, "group_info is a %v", m.WireFormat)
	}
	gi := m.GroupInfo
	cs := gi.GroupContext.CipherSuite
	suite, err := mls.LookupSuite(cs)
	if err != nil {
		return nil, grpcError("NewMemberAddProposal", err)
	}
	if err := verifyGroupInfo(suite, gi); err != nil {
		return nil, err
	}
	signer, err := mls.NewSigner(cs, req.Identity)
	if err != nil {
		return nil, grpcError("NewMemberAddProposal", err)
	}
	kp, priv, err := mls.GenerateKeyPackage(cs, signer, nil)
	if err != nil {
		return nil, grpcError("NewMemberAddProposal", err)
	}
	content := &mls.FramedContent{
		GroupID:           bytes.Clone(gi.GroupContext.GroupID),
		Epoch:             gi.GroupContext.Epoch,
		Sender:            mls.Sender{Type: mls.SenderNewMemberProposal},
		AuthenticatedData: []byte{},
		ContentType:       mls.ContentProposal,
		Proposal:          &mls.Proposal{Type: mls.ProposalAdd, Add: &mls.AddProposal{KeyPackage: *kp}},
	}
	ac, err := mls.SignFramedContent(suite, signer.SignaturePriv, mls.WireFormatPublicMessage, content, &gi.GroupContext)
	if err != nil {
		return nil, grpcError("NewMemberAddProposal", err)
	}
	pm, err := mls.ProtectPublic(suite, ac, nil, &gi.GroupContext)
	if err != nil {
		return nil, grpcError("NewMemberAddProposal", err)
	}
	id := s.newID()
	s.joins[id] = &pendingJoin{kp: priv}
	s.log.Debug("NewMemberAddProposal", "transaction", id, "epoch", gi.GroupContext.Epoch)
	msg := &mls.MLSMessage{Version: mls.MLS10, WireFormat: mls.WireFormatPublicMessage, PublicMessage: pm}
	return &pb.NewMemberAddProposalResponse{
		TransactionId:  id,
		Proposal:       msg.Marshal(),
		InitPriv:       bytes.Clone(priv.InitPriv),
		EncryptionPriv: bytes.Clone(priv.EncryptionPriv),
		SignaturePriv:  bytes.Clone(priv.SignaturePriv),
	}, nil
}

// verifyGroupInfo checks a GroupInfo's signature with the signer's key
// from its ratchet_tree extension (a GroupInfo without the tree cannot be
// checked here and is refused).
func verifyGroupInfo(suite mls.Suite, gi *mls.GroupInfo) error {
	ext, ok := mls.FindExtension(gi.Extensions, mls.ExtensionRatchetTree)
	if !ok {
		return status.Error(codes.InvalidArgument, "GroupInfo carries no ratchet tree to check its signature with")
	}
	tree, err := mls.ParseRatchetTree(ext.Data)
	if err != nil {
		return grpcError("GroupInfo ratchet tree", err)
	}
	return verifyGroupInfoWith(suite, gi, tree)
}

// verifyGroupInfoWith checks a GroupInfo's signature with the signer's key
// from tree, after checking that tree is the one the GroupInfo's
// GroupContext commits to.
func verifyGroupInfoWith(suite mls.Suite, gi *mls.GroupInfo, tree *mls.RatchetTree) error {
	if !bytes.Equal(tree.TreeHash(suite), gi.GroupContext.TreeHash) {
		return status.Error(codes.InvalidArgument, "the ratchet tree does not match the GroupInfo's tree hash")
	}
	leaf := tree.LeafNode(gi.Signer)
	if leaf == nil {
		return status.Errorf(codes.InvalidArgument, "GroupInfo signer %d is not a member", gi.Signer)
	}
	if err := gi.VerifySignature(suite, leaf.SignatureKey); err != nil {
		return grpcError("GroupInfo signature", err)
	}
	return nil
}

// CreateExternalSigner makes a signer outside any group (a signature key
// pair and a basic credential for identity) and returns it as the
// ExternalSender a group lists in its external_senders extension
// (RFC 9420 §12.1.8.1).
func (s *Server) CreateExternalSigner(_ context.Context, req *pb.CreateExternalSignerRequest) (*pb.CreateExternalSignerResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, err := suiteOf(req.CipherSuite)
	if err != nil {
		return nil, err
	}
	signer, err := mls.NewSigner(cs, req.Identity)
	if err != nil {
		return nil, grpcError("CreateExternalSigner", err)
	}
	id := s.newID()
	s.signers[id] = signer
	s.log.Debug("CreateExternalSigner", "signer", id, "suite", cs)
	es := mls.ExternalSender{SignatureKey: bytes.Clone(signer.SignaturePub), Credential: signer.Credential}
	return &pb.CreateExternalSignerResponse{SignerId: id, ExternalSender: es.Marshal()}, nil
}

// AddExternalSigner proposes the group's current GroupContext extensions
// with external_sender appended to the external_senders extension (added
// if missing).
func (s *Server) AddExternalSigner(_ context.Context, req *pb.AddExternalSignerRequest) (*pb.ProposalResponse, error) {
	es, err := mls.ParseExternalSender(req.ExternalSender)
	if err != nil {
		return nil, grpcError("AddExternalSigner", err)
	}
	return s.propose("AddExternalSigner", req.StateId, func(g *mls.Group) ([]byte, error) {
		exts, _, err := mls.WithExternalSender(g.Extensions(), *es)
		if err != nil {
			return nil, err
		}
		return g.ProposeGroupContextExtensions(exts)
	})
}

// ExternalSignerProposal has an external signer propose to the group a
// GroupInfo describes (its signature is checked first, with the ratchet
// tree given beside it or inside it). The signer's index is the position
// of its signature key in the group's external_senders extension;
// signer_index, which the upstream runner leaves unset, is not needed.
func (s *Server) ExternalSignerProposal(_ context.Context, req *pb.ExternalSignerProposalRequest) (*pb.ProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	signer, ok := s.signers[req.SignerId]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no external signer %d", req.SignerId)
	}
	if req.Description == nil {
		return nil, status.Error(codes.InvalidArgument, "no proposal description")
	}
	m, err := mls.ParseMLSMessage(req.GroupInfo)
	if err != nil {
		return nil, grpcError("ExternalSignerProposal", err)
	}
	if m.WireFormat != mls.WireFormatGroupInfo {
		return nil, status.Errorf(codes.InvalidArgument, "group_info is a %v", m.WireFormat)
	}
	gi := m.GroupInfo
	gc := &gi.GroupContext
	suite, err := mls.LookupSuite(gc.CipherSuite)
	if err != nil {
		return nil, grpcError("ExternalSignerProposal", err)
	}
	tree, err := groupInfoTree(gi, req.RatchetTree)
	if err != nil {
		return nil, err
	}
	if err := verifyGroupInfoWith(suite, gi, tree); err != nil {
		return nil, err
	}
	idx, err := mls.FindExternalSender(gc.Extensions, signer.SignaturePub)
	if err != nil {
		return nil, grpcError("ExternalSignerProposal", err)
	}
	v := groupView{suite: gc.CipherSuite, groupID: gc.GroupID, leafOf: func(id []byte) (mls.LeafIndex, error) {
		for _, l := range tree.Members() {
			if bytes.Equal(tree.LeafNode(l).Credential.Identity, id) {
				return l, nil
			}
		}
		return 0, status.Errorf(codes.NotFound, "no member with identity %q", id)
	}}
	props, err := describedProposals(v, []*pb.ProposalDescription{req.Description})
	if err != nil {
		return nil, err
	}
	msg, err := mls.ExternalProposal(gc, idx, signer, &props[0], nil)
	if err != nil {
		return nil, grpcError("ExternalSignerProposal", err)
	}
	s.log.Debug("ExternalSignerProposal", "signer", req.SignerId, "index", idx, "epoch", gc.Epoch, "type", props[0].Type)
	return &pb.ProposalResponse{Proposal: msg}, nil
}

// reinitProposal builds a ReInit proposal from a description: its group_id
// (16 fresh random bytes if empty), cipher_suite (the group's if 0) and
// extensions.
func reinitProposal(v groupView, d *pb.ProposalDescription) (*mls.ReInitProposal, error) {
	cs := v.suite
	if d.CipherSuite != 0 {
		var err error
		if cs, err = suiteOf(d.CipherSuite); err != nil {
			return nil, err
		}
	}
	groupID := bytes.Clone(d.GroupId)
	if len(groupID) == 0 {
		groupID = make([]byte, 16)
		if _, err := rand.Read(groupID); err != nil {
			return nil, err
		}
	}
	exts, err := mlsExtensions(d.Extensions)
	if err != nil {
		return nil, err
	}
	return &mls.ReInitProposal{GroupID: groupID, Version: mls.MLS10, CipherSuite: cs, Extensions: exts}, nil
}

// groupInfoTree returns the ratchet tree of a GroupInfo: the one given
// beside it, or else its ratchet_tree extension.
func groupInfoTree(gi *mls.GroupInfo, beside []byte) (*mls.RatchetTree, error) {
	data := beside
	if len(data) == 0 {
		ext, ok := mls.FindExtension(gi.Extensions, mls.ExtensionRatchetTree)
		if !ok {
			return nil, status.Error(codes.InvalidArgument, "GroupInfo comes without a ratchet tree")
		}
		data = ext.Data
	}
	tree, err := mls.ParseRatchetTree(data)
	if err != nil {
		return nil, grpcError("ratchet tree", err)
	}
	return tree, nil
}
