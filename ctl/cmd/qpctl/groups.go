package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// groupFlagHelp describes --group.
const groupFlagHelp = "the group: its name, its id (hex) or a unique prefix of the id"

// groupFlag adds --group (-g) to cmd, bound to p, with --group-id as an
// older spelling of the same flag.
func groupFlag(cmd *cobra.Command, p *string, help string) {
	cmd.Flags().StringVarP(p, "group", "g", "", help)
	cmd.Flags().StringVar(p, "group-id", "", help)
	cmd.Flags().MarkHidden("group-id")
}

// requireGroup is a usage error when no group was named.
func requireGroup(group string) error {
	if group == "" {
		return usagef("--group is required")
	}
	return nil
}

// addGroupCommands adds the group commands: create-group, invite, join,
// groups, members, remove, leave, update.
func (a *app) addGroupCommands(root *cobra.Command) {
	root.AddCommand(a.createGroupCommand(), a.inviteCommand(), a.joinCommand(),
		&cobra.Command{
			Use: "groups", Short: "List groups", GroupID: "groups",
			Args: exactArgs(0), Example: "  qpctl groups",
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
					r, err := c.ListGroups(ctx, &daemonv1.ListGroupsRequest{})
					if err != nil {
						return err
					}
					return a.printGroups(r.GetGroups())
				})
			},
		},
		a.membersCommand(), a.removeCommand(), a.leaveCommand(), a.updateCommand())
}

func (a *app) printGroups(gs []*daemonv1.Group) error {
	for _, g := range gs {
		if err := a.printGroup(g); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) printGroup(g *daemonv1.Group) error {
	if a.json {
		return a.printJSON(groupJSON(g))
	}
	name := escapeLine(g.GetName())
	if p := g.GetDirectPeer(); p != "" {
		who := p[:16] + "…"
		if g.GetDirectPeerName() != "" {
			who = escapeLine(g.GetDirectPeerName())
		}
		name = "direct with " + who
	}
	return a.printf("%s  %-20s epoch %d  members %d  unread %d  %s\n", g.GetGroupId(), name, g.GetEpoch(), g.GetMemberCount(), g.GetUnread(), suiteText(g))
}

// suiteText names a group's cipher suite for people, marked when it is
// post-quantum.
func suiteText(g *daemonv1.Group) string {
	if g.GetCipherSuite() == 0 {
		return "suite unknown"
	}
	pq := ""
	if g.GetPostQuantum() {
		pq = " (post-quantum)"
	}
	return fmt.Sprintf("suite 0x%04x %s%s", g.GetCipherSuite(), g.GetCipherSuiteName(), pq)
}

func groupJSON(g *daemonv1.Group) map[string]any {
	return map[string]any{
		"group_id": g.GetGroupId(), "name": g.GetName(), "epoch": g.GetEpoch(), "member_count": g.GetMemberCount(),
		"unread": g.GetUnread(), "last_seq": g.GetLastSeq(), "created_at": timeString(g.GetCreatedAt()),
		"cipher_suite": g.GetCipherSuite(), "cipher_suite_name": g.GetCipherSuiteName(), "post_quantum": g.GetPostQuantum(),
		"direct": g.GetDirectPeer() != "", "direct_peer": g.GetDirectPeer(), "direct_peer_name": g.GetDirectPeerName(),
	}
}

func (a *app) createGroupCommand() *cobra.Command {
	var name string
	var pq bool
	cmd := &cobra.Command{
		Use: "create-group --name NAME [--pq]", Short: "Create a group with you as its only member", GroupID: "groups",
		Long: `Create an MLS group with you as its only member. NAME is your local name
for it (other members name it themselves); it must be unique among your
groups. With --pq the group is post-quantum: its key exchange is X-Wing
(ML-KEM-768 + X25519), so a recording of it stays secret against a future
quantum computer; every invitee needs a qpd that publishes post-quantum
KeyPackages. Without --pq the group gets qpd's default suite (qpd
--default-suite).`,
		Args:    exactArgs(0),
		Example: "  qpctl create-group --name team\n  qpctl create-group --name secret --pq",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usagef("--name is required")
			}
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
				r, err := c.CreateGroup(ctx, &daemonv1.CreateGroupRequest{Name: name, PostQuantum: pq})
				if err != nil {
					return err
				}
				return a.printGroup(r.GetGroup())
			})
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "the group's local name")
	cmd.Flags().BoolVar(&pq, "pq", false, "make a post-quantum group (X-Wing key exchange)")
	cmd.Flags().StringVar(&name, "group-id", "", "the group's local name")
	cmd.Flags().MarkHidden("group-id")
	return cmd
}

func (a *app) inviteCommand() *cobra.Command {
	var group string
	var peers []string
	cmd := &cobra.Command{
		Use: "invite --group G --peer-key HEX [--peer-key HEX ...]", Short: "Add peers to a group", GroupID: "groups",
		Long: `Add one or more peers to a group in one commit. Each peer is named by the
identity key that their ` + "`qpctl whoami`" + ` prints, or as a contact.

` + contactRefHelp,
		Args:    exactArgs(0),
		Example: "  qpctl invite --group team --peer-key 3f9a… --peer-key 77c1…",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireGroup(group); err != nil {
				return err
			}
			if len(peers) == 0 {
				return usagef("at least one --peer-key is required")
			}
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
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
					a.printf("added %s\n", k)
				}
				return a.printGroup(r.GetGroup())
			})
		},
	}
	groupFlag(cmd, &group, groupFlagHelp)
	cmd.Flags().StringArrayVar(&peers, "peer-key", nil, "a peer to add (identity key or contact); repeat for several")
	return cmd
}

func (a *app) joinCommand() *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use: "join [--wait D]", Short: "Accept invitations and list the groups joined", GroupID: "groups",
		Long: `Accept pending invitations (Welcome messages) and list the groups joined.
qpd joins by itself unless it runs with --auto-join=false.`,
		Args:    exactArgs(0),
		Example: "  qpctl join --wait 30s",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if wait < 0 {
				return usagef("--wait must not be negative")
			}
			return a.call(cmd.Context(), wait, func(ctx context.Context, c *client.Client) error {
				req := &daemonv1.JoinRequest{}
				if wait > 0 {
					req.Wait = durationpb.New(wait)
				}
				r, err := c.Join(ctx, req)
				if err != nil {
					return err
				}
				if len(r.GetJoined()) == 0 && !a.json {
					a.stderrf("qpctl join: no pending invitations\n")
				}
				return a.printGroups(r.GetJoined())
			})
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "when no invitation is pending, wait up to this long for one")
	return cmd
}

func (a *app) membersCommand() *cobra.Command {
	var group string
	var devices bool
	cmd := &cobra.Command{
		Use: "members --group G [--devices]", Short: "List a group's members", GroupID: "groups",
		Long: `List a group's members at its current epoch, and the epoch authenticator:
members who see the same authenticator share the same group state.

Each person is listed once, by identity key and contact name, however
many devices they have in the group; --devices lists each person's
devices (device keys) under them. With --json every line has the
person's "devices".`,
		Args:    exactArgs(0),
		Example: "  qpctl members --group team\n  qpctl members --group team --devices",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireGroup(group); err != nil {
				return err
			}
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
				r, err := c.Members(ctx, &daemonv1.MembersRequest{Group: group})
				if err != nil {
					return err
				}
				for _, m := range r.GetMembers() {
					if a.json {
						devs := []map[string]any{}
						for _, d := range m.GetDevices() {
							devs = append(devs, map[string]any{"key": d.GetKey(), "leaf_index": d.GetLeafIndex(), "self": d.GetSelf()})
						}
						if err := a.printJSON(map[string]any{"group_id": r.GetGroup().GetGroupId(), "identity": m.GetIdentity(), "name": m.GetName(), "leaf_index": m.GetLeafIndex(), "self": m.GetSelf(), "devices": devs, "epoch": r.GetEpoch(), "epoch_authenticator": r.GetEpochAuthenticator(),
							"cipher_suite": r.GetGroup().GetCipherSuite(), "cipher_suite_name": r.GetGroup().GetCipherSuiteName(), "post_quantum": r.GetGroup().GetPostQuantum()}); err != nil {
							return err
						}
						continue
					}
					self := ""
					if m.GetSelf() {
						self = " (you)"
					}
					name := ""
					if m.GetName() != "" {
						name = " " + escapeLine(m.GetName())
					}
					ndev := ""
					if n := len(m.GetDevices()); n > 1 {
						ndev = fmt.Sprintf(" [%d devices]", n)
					}
					a.printf("%s%s%s%s\n", m.GetIdentity(), name, self, ndev)
					if devices {
						for _, d := range m.GetDevices() {
							this := ""
							if d.GetSelf() {
								this = " (this device)"
							}
							a.printf("  device %s%s\n", d.GetKey(), this)
						}
					}
				}
				if a.json {
					return nil
				}
				return a.printf("epoch %d  authenticator %s  %s\n", r.GetEpoch(), r.GetEpochAuthenticator(), suiteText(r.GetGroup()))
			})
		},
	}
	groupFlag(cmd, &group, groupFlagHelp)
	cmd.Flags().BoolVar(&devices, "devices", false, "list each person's devices too")
	return cmd
}

func (a *app) removeCommand() *cobra.Command {
	var group, peer string
	cmd := &cobra.Command{
		Use: "remove --group G --peer-key HEX", Short: "Remove a member from a group", GroupID: "groups",
		Args:    exactArgs(0),
		Example: "  qpctl remove --group team --peer-key 3f9a…",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireGroup(group); err != nil {
				return err
			}
			if peer == "" {
				return usagef("--peer-key is required")
			}
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
				r, err := c.Remove(ctx, &daemonv1.RemoveRequest{Group: group, PeerKey: peer})
				if err != nil {
					return err
				}
				return a.printGroup(r.GetGroup())
			})
		},
	}
	groupFlag(cmd, &group, groupFlagHelp)
	cmd.Flags().StringVar(&peer, "peer-key", "", "the member to remove (identity key or contact)")
	return cmd
}

func (a *app) leaveCommand() *cobra.Command {
	var group string
	cmd := &cobra.Command{
		Use: "leave --group G", Short: "Leave a group", GroupID: "groups",
		Args:    exactArgs(0),
		Example: "  qpctl leave --group team",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireGroup(group); err != nil {
				return err
			}
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
				if _, err := c.Leave(ctx, &daemonv1.LeaveRequest{Group: group}); err != nil {
					return err
				}
				if a.json {
					return a.printJSON(map[string]any{"left": group})
				}
				return a.printf("left %s\n", group)
			})
		},
	}
	groupFlag(cmd, &group, groupFlagHelp)
	return cmd
}

func (a *app) updateCommand() *cobra.Command {
	var group string
	cmd := &cobra.Command{
		Use: "update [--group G]", Short: "Rotate your own keys (in every group by default)", GroupID: "groups",
		Long: `Rotate your own keys with a commit that carries an UpdatePath, in one group
or in every group. qpd also does this by itself (--self-update-interval).`,
		Args:    exactArgs(0),
		Example: "  qpctl update\n  qpctl update --group team",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
				r, err := c.Update(ctx, &daemonv1.UpdateRequest{Group: group})
				if err != nil {
					return err
				}
				return a.printGroups(r.GetGroups())
			})
		},
	}
	groupFlag(cmd, &group, groupFlagHelp+"; default: every group")
	return cmd
}
