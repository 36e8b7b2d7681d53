package api

import (
	"context"

	"github.com/quicproquo/quicproquo/daemon/backend"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// This file serves consent (requests), contacts and key verification.

func contactPB(c backend.Contact) *daemonv1.Contact {
	return &daemonv1.Contact{
		Identity: backend.FormatKey(c.Identity), Name: c.Name, Verified: !c.VerifiedAt.IsZero(),
		AddedAt: ts(c.AddedAt), VerifiedAt: ts(c.VerifiedAt), Blocked: c.Blocked,
	}
}

// ListRequests implements the ListRequests call.
func (s *Server) ListRequests(ctx context.Context, _ *daemonv1.ListRequestsRequest) (*daemonv1.ListRequestsResponse, error) {
	rs, err := s.b.Requests(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &daemonv1.ListRequestsResponse{}
	for _, r := range rs {
		resp.Requests = append(resp.Requests, &daemonv1.Request{
			Id: uint64(r.ID), Inviter: backend.FormatKey(r.Inviter), ReceivedAt: ts(r.ReceivedAt), Size: uint32(r.Size),
			GroupId: optKey(r.GroupID), GroupName: r.GroupName, MemberCount: uint32(r.Members), Problem: r.Problem,
		})
	}
	return resp, nil
}

// requestID checks a request id from the API.
func requestID(id uint64) (int64, error) {
	if id == 0 || id > 1<<62 {
		return 0, toStatus(backend.ErrRequestNotFound)
	}
	return int64(id), nil
}

// AcceptRequest implements the AcceptRequest call.
func (s *Server) AcceptRequest(ctx context.Context, req *daemonv1.AcceptRequestRequest) (*daemonv1.AcceptRequestResponse, error) {
	id, err := requestID(req.GetId())
	if err != nil {
		return nil, err
	}
	g, err := s.b.AcceptRequest(ctx, id, req.GetContactName())
	if err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.AcceptRequestResponse{Group: groupInfoPB(g)}, nil
}

// DeclineRequest implements the DeclineRequest call.
func (s *Server) DeclineRequest(ctx context.Context, req *daemonv1.DeclineRequestRequest) (*daemonv1.DeclineRequestResponse, error) {
	id, err := requestID(req.GetId())
	if err != nil {
		return nil, err
	}
	if err := s.b.DeclineRequest(ctx, id); err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.DeclineRequestResponse{}, nil
}

// Block implements the Block call.
func (s *Server) Block(ctx context.Context, req *daemonv1.BlockRequest) (*daemonv1.BlockResponse, error) {
	k, err := s.b.ResolvePeer(ctx, req.GetIdentity())
	if err != nil {
		return nil, toStatus(err)
	}
	n, err := s.b.Block(ctx, k)
	if err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.BlockResponse{RequestsDeleted: uint32(n)}, nil
}

// Unblock implements the Unblock call.
func (s *Server) Unblock(ctx context.Context, req *daemonv1.UnblockRequest) (*daemonv1.UnblockResponse, error) {
	k, err := s.b.ResolvePeer(ctx, req.GetIdentity())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.b.Unblock(ctx, k); err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.UnblockResponse{}, nil
}

// AddContact implements the AddContact call.
func (s *Server) AddContact(ctx context.Context, req *daemonv1.AddContactRequest) (*daemonv1.AddContactResponse, error) {
	k, err := backend.ParseKey(req.GetIdentity())
	if err != nil {
		return nil, toStatus(err)
	}
	c, replaced, err := s.b.AddContact(ctx, k, req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.AddContactResponse{Contact: contactPB(c), ReplacedIdentity: optKey(replaced)}, nil
}

// ListContacts implements the ListContacts call.
func (s *Server) ListContacts(ctx context.Context, _ *daemonv1.ListContactsRequest) (*daemonv1.ListContactsResponse, error) {
	cs, err := s.b.Contacts(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &daemonv1.ListContactsResponse{}
	for _, c := range cs {
		resp.Contacts = append(resp.Contacts, contactPB(c))
	}
	return resp, nil
}

// RemoveContact implements the RemoveContact call.
func (s *Server) RemoveContact(ctx context.Context, req *daemonv1.RemoveContactRequest) (*daemonv1.RemoveContactResponse, error) {
	if err := s.b.RemoveContact(ctx, req.GetContact()); err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.RemoveContactResponse{}, nil
}

// SafetyNumber implements the SafetyNumber call.
func (s *Server) SafetyNumber(ctx context.Context, req *daemonv1.SafetyNumberRequest) (*daemonv1.SafetyNumberResponse, error) {
	sn, err := s.b.SafetyNumber(ctx, req.GetContact())
	if err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.SafetyNumberResponse{Digits: sn.Digits, QrPayload: sn.QR, Contact: contactPB(sn.Contact)}, nil
}

// Verify implements the Verify call.
func (s *Server) Verify(ctx context.Context, req *daemonv1.VerifyRequest) (*daemonv1.VerifyResponse, error) {
	c, err := s.b.Verify(ctx, req.GetContact(), req.GetVerified())
	if err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.VerifyResponse{Contact: contactPB(c)}, nil
}

// ExportIdentity implements the ExportIdentity call. The passphrase is
// wiped once the backup is sealed.
func (s *Server) ExportIdentity(ctx context.Context, req *daemonv1.ExportIdentityRequest) (*daemonv1.ExportIdentityResponse, error) {
	pass := req.GetPassphrase()
	defer clear(pass)
	text, pub, err := s.b.ExportIdentity(ctx, pass)
	if err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.ExportIdentityResponse{Backup: text, Identity: backend.FormatKey(pub)}, nil
}

// RenameContact implements the RenameContact call.
func (s *Server) RenameContact(ctx context.Context, req *daemonv1.RenameContactRequest) (*daemonv1.RenameContactResponse, error) {
	c, err := s.b.RenameContact(ctx, req.GetContact(), req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.RenameContactResponse{Contact: contactPB(c)}, nil
}
