package api

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/quicproquo/quicproquo/daemon/backend"
	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// Options configures NewGRPCServer.
type Options struct {
	Logger *slog.Logger // nil discards
	// AllowedUID is the only uid served; by default the daemon's own.
	AllowedUID *uint32
}

// NewGRPCServer returns a gRPC server with the Daemon service, health
// (grpc.health.v1, service "qpq.daemon.v1.Daemon" and "") and reflection,
// every call guarded by the peer uid check.
func NewGRPCServer(b *backend.Backend, opts Options) (*grpc.Server, *health.Server) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	uid := uint32(os.Getuid())
	if opts.AllowedUID != nil {
		uid = *opts.AllowedUID
	}
	g := uidGuard{allowed: uid}
	gs := grpc.NewServer(
		grpc.Creds(peerCreds{}),
		grpc.ChainUnaryInterceptor(g.unary, logUnary(log), recoverUnary(log)),
		grpc.ChainStreamInterceptor(g.stream, recoverStream(log)),
		grpc.MaxRecvMsgSize(1<<20),
	)
	daemonv1.RegisterDaemonServer(gs, &Server{b: b, log: log})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(daemonv1.Daemon_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return gs, hs
}

func logUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		log.Debug("call", "method", info.FullMethod, "code", status.Code(err).String(), "took", time.Since(start))
		return resp, err
	}
}

// Server implements daemonv1.DaemonServer over a Backend.
type Server struct {
	daemonv1.UnimplementedDaemonServer
	b     *backend.Backend
	log   *slog.Logger
	links linkWaits // Link calls waiting for ConfirmLink
}

// toStatus maps backend errors to gRPC status errors.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, backend.ErrUnimplemented):
		code = codes.Unimplemented
	case errors.Is(err, backend.ErrNotRegistered):
		code = codes.FailedPrecondition
	case errors.Is(err, backend.ErrNotConnected):
		code = codes.Unavailable
	case errors.Is(err, backend.ErrNotAuthor):
		code = codes.PermissionDenied
	case errors.Is(err, backend.ErrGroupNotFound), errors.Is(err, backend.ErrNoKeyPackage), errors.Is(err, backend.ErrMessageNotFound),
		errors.Is(err, backend.ErrContactNotFound), errors.Is(err, backend.ErrRequestNotFound):
		code = codes.NotFound
	case errors.Is(err, backend.ErrAmbiguousGroup), errors.Is(err, backend.ErrAmbiguousPeer), errors.Is(err, backend.ErrInvalidArgument):
		code = codes.InvalidArgument
	case errors.Is(err, backend.ErrGroupExists):
		code = codes.AlreadyExists
	case errors.Is(err, backend.ErrNotMember):
		code = codes.FailedPrecondition
	case errors.Is(err, store.ErrExists):
		code = codes.AlreadyExists
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

var connStates = map[backend.ConnState]daemonv1.ConnectionState{
	backend.StateNotRegistered: daemonv1.ConnectionState_CONNECTION_STATE_NOT_REGISTERED,
	backend.StateConnecting:    daemonv1.ConnectionState_CONNECTION_STATE_CONNECTING,
	backend.StateConnected:     daemonv1.ConnectionState_CONNECTION_STATE_CONNECTED,
	backend.StateDisconnected:  daemonv1.ConnectionState_CONNECTION_STATE_DISCONNECTED,
}

func connectionPB(c backend.ConnectionInfo) *daemonv1.NodeConnection {
	return &daemonv1.NodeConnection{
		Address:          c.Address,
		State:            connStates[c.State],
		LastError:        c.LastError,
		Since:            ts(c.Since),
		PinnedCertSha256: c.PinnedCertSHA256,
	}
}

func groupPB(g store.Group) *daemonv1.Group {
	return &daemonv1.Group{GroupId: backend.FormatKey(g.ID), Name: g.Name, Epoch: g.Epoch, CreatedAt: ts(g.CreatedAt)}
}

func groupInfoPB(g backend.GroupInfo) *daemonv1.Group {
	pb := groupPB(g.Group)
	if g.DisappearAfter > 0 {
		pb.DisappearAfter = durationpb.New(g.DisappearAfter)
	}
	pb.Unread, pb.LastSeq, pb.MemberCount = g.Unread, g.LastSeq, uint32(g.MemberCount)
	if g.Suite != 0 {
		pb.CipherSuite, pb.CipherSuiteName, pb.PostQuantum = uint32(g.Suite), g.Suite.Name(), mls.IsPostQuantum(g.Suite)
	}
	if g.DirectPeer != nil {
		pb.DirectPeer, pb.DirectPeerName = backend.FormatKey(g.DirectPeer), g.DirectPeerName
	}
	return pb
}

func messagePB(m store.Message, g store.Group) *daemonv1.Message {
	pb := &daemonv1.Message{
		GroupId:    backend.FormatKey(m.GroupID),
		GroupName:  g.Name,
		Seq:        m.Seq,
		MessageId:  backend.FormatKey(m.MessageID),
		Sender:     backend.FormatKey(m.Sender),
		Text:       m.Text,
		SentAt:     ts(m.SentAt),
		ReceivedAt: ts(m.ReceivedAt),
		Read:       m.Read,
		Outgoing:   m.Outgoing,
		GroupSeq:   m.GroupSeq,
		// Which of the person's devices sent it (shown on request).
		SenderDevice:     m.SenderDevice,
		SenderDeviceName: m.SenderDeviceName,
	}
	addContentPB(pb, m)
	return pb
}

// Status implements the Status call.
func (s *Server) Status(ctx context.Context, _ *daemonv1.StatusRequest) (*daemonv1.StatusResponse, error) {
	st, err := s.b.Status(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &daemonv1.StatusResponse{
		Registered:        st.Identity != nil,
		Node:              connectionPB(st.Node),
		KeyPackagesLeft:   uint32(st.KeyPackagesLeft),
		KeyPackagesKnown:  st.KeyPackagesKnown,
		KeyPackageSecrets: uint32(st.KeyPackageSecrets),
		Groups:            uint32(st.Groups),
		UnreadMessages:    st.Unread,
		OutboxPending:     st.OutboxPending,
		EventHead:         st.EventHead,
		Version:           st.Version,
		StateDir:          st.StateDir,
	}
	if st.Identity != nil {
		resp.Identity = backend.FormatKey(st.Identity)
	}
	return resp, nil
}

// Register implements the Register call.
func (s *Server) Register(ctx context.Context, _ *daemonv1.RegisterRequest) (*daemonv1.RegisterResponse, error) {
	r, err := s.b.Register(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.RegisterResponse{
		Identity:            backend.FormatKey(r.Identity),
		Created:             r.Created,
		KeyPackagesUploaded: uint32(r.KeyPackagesUploaded),
		Notices:             r.Notices,
	}, nil
}

// Ping implements the Ping call.
func (s *Server) Ping(ctx context.Context, _ *daemonv1.PingRequest) (*daemonv1.PingResponse, error) {
	rtt, err := s.b.Ping(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.PingResponse{Rtt: durationpb.New(rtt), Address: s.b.Connection().Address}, nil
}

// FetchKey implements the FetchKey call.
func (s *Server) FetchKey(ctx context.Context, req *daemonv1.FetchKeyRequest) (*daemonv1.FetchKeyResponse, error) {
	peer, err := s.b.ResolvePeer(ctx, req.GetPeerKey())
	if err != nil {
		return nil, toStatus(err)
	}
	fetch := s.b.FetchKey
	if req.GetPeek() {
		fetch = s.b.PeekKey
	}
	info, err := fetch(ctx, peer)
	if err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.FetchKeyResponse{
		KeyPackage:         info.KeyPackage,
		Ref:                backend.FormatKey(info.Ref),
		CipherSuite:        uint32(info.Suite),
		CredentialIdentity: backend.FormatKey(info.Identity),
		Valid:              info.Valid,
		LastResort:         info.LastResort,
		NotBefore:          ts(info.NotBefore),
		NotAfter:           ts(info.NotAfter),
		Problem:            info.Problem,
	}, nil
}

// CreateGroup implements the CreateGroup call.
func (s *Server) CreateGroup(ctx context.Context, req *daemonv1.CreateGroupRequest) (*daemonv1.CreateGroupResponse, error) {
	suite := s.b.GroupSuite()
	if req.GetPostQuantum() {
		suite = backend.PostQuantumSuite
	}
	g, err := s.b.CreateGroupIn(ctx, req.GetName(), suite)
	if err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.CreateGroupResponse{Group: groupInfoPB(g)}, nil
}

// Invite implements the Invite call.
func (s *Server) Invite(ctx context.Context, req *daemonv1.InviteRequest) (*daemonv1.InviteResponse, error) {
	peers, err := s.b.ResolvePeers(ctx, req.GetPeerKeys())
	if err != nil {
		return nil, toStatus(err)
	}
	g, added, err := s.b.Invite(ctx, req.GetGroup(), peers)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &daemonv1.InviteResponse{Group: groupInfoPB(g)}
	for _, k := range added {
		resp.Added = append(resp.Added, backend.FormatKey(k))
	}
	return resp, nil
}

// Join implements the Join call.
func (s *Server) Join(ctx context.Context, req *daemonv1.JoinRequest) (*daemonv1.JoinResponse, error) {
	var wait time.Duration
	if req.GetWait() != nil {
		if err := req.GetWait().CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "wait: %v", err)
		}
		wait = req.GetWait().AsDuration()
	}
	gs, err := s.b.Join(ctx, wait)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &daemonv1.JoinResponse{}
	for _, g := range gs {
		resp.Joined = append(resp.Joined, groupInfoPB(g))
	}
	return resp, nil
}

// ListGroups implements the ListGroups call.
func (s *Server) ListGroups(ctx context.Context, _ *daemonv1.ListGroupsRequest) (*daemonv1.ListGroupsResponse, error) {
	gs, err := s.b.Groups(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &daemonv1.ListGroupsResponse{}
	for _, g := range gs {
		resp.Groups = append(resp.Groups, groupInfoPB(g))
	}
	return resp, nil
}

// Members implements the Members call.
func (s *Server) Members(ctx context.Context, req *daemonv1.MembersRequest) (*daemonv1.MembersResponse, error) {
	r, err := s.b.Members(ctx, req.GetGroup())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &daemonv1.MembersResponse{Group: groupInfoPB(r.Group), Epoch: r.Epoch, EpochAuthenticator: hex.EncodeToString(r.EpochAuthenticator)}
	for _, p := range r.People {
		pm := &daemonv1.Member{Identity: backend.FormatKey(p.User), Self: p.Self, Name: p.Name}
		for i, d := range p.Devices {
			if i == 0 {
				pm.LeafIndex = uint32(d.Leaf)
			}
			pm.Devices = append(pm.Devices, &daemonv1.MemberDevice{Key: backend.FormatKey(d.SignatureKey), LeafIndex: uint32(d.Leaf), Self: d.Leaf == r.Self})
		}
		resp.Members = append(resp.Members, pm)
	}
	return resp, nil
}

// Send implements the Send call.
func (s *Server) Send(ctx context.Context, req *daemonv1.SendRequest) (*daemonv1.SendResponse, error) {
	wait, err := optionalDuration(req.GetWait())
	if err != nil {
		return nil, err
	}
	var r backend.SendResult
	switch {
	case req.GetTo() != "" && req.GetGroup() != "":
		return nil, status.Error(codes.InvalidArgument, "send: give a group or a person (to), not both")
	case req.GetTo() != "" && req.GetReplyTo() != "":
		return nil, status.Error(codes.InvalidArgument, "send: a reply names its group, not a person (to)")
	case req.GetTo() != "":
		r, _, err = s.b.SendTo(ctx, req.GetTo(), req.GetText(), []byte(req.GetClientMessageId()))
	case req.GetReplyTo() != "":
		r, err = s.b.Reply(ctx, req.GetGroup(), req.GetReplyTo(), req.GetText(), []byte(req.GetClientMessageId()))
	default:
		r, err = s.b.Send(ctx, req.GetGroup(), req.GetText(), []byte(req.GetClientMessageId()))
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return s.sendResponse(ctx, r, wait)
}

// sendResponse waits up to wait for the node's verdict on a sent message
// and reports it.
func (s *Server) sendResponse(ctx context.Context, r backend.SendResult, wait time.Duration) (*daemonv1.SendResponse, error) {
	d, err := s.b.AwaitDelivery(ctx, r.OutboxID, wait)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &daemonv1.SendResponse{MessageId: hex.EncodeToString(r.Message.MessageID), Seq: r.Message.Seq,
		Delivered: d.State == backend.DeliveryDelivered, StateDetail: d.Detail, UnreachableSince: ts(d.UnreachableSince), GroupSeq: d.GroupSeq}
	switch d.State {
	case backend.DeliveryDelivered:
		resp.State = daemonv1.DeliveryState_DELIVERY_STATE_DELIVERED
	case backend.DeliveryRefused:
		resp.State = daemonv1.DeliveryState_DELIVERY_STATE_REFUSED
	default:
		resp.State = daemonv1.DeliveryState_DELIVERY_STATE_QUEUED
	}
	return resp, nil
}

// maxSendWait bounds how long Send waits for the node's verdict.
const maxSendWait = time.Minute

// optionalDuration reads an optional wait of at most maxSendWait.
func optionalDuration(d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil || d.AsDuration() < 0 || d.AsDuration() > maxSendWait {
		return 0, status.Errorf(codes.InvalidArgument, "wait: want 0 to %v", maxSendWait)
	}
	return d.AsDuration(), nil
}

// Remove implements the Remove call.
func (s *Server) Remove(ctx context.Context, req *daemonv1.RemoveRequest) (*daemonv1.RemoveResponse, error) {
	peer, err := s.b.ResolvePeer(ctx, req.GetPeerKey())
	if err != nil {
		return nil, toStatus(err)
	}
	g, err := s.b.Remove(ctx, req.GetGroup(), peer)
	if err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.RemoveResponse{Group: groupInfoPB(g)}, nil
}

// Leave implements the Leave call.
func (s *Server) Leave(ctx context.Context, req *daemonv1.LeaveRequest) (*daemonv1.LeaveResponse, error) {
	if err := s.b.Leave(ctx, req.GetGroup()); err != nil {
		return nil, toStatus(err)
	}
	return &daemonv1.LeaveResponse{}, nil
}

// Update implements the Update call.
func (s *Server) Update(ctx context.Context, req *daemonv1.UpdateRequest) (*daemonv1.UpdateResponse, error) {
	gs, err := s.b.Update(ctx, req.GetGroup())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &daemonv1.UpdateResponse{}
	for _, g := range gs {
		resp.Groups = append(resp.Groups, groupInfoPB(g))
	}
	return resp, nil
}

// Messages implements the Messages call.
func (s *Server) Messages(ctx context.Context, req *daemonv1.MessagesRequest) (*daemonv1.MessagesResponse, error) {
	var wait time.Duration
	if req.GetWait() != nil {
		if err := req.GetWait().CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "wait: %v", err)
		}
		wait = req.GetWait().AsDuration()
	}
	page, err := s.b.Messages(ctx, backend.MessagesQuery{
		Group:      req.GetGroup(),
		After:      req.GetAfterSeq(),
		Limit:      int(req.GetLimit()),
		UnreadOnly: req.GetUnreadOnly(),
		MarkRead:   req.GetMarkRead(),
		Wait:       wait,

		NoReadReceipts: req.GetNoReadReceipts(),
		Search:         req.GetSearch(),
		Since:          optTime(req.GetSince()),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &daemonv1.MessagesResponse{NextCursor: page.NextCursor, More: page.More}
	for _, m := range page.Messages {
		resp.Messages = append(resp.Messages, messagePB(m, page.Groups[string(m.GroupID)]))
	}
	return resp, nil
}

// subscribeBatch is how many events Subscribe reads from the store at once.
const subscribeBatch = 256

// Subscribe implements the Subscribe call: it replays the stored events
// after the cursor, then streams new ones as they are committed.
func (s *Server) Subscribe(req *daemonv1.SubscribeRequest, stream grpc.ServerStreamingServer[daemonv1.Event]) error {
	ctx := stream.Context()
	head, err := s.b.EventHead(ctx)
	if err != nil {
		return toStatus(err)
	}
	addr := s.b.Connection().Address
	cursor := req.GetAfterSeq()
	if req.GetFromNow() {
		cursor = head
	} else if cursor > head {
		return status.Errorf(codes.OutOfRange, "cursor %d is ahead of the newest event %d: it does not come from this daemon's state", cursor, head)
	}
	for {
		changed := s.b.Changed()
		evs, err := s.b.EventsAfter(ctx, cursor, subscribeBatch)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return toStatus(err)
		}
		for _, e := range evs {
			pb, err := eventPB(e, addr)
			if err != nil {
				return toStatus(err)
			}
			if err := stream.Send(pb); err != nil {
				return err
			}
			cursor = e.Seq
		}
		if len(evs) == subscribeBatch {
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

// optKey formats a key, or "" when there is none.
func optKey(k []byte) string {
	if len(k) == 0 {
		return ""
	}
	return backend.FormatKey(k)
}

func eventPB(e backend.Event, nodeAddr string) (*daemonv1.Event, error) {
	pb := &daemonv1.Event{Seq: e.Seq, At: ts(e.At)}
	var g store.Group
	if e.Group != nil {
		g = *e.Group
	} else {
		g = store.Group{ID: e.GroupID}
	}
	member := func() *daemonv1.MemberEvent {
		device := ""
		if e.State == store.MemberDevice {
			device = e.Detail
		}
		return &daemonv1.MemberEvent{
			Device:    device,
			GroupId:   backend.FormatKey(e.GroupID),
			GroupName: g.Name,
			Identity:  backend.FormatKey(e.Member),
			By:        backend.FormatKey(e.By),
			Epoch:     e.Epoch,
		}
	}
	switch e.Kind {
	case store.EventMessage:
		if e.Message == nil {
			return nil, fmt.Errorf("event %d: message %x/%d missing", e.Seq, e.GroupID, e.MessageSeq)
		}
		pb.Kind = &daemonv1.Event_Message{Message: messagePB(*e.Message, g)}
	case store.EventMemberAdded:
		pb.Kind = &daemonv1.Event_MemberAdded{MemberAdded: member()}
	case store.EventMemberRemoved:
		pb.Kind = &daemonv1.Event_MemberRemoved{MemberRemoved: member()}
	case store.EventJoined:
		gp := groupPB(g)
		gp.Epoch = e.Epoch
		pb.Kind = &daemonv1.Event_Joined{Joined: gp}
	case store.EventLeft:
		pb.Kind = &daemonv1.Event_Left{Left: groupPB(g)}
	case store.EventRejected:
		gid := ""
		if len(e.GroupID) > 0 {
			gid = backend.FormatKey(e.GroupID)
		}
		pb.Kind = &daemonv1.Event_Rejected{Rejected: &daemonv1.RejectedEnvelope{GroupId: gid, Sender: backend.FormatKey(e.By), NodeSeq: e.MessageSeq, Reason: e.Detail}}
	case store.EventRefused:
		pb.Kind = &daemonv1.Event_Refused{Refused: &daemonv1.PolicyRefusal{GroupId: optKey(e.GroupID), Identity: optKey(e.Member), By: optKey(e.By), Epoch: e.Epoch, Reason: e.Detail}}
	case store.EventRequest:
		pb.Kind = &daemonv1.Event_Request{Request: &daemonv1.InvitationRequest{Id: e.MessageSeq, Inviter: backend.FormatKey(e.By)}}
	case store.EventContactKeyChanged:
		pb.Kind = &daemonv1.Event_ContactKeyChanged{ContactKeyChanged: &daemonv1.ContactKeyChanged{Name: e.State, OldIdentity: backend.FormatKey(e.By), NewIdentity: backend.FormatKey(e.Member)}}
	case store.EventFork:
		pb.Kind = &daemonv1.Event_Fork{Fork: &daemonv1.ForkDetected{GroupId: backend.FormatKey(e.GroupID), GroupName: g.Name, Epoch: e.Epoch, Member: backend.FormatKey(e.Member)}}
	case store.EventRecovery:
		pb.Kind = &daemonv1.Event_Recovery{Recovery: &daemonv1.GroupRecovery{GroupId: backend.FormatKey(e.GroupID), GroupName: g.Name,
			Offender: optKey(e.By), Leader: optKey(e.Member), Epoch: e.Epoch, Reason: e.Detail}}
	case store.EventRecovered:
		pb.Kind = &daemonv1.Event_Recovered{Recovered: &daemonv1.GroupRecovery{GroupId: e.State, GroupName: g.Name,
			Offender: optKey(e.By), Leader: optKey(e.Member), Epoch: e.Epoch, SuccessorId: backend.FormatKey(e.GroupID), Reason: e.Detail}}
	case store.EventEdited, store.EventDeleted, store.EventReceipt, store.EventTimer:
		contentEventPB(pb, e, g)
	case store.EventDevice:
		pb.Kind = &daemonv1.Event_Device{Device: &daemonv1.DeviceEvent{User: optKey(e.Member), UserName: e.MemberName, Device: optKey(e.By),
			Revoked: e.State == "revoked", Own: e.Detail == "own"}}
	case store.EventConnection:
		st, _ := backend.ParseConnState(e.State)
		pb.Kind = &daemonv1.Event_Connection{Connection: &daemonv1.NodeConnection{
			Address: nodeAddr, State: connStates[st], LastError: e.Detail, Since: ts(e.At),
		}}
	default:
		return nil, fmt.Errorf("event %d: unknown kind %q", e.Seq, e.Kind)
	}
	return pb, nil
}
