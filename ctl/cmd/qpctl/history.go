package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

func (a *app) historyCommand() *cobra.Command {
	var group, search, since string
	cmd := &cobra.Command{
		Use: "history --group G [--search TEXT] [--since T]", Short: "Print or export a group's history", GroupID: "messages",
		Long: `Print a group's stored history, oldest first, without marking anything
read: every message as recv prints it, or with --json one JSON object per
line (JSON lines, an export of the history). --search keeps the messages
whose text contains TEXT (ASCII letters in either case); --since keeps
those sent at or after T, a time (2026-01-02T15:04:05Z, 2026-01-02) or a
duration before now (24h).`,
		Args: exactArgs(0),
		Example: `  qpctl history --group team
  qpctl history --group team --search lunch --since 168h
  qpctl --json history --group team > team.jsonl`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireGroup(group); err != nil {
				return err
			}
			var from *timestamppb.Timestamp
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				from = timestamppb.New(t)
			}
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
				var after uint64
				for {
					r, err := c.Messages(ctx, &daemonv1.MessagesRequest{Group: group, AfterSeq: after, Limit: 1000, Search: search, Since: from})
					if err != nil {
						return err
					}
					for _, m := range r.GetMessages() {
						if err := a.printMessage(m); err != nil {
							return err
						}
					}
					if !r.GetMore() {
						return nil
					}
					after = r.GetNextCursor()
				}
			})
		},
	}
	groupFlag(cmd, &group, groupFlagHelp)
	cmd.Flags().StringVar(&search, "search", "", "only messages whose text contains this")
	cmd.Flags().StringVar(&since, "since", "", "only messages sent at or after this time, or this long ago (24h)")
	devicesFlag(cmd, &a.devices)
	return cmd
}

// devicesFlag adds --devices: show which device of the person sent each
// message (--json always carries it).
func devicesFlag(cmd *cobra.Command, v *bool) {
	cmd.Flags().BoolVar(v, "devices", false, "show the sending device (key fingerprint and label) beside the person")
}

// parseSince reads --since: an RFC 3339 time, a date, or a duration before
// now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("--since %q is neither a time (2026-01-02T15:04:05Z, 2026-01-02) nor a duration (24h)", s)
}
