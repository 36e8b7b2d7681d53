package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// addTrustCommands adds the commands about consent and contacts:
// requests, accept, decline, block, unblock, contacts, add-contact,
// remove-contact, safety-number, verify.
func (a *app) addTrustCommands(root *cobra.Command) {
	var contactName string
	accept := &cobra.Command{
		Use: "accept REQUEST_ID", Short: "Join the group of a waiting invitation", GroupID: "trust",
		Args: exactArgs(1), Example: "  qpctl accept 3\n  qpctl accept 3 --contact-name carol",
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := requestArg(args[0])
			if err != nil {
				return err
			}
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
				r, err := c.AcceptRequest(ctx, &daemonv1.AcceptRequestRequest{Id: id, ContactName: contactName})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(map[string]any{"group_id": r.GetGroup().GetGroupId(), "name": r.GetGroup().GetName()})
				}
				return a.printf("joined %s %s\n", r.GetGroup().GetGroupId(), r.GetGroup().GetName())
			})
		},
	}
	accept.Flags().StringVar(&contactName, "contact-name", "", "also add the inviter as a contact under this name")

	var undo bool
	verify := &cobra.Command{
		Use: "verify CONTACT", Short: "Mark a contact's key verified (after comparing safety numbers)", GroupID: "trust",
		Long: `Mark a contact verified once you compared your safety number (qpctl
safety-number) with theirs, in person or over a channel you trust. CONTACT is
an identity key or a contact name. --undo clears the mark.`,
		Args: exactArgs(1), Example: "  qpctl verify alice\n  qpctl verify alice --undo",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
				r, err := c.Verify(ctx, &daemonv1.VerifyRequest{Contact: args[0], Verified: !undo})
				if err != nil {
					return err
				}
				return a.printContact(r.GetContact())
			})
		},
	}
	verify.Flags().BoolVar(&undo, "undo", false, "mark the contact unverified")

	var addName string
	addContact := &cobra.Command{
		Use: "add-contact PEER_KEY", Short: "Add a contact (their invitations join by themselves)", GroupID: "trust",
		Long: `Add a contact by identity key, with an optional local name. Giving a
contact's name with another key changes that contact's key: the verified mark
is cleared and qpd reports the change loudly.`,
		Args: exactArgs(1), Example: "  qpctl add-contact 3f9a… --name alice",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
				return a.addContact(ctx, c, args[0], addName)
			})
		},
	}
	addContact.Flags().StringVar(&addName, "name", "", "a local name for the contact")

	simple := func(use, short, example string, f func(context.Context, *client.Client, string) error) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, GroupID: "trust", Args: exactArgs(1), Example: example,
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error { return f(ctx, c, args[0]) })
			},
		}
	}
	root.AddCommand(
		&cobra.Command{
			Use: "requests", Short: "List invitations from non-contacts waiting for consent", GroupID: "trust",
			Long: `List the invitations of people who are not contacts. They never join by
themselves: accept, decline, or block the inviter.`,
			Args: exactArgs(0), RunE: a.requests, Example: "  qpctl requests",
		},
		accept,
		simple("decline REQUEST_ID", "Delete a waiting invitation", "  qpctl decline 3", func(ctx context.Context, c *client.Client, arg string) error {
			id, err := requestArg(arg)
			if err != nil {
				return err
			}
			if _, err := c.DeclineRequest(ctx, &daemonv1.DeclineRequestRequest{Id: id}); err != nil {
				return err
			}
			return a.done(map[string]any{"declined": id}, "declined %d\n", id)
		}),
		simple("block PEER", "Drop everything an identity sends, and its waiting invitations", "  qpctl block 3f9a…", func(ctx context.Context, c *client.Client, key string) error {
			r, err := c.Block(ctx, &daemonv1.BlockRequest{Identity: key})
			if err != nil {
				return err
			}
			return a.done(map[string]any{"blocked": key, "requests_deleted": r.GetRequestsDeleted()}, "blocked %s (%d waiting invitations deleted)\n", escapeLine(key), r.GetRequestsDeleted())
		}),
		simple("unblock PEER", "Lift a block", "  qpctl unblock 3f9a…", func(ctx context.Context, c *client.Client, key string) error {
			if _, err := c.Unblock(ctx, &daemonv1.UnblockRequest{Identity: key}); err != nil {
				return err
			}
			return a.done(map[string]any{"unblocked": key}, "unblocked %s\n", escapeLine(key))
		}),
		&cobra.Command{
			Use: "contacts", Short: "List contacts and blocked identities", GroupID: "trust",
			Args: exactArgs(0), RunE: a.contacts, Example: "  qpctl contacts",
		},
		addContact,
		simple("remove-contact CONTACT", "Remove a contact (by key or name)", "  qpctl remove-contact alice", func(ctx context.Context, c *client.Client, ref string) error {
			if _, err := c.RemoveContact(ctx, &daemonv1.RemoveContactRequest{Contact: ref}); err != nil {
				return err
			}
			return a.done(map[string]any{"removed": ref}, "removed %s\n", ref)
		}),
		simple("safety-number CONTACT", "Show the safety number to compare with a contact", "  qpctl safety-number alice", func(ctx context.Context, c *client.Client, ref string) error {
			r, err := c.SafetyNumber(ctx, &daemonv1.SafetyNumberRequest{Contact: ref})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"digits": r.GetDigits(), "qr_payload": hex.EncodeToString(r.GetQrPayload()),
					"identity": r.GetContact().GetIdentity(), "verified": r.GetContact().GetVerified()})
			}
			return a.printf("%s\n(the same on both sides; then: qpctl verify %s)\n", r.GetDigits(), escapeLine(ref))
		}),
		verify,
		a.contactCommand(),
	)
}

func requestArg(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%w: request id %q: want a number from qpctl requests", errUsage, escapeLine(s))
	}
	return id, nil
}

// done prints a short result.
func (a *app) done(js map[string]any, format string, args ...any) error {
	if a.json {
		return a.printJSON(js)
	}
	return a.printf(format, args...)
}

func (a *app) requests(cmd *cobra.Command, _ []string) error {
	return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
		r, err := c.ListRequests(ctx, &daemonv1.ListRequestsRequest{})
		if err != nil {
			return err
		}
		for _, q := range r.GetRequests() {
			if a.json {
				if err := a.printJSON(map[string]any{"id": q.GetId(), "inviter": q.GetInviter(), "received_at": timeString(q.GetReceivedAt()),
					"group_id": q.GetGroupId(), "group_name": q.GetGroupName(), "members": q.GetMemberCount(), "problem": q.GetProblem()}); err != nil {
					return err
				}
				continue
			}
			what := fmt.Sprintf("%q (%d members, group %s)", q.GetGroupName(), q.GetMemberCount(), q.GetGroupId())
			if q.GetProblem() != "" {
				what = "unreadable: " + q.GetProblem()
			}
			a.printf("%d  from %s  %s  %s\n", q.GetId(), q.GetInviter(), timeString(q.GetReceivedAt()), what)
		}
		return nil
	})
}

func (a *app) printContact(c *daemonv1.Contact) error {
	if a.json {
		return a.printJSON(map[string]any{"identity": c.GetIdentity(), "name": c.GetName(), "verified": c.GetVerified(),
			"blocked": c.GetBlocked(), "added_at": timeString(c.GetAddedAt()), "verified_at": timeString(c.GetVerifiedAt())})
	}
	state := "unverified"
	switch {
	case c.GetBlocked():
		state = "BLOCKED"
	case c.GetVerified():
		state = "verified " + timeString(c.GetVerifiedAt())
	}
	return a.printf("%s  %-16s  %s\n", c.GetIdentity(), escapeLine(c.GetName()), state)
}

func (a *app) contacts(cmd *cobra.Command, _ []string) error {
	return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
		r, err := c.ListContacts(ctx, &daemonv1.ListContactsRequest{})
		if err != nil {
			return err
		}
		for _, ct := range r.GetContacts() {
			if err := a.printContact(ct); err != nil {
				return err
			}
		}
		return nil
	})
}
