package interop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quicproquo/quicproquo/internal/mls"
	pb "github.com/quicproquo/quicproquo/internal/mls/interop/mlsclientpb"
)

// serverPair is a two-member group (alice, bob) on one Server, called
// directly, with a few valid messages of it.
type serverPair struct {
	s                  *Server
	alice, bob         uint32
	tx                 uint32 // an unused KeyPackage transaction
	keyPackage         []byte
	welcome, groupInfo []byte
	app, commit        []byte
}

func newServerPair(t testing.TB) *serverPair {
	t.Helper()
	ctx := context.Background()
	s := NewServer(nil)
	p := &serverPair{s: s}
	cg, err := s.CreateGroup(ctx, &pb.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: 1, EncryptHandshake: true, Identity: []byte("alice")})
	if err != nil {
		t.Fatal(err)
	}
	p.alice = cg.StateId
	kp, err := s.CreateKeyPackage(ctx, &pb.CreateKeyPackageRequest{CipherSuite: 1, Identity: []byte("bob")})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := s.Commit(ctx, &pb.CommitRequest{StateId: p.alice, ByValue: []*pb.ProposalDescription{{ProposalType: []byte("add"), KeyPackage: kp.KeyPackage}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: p.alice}); err != nil {
		t.Fatal(err)
	}
	jr, err := s.JoinGroup(ctx, &pb.JoinGroupRequest{TransactionId: kp.TransactionId, Welcome: cr.Welcome, EncryptHandshake: true, Identity: []byte("bob")})
	if err != nil {
		t.Fatal(err)
	}
	p.bob, p.welcome = jr.StateId, cr.Welcome
	kp2, err := s.CreateKeyPackage(ctx, &pb.CreateKeyPackageRequest{CipherSuite: 1, Identity: []byte("carol")})
	if err != nil {
		t.Fatal(err)
	}
	p.tx, p.keyPackage = kp2.TransactionId, kp2.KeyPackage
	gi, err := s.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: p.alice})
	if err != nil {
		t.Fatal(err)
	}
	p.groupInfo = gi.GroupInfo
	app, err := s.Protect(ctx, &pb.ProtectRequest{StateId: p.alice, Plaintext: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	p.app = app.Ciphertext
	c, err := s.Commit(ctx, &pb.CommitRequest{StateId: p.alice, ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	p.commit = c.Commit
	return p
}

// wantCode fails unless err is a gRPC status with code want.
func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: code %v (%v), want %v", what, got, err, want)
	}
}

func TestServerErrors(t *testing.T) {
	ctx := context.Background()
	p := newServerPair(t)
	s := p.s

	_, err := s.CreateGroup(ctx, &pb.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: 0x7777, Identity: []byte("x")})
	wantCode(t, "CreateGroup with an unknown suite", err, codes.Unimplemented)
	_, err = s.CreateGroup(ctx, &pb.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: 1 << 20, Identity: []byte("x")})
	wantCode(t, "CreateGroup with a suite beyond uint16", err, codes.InvalidArgument)
	_, err = s.CreateGroup(ctx, &pb.CreateGroupRequest{CipherSuite: 1, Identity: []byte("x")})
	wantCode(t, "CreateGroup without group id", err, codes.InvalidArgument)
	_, err = s.Protect(ctx, &pb.ProtectRequest{StateId: 9999, Plaintext: []byte("x")})
	wantCode(t, "Protect on an unknown state", err, codes.NotFound)
	_, err = s.JoinGroup(ctx, &pb.JoinGroupRequest{TransactionId: 9999, Welcome: p.welcome})
	wantCode(t, "JoinGroup on an unknown transaction", err, codes.NotFound)
	_, err = s.JoinGroup(ctx, &pb.JoinGroupRequest{TransactionId: p.tx, Welcome: p.welcome})
	wantCode(t, "JoinGroup from a Welcome for another KeyPackage", err, codes.InvalidArgument)
	_, err = s.Unprotect(ctx, &pb.UnprotectRequest{StateId: p.bob, Ciphertext: p.keyPackage})
	wantCode(t, "Unprotect of a KeyPackage", err, codes.InvalidArgument)
	_, err = s.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: p.bob})
	wantCode(t, "HandlePendingCommit without a pending commit", err, codes.FailedPrecondition)
	_, err = s.Commit(ctx, &pb.CommitRequest{StateId: p.alice})
	wantCode(t, "Commit while a commit is pending", err, codes.FailedPrecondition)
	_, err = s.RemoveProposal(ctx, &pb.RemoveProposalRequest{StateId: p.bob, RemovedId: []byte("nobody")})
	wantCode(t, "RemoveProposal of a stranger", err, codes.NotFound)
	_, err = s.ExternalJoin(ctx, &pb.ExternalJoinRequest{GroupInfo: p.groupInfo, Identity: []byte("x"), Psks: []*pb.PreSharedKey{{PskSecret: []byte("s")}}})
	wantCode(t, "ExternalJoin with an empty psk_id", err, codes.InvalidArgument)
	psk := &pb.PreSharedKey{PskId: []byte("i"), PskSecret: []byte("s")}
	_, err = s.ExternalJoin(ctx, &pb.ExternalJoinRequest{GroupInfo: p.groupInfo, Identity: []byte("x"), Psks: []*pb.PreSharedKey{psk, psk}})
	wantCode(t, "ExternalJoin with the same PSK twice", err, codes.InvalidArgument)
	ej, err := s.ExternalJoin(ctx, &pb.ExternalJoinRequest{GroupInfo: p.groupInfo, Identity: []byte("x"), Psks: []*pb.PreSharedKey{psk}})
	if err != nil {
		t.Fatalf("ExternalJoin with a PSK: %v", err)
	}
	_, err = s.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: p.bob, Commit: ej.Commit})
	wantCode(t, "HandleCommit of an external commit with a PSK bob lacks", err, codes.FailedPrecondition)
	_, err = s.Commit(ctx, &pb.CommitRequest{StateId: p.bob, ByValue: []*pb.ProposalDescription{{ProposalType: []byte("hug")}}})
	wantCode(t, "Commit of an unknown proposal type", err, codes.InvalidArgument)
	_, err = s.Export(ctx, &pb.ExportRequest{StateId: p.bob, Label: "l", KeyLength: 1 << 20})
	wantCode(t, "Export of 1 MiB", err, codes.InvalidArgument)
	_, err = s.NewMemberAddProposal(ctx, &pb.NewMemberAddProposalRequest{GroupInfo: p.keyPackage, Identity: []byte("x")})
	wantCode(t, "NewMemberAddProposal from a KeyPackage", err, codes.InvalidArgument)
	bare, err := s.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: p.bob, ExternalTree: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.NewMemberAddProposal(ctx, &pb.NewMemberAddProposalRequest{GroupInfo: bare.GroupInfo, Identity: []byte("x")})
	wantCode(t, "NewMemberAddProposal from a GroupInfo without tree", err, codes.InvalidArgument)
	forged := append([]byte(nil), p.groupInfo...)
	forged[len(forged)-1] ^= 1 // inside the signature
	_, err = s.NewMemberAddProposal(ctx, &pb.NewMemberAddProposalRequest{GroupInfo: forged, Identity: []byte("x")})
	wantCode(t, "NewMemberAddProposal from a GroupInfo with a bad signature", err, codes.InvalidArgument)

	// The commit applied by bob, the pending one merged by alice: they agree.
	hc, err := s.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: p.bob, Commit: p.commit})
	if err != nil {
		t.Fatal(err)
	}
	hp, err := s.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: p.alice})
	if err != nil {
		t.Fatal(err)
	}
	if string(hc.EpochAuthenticator) != string(hp.EpochAuthenticator) {
		t.Fatal("alice and bob disagree after the commit")
	}
	// A commit handed in as a proposal is refused, and the state survives.
	_, err = s.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: p.bob, Proposal: [][]byte{p.commit}, Commit: p.commit})
	wantCode(t, "a stale commit among the proposals", err, codes.InvalidArgument)
	if _, err := s.Protect(ctx, &pb.ProtectRequest{StateId: p.bob, Plaintext: []byte("still here")}); err != nil {
		t.Fatalf("bob's state broke after bad input: %v", err)
	}

	for _, call := range []struct {
		name string
		err  error
	}{
		{"ReInitProposal", second(s.ReInitProposal(ctx, &pb.ReInitProposalRequest{}))},
		{"ReInitCommit", second(s.ReInitCommit(ctx, &pb.CommitRequest{}))},
		{"HandlePendingReInitCommit", second(s.HandlePendingReInitCommit(ctx, &pb.HandlePendingCommitRequest{}))},
		{"HandleReInitCommit", second(s.HandleReInitCommit(ctx, &pb.HandleCommitRequest{}))},
		{"ReInitWelcome", second(s.ReInitWelcome(ctx, &pb.ReInitWelcomeRequest{}))},
		{"HandleReInitWelcome", second(s.HandleReInitWelcome(ctx, &pb.HandleReInitWelcomeRequest{}))},
		{"CreateBranch", second(s.CreateBranch(ctx, &pb.CreateBranchRequest{}))},
		{"HandleBranch", second(s.HandleBranch(ctx, &pb.HandleBranchRequest{}))},
	} {
		wantCode(t, call.name, call.err, codes.NotFound)
	}

	if _, err := s.Free(ctx, &pb.FreeRequest{StateId: p.bob}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Free(ctx, &pb.FreeRequest{StateId: p.bob})
	wantCode(t, "Free twice", err, codes.NotFound)
	_, err = s.StateAuth(ctx, &pb.StateAuthRequest{StateId: p.bob})
	wantCode(t, "StateAuth after Free", err, codes.NotFound)
}

func second[T any](_ T, err error) error { return err }

// TestServerReInit drives reinitialization and branching directly: a
// commit without a ReInit is refused by the reinit calls (and the state
// kept), a ReInit to suite 2 moves alice and bob to a new group, the closed
// group refuses to send, and a branch of the new group works while one
// with an outsider is refused.
func TestServerReInit(t *testing.T) {
	ctx := context.Background()
	p := newServerPair(t)
	s := p.s
	if _, err := s.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: p.bob, Commit: p.commit}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: p.alice}); err != nil {
		t.Fatal(err)
	}
	auth := func(id uint32) string {
		t.Helper()
		r, err := s.StateAuth(ctx, &pb.StateAuthRequest{StateId: id})
		if err != nil {
			t.Fatal(err)
		}
		return string(r.StateAuthSecret)
	}

	// A plain commit is no ReInit commit.
	cr, err := s.Commit(ctx, &pb.CommitRequest{StateId: p.alice})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.HandlePendingReInitCommit(ctx, &pb.HandlePendingCommitRequest{StateId: p.alice})
	wantCode(t, "HandlePendingReInitCommit of a plain commit", err, codes.FailedPrecondition)
	before := auth(p.bob)
	_, err = s.HandleReInitCommit(ctx, &pb.HandleCommitRequest{StateId: p.bob, Commit: cr.Commit})
	wantCode(t, "HandleReInitCommit of a plain commit", err, codes.InvalidArgument)
	if auth(p.bob) != before {
		t.Fatal("a refused HandleReInitCommit changed bob's state")
	}
	if _, err := s.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: p.alice}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: p.bob, Commit: cr.Commit}); err != nil {
		t.Fatal(err)
	}

	// Bob proposes a ReInit to suite 2, alice commits it.
	pr, err := s.ReInitProposal(ctx, &pb.ReInitProposalRequest{StateId: p.bob, CipherSuite: 2, GroupId: []byte("g2")})
	if err != nil {
		t.Fatal(err)
	}
	cr, err = s.ReInitCommit(ctx, &pb.CommitRequest{StateId: p.alice, ByReference: [][]byte{pr.Proposal}})
	if err != nil {
		t.Fatal(err)
	}
	ha, err := s.HandlePendingReInitCommit(ctx, &pb.HandlePendingCommitRequest{StateId: p.alice})
	if err != nil {
		t.Fatal(err)
	}
	hb, err := s.HandleReInitCommit(ctx, &pb.HandleCommitRequest{StateId: p.bob, Proposal: [][]byte{pr.Proposal}, Commit: cr.Commit})
	if err != nil {
		t.Fatal(err)
	}
	if string(ha.EpochAuthenticator) != string(hb.EpochAuthenticator) {
		t.Fatal("alice and bob disagree on the ReInit commit")
	}
	kpb, err := mls.ParseMLSMessage(hb.KeyPackage)
	if err != nil || kpb.KeyPackage.CipherSuite != 2 {
		t.Fatalf("bob's reinit KeyPackage: %v", err)
	}
	_, err = s.Protect(ctx, &pb.ProtectRequest{StateId: p.alice, Plaintext: []byte("x")})
	wantCode(t, "Protect in a closed group", err, codes.FailedPrecondition)
	_, err = s.ReInitWelcome(ctx, &pb.ReInitWelcomeRequest{ReinitId: ha.ReinitId})
	wantCode(t, "ReInitWelcome without bob", err, codes.InvalidArgument)

	wr, err := s.ReInitWelcome(ctx, &pb.ReInitWelcomeRequest{ReinitId: ha.ReinitId, KeyPackage: [][]byte{hb.KeyPackage}, ExternalTree: true})
	if err != nil {
		t.Fatal(err)
	}
	jr, err := s.HandleReInitWelcome(ctx, &pb.HandleReInitWelcomeRequest{ReinitId: hb.ReinitId, Welcome: wr.Welcome, RatchetTree: wr.RatchetTree})
	if err != nil {
		t.Fatal(err)
	}
	if string(jr.EpochAuthenticator) != string(wr.EpochAuthenticator) {
		t.Fatal("alice and bob disagree on the new group")
	}
	_, err = s.HandleReInitWelcome(ctx, &pb.HandleReInitWelcomeRequest{ReinitId: hb.ReinitId, Welcome: wr.Welcome})
	wantCode(t, "HandleReInitWelcome twice", err, codes.NotFound)

	// A branch of the new group with bob, and one with an outsider.
	kp, err := s.CreateKeyPackage(ctx, &pb.CreateKeyPackageRequest{CipherSuite: 2, Identity: []byte("bob")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.CreateKeyPackage(ctx, &pb.CreateKeyPackageRequest{CipherSuite: 2, Identity: []byte("mallory")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateBranch(ctx, &pb.CreateBranchRequest{StateId: wr.StateId, KeyPackages: [][]byte{kp.KeyPackage, out.KeyPackage}})
	wantCode(t, "CreateBranch with an outsider", err, codes.InvalidArgument)
	br, err := s.CreateBranch(ctx, &pb.CreateBranchRequest{StateId: wr.StateId, KeyPackages: [][]byte{kp.KeyPackage}, ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	hbr, err := s.HandleBranch(ctx, &pb.HandleBranchRequest{StateId: jr.StateId, TransactionId: kp.TransactionId, Welcome: br.Welcome})
	if err != nil {
		t.Fatal(err)
	}
	if string(hbr.EpochAuthenticator) != string(br.EpochAuthenticator) {
		t.Fatal("alice and bob disagree on the branch")
	}
	app, err := s.Protect(ctx, &pb.ProtectRequest{StateId: hbr.StateId, Plaintext: []byte("in the branch")})
	if err != nil {
		t.Fatal(err)
	}
	ur, err := s.Unprotect(ctx, &pb.UnprotectRequest{StateId: br.StateId, Ciphertext: app.Ciphertext})
	if err != nil || string(ur.Plaintext) != "in the branch" {
		t.Fatalf("branch message: %v", err)
	}
}

// TestServerExternalSigner drives the external-signer calls directly: a
// signer admitted by a GroupContextExtensions commit proposes an Add and a
// ReInit, bob receives both, and bad input gets the right codes.
func TestServerExternalSigner(t *testing.T) {
	ctx := context.Background()
	p := newServerPair(t)
	s := p.s
	if _, err := s.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: p.bob, Commit: p.commit}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: p.alice}); err != nil {
		t.Fatal(err)
	}

	_, err := s.CreateExternalSigner(ctx, &pb.CreateExternalSignerRequest{Identity: []byte("ds")})
	wantCode(t, "CreateExternalSigner without a suite", err, codes.InvalidArgument)
	_, err = s.AddExternalSigner(ctx, &pb.AddExternalSignerRequest{StateId: p.alice, ExternalSender: []byte{1}})
	wantCode(t, "AddExternalSigner with a malformed ExternalSender", err, codes.InvalidArgument)
	_, err = s.ExternalSignerProposal(ctx, &pb.ExternalSignerProposalRequest{SignerId: 9999})
	wantCode(t, "ExternalSignerProposal by an unknown signer", err, codes.NotFound)

	cs, err := s.CreateExternalSigner(ctx, &pb.CreateExternalSignerRequest{CipherSuite: 1, Identity: []byte("ds")})
	if err != nil {
		t.Fatal(err)
	}
	es, err := mls.ParseExternalSender(cs.ExternalSender)
	if err != nil || string(es.Credential.Identity) != "ds" {
		t.Fatalf("external_sender %x: %v", cs.ExternalSender, err)
	}
	gi, err := s.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: p.alice, ExternalTree: true})
	if err != nil {
		t.Fatal(err)
	}
	add := &pb.ProposalDescription{ProposalType: []byte("add"), KeyPackage: p.keyPackage}
	_, err = s.ExternalSignerProposal(ctx, &pb.ExternalSignerProposalRequest{
		SignerId: cs.SignerId, GroupInfo: gi.GroupInfo, RatchetTree: gi.RatchetTree, Description: add})
	wantCode(t, "ExternalSignerProposal to a group without external senders", err, codes.FailedPrecondition)

	pr, err := s.AddExternalSigner(ctx, &pb.AddExternalSignerRequest{StateId: p.alice, ExternalSender: cs.ExternalSender})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := s.Commit(ctx, &pb.CommitRequest{StateId: p.alice, ByReference: [][]byte{pr.Proposal}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.HandlePendingCommit(ctx, &pb.HandlePendingCommitRequest{StateId: p.alice}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: p.bob, Proposal: [][]byte{pr.Proposal}, Commit: cr.Commit}); err != nil {
		t.Fatal(err)
	}

	if gi, err = s.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: p.alice, ExternalTree: true}); err != nil {
		t.Fatal(err)
	}
	_, err = s.ExternalSignerProposal(ctx, &pb.ExternalSignerProposalRequest{
		SignerId: cs.SignerId, GroupInfo: gi.GroupInfo, Description: add})
	wantCode(t, "ExternalSignerProposal without a ratchet tree", err, codes.InvalidArgument)
	_, err = s.ExternalSignerProposal(ctx, &pb.ExternalSignerProposalRequest{
		SignerId: cs.SignerId, GroupInfo: gi.GroupInfo, RatchetTree: gi.RatchetTree[:len(gi.RatchetTree)-1], Description: add})
	wantCode(t, "ExternalSignerProposal with a cut ratchet tree", err, codes.InvalidArgument)
	_, err = s.ExternalSignerProposal(ctx, &pb.ExternalSignerProposalRequest{
		SignerId: cs.SignerId, GroupInfo: gi.GroupInfo, RatchetTree: gi.RatchetTree,
		Description: &pb.ProposalDescription{ProposalType: []byte("update")}})
	wantCode(t, "ExternalSignerProposal of an update", err, codes.InvalidArgument)

	for _, d := range []*pb.ProposalDescription{add, {ProposalType: []byte("reinit"), GroupId: []byte("g2"), CipherSuite: 1}} {
		ep, err := s.ExternalSignerProposal(ctx, &pb.ExternalSignerProposalRequest{
			SignerId: cs.SignerId, GroupInfo: gi.GroupInfo, RatchetTree: gi.RatchetTree, Description: d})
		if err != nil {
			t.Fatalf("%s: %v", d.ProposalType, err)
		}
		m, err := mls.ParseMLSMessage(ep.Proposal)
		if err != nil || m.PublicMessage == nil || m.PublicMessage.Content.Sender.Type != mls.SenderExternal {
			t.Fatalf("%s: external proposal %v", d.ProposalType, err)
		}
		rec, err := s.states[p.bob].group.ProcessMessage(ep.Proposal)
		if err != nil || rec.Kind != mls.KindProposal || rec.SenderType != mls.SenderExternal {
			t.Fatalf("%s: bob: %+v, %v", d.ProposalType, rec, err)
		}
	}
	if _, err := s.Free(ctx, &pb.FreeRequest{StateId: cs.SignerId}); err != nil {
		t.Fatal(err)
	}
	_, err = s.ExternalSignerProposal(ctx, &pb.ExternalSignerProposalRequest{SignerId: cs.SignerId})
	wantCode(t, "ExternalSignerProposal after Free", err, codes.NotFound)
}

// TestServerGroupInfoExternalTree checks that a GroupInfo asked for with
// external_tree leaves the tree out, is still validly signed, and that
// joining from it needs the tree given beside it.
func TestServerGroupInfoExternalTree(t *testing.T) {
	ctx := context.Background()
	p := newServerPair(t)
	gi, err := p.s.GroupInfo(ctx, &pb.GroupInfoRequest{StateId: p.bob, ExternalTree: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mls.ParseMLSMessage(gi.GroupInfo)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mls.FindExtension(m.GroupInfo.Extensions, mls.ExtensionRatchetTree); ok {
		t.Fatal("external_tree GroupInfo still carries the tree")
	}
	if len(gi.RatchetTree) == 0 {
		t.Fatal("no ratchet tree beside the GroupInfo")
	}
	_, err = p.s.ExternalJoin(ctx, &pb.ExternalJoinRequest{GroupInfo: gi.GroupInfo, Identity: []byte("dan")})
	if status.Code(err) == codes.OK {
		t.Fatal("external join without any tree succeeded")
	}
	ej, err := p.s.ExternalJoin(ctx, &pb.ExternalJoinRequest{GroupInfo: gi.GroupInfo, RatchetTree: gi.RatchetTree, Identity: []byte("dan")})
	if err != nil {
		t.Fatalf("external join with the tree beside the GroupInfo: %v", err)
	}
	hc, err := p.s.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: p.bob, Commit: ej.Commit})
	if err != nil {
		t.Fatal(err)
	}
	if string(hc.EpochAuthenticator) != string(ej.EpochAuthenticator) {
		t.Fatal("bob and the external joiner disagree")
	}
}

// TestInteropDeepRandom runs the long random scenario (1670 steps, many
// members, every kind of proposal and commit) once, suite 1, actors spread
// over two servers.
func TestInteropDeepRandom(t *testing.T) {
	if testing.Short() {
		t.Skip("long scenario")
	}
	a, b := startInteropServer(t), startInteropServer(t)
	data, err := os.ReadFile(filepath.Join("testdata", "deep_random.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Scripts["random"]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	run := &ScriptRun{Suite: 1, EncryptHandshake: true, Clients: assignActors(s, a, b, 0)}
	if err := run.Run(ctx, s); err != nil {
		t.Fatal(err)
	}
	t.Logf("interop deep_random.json: 1/1 scripts passed (%d steps, %d actors)", len(s), len(s.Actors()))
}

// FuzzServerMessages feeds arbitrary bytes to every call that takes MLS
// messages from outside. Each must answer with a typed status (never
// Internal or Unknown, never a panic), and the states must stay usable.
func FuzzServerMessages(f *testing.F) {
	seed := newServerPair(f)
	for _, b := range [][]byte{seed.keyPackage, seed.welcome, seed.groupInfo, seed.app, seed.commit, {0, 1, 0, 1}, nil} {
		f.Add(b)
	}
	p := newServerPair(f)
	ctx := context.Background()
	signer, err := p.s.CreateExternalSigner(ctx, &pb.CreateExternalSignerRequest{CipherSuite: 1, Identity: []byte("ds")})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(what string, err error) {
			switch status.Code(err) {
			case codes.OK, codes.InvalidArgument, codes.FailedPrecondition, codes.NotFound, codes.Unimplemented:
			default:
				t.Fatalf("%s: %v", what, err)
			}
		}
		_, err := p.s.Unprotect(ctx, &pb.UnprotectRequest{StateId: p.bob, Ciphertext: data})
		check("Unprotect", err)
		_, err = p.s.HandleCommit(ctx, &pb.HandleCommitRequest{StateId: p.bob, Proposal: [][]byte{data}, Commit: data})
		check("HandleCommit", err)
		_, err = p.s.JoinGroup(ctx, &pb.JoinGroupRequest{TransactionId: p.tx, Welcome: data, RatchetTree: data})
		check("JoinGroup", err)
		_, err = p.s.ExternalJoin(ctx, &pb.ExternalJoinRequest{GroupInfo: data, RatchetTree: data, Identity: []byte("x")})
		check("ExternalJoin", err)
		_, err = p.s.AddProposal(ctx, &pb.AddProposalRequest{StateId: p.bob, KeyPackage: data})
		check("AddProposal", err)
		_, err = p.s.NewMemberAddProposal(ctx, &pb.NewMemberAddProposalRequest{GroupInfo: data, Identity: []byte("x")})
		check("NewMemberAddProposal", err)
		_, err = p.s.GroupContextExtensionsProposal(ctx, &pb.GroupContextExtensionsProposalRequest{StateId: p.bob,
			Extensions: []*pb.Extension{{ExtensionType: 0xff00, ExtensionData: data}}})
		check("GroupContextExtensionsProposal", err)
		_, err = p.s.AddExternalSigner(ctx, &pb.AddExternalSignerRequest{StateId: p.bob, ExternalSender: data})
		check("AddExternalSigner", err)
		_, err = p.s.ExternalSignerProposal(ctx, &pb.ExternalSignerProposalRequest{SignerId: signer.SignerId,
			GroupInfo: data, RatchetTree: data, Description: &pb.ProposalDescription{ProposalType: []byte("remove"), RemovedId: []byte("bob")}})
		check("ExternalSignerProposal", err)
		_, err = p.s.HandleReInitCommit(ctx, &pb.HandleCommitRequest{StateId: p.bob, Proposal: [][]byte{data}, Commit: data})
		check("HandleReInitCommit", err)
		_, err = p.s.CreateBranch(ctx, &pb.CreateBranchRequest{StateId: p.bob, KeyPackages: [][]byte{data}})
		check("CreateBranch", err)
		_, err = p.s.HandleBranch(ctx, &pb.HandleBranchRequest{StateId: p.bob, TransactionId: p.tx, Welcome: data, RatchetTree: data})
		check("HandleBranch", err)
		if _, err := p.s.Protect(ctx, &pb.ProtectRequest{StateId: p.bob, Plaintext: data}); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("bob cannot send after bad input: %v", err)
		}
	})
}
