package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// transferTimeout bounds a whole attachment upload or download (the
// daemon streams; this is only a backstop against a hung daemon).
const transferTimeout = 6 * time.Hour

// progressFrom is the file size from which a transfer shows progress.
const progressFrom = 1 << 20

// progressLine shows a transfer's progress on one line of stderr.
type progressLine struct {
	w     io.Writer
	verb  string
	shown bool
}

func (p *progressLine) update(m *daemonv1.AttachmentProgress) {
	if m.GetTotal() < progressFrom || p.w == nil {
		return
	}
	pct := 100 * float64(m.GetDone()) / float64(m.GetTotal())
	fmt.Fprintf(p.w, "\r%s %s: %3.0f%% (%.1f of %.1f MiB)", p.verb, escapeLine(m.GetName()), pct,
		float64(m.GetDone())/(1<<20), float64(m.GetTotal())/(1<<20))
	p.shown = true
}

func (p *progressLine) end() {
	if p.shown {
		fmt.Fprintln(p.w)
		p.shown = false
	}
}

// sendAttachment sends the file at path with caption (send --attach).
func (a *app) sendAttachment(ctx context.Context, group, path, caption, cid string, wait time.Duration) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return usagef("--attach %s: %v", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return usagef("--attach: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return usagef("--attach %s: not a regular file", path)
	}
	return a.call(ctx, wait+transferTimeout, func(ctx context.Context, c *client.Client) error {
		stream, err := c.SendAttachment(ctx, &daemonv1.SendAttachmentRequest{Group: group, Path: abs, Caption: caption,
			ClientMessageId: cid, Wait: durationpb.New(wait)})
		if err != nil {
			return err
		}
		m, err := a.transfer(stream, "sending", func(m *daemonv1.AttachmentProgress) bool { return m.GetSent() != nil })
		if err != nil {
			return err
		}
		return a.printSent(m.GetSent())
	})
}

// transfer shows the progress of a transfer's stream until last says a
// message is its result, and returns that.
func (a *app) transfer(stream grpc.ServerStreamingClient[daemonv1.AttachmentProgress], verb string,
	last func(*daemonv1.AttachmentProgress) bool) (*daemonv1.AttachmentProgress, error) {
	p := &progressLine{w: a.progressOut(), verb: verb}
	defer p.end()
	for {
		m, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("the daemon ended the transfer without an answer")
			}
			return nil, err
		}
		p.update(m)
		if last(m) {
			return m, nil
		}
	}
}

// progressOut is where progress goes: stderr, unless --json.
func (a *app) progressOut() io.Writer {
	if a.json {
		return nil
	}
	return a.stderr
}

// parseMessageRef reads MESSAGE of save: "#N" or "N".
func parseMessageRef(s string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || n == 0 {
		return 0, usagef("message %q: want its number in the group, as #N or N (see recv)", s)
	}
	return n, nil
}

func (a *app) saveCommand() *cobra.Command {
	var group string
	cmd := &cobra.Command{
		Use: "save --group G MESSAGE [DIR]", Short: "Save a message's attachments", GroupID: "messages",
		Long: `Download the attachments of message MESSAGE (its number in the group, #N
or N, as recv shows it) into DIR (default: the current folder). Each file is
checked chunk by chunk and against the hash in the message while it is
decrypted, and put in place only once complete: a corrupted or substituted
file is refused and leaves nothing behind. A name taken in DIR gets a number
("photo (1).jpg"); nothing is overwritten. Progress goes to standard error
for files of a megabyte or more.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usagef("want MESSAGE and optionally DIR, got %d argument(s)", len(args))
			}
			return nil
		},
		Example: `  qpctl save --group team 12
  qpctl save --group team '#12' ~/Downloads`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireGroup(group); err != nil {
				return err
			}
			seq, err := parseMessageRef(args[0])
			if err != nil {
				return err
			}
			dir := "."
			if len(args) == 2 {
				dir = args[1]
			}
			if dir, err = filepath.Abs(dir); err != nil {
				return usagef("%v", err)
			}
			return a.call(cmd.Context(), transferTimeout, func(ctx context.Context, c *client.Client) error {
				stream, err := c.SaveAttachment(ctx, &daemonv1.SaveAttachmentRequest{Group: group, GroupSeq: seq, Dir: dir})
				if err != nil {
					return err
				}
				m, err := a.transfer(stream, "saving", func(m *daemonv1.AttachmentProgress) bool { return m.GetSaved() != nil })
				if err != nil {
					return err
				}
				return a.printSaved(m.GetSaved())
			})
		},
	}
	groupFlag(cmd, &group, groupFlagHelp)
	return cmd
}

func (a *app) printSaved(files []*daemonv1.SavedFile) error {
	for _, f := range files {
		if a.json {
			if err := a.printJSON(map[string]any{"path": f.GetPath(), "name": f.GetName(), "media_type": f.GetMediaType(), "size": f.GetSize()}); err != nil {
				return err
			}
			continue
		}
		if err := a.printf("saved %s (%s, %d bytes)\n", escapeLine(f.GetPath()), escapeLine(f.GetMediaType()), f.GetSize()); err != nil {
			return err
		}
	}
	return nil
}
