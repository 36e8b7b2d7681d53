package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// contactRefHelp says how a person is named on the command line; qpd reads
// the reference (one resolver for every command).
const contactRefHelp = `A person is named by their identity key (64 hex characters), by 8 or more
hex characters that start exactly one contact's key, or by a contact's name.
Contact names cannot be 8 or more hex digits, so the three never compete.`

// contactCommand is `qpctl contact add|list|rename|remove`, the address
// book.
func (a *app) contactCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use: "contact", Short: "The address book: add, list, rename, remove contacts", GroupID: "trust",
		Long: `Keep people by name. A contact's name is accepted wherever a key is (invite,
remove, verify, safety-number, block, send --to), and contacts' invitations
join by themselves.

` + contactRefHelp,
		Args: exactArgs(0),
		Example: `  qpctl contact add alice 3f9a…
  qpctl contact list
  qpctl contact rename alice ally
  qpctl contact remove ally`,
	}
	run := func(f func(context.Context, *client.Client, []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error { return f(ctx, c, args) })
		}
	}
	cmd.AddCommand(
		&cobra.Command{
			Use: "add NAME KEY", Short: "Add a contact (or give a contact's name a new key, loudly)",
			Args: exactArgs(2), Example: "  qpctl contact add alice 3f9a…",
			RunE: run(func(ctx context.Context, c *client.Client, args []string) error {
				return a.addContact(ctx, c, args[1], args[0])
			}),
		},
		&cobra.Command{
			Use: "list", Short: "List contacts and blocked identities", Args: exactArgs(0), Example: "  qpctl contact list",
			RunE: a.contacts,
		},
		&cobra.Command{
			Use: "rename CONTACT NEW_NAME", Short: "Give a contact another name", Args: exactArgs(2),
			Example: "  qpctl contact rename alice ally",
			RunE: run(func(ctx context.Context, c *client.Client, args []string) error {
				r, err := c.RenameContact(ctx, &daemonv1.RenameContactRequest{Contact: args[0], Name: args[1]})
				if err != nil {
					return err
				}
				return a.printContact(r.GetContact())
			}),
		},
		&cobra.Command{
			Use: "remove CONTACT", Short: "Remove a contact", Args: exactArgs(1), Example: "  qpctl contact remove alice",
			RunE: run(func(ctx context.Context, c *client.Client, args []string) error {
				if _, err := c.RemoveContact(ctx, &daemonv1.RemoveContactRequest{Contact: args[0]}); err != nil {
					return err
				}
				return a.done(map[string]any{"removed": args[0]}, "removed %s\n", escapeLine(args[0]))
			}),
		},
	)
	return cmd
}

// addContact adds key under name, warning when the name's key changed.
func (a *app) addContact(ctx context.Context, c *client.Client, key, name string) error {
	r, err := c.AddContact(ctx, &daemonv1.AddContactRequest{Identity: key, Name: name})
	if err != nil {
		return err
	}
	if r.GetReplacedIdentity() != "" && !a.json {
		a.stderrf("qpctl: WARNING: the key of %s changed from %s\n", escapeLine(name), r.GetReplacedIdentity())
	}
	return a.printContact(r.GetContact())
}
