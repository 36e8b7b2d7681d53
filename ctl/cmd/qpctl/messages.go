package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// maxTextSize is the largest message text qpd accepts, in bytes.
const maxTextSize = 64 << 10

// addMessageCommands adds send and recv.
func (a *app) addMessageCommands(root *cobra.Command) {
	root.AddCommand(a.sendCommand(), a.recvCommand(), a.historyCommand(), a.watchCommand(), a.saveCommand())
	a.addContentCommands(root)
}

// readText reads a message text from path ("-": stdin), at most
// maxTextSize bytes of UTF-8 text.
func (a *app) readText(path string) (string, error) {
	var r io.Reader
	if path == "-" {
		r = a.stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("message file: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxTextSize+1))
	if err != nil {
		return "", fmt.Errorf("read message: %w", err)
	}
	switch {
	case len(b) > maxTextSize:
		return "", usagef("message is longer than the limit of %d bytes (64 KiB)", maxTextSize)
	case len(b) == 0:
		return "", usagef("message is empty")
	case !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0:
		return "", usagef("message is not text: it must be UTF-8 without NUL bytes (binary files cannot be sent)")
	}
	return string(b), nil
}

func (a *app) sendCommand() *cobra.Command {
	var group, to, msg, file, cid, attachPath string
	var wait time.Duration
	cmd := &cobra.Command{
		Use: "send (--group G | --to PERSON) (--msg TEXT | --file PATH | --file - | --attach PATH [--msg CAPTION])", Short: "Send a message or a file to a group or a person", GroupID: "messages",
		Long: `Encrypt a text message to a group and hand it to the node. The text comes
from --msg, from a file (--file PATH) or from standard input (--file -); it
is at most 65536 bytes (64 KiB) of UTF-8 text, sent exactly as given.

With --to the message goes to the direct chat with that person: a group of
the two of you, made and invited on first use, and found again afterwards
by both sides (` + "`qpctl groups`" + ` marks it). If you both start it at the same
moment, both end in the same one.

With --attach PATH, the file goes as an attachment (up to 1 GiB): encrypted
with a fresh key, streamed to the node's blob store (which only the group's
members may read), and sent with the text of --msg or --file as its caption.
Progress goes to standard error for files of a megabyte or more. Receivers
save it with qpctl save.

` + contactRefHelp,
		Args: exactArgs(0),
		Example: `  qpctl send --group team --msg "hello"
  qpctl send --group team --file notes.txt
  date | qpctl send --group team --file -
  qpctl send --to alice --msg "hi"
  qpctl send --group team --attach photo.jpg --msg "the view"`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case to != "" && group != "":
				return usagef("give either --group or --to, not both")
			case to == "":
				if err := requireGroup(group); err != nil {
					return err
				}
			}
			text := msg
			switch {
			case msg != "" && file != "":
				return usagef("give either --msg or --file, not both")
			case file != "":
				var err error
				if text, err = a.readText(file); err != nil {
					return err
				}
			case attachPath != "":
			case msg == "":
				return usagef("--msg or --file is required")
			case len(msg) > maxTextSize:
				return usagef("message is longer than the limit of %d bytes (64 KiB)", maxTextSize)
			}
			if wait < 0 || wait > time.Minute {
				return usagef("--wait must be between 0 and 1m")
			}
			if attachPath != "" {
				if to != "" {
					return usagef("--attach needs --group (a direct chat: its group name from qpctl groups)")
				}
				return a.sendAttachment(cmd.Context(), group, attachPath, text, cid, wait)
			}
			return a.call(cmd.Context(), wait, func(ctx context.Context, c *client.Client) error {
				r, err := c.Send(ctx, &daemonv1.SendRequest{Group: group, To: to, Text: text, ClientMessageId: cid, Wait: durationpb.New(wait)})
				if err != nil {
					return err
				}
				return a.printSent(r)
			})
		},
	}
	groupFlag(cmd, &group, groupFlagHelp)
	cmd.Flags().StringVar(&to, "to", "", "a person (identity key or contact): send to your direct chat with them")
	cmd.Flags().StringVarP(&msg, "msg", "m", "", "message text")
	cmd.Flags().StringVarP(&file, "file", "f", "", "read the message text from this file (-: standard input)")
	cmd.Flags().StringVar(&attachPath, "attach", "", "send this file as an attachment (--msg or --file: its caption)")
	cmd.Flags().StringVar(&cid, "client-id", "", "optional idempotency key: a repeated send with the same key is sent once")
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Second, "while connected, wait up to this long for the node to take the message (0: do not wait)")
	return cmd
}

// deliveryName names a delivery state for --json.
func deliveryName(s daemonv1.DeliveryState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "DELIVERY_STATE_"))
}

// printSent reports a Send: delivered to the node (exit 0), queued while
// the node is unreachable (exit 4) or on its way (exit 0), or refused by
// the node (exit 1).
func (a *app) printSent(r *daemonv1.SendResponse) error {
	state := r.GetState()
	if a.json {
		out := map[string]any{"message_id": r.GetMessageId(), "seq": r.GetSeq(), "group_seq": r.GetGroupSeq(), "delivered": r.GetDelivered(),
			"state": deliveryName(state), "detail": r.GetStateDetail()}
		if r.GetUnreachableSince() != nil {
			out["unreachable_since"] = timeString(r.GetUnreachableSince())
		}
		if err := a.printJSON(out); err != nil {
			return err
		}
	}
	switch state {
	case daemonv1.DeliveryState_DELIVERY_STATE_DELIVERED:
		if a.json {
			return nil
		}
		return a.printf("sent %s %s: delivered to the node\n", groupNumber(r.GetGroupSeq()), r.GetMessageId())
	case daemonv1.DeliveryState_DELIVERY_STATE_REFUSED:
		return fmt.Errorf("message %s refused by the node: %s", r.GetMessageId(), r.GetStateDetail())
	}
	if !a.json {
		if err := a.printf("sent %s %s: queued: %s\n", groupNumber(r.GetGroupSeq()), r.GetMessageId(), r.GetStateDetail()); err != nil {
			return err
		}
	}
	if r.GetUnreachableSince() != nil {
		return silentExit(exitQueued)
	}
	return nil
}

// groupNumber is how a message's number in its group's order is shown:
// #N, the node's per-group sequence number and so the same for every
// member, or #? while it is not known (an outgoing message the node has
// not accepted yet, a group of one, history from before qpd kept it).
func groupNumber(groupSeq uint64) string {
	if groupSeq == 0 {
		return "#?"
	}
	return "#" + strconv.FormatUint(groupSeq, 10)
}

// messageJSON is how a message is printed with --json: seq is the
// position in this user's history (the cursor), group_seq the group's
// number (0 while not known).
type messageJSON struct {
	GroupID    string `json:"group_id"`
	GroupName  string `json:"group_name"`
	Seq        uint64 `json:"seq"`
	GroupSeq   uint64 `json:"group_seq"`
	MessageID  string `json:"message_id"`
	Sender     string `json:"sender"`
	Text       string `json:"text"`
	SentAt     string `json:"sent_at"`
	ReceivedAt string `json:"received_at"`
	Outgoing   bool   `json:"outgoing"`
	// Kind is text, reply, reaction, timer, unknown or expired.
	Kind      string        `json:"kind"`
	Ref       string        `json:"ref,omitempty"`
	EditedAt  string        `json:"edited_at,omitempty"`
	Deleted   bool          `json:"deleted,omitempty"`
	ExpiresAt string        `json:"expires_at,omitempty"`
	Receipts  []receiptJSON `json:"receipts,omitempty"`
	// SenderDevice is the key (hex) of the device that sent it, empty for
	// messages stored before qpd recorded devices; SenderDeviceName its
	// label, byte-exact.
	SenderDevice     string `json:"sender_device"`
	SenderDeviceName string `json:"sender_device_name,omitempty"`
}

// receiptJSON is a member's state of a message.
type receiptJSON struct {
	Member string `json:"member"`
	Status string `json:"status"`
	At     string `json:"at"`
}

func (a *app) printMessage(m *daemonv1.Message) error {
	if a.json {
		return a.printJSON(toMessageJSON(m))
	}
	return a.printMessageLine(m, "")
}

func toMessageJSON(m *daemonv1.Message) messageJSON {
	j := messageJSON{
		GroupID: m.GetGroupId(), GroupName: m.GetGroupName(), Seq: m.GetSeq(), GroupSeq: m.GetGroupSeq(), MessageID: m.GetMessageId(),
		Sender: m.GetSender(), Text: m.GetText(), SentAt: timeString(m.GetSentAt()), ReceivedAt: timeString(m.GetReceivedAt()),
		Outgoing: m.GetOutgoing(), Kind: kindName(m.GetKind()), Ref: m.GetRef(), Deleted: m.GetDeleted(),
		SenderDevice: hex.EncodeToString(m.GetSenderDevice()), SenderDeviceName: m.GetSenderDeviceName(),
	}
	if m.GetEditedAt() != nil {
		j.EditedAt = timeString(m.GetEditedAt())
	}
	if m.GetExpiresAt() != nil {
		j.ExpiresAt = timeString(m.GetExpiresAt())
	}
	for _, r := range m.GetReceipts() {
		j.Receipts = append(j.Receipts, receiptJSON{Member: r.GetMember(), Status: receiptName(r.GetStatus()), At: timeString(r.GetAt())})
	}
	return j
}

// printMessageLine prints m as one line (with continuation lines), what
// it is in brackets before its text; note, when set, says what happened
// to it ("edited", "deleted").
func (a *app) printMessageLine(m *daemonv1.Message, note string) error {
	name := m.GetGroupName()
	if name == "" {
		name = m.GetGroupId()
	}
	sender := escapeLine(m.GetSender())
	if a.devices {
		sender += " " + deviceNote(m)
	}
	_, err := fmt.Fprintf(a.stdout, "[%s %s %s] %s: %s\n", escapeLine(name), groupNumber(m.GetGroupSeq()), timeString(m.GetSentAt()), sender, contentLine(m, note))
	return err
}

// deviceFingerprintLen is how many hex characters of a device key
// --devices shows (enough to name it to qpctl devices revoke).
const deviceFingerprintLen = 16

// deviceNote is the sending device of m for --devices: "(device FP
// LABEL)", the label escaped like every peer's text; "(device ?)" for a
// message stored before qpd recorded devices.
func deviceNote(m *daemonv1.Message) string {
	d := hex.EncodeToString(m.GetSenderDevice())
	if d == "" {
		return "(device ?)"
	}
	if len(d) > deviceFingerprintLen {
		d = d[:deviceFingerprintLen]
	}
	if l := m.GetSenderDeviceName(); l != "" {
		d += " " + escapeLine(l)
	}
	return "(device " + d + ")"
}

type recvOptions struct {
	group             string
	wait              time.Duration
	follow, peek, all bool
	noReceipts        bool
}

func (a *app) recvCommand() *cobra.Command {
	var o recvOptions
	cmd := &cobra.Command{
		Use: "recv [--group G] [--wait D] [--follow] [--peek] [--all]", Short: "Print new messages and mark them read", GroupID: "messages",
		Long: `Print unread messages (of one group, or of all) and mark them read.

Each message is printed as
  [GROUP #N TIME] SENDER: TEXT
where N is the message's number in the group's order, the same for every
member (#? while the node has not numbered it: your own message still in
the outbox, a group of one, old history). SENDER is the person; with
--devices it is followed by the device that sent it, as
"(device FINGERPRINT LABEL)" ("(device ?)" for old history). Control characters
and bidi overrides in names and texts are shown escaped (\n, \x1b, \u202e);
the further lines of a multi-line text follow as "    | " continuation
lines. With --json each message is one JSON object, byte-exact.`,
		Args: exactArgs(0),
		Example: `  qpctl recv
  qpctl recv --group team --wait 30s
  qpctl recv --follow --json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.wait < 0 {
				return usagef("--wait must not be negative")
			}
			return a.recv(cmd.Context(), o)
		},
	}
	groupFlag(cmd, &o.group, groupFlagHelp+"; default: all groups")
	cmd.Flags().DurationVar(&o.wait, "wait", 0, "when nothing is unread, wait up to this long for a message")
	cmd.Flags().BoolVar(&o.follow, "follow", false, "keep printing new messages until interrupted")
	cmd.Flags().BoolVar(&o.peek, "peek", false, "leave the printed messages unread")
	cmd.Flags().BoolVar(&o.all, "all", false, "print the whole stored history, not only unread messages")
	cmd.Flags().BoolVar(&o.noReceipts, "no-receipts", false, "mark read without sending read receipts")
	devicesFlag(cmd, &a.devices)
	return cmd
}

func (a *app) recv(ctx context.Context, o recvOptions) error {
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	var head uint64
	if o.follow {
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
		req := &daemonv1.MessagesRequest{Group: o.group, AfterSeq: after, UnreadOnly: !o.all, MarkRead: !o.peek, Limit: 500, NoReadReceipts: o.noReceipts}
		if first && !o.all && o.wait > 0 {
			req.Wait = durationpb.New(o.wait)
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout+o.wait)
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
		if o.all || o.peek {
			after = r.GetNextCursor()
		}
	}
	if !o.follow {
		return nil
	}
	return a.follow(ctx, c, o, head, printed)
}

// follow streams message events after head, printing the messages of group
// (or of all groups) not printed yet. When qpd goes away (a restart), it
// waits for qpd to be back and resumes after the last event it handled:
// event numbers are durable, so nothing is lost, and the per-group message
// numbers already printed are skipped, so nothing is repeated.
func (a *app) follow(ctx context.Context, c *client.Client, o recvOptions, head uint64, printed map[string]uint64) error {
	groupID, err := groupIDOf(ctx, c, o.group)
	if err != nil {
		return err
	}
	cursor := head
	reconnecting := false
	return resumeStream(ctx, func() error {
		return a.followStream(ctx, c, &cursor, &groupID, o, printed, &reconnecting)
	}, func(err error) {
		if !reconnecting {
			a.stderrf("qpctl recv: lost qpd (%s); waiting for it to come back\n", status.Convert(err).Message())
			reconnecting = true
		}
	})
}

// resumeStream runs stream again whenever it ends because qpd went away
// (after lost, and a short pause), until ctx ends or another error.
func resumeStream(ctx context.Context, stream func() error, lost func(error)) error {
	for {
		err := stream()
		if ctx.Err() != nil {
			return nil
		}
		if status.Code(err) != codes.Unavailable && !errors.Is(err, io.EOF) {
			return err
		}
		lost(err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// followStream subscribes after *cursor and handles events until the
// stream ends, advancing *cursor past each event handled. A group that qpd
// recovered in a successor (its history moved there, numbers kept) is
// followed on in the successor: *groupID moves with it.
func (a *app) followStream(ctx context.Context, c *client.Client, cursor *uint64, groupID *string, o recvOptions, printed map[string]uint64, reconnecting *bool) error {
	stream, err := c.Subscribe(ctx, &daemonv1.SubscribeRequest{AfterSeq: *cursor}, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			return err
		}
		if *reconnecting {
			a.stderrf("qpctl recv: qpd is back; resuming\n")
			*reconnecting = false
		}
		if r := ev.GetRecovered(); r != nil {
			printed[r.GetSuccessorId()] = max(printed[r.GetSuccessorId()], printed[r.GetGroupId()])
			if !o.peek {
				if err := a.markMoved(ctx, c, r.GetSuccessorId(), printed[r.GetGroupId()], o.noReceipts); err != nil {
					return err
				}
			}
			if *groupID == r.GetGroupId() {
				*groupID = r.GetSuccessorId()
				a.stderrf("qpctl recv: group %s continues in %s without %s\n", r.GetGroupId(), r.GetSuccessorId(), r.GetOffender())
			}
		}
		m := ev.GetMessage()
		switch {
		case m != nil && (*groupID == "" || m.GetGroupId() == *groupID) && m.GetSeq() > printed[m.GetGroupId()]:
			if err := a.printMessage(m); err != nil {
				return err
			}
			printed[m.GetGroupId()] = m.GetSeq()
			if !o.peek {
				mctx, cancel := context.WithTimeout(ctx, callTimeout)
				_, err := c.Messages(mctx, &daemonv1.MessagesRequest{Group: m.GetGroupId(), AfterSeq: m.GetSeq() - 1, Limit: 1, MarkRead: true, NoReadReceipts: o.noReceipts})
				cancel()
				if err != nil {
					return err
				}
			}
		case m == nil:
			if err := a.printChange(ev, *groupID); err != nil {
				return err
			}
		}
		*cursor = ev.GetSeq()
	}
}

// markMoved marks read, in the successor that a recovery moved a group's
// history to (its numbers kept), the messages up to upTo still unread
// there: a message printed just before the move was marked read in the
// group it had already left, which found nothing to mark.
func (a *app) markMoved(ctx context.Context, c *client.Client, successor string, upTo uint64, noReceipts bool) error {
	if upTo == 0 {
		return nil
	}
	mctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	r, err := c.Messages(mctx, &daemonv1.MessagesRequest{Group: successor, UnreadOnly: true, Limit: 500})
	if err != nil {
		return err
	}
	for _, m := range r.GetMessages() {
		if m.GetSeq() > upTo {
			break
		}
		if _, err := c.Messages(mctx, &daemonv1.MessagesRequest{Group: successor, AfterSeq: m.GetSeq() - 1, Limit: 1, MarkRead: true, NoReadReceipts: noReceipts}); err != nil {
			return err
		}
	}
	return nil
}

// groupIDOf is the id of the group ref names ("" for none).
func groupIDOf(ctx context.Context, c *client.Client, ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	gctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	r, err := c.ListGroups(gctx, &daemonv1.ListGroupsRequest{})
	if err != nil {
		return "", err
	}
	return matchGroup(r.GetGroups(), ref)
}

// matchGroup finds the group ref names, as qpd does: its id, else its
// name, else a unique prefix of its id.
func matchGroup(gs []*daemonv1.Group, ref string) (string, error) {
	var byName, byPrefix []string
	for _, g := range gs {
		switch {
		case g.GetGroupId() == ref:
			return ref, nil
		case g.GetName() == ref:
			byName = append(byName, g.GetGroupId())
		case len(ref) >= 4 && strings.HasPrefix(g.GetGroupId(), ref):
			byPrefix = append(byPrefix, g.GetGroupId())
		}
	}
	for _, m := range [][]string{byName, byPrefix} {
		switch len(m) {
		case 0:
			continue
		case 1:
			return m[0], nil
		}
		return "", fmt.Errorf("%d groups match %q; name one by its id", len(m), ref)
	}
	return "", fmt.Errorf("group not found: %q", ref)
}
