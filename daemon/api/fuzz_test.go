package api_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/quicproquo/quicproquo/daemon/internal/daemontest"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// FuzzDaemonRequests sends arbitrary (well-formed protobuf) requests to a
// live daemon over its socket: every answer is a success or a typed
// refusal, never an internal error, and the daemon keeps serving.
func FuzzDaemonRequests(f *testing.F) {
	seeds := []proto.Message{
		&daemonv1.MessagesRequest{Group: "team", UnreadOnly: true, MarkRead: true, Limit: 3},
		&daemonv1.MessagesRequest{AfterSeq: 1 << 62, Limit: 1001},
		&daemonv1.InviteRequest{Group: "team", PeerKeys: []string{"00", "zz"}},
		&daemonv1.SendRequest{Group: "42424242424242424242424242424242", Text: "hi", ClientMessageId: string(make([]byte, 80))},
		&daemonv1.FetchKeyRequest{PeerKey: "0123"},
		&daemonv1.RemoveRequest{Group: "", PeerKey: ""},
		&daemonv1.UpdateRequest{Group: "nope"},
	}
	for i, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	for which, m := range map[uint8]proto.Message{
		11: &daemonv1.AddContactRequest{Identity: "42424242424242424242424242424242424242424242424242424242424242ff", Name: "bob"},
		13: &daemonv1.SafetyNumberRequest{Contact: "bob"},
		19: &daemonv1.RenameContactRequest{Contact: "4242424242", Name: "b\u202eob"},
		17: &daemonv1.AcceptRequestRequest{Id: 1 << 63, ContactName: "\x1b[2J"},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(which, b)
	}
	dir := daemontest.ShortTempDir(f)
	apiSeed(f, filepath.Join(dir, "state"), "team", "a")
	d := daemontest.StartDaemon(f, daemontest.DaemonConfig{StateDir: filepath.Join(dir, "state"), Socket: filepath.Join(dir, "run", "qpd.sock")})
	c := d.Dial(f)

	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		switch which % 21 {
		case 0, 1:
			req := &daemonv1.MessagesRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			if req.GetWait().AsDuration() > 50*time.Millisecond || req.GetWait().AsDuration() < 0 {
				req.Wait = durationpb.New(10 * time.Millisecond)
			}
			_, err = c.Messages(ctx, req)
		case 2:
			req := &daemonv1.InviteRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err = c.Invite(ctx, req)
		case 3:
			req := &daemonv1.SendRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err = c.Send(ctx, req)
		case 4:
			req := &daemonv1.FetchKeyRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err = c.FetchKey(ctx, req)
		case 5:
			req := &daemonv1.RemoveRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err = c.Remove(ctx, req)
		case 6:
			req := &daemonv1.UpdateRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err = c.Update(ctx, req)
		case 7:
			req := &daemonv1.MembersRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err = c.Members(ctx, req)
		case 8:
			req := &daemonv1.LeaveRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err = c.Leave(ctx, req)
		case 9:
			req := &daemonv1.CreateGroupRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			_, err = c.CreateGroup(ctx, req)
		case 10:
			req := &daemonv1.SubscribeRequest{}
			if proto.Unmarshal(data, req) != nil {
				return
			}
			sctx, scancel := context.WithTimeout(ctx, 20*time.Millisecond)
			defer scancel()
			stream, serr := c.Subscribe(sctx, req)
			if serr == nil {
				for {
					if _, serr = stream.Recv(); serr != nil {
						break
					}
				}
			}
			// The call's own deadline ends the stream: the client sees
			// DeadlineExceeded, or a clean end (io.EOF) when the server
			// noticed the cancelled context first.
			if status.Code(serr) == codes.DeadlineExceeded || errors.Is(serr, io.EOF) {
				serr = nil
			}
			err = serr
		case 11:
			err = fuzzCall(data, &daemonv1.AddContactRequest{}, func(r *daemonv1.AddContactRequest) error { _, err := c.AddContact(ctx, r); return err })
		case 12:
			err = fuzzCall(data, &daemonv1.RemoveContactRequest{}, func(r *daemonv1.RemoveContactRequest) error { _, err := c.RemoveContact(ctx, r); return err })
		case 13:
			err = fuzzCall(data, &daemonv1.SafetyNumberRequest{}, func(r *daemonv1.SafetyNumberRequest) error { _, err := c.SafetyNumber(ctx, r); return err })
		case 14:
			err = fuzzCall(data, &daemonv1.VerifyRequest{}, func(r *daemonv1.VerifyRequest) error { _, err := c.Verify(ctx, r); return err })
		case 15:
			err = fuzzCall(data, &daemonv1.BlockRequest{}, func(r *daemonv1.BlockRequest) error { _, err := c.Block(ctx, r); return err })
		case 16:
			err = fuzzCall(data, &daemonv1.UnblockRequest{}, func(r *daemonv1.UnblockRequest) error { _, err := c.Unblock(ctx, r); return err })
		case 17:
			err = fuzzCall(data, &daemonv1.AcceptRequestRequest{}, func(r *daemonv1.AcceptRequestRequest) error { _, err := c.AcceptRequest(ctx, r); return err })
		case 18:
			err = fuzzCall(data, &daemonv1.DeclineRequestRequest{}, func(r *daemonv1.DeclineRequestRequest) error { _, err := c.DeclineRequest(ctx, r); return err })
		case 19:
			err = fuzzCall(data, &daemonv1.RenameContactRequest{}, func(r *daemonv1.RenameContactRequest) error { _, err := c.RenameContact(ctx, r); return err })
		default:
			_, err = c.ListGroups(ctx, &daemonv1.ListGroupsRequest{})
			if err == nil {
				_, err = c.ListRequests(ctx, &daemonv1.ListRequestsRequest{})
			}
			if err == nil {
				_, err = c.ListContacts(ctx, &daemonv1.ListContactsRequest{})
			}
		}
		switch status.Code(err) {
		case codes.OK, codes.InvalidArgument, codes.NotFound, codes.Unimplemented, codes.FailedPrecondition, codes.OutOfRange, codes.Unavailable, codes.AlreadyExists:
		default:
			t.Fatalf("call %d: %v", which%20, err)
		}
		if _, err := c.Status(ctx, &daemonv1.StatusRequest{}); err != nil {
			t.Fatalf("daemon stopped serving: %v", err)
		}
	})
}

// fuzzCall decodes data into req and calls call with it (nil when data is
// not a request of that type).
func fuzzCall[R proto.Message](data []byte, req R, call func(R) error) error {
	if proto.Unmarshal(data, req) != nil {
		return nil
	}
	return call(req)
}
