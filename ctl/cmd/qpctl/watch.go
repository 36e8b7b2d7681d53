package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

type watchOptions struct {
	exec, group, cursor string
}

func (a *app) watchCommand() *cobra.Command {
	var o watchOptions
	cmd := &cobra.Command{
		Use: "watch --exec CMD [--group G] [--cursor FILE]", Short: "Run a command for every new message", GroupID: "messages",
		Long: `Run CMD (with sh -c) once for every new message of another member, until
interrupted. The message is on CMD's standard input as one JSON object (as
recv --json prints it) and in its environment:
  QPQ_GROUP, QPQ_GROUP_ID, QPQ_SEQ, QPQ_MESSAGE_ID, QPQ_SENDER, QPQ_KIND,
  QPQ_TEXT, QPQ_REF, QPQ_SENT_AT
QPQ_TEXT is the text as sent: quote it, and escape it before showing it on
a terminal. Messages are not marked read.

The position in qpd's event log is kept in the cursor file (default
$XDG_STATE_HOME/qpctl/watch.cursor), written after each command finished:
a watch stopped and started again, or one that outlives a restart of qpd,
goes on after the last message it handled, so each message runs CMD once
(twice only if qpctl is killed between CMD's end and the write). Without a
cursor file it starts with the messages that arrive from now on.`,
		Args: exactArgs(0),
		Example: `  qpctl watch --exec 'notify-send "qpq: $QPQ_GROUP" "$QPQ_TEXT"'
  qpctl watch --group team --exec 'jq -r .text >> team.log'`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.exec == "" {
				return usagef("--exec is required")
			}
			if o.cursor == "" {
				dir := os.Getenv("XDG_STATE_HOME")
				if dir == "" {
					home, err := os.UserHomeDir()
					if err != nil {
						return usagef("no --cursor and no home folder: %v", err)
					}
					dir = filepath.Join(home, ".local", "state")
				}
				o.cursor = filepath.Join(dir, "qpctl", "watch.cursor")
			}
			return a.watch(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.exec, "exec", "", "the command to run per message (with sh -c)")
	groupFlag(cmd, &o.group, groupFlagHelp+"; default: all groups")
	cmd.Flags().StringVar(&o.cursor, "cursor", "", "the file that keeps the watch's position (default $XDG_STATE_HOME/qpctl/watch.cursor)")
	return cmd
}

func (a *app) watch(ctx context.Context, o watchOptions) error {
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	cursor, found, err := readCursor(o.cursor)
	if err != nil {
		return err
	}
	if !found {
		sctx, cancel := context.WithTimeout(ctx, callTimeout)
		st, err := c.Status(sctx, &daemonv1.StatusRequest{}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			return err
		}
		cursor = st.GetEventHead()
		if err := writeCursor(o.cursor, cursor); err != nil {
			return err
		}
	}
	groupID, err := groupIDOf(ctx, c, o.group)
	if err != nil {
		return err
	}
	return resumeStream(ctx, func() error { return a.watchStream(ctx, c, o, &groupID, &cursor) }, func(error) {})
}

// watchStream handles events after *cursor until the stream ends; a
// watched group that qpd recovered is watched on in its successor.
func (a *app) watchStream(ctx context.Context, c *client.Client, o watchOptions, groupID *string, cursor *uint64) error {
	stream, err := c.Subscribe(ctx, &daemonv1.SubscribeRequest{AfterSeq: *cursor}, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			return err
		}
		if r := ev.GetRecovered(); r != nil && *groupID == r.GetGroupId() {
			*groupID = r.GetSuccessorId() // the group goes on in its successor
		}
		m := ev.GetMessage()
		if m != nil && !m.GetOutgoing() && (*groupID == "" || m.GetGroupId() == *groupID) {
			a.runWatch(ctx, o.exec, m)
		}
		*cursor = ev.GetSeq()
		if m != nil {
			if err := writeCursor(o.cursor, *cursor); err != nil {
				return err
			}
		}
	}
}

// runWatch runs the command for one message; its failure is reported,
// not fatal.
func (a *app) runWatch(ctx context.Context, command string, m *daemonv1.Message) {
	j, _ := json.Marshal(toMessageJSON(m))
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Stdin = bytes.NewReader(append(j, '\n'))
	cmd.Stdout, cmd.Stderr = a.stdout, a.stderr
	cmd.Env = append(os.Environ(),
		"QPQ_GROUP="+m.GetGroupName(), "QPQ_GROUP_ID="+m.GetGroupId(), "QPQ_SEQ="+strconv.FormatUint(m.GetSeq(), 10),
		"QPQ_MESSAGE_ID="+m.GetMessageId(), "QPQ_SENDER="+m.GetSender(), "QPQ_KIND="+kindName(m.GetKind()),
		"QPQ_TEXT="+strings.ReplaceAll(m.GetText(), "\x00", ""), "QPQ_REF="+m.GetRef(), "QPQ_SENT_AT="+timeString(m.GetSentAt()))
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		a.stderrf("qpctl watch: %s for message #%d of %s: %v\n", command, m.GetSeq(), escapeLine(m.GetGroupName()), err)
	}
}

func readCursor(path string) (uint64, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("watch cursor: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("watch cursor %s: not a number: %w", path, err)
	}
	return n, true, nil
}

// writeCursor replaces the cursor file atomically (a new file renamed over
// it, synced first).
func writeCursor(path string, n uint64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("watch cursor: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".watch-cursor-*")
	if err != nil {
		return fmt.Errorf("watch cursor: %w", err)
	}
	_, err = fmt.Fprintf(f, "%d\n", n)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("watch cursor: %w", err)
	}
	return nil
}
