package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// callTimeout bounds calls that do not wait on purpose.
const callTimeout = 30 * time.Second

func (a *app) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", b)
	return err
}

func timeString(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().UTC().Format(time.RFC3339Nano)
}

// simple runs a command without flags of its own: dial, call, print.
func (a *app) simple(ctx context.Context, name string, args []string, nargs int, call func(context.Context, *client.Client, []string) error) error {
	fs := a.flags(name)
	if err := parse(fs, args, nargs); err != nil {
		return err
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return call(cctx, c, fs.Args())
}

func (a *app) ping(ctx context.Context, args []string) error {
	return a.simple(ctx, "ping", args, 0, func(ctx context.Context, c *client.Client, _ []string) error {
		r, err := c.Ping(ctx, &daemonv1.PingRequest{})
		if err != nil {
			return err
		}
		rtt := r.GetRtt().AsDuration()
		if a.json {
			return a.printJSON(map[string]any{"address": r.GetAddress(), "rtt_ms": float64(rtt) / float64(time.Millisecond)})
		}
		_, err = fmt.Fprintf(a.stdout, "pong from %s in %v\n", r.GetAddress(), rtt.Round(time.Microsecond))
		return err
	})
}

func (a *app) register(ctx context.Context, args []string) error {
	return a.simple(ctx, "register", args, 0, func(ctx context.Context, c *client.Client, _ []string) error {
		r, err := c.Register(ctx, &daemonv1.RegisterRequest{})
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(map[string]any{
				"identity": r.GetIdentity(), "created": r.GetCreated(),
				"key_packages_uploaded": r.GetKeyPackagesUploaded(), "notices": nonNil(r.GetNotices()),
			})
		}
		for _, n := range r.GetNotices() {
			fmt.Fprintln(a.stderr, "qpctl register:", n)
		}
		_, err = fmt.Fprintln(a.stdout, r.GetIdentity())
		return err
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (a *app) whoami(ctx context.Context, args []string) error {
	return a.simple(ctx, "whoami", args, 0, func(ctx context.Context, c *client.Client, _ []string) error {
		st, err := c.Status(ctx, &daemonv1.StatusRequest{})
		if err != nil {
			return err
		}
		if !st.GetRegistered() {
			return errors.New("not registered yet: run `qpctl register`")
		}
		if a.json {
			return a.printJSON(map[string]any{"identity": st.GetIdentity()})
		}
		_, err = fmt.Fprintln(a.stdout, st.GetIdentity())
		return err
	})
}

func connStateName(s daemonv1.ConnectionState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "CONNECTION_STATE_"))
}

func (a *app) status(ctx context.Context, args []string) error {
	return a.simple(ctx, "status", args, 0, func(ctx context.Context, c *client.Client, _ []string) error {
		st, err := c.Status(ctx, &daemonv1.StatusRequest{})
		if err != nil {
			return err
		}
		node := st.GetNode()
		if a.json {
			out := map[string]any{
				"registered": st.GetRegistered(), "identity": st.GetIdentity(),
				"node": map[string]any{
					"address": node.GetAddress(), "state": connStateName(node.GetState()),
					"last_error": node.GetLastError(), "since": timeString(node.GetSince()),
					"pinned_cert_sha256": node.GetPinnedCertSha256(),
				},
				"key_package_secrets": st.GetKeyPackageSecrets(), "groups": st.GetGroups(),
				"unread_messages": st.GetUnreadMessages(), "outbox_pending": st.GetOutboxPending(),
				"event_head": st.GetEventHead(), "version": st.GetVersion(), "state_dir": st.GetStateDir(),
				"socket": c.SocketPath(),
			}
			if st.GetKeyPackagesKnown() {
				out["key_packages_left"] = st.GetKeyPackagesLeft()
			}
			return a.printJSON(out)
		}
		w := a.stdout
		id := st.GetIdentity()
		if !st.GetRegistered() {
			id = "(not registered: run `qpctl register`)"
		}
		fmt.Fprintf(w, "identity:      %s\n", id)
		line := connStateName(node.GetState())
		if node.GetSince() != nil {
			line += " since " + timeString(node.GetSince())
		}
		if node.GetLastError() != "" {
			line += " (" + node.GetLastError() + ")"
		}
		fmt.Fprintf(w, "node:          %s %s\n", node.GetAddress(), line)
		if node.GetPinnedCertSha256() != "" {
			fmt.Fprintf(w, "node cert:     sha256 %s\n", node.GetPinnedCertSha256())
		}
		kp := "? at the node (not connected)"
		if st.GetKeyPackagesKnown() {
			kp = fmt.Sprintf("%d at the node", st.GetKeyPackagesLeft())
		}
		fmt.Fprintf(w, "key packages:  %s, %d private halves held\n", kp, st.GetKeyPackageSecrets())
		fmt.Fprintf(w, "groups:        %d\n", st.GetGroups())
		fmt.Fprintf(w, "unread:        %d\n", st.GetUnreadMessages())
		fmt.Fprintf(w, "outbox:        %d pending\n", st.GetOutboxPending())
		fmt.Fprintf(w, "state:         %s\n", st.GetStateDir())
		fmt.Fprintf(w, "socket:        %s\n", c.SocketPath())
		_, err = fmt.Fprintf(w, "qpd version:   %s\n", st.GetVersion())
		return err
	})
}

func (a *app) fetchKey(ctx context.Context, args []string) error {
	return a.simple(ctx, "fetch-key", args, 1, func(ctx context.Context, c *client.Client, pos []string) error {
		r, err := c.FetchKey(ctx, &daemonv1.FetchKeyRequest{PeerKey: pos[0]})
		if err != nil {
			return err
		}
		out := map[string]any{
			"ref": r.GetRef(), "cipher_suite": r.GetCipherSuite(), "credential_identity": r.GetCredentialIdentity(),
			"valid": r.GetValid(), "problem": r.GetProblem(), "last_resort": r.GetLastResort(),
			"not_before": timeString(r.GetNotBefore()), "not_after": timeString(r.GetNotAfter()),
			"size": len(r.GetKeyPackage()),
		}
		if a.json {
			return a.printJSON(out)
		}
		valid := "yes"
		if !r.GetValid() {
			valid = "NO: " + r.GetProblem()
		}
		_, err = fmt.Fprintf(a.stdout, "ref:           %s\ncipher suite:  %d\nidentity:      %s\nvalid:         %s\nlast resort:   %v\nlifetime:      %s .. %s\nsize:          %d bytes\n",
			r.GetRef(), r.GetCipherSuite(), r.GetCredentialIdentity(), valid, r.GetLastResort(),
			timeString(r.GetNotBefore()), timeString(r.GetNotAfter()), len(r.GetKeyPackage()))
		return err
	})
}

// multiFlag collects a repeated string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// groupCommand runs a command whose flags are --group-id (required unless
// optional) and possibly more.
func (a *app) groupCommand(ctx context.Context, name string, args []string, optional bool, extra func(*flag.FlagSet), call func(context.Context, *client.Client, string) error) error {
	fs := a.flags(name)
	var group string
	fs.StringVar(&group, "group-id", "", "group id (hex) or name")
	if extra != nil {
		extra(fs)
	}
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if group == "" && !optional {
		return fmt.Errorf("%w: --group-id is required", errUsage)
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return call(cctx, c, group)
}

func (a *app) printGroup(g *daemonv1.Group) error {
	if a.json {
		return a.printJSON(groupJSON(g))
	}
	_, err := fmt.Fprintf(a.stdout, "%s  %-20s epoch %d  members %d  unread %d\n", g.GetGroupId(), g.GetName(), g.GetEpoch(), g.GetMemberCount(), g.GetUnread())
	return err
}

func groupJSON(g *daemonv1.Group) map[string]any {
	return map[string]any{
		"group_id": g.GetGroupId(), "name": g.GetName(), "epoch": g.GetEpoch(), "member_count": g.GetMemberCount(),
		"unread": g.GetUnread(), "last_seq": g.GetLastSeq(), "created_at": timeString(g.GetCreatedAt()),
	}
}

func (a *app) createGroup(ctx context.Context, args []string) error {
	return a.groupCommand(ctx, "create-group", args, false, nil, func(ctx context.Context, c *client.Client, group string) error {
		r, err := c.CreateGroup(ctx, &daemonv1.CreateGroupRequest{Name: group})
		if err != nil {
			return err
		}
		return a.printGroup(r.GetGroup())
	})
}

func (a *app) invite(ctx context.Context, args []string) error {
	var peers multiFlag
	return a.groupCommand(ctx, "invite", args, false, func(fs *flag.FlagSet) {
		fs.Var(&peers, "peer-key", "identity key (hex) of a peer to add; repeat for several")
	}, func(ctx context.Context, c *client.Client, group string) error {
		if len(peers) == 0 {
			return fmt.Errorf("%w: at least one --peer-key is required", errUsage)
		}
		r, err := c.Invite(ctx, &daemonv1.InviteRequest{Group: group, PeerKeys: peers})
		if err != nil {
			return err
		}
		if a.json {
			out := groupJSON(r.GetGroup())
			out["added"] = nonNil(r.GetAdded())
			return a.printJSON(out)
		}
		for _, k := range r.GetAdded() {
			fmt.Fprintf(a.stdout, "added %s\n", k)
		}
		return a.printGroup(r.GetGroup())
	})
}

func (a *app) join(ctx context.Context, args []string) error {
	fs := a.flags("join")
	var wait time.Duration
	fs.DurationVar(&wait, "wait", 0, "when no invitation is pending, wait up to this long for one")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if wait < 0 {
		return fmt.Errorf("%w: --wait must not be negative", errUsage)
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout+wait)
	defer cancel()
	req := &daemonv1.JoinRequest{}
	if wait > 0 {
		req.Wait = durationpb.New(wait)
	}
	r, err := c.Join(cctx, req)
	if err != nil {
		return err
	}
	if len(r.GetJoined()) == 0 && !a.json {
		fmt.Fprintln(a.stderr, "qpctl join: no pending invitations")
	}
	for _, g := range r.GetJoined() {
		if err := a.printGroup(g); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) send(ctx context.Context, args []string) error {
	var msg, cid string
	return a.groupCommand(ctx, "send", args, false, func(fs *flag.FlagSet) {
		fs.StringVar(&msg, "msg", "", "message text")
		fs.StringVar(&cid, "client-id", "", "optional idempotency key: a repeated send with the same key is sent once")
	}, func(ctx context.Context, c *client.Client, group string) error {
		if msg == "" {
			return fmt.Errorf("%w: --msg is required", errUsage)
		}
		r, err := c.Send(ctx, &daemonv1.SendRequest{Group: group, Text: msg, ClientMessageId: cid})
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(map[string]any{"message_id": r.GetMessageId(), "seq": r.GetSeq(), "delivered": r.GetDelivered()})
		}
		state := "queued"
		if r.GetDelivered() {
			state = "delivered"
		}
		_, err = fmt.Fprintf(a.stdout, "sent #%d %s (%s)\n", r.GetSeq(), r.GetMessageId(), state)
		return err
	})
}

func (a *app) groups(ctx context.Context, args []string) error {
	return a.simple(ctx, "groups", args, 0, func(ctx context.Context, c *client.Client, _ []string) error {
		r, err := c.ListGroups(ctx, &daemonv1.ListGroupsRequest{})
		if err != nil {
			return err
		}
		for _, g := range r.GetGroups() {
			if err := a.printGroup(g); err != nil {
				return err
			}
		}
		return nil
	})
}

func (a *app) members(ctx context.Context, args []string) error {
	return a.groupCommand(ctx, "members", args, false, nil, func(ctx context.Context, c *client.Client, group string) error {
		r, err := c.Members(ctx, &daemonv1.MembersRequest{Group: group})
		if err != nil {
			return err
		}
		for _, m := range r.GetMembers() {
			if a.json {
				if err := a.printJSON(map[string]any{"group_id": r.GetGroup().GetGroupId(), "identity": m.GetIdentity(), "leaf_index": m.GetLeafIndex(), "self": m.GetSelf(), "epoch": r.GetEpoch(), "epoch_authenticator": r.GetEpochAuthenticator()}); err != nil {
					return err
				}
				continue
			}
			self := ""
			if m.GetSelf() {
				self = " (you)"
			}
			fmt.Fprintf(a.stdout, "%s%s\n", m.GetIdentity(), self)
		}
		if !a.json {
			fmt.Fprintf(a.stdout, "epoch %d  authenticator %s\n", r.GetEpoch(), r.GetEpochAuthenticator())
		}
		return nil
	})
}

func (a *app) remove(ctx context.Context, args []string) error {
	var peer string
	return a.groupCommand(ctx, "remove", args, false, func(fs *flag.FlagSet) {
		fs.StringVar(&peer, "peer-key", "", "identity key (hex) of the member to remove")
	}, func(ctx context.Context, c *client.Client, group string) error {
		if peer == "" {
			return fmt.Errorf("%w: --peer-key is required", errUsage)
		}
		r, err := c.Remove(ctx, &daemonv1.RemoveRequest{Group: group, PeerKey: peer})
		if err != nil {
			return err
		}
		return a.printGroup(r.GetGroup())
	})
}

func (a *app) leave(ctx context.Context, args []string) error {
	return a.groupCommand(ctx, "leave", args, false, nil, func(ctx context.Context, c *client.Client, group string) error {
		if _, err := c.Leave(ctx, &daemonv1.LeaveRequest{Group: group}); err != nil {
			return err
		}
		if a.json {
			return a.printJSON(map[string]any{"left": group})
		}
		_, err := fmt.Fprintf(a.stdout, "left %s\n", group)
		return err
	})
}

func (a *app) update(ctx context.Context, args []string) error {
	return a.groupCommand(ctx, "update", args, true, nil, func(ctx context.Context, c *client.Client, group string) error {
		r, err := c.Update(ctx, &daemonv1.UpdateRequest{Group: group})
		if err != nil {
			return err
		}
		for _, g := range r.GetGroups() {
			if err := a.printGroup(g); err != nil {
				return err
			}
		}
		return nil
	})
}

// messageJSON is how a message is printed with --json.
type messageJSON struct {
	GroupID    string `json:"group_id"`
	GroupName  string `json:"group_name"`
	Seq        uint64 `json:"seq"`
	MessageID  string `json:"message_id"`
	Sender     string `json:"sender"`
	Text       string `json:"text"`
	SentAt     string `json:"sent_at"`
	ReceivedAt string `json:"received_at"`
	Outgoing   bool   `json:"outgoing"`
}

func (a *app) printMessage(m *daemonv1.Message) error {
	if a.json {
		return a.printJSON(messageJSON{
			GroupID: m.GetGroupId(), GroupName: m.GetGroupName(), Seq: m.GetSeq(), MessageID: m.GetMessageId(),
			Sender: m.GetSender(), Text: m.GetText(), SentAt: timeString(m.GetSentAt()), ReceivedAt: timeString(m.GetReceivedAt()),
			Outgoing: m.GetOutgoing(),
		})
	}
	name := m.GetGroupName()
	if name == "" {
		name = m.GetGroupId()
	}
	_, err := fmt.Fprintf(a.stdout, "[%s #%d %s] %s: %s\n", name, m.GetSeq(), timeString(m.GetSentAt()), m.GetSender(), m.GetText())
	return err
}

func (a *app) recv(ctx context.Context, args []string) error {
	fs := a.flags("recv")
	var group string
	var wait time.Duration
	var follow, peek, all bool
	fs.StringVar(&group, "group-id", "", "group id (hex) or name; default: all groups")
	fs.DurationVar(&wait, "wait", 0, "when nothing is unread, wait up to this long for a message")
	fs.BoolVar(&follow, "follow", false, "keep printing new messages until interrupted")
	fs.BoolVar(&peek, "peek", false, "leave the printed messages unread")
	fs.BoolVar(&all, "all", false, "print the whole stored history, not only unread messages")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if wait < 0 {
		return fmt.Errorf("%w: --wait must not be negative", errUsage)
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	var head uint64
	if follow {
		// Take the event cursor before reading, so that nothing arriving
		// in between is missed.
		st, err := c.Status(ctx, &daemonv1.StatusRequest{})
		if err != nil {
			return err
		}
		head = st.GetEventHead()
	}
	printed := map[string]uint64{} // group id -> highest seq printed
	var after uint64
	first := true
	for {
		req := &daemonv1.MessagesRequest{Group: group, AfterSeq: after, UnreadOnly: !all, MarkRead: !peek, Limit: 500}
		if first && !all && wait > 0 {
			req.Wait = durationpb.New(wait)
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout+wait)
		r, err := c.Messages(cctx, req)
		cancel()
		if err != nil {
			return err
		}
		for _, m := range r.GetMessages() {
			if err := a.printMessage(m); err != nil {
				return err
			}
			printed[m.GetGroupId()] = max(printed[m.GetGroupId()], m.GetSeq())
		}
		first = false
		if !r.GetMore() {
			break
		}
		// Unread reads that mark read start over; the others page on.
		if all || peek {
			after = r.GetNextCursor()
		}
	}
	if !follow {
		return nil
	}
	return a.follow(ctx, c, group, head, peek, printed)
}

// follow streams message events after head, printing the messages of group
// (or of all groups) not printed yet.
func (a *app) follow(ctx context.Context, c *client.Client, group string, head uint64, peek bool, printed map[string]uint64) error {
	var groupID string
	if group != "" {
		gctx, cancel := context.WithTimeout(ctx, callTimeout)
		r, err := c.ListGroups(gctx, &daemonv1.ListGroupsRequest{})
		cancel()
		if err != nil {
			return err
		}
		for _, g := range r.GetGroups() {
			if g.GetGroupId() == group || g.GetName() == group {
				groupID = g.GetGroupId()
			}
		}
		if groupID == "" {
			return fmt.Errorf("group %q not found", group)
		}
	}
	stream, err := c.Subscribe(ctx, &daemonv1.SubscribeRequest{AfterSeq: head})
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		m := ev.GetMessage()
		if m == nil || (groupID != "" && m.GetGroupId() != groupID) || m.GetSeq() <= printed[m.GetGroupId()] {
			continue
		}
		if err := a.printMessage(m); err != nil {
			return err
		}
		printed[m.GetGroupId()] = m.GetSeq()
		if !peek {
			mctx, cancel := context.WithTimeout(ctx, callTimeout)
			_, err := c.Messages(mctx, &daemonv1.MessagesRequest{Group: m.GetGroupId(), AfterSeq: m.GetSeq() - 1, Limit: 1, MarkRead: true})
			cancel()
			if err != nil {
				return err
			}
		}
	}
}
