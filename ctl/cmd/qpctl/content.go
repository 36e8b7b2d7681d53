package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// addContentCommands adds reply, react, edit, delete and disappear.
func (a *app) addContentCommands(root *cobra.Command) {
	root.AddCommand(a.replyCommand(), a.reactCommand(), a.editCommand(), a.deleteCommand(), a.disappearCommand())
}

const messageRefHelp = `MESSAGE is the message's number in the group (#N or N, as recv prints it)
or its message id in hex (at least 8 digits of it).`

// sendFlags are the flags every sending command has.
type sendFlags struct {
	group, cid string
	wait       time.Duration
}

func (f *sendFlags) add(cmd *cobra.Command) {
	groupFlag(cmd, &f.group, groupFlagHelp)
	cmd.Flags().StringVar(&f.cid, "client-id", "", "optional idempotency key: a repeated request with the same key is sent once")
	cmd.Flags().DurationVar(&f.wait, "wait", 5*time.Second, "while connected, wait up to this long for the node to take the message (0: do not wait)")
}

// sendWith checks the flags and sends with do.
func (a *app) sendWith(cmd *cobra.Command, f *sendFlags, do func(context.Context, *client.Client, *durationpb.Duration) (*daemonv1.SendResponse, error)) error {
	if err := requireGroup(f.group); err != nil {
		return err
	}
	if f.wait < 0 || f.wait > time.Minute {
		return usagef("--wait must be between 0 and 1m")
	}
	return a.call(cmd.Context(), f.wait, func(ctx context.Context, c *client.Client) error {
		r, err := do(ctx, c, durationpb.New(f.wait))
		if err != nil {
			return err
		}
		return a.printSent(r)
	})
}

// textAboutCommand is a command that sends a text about a message
// (reply, edit).
func (a *app) textAboutCommand(use, short, long, example string, send func(context.Context, *client.Client, sendFlags, string, string, *durationpb.Duration) (*daemonv1.SendResponse, error)) *cobra.Command {
	var f sendFlags
	var msg string
	cmd := &cobra.Command{
		Use: use, Short: short, GroupID: "messages", Long: long + "\n\n" + messageRefHelp, Args: exactArgs(1), Example: example,
		RunE: func(cmd *cobra.Command, args []string) error {
			if msg == "" {
				return usagef("--msg is required")
			}
			return a.sendWith(cmd, &f, func(ctx context.Context, c *client.Client, w *durationpb.Duration) (*daemonv1.SendResponse, error) {
				return send(ctx, c, f, args[0], msg, w)
			})
		},
	}
	f.add(cmd)
	cmd.Flags().StringVarP(&msg, "msg", "m", "", "the text")
	return cmd
}

func (a *app) replyCommand() *cobra.Command {
	return a.textAboutCommand("reply --group G MESSAGE --msg TEXT", "Reply to a message", "Send a text that replies to a message of the group.",
		`  qpctl reply --group team 3 --msg "agreed"`,
		func(ctx context.Context, c *client.Client, f sendFlags, ref, text string, w *durationpb.Duration) (*daemonv1.SendResponse, error) {
			return c.Send(ctx, &daemonv1.SendRequest{Group: f.group, ReplyTo: ref, Text: text, ClientMessageId: f.cid, Wait: w})
		})
}

func (a *app) editCommand() *cobra.Command {
	return a.textAboutCommand("edit --group G MESSAGE --msg TEXT", "Edit one of your messages on every member",
		"Replace the text of one of your own messages, on every member.", `  qpctl edit --group team 4 --msg "see you at 10"`,
		func(ctx context.Context, c *client.Client, f sendFlags, ref, text string, w *durationpb.Duration) (*daemonv1.SendResponse, error) {
			return c.Edit(ctx, &daemonv1.EditRequest{Group: f.group, Message: ref, Text: text, ClientMessageId: f.cid, Wait: w})
		})
}

func (a *app) reactCommand() *cobra.Command {
	var f sendFlags
	cmd := &cobra.Command{
		Use: "react --group G MESSAGE REACTION", Short: "React to a message (an emoji)", GroupID: "messages",
		Long:    "Send a reaction (at most 64 bytes, usually one emoji) to a message of the group.\n\n" + messageRefHelp,
		Args:    exactArgs(2),
		Example: `  qpctl react --group team 3 👍`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.sendWith(cmd, &f, func(ctx context.Context, c *client.Client, w *durationpb.Duration) (*daemonv1.SendResponse, error) {
				return c.React(ctx, &daemonv1.ReactRequest{Group: f.group, Message: args[0], Reaction: args[1], ClientMessageId: f.cid, Wait: w})
			})
		},
	}
	f.add(cmd)
	return cmd
}

func (a *app) deleteCommand() *cobra.Command {
	var f sendFlags
	cmd := &cobra.Command{
		Use: "delete --group G MESSAGE", Short: "Delete one of your messages on every member", GroupID: "messages",
		Long: "Delete one of your own messages on every member: its text leaves every\nmember's history and database.\n\n" + messageRefHelp,
		Args: exactArgs(1), Example: `  qpctl delete --group team 4`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.sendWith(cmd, &f, func(ctx context.Context, c *client.Client, w *durationpb.Duration) (*daemonv1.SendResponse, error) {
				return c.Delete(ctx, &daemonv1.DeleteRequest{Group: f.group, Message: args[0], ClientMessageId: f.cid, Wait: w})
			})
		},
	}
	f.add(cmd)
	return cmd
}

func (a *app) disappearCommand() *cobra.Command {
	var f sendFlags
	cmd := &cobra.Command{
		Use: "disappear --group G DURATION", Short: "Set the group's disappearing-messages timer", GroupID: "messages",
		Long: `Set the group's disappearing-messages timer on every member: from now on
each message is deleted from every member's history and database DURATION
after it was sent (whole seconds, at most 8760h). 0 or "off" turns it off.
The timer travels encrypted to the members; the node never learns it.`,
		Args: exactArgs(1), Example: "  qpctl disappear --group team 24h\n  qpctl disappear --group team off",
		RunE: func(cmd *cobra.Command, args []string) error {
			var d time.Duration
			if args[0] != "off" {
				var err error
				if d, err = time.ParseDuration(args[0]); err != nil || d < 0 || d%time.Second != 0 || d > 8760*time.Hour {
					return usagef("DURATION must be whole seconds from 0 to 8760h, or off")
				}
			}
			return a.sendWith(cmd, &f, func(ctx context.Context, c *client.Client, w *durationpb.Duration) (*daemonv1.SendResponse, error) {
				return c.SetDisappearing(ctx, &daemonv1.SetDisappearingRequest{Group: f.group, After: durationpb.New(d), Wait: w})
			})
		},
	}
	f.add(cmd)
	return cmd
}
