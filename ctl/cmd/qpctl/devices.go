package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// addDeviceCommands adds `link` (show a code on the primary, or accept
// one on a new device) and `devices` (list, revoke).
func (a *app) addDeviceCommands(root *cobra.Command) {
	var qr, yes bool
	var accept, name string
	var timeout time.Duration
	link := &cobra.Command{
		Use: "link [--qr] | link --accept CODE [--name LABEL]", Short: "Link a new device to this person (or, with --accept, become one)", GroupID: "node",
		Long: `On a primary device (the first one, or one restored with qpd --restore),
print a one-use code (with --qr also as a QR code) and wait until a new device
uses it: the new device gets its own key certified by your identity key, your
contacts and the list of your groups, and this device adds it to every group.
The code is valid for 10 minutes (--timeout) and for one device. When a device
uses it, its key and label are shown and you are asked [y/N]: compare the key
with the one the new device shows; only yes links it. No answer within 90
seconds, or no, refuses it (the new device is told; the code is spent).
--yes accepts without asking (scripts).

On the new device, run ` + "`qpd --link CODE`" + ` on an empty state folder, or
` + "`qpctl link --accept CODE`" + ` against a qpd that has no identity yet.
Contacts see one person: safety numbers stay those of your identity key.`,
		Args: exactArgs(0),
		Example: `  qpctl link --qr
  qpctl link --accept qpq-link-abcd-efgh-ijkl-mnop-qrst-uvwx-yz --name laptop`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if accept != "" {
				if qr {
					return usagef("--qr shows a code; --accept takes one")
				}
				if yes {
					return usagef("--yes answers the primary's question: give it there")
				}
				return a.acceptLink(cmd.Context(), accept, name, timeout)
			}
			if name != "" {
				return usagef("--name names the new device: give it with --accept there")
			}
			return a.link(cmd.Context(), qr, yes, timeout)
		},
	}
	link.Flags().BoolVar(&qr, "qr", false, "also draw the code as a QR code")
	link.Flags().BoolVar(&yes, "yes", false, "link the device that uses the code without asking")
	link.Flags().StringVar(&accept, "accept", "", "the code a primary device shows: become its new device")
	link.Flags().StringVar(&name, "name", "", "with --accept: this device's label (for example laptop)")
	link.Flags().DurationVar(&timeout, "timeout", 0, "how long the code is valid (default 10m), or with --accept how long to wait (default 2m)")
	root.AddCommand(link)

	devices := &cobra.Command{
		Use: "devices", Short: "List this person's devices", GroupID: "node",
		Long: `List this person's devices: the current device list, signed by the identity
key, that contacts fetch with the KeyPackages. "*" marks this device. A device
can be revoked from a primary device with ` + "`qpctl devices revoke ID`" + `.`,
		Args:    exactArgs(0),
		Example: "  qpctl devices\n  qpctl devices --json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
				r, err := c.Devices(ctx, &daemonv1.DevicesRequest{})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(devicesJSON(r))
				}
				if err := a.printf("identity %s (device list version %d%s)\n", r.GetIdentity(), r.GetVersion(), primaryNote(r.GetPrimary())); err != nil {
					return err
				}
				for _, d := range r.GetDevices() {
					mark := " "
					if d.GetThisDevice() {
						mark = "*"
					}
					label := ""
					if d.GetName() != "" {
						label = "  " + d.GetName()
					}
					if err := a.printf("%s %s%s\n", mark, d.GetKey(), label); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a device: out of every group, refused by the node",
		Long: `Revoke a device (its key, or at least 8 hex characters that start exactly one
device's key, as qpctl devices lists them): the device list is published
without it, so the node refuses its certificate from then on, and its leaves
are removed from every group, one commit per group, so it reads nothing sent
after. Only a primary device can revoke, and not itself.`,
		Args:    exactArgs(1),
		Example: "  qpctl devices revoke 3f9a01bc",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd.Context(), time.Minute, func(ctx context.Context, c *client.Client) error {
				r, err := c.RevokeDevice(ctx, &daemonv1.RevokeDeviceRequest{Device: args[0]})
				if err != nil {
					return err
				}
				return a.printRevoked(r)
			})
		},
	}
	devices.AddCommand(revoke)
	root.AddCommand(devices)
}

// printRevoked prints what a revocation did; one that left the device in
// some groups is an error (exit 1) that says to run it again.
func (a *app) printRevoked(r *daemonv1.RevokeDeviceResponse) error {
	if a.json {
		if err := a.printJSON(map[string]any{"device": r.GetDevice(), "version": r.GetVersion(), "groups": r.GetGroups(), "groups_failed": r.GetGroupsFailed()}); err != nil {
			return err
		}
	} else {
		if err := a.printf("revoked %s (device list version %d), removed from %d group(s)\n", r.GetDevice(), r.GetVersion(), r.GetGroups()); err != nil {
			return err
		}
		for _, f := range r.GetGroupsFailed() {
			if err := a.printf("  not removed from %s\n", f); err != nil {
				return err
			}
		}
	}
	if n := len(r.GetGroupsFailed()); n > 0 {
		return fmt.Errorf("revocation incomplete: the device is still in %d group(s); run qpctl devices revoke %s again", n, r.GetDevice())
	}
	return nil
}

func primaryNote(primary bool) string {
	if primary {
		return ", this device is primary"
	}
	return ""
}

func devicesJSON(r *daemonv1.DevicesResponse) map[string]any {
	ds := make([]map[string]any, 0, len(r.GetDevices()))
	for _, d := range r.GetDevices() {
		ds = append(ds, map[string]any{"key": d.GetKey(), "name": d.GetName(), "this_device": d.GetThisDevice()})
	}
	return map[string]any{"identity": r.GetIdentity(), "version": r.GetVersion(), "primary": r.GetPrimary(), "devices": ds}
}

// link shows a code and follows the primary's side until the new device
// is in every group.
func (a *app) link(ctx context.Context, qr, yes bool, timeout time.Duration) error {
	if timeout < 0 {
		return usagef("--timeout must not be negative")
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	// The code lives at most 10 minutes; adding the device to many groups
	// takes the rest.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute+callTimeout+5*time.Minute)
	defer cancel()
	req := &daemonv1.LinkRequest{}
	if timeout > 0 {
		req.Timeout = durationpb.New(timeout)
	}
	stream, err := c.Link(cctx, req)
	if err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errors.New("link: the daemon ended the exchange without an answer")
		}
		if err != nil {
			return err
		}
		switch {
		case m.GetCode() != "":
			if a.json {
				out := map[string]any{"code": m.GetCode(), "expires": m.GetExpires().AsTime().UTC().Format(time.RFC3339)}
				if qr {
					q, err := keyQR(m.GetCode())
					if err != nil {
						return err
					}
					out["qr"] = q
				}
				if err := a.printJSON(out); err != nil {
					return err
				}
				continue
			}
			if err := a.printf("%s\n", m.GetCode()); err != nil {
				return err
			}
			if qr {
				q, err := keyQR(m.GetCode())
				if err != nil {
					return err
				}
				// Our own drawing, several lines: written as it is (printf
				// would escape its line breaks).
				if _, err := io.WriteString(a.stdout, q); err != nil {
					return err
				}
			}
			if err := a.printf("on the new device: qpd --link CODE (or qpctl link --accept CODE); valid until %s\n",
				m.GetExpires().AsTime().Local().Format("15:04:05")); err != nil {
				return err
			}
		case m.GetRequest() != nil:
			if err := a.answerLinkRequest(cctx, c, m.GetRequest(), yes); err != nil {
				return err
			}
		case m.GetDone():
			if a.json {
				return a.printJSON(map[string]any{"done": true, "groups_added": m.GetGroupsAdded(), "groups_failed": m.GetGroupsFailed()})
			}
			if err := a.printf("added to %d group(s)\n", m.GetGroupsAdded()); err != nil {
				return err
			}
			for _, f := range m.GetGroupsFailed() {
				if err := a.printf("  not added to %s\n", f); err != nil {
					return err
				}
			}
			return nil
		case m.GetDevice() != nil:
			d := m.GetDevice()
			if a.json {
				if err := a.printJSON(map[string]any{"linked": d.GetKey(), "name": d.GetName()}); err != nil {
					return err
				}
				continue
			}
			if err := a.printf("linked device %s %s; adding it to the groups\n", d.GetKey(), d.GetName()); err != nil {
				return err
			}
		}
	}
}
