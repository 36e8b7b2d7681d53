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
	dir := daemontest.ShortTempDir(f)
	apiSeed(f, filepath.Join(dir, "state"), "team", "a")
	d := daemontest.StartDaemon(f, daemontest.DaemonConfig{StateDir: filepath.Join(dir, "state"), Socket: filepath.Join(dir, "run", "qpd.sock")})
	c := d.Dial(f)

	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		switch which % 12 {
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
		default:
			_, err = c.ListGroups(ctx, &daemonv1.ListGroupsRequest{})
		}
		switch status.Code(err) {
		case codes.OK, codes.InvalidArgument, codes.NotFound, codes.Unimplemented, codes.FailedPrecondition, codes.OutOfRange, codes.Unavailable:
		default:
			t.Fatalf("call %d: %v", which%12, err)
		}
		if _, err := c.Status(ctx, &daemonv1.StatusRequest{}); err != nil {
			t.Fatalf("daemon stopped serving: %v", err)
		}
	})
}
