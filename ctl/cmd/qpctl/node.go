package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quicproquo/quicproquo/daemon/client"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

// addNodeCommands adds the commands about this user's identity and the
// node: ping, register, whoami, status, fetch-key.
func (a *app) addNodeCommands(root *cobra.Command) {
	root.AddCommand(
		&cobra.Command{
			Use: "ping", Short: "Measure the round trip to the node", GroupID: "node",
			Args: exactArgs(0), RunE: a.ping,
			Example: "  qpctl ping",
		},
		&cobra.Command{
			Use: "register", Short: "Create this user's identity (once) and print its key", GroupID: "node",
			Long: `Create this user's Ed25519 identity and publish KeyPackages at the node,
so that others can add you to groups. Run it once; later runs print the
same identity.`,
			Args: exactArgs(0), RunE: a.register,
			Example: "  qpctl register",
		},
		a.whoamiCommand(),
		&cobra.Command{
			Use: "status", Short: "Show the daemon's state", GroupID: "node",
			Long: "Show the identity, the node connection, KeyPackages, counters, the state folder and the socket.",
			Args: exactArgs(0), RunE: a.status,
			Example: "  qpctl status\n  qpctl status --json",
		},
		a.fetchKeyCommand(),
	)
}

func (a *app) ping(cmd *cobra.Command, _ []string) error {
	return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
		r, err := c.Ping(ctx, &daemonv1.PingRequest{})
		if err != nil {
			return err
		}
		rtt := r.GetRtt().AsDuration()
		if a.json {
			return a.printJSON(map[string]any{"address": r.GetAddress(), "rtt_ms": float64(rtt) / float64(time.Millisecond)})
		}
		return a.printf("pong from %s in %v\n", r.GetAddress(), rtt.Round(time.Microsecond))
	})
}

func (a *app) register(cmd *cobra.Command, _ []string) error {
	return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
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
			fmt.Fprintln(a.stderr, "qpctl register:", escapeLine(n))
		}
		return a.printf("%s\n", r.GetIdentity())
	})
}

func connStateName(s daemonv1.ConnectionState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "CONNECTION_STATE_"))
}

func (a *app) status(cmd *cobra.Command, _ []string) error {
	return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
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
		id := st.GetIdentity()
		if !st.GetRegistered() {
			id = "(not registered: run `qpctl register`)"
		}
		a.printf("identity:      %s\n", id)
		line := connStateName(node.GetState())
		if node.GetSince() != nil {
			line += " since " + timeString(node.GetSince())
		}
		if node.GetLastError() != "" {
			line += " (" + node.GetLastError() + ")"
		}
		a.printf("node:          %s %s\n", node.GetAddress(), line)
		if node.GetPinnedCertSha256() != "" {
			a.printf("node cert:     sha256 %s\n", node.GetPinnedCertSha256())
		}
		kp := "? at the node (not connected)"
		if st.GetKeyPackagesKnown() {
			kp = fmt.Sprintf("%d at the node", st.GetKeyPackagesLeft())
		}
		a.printf("key packages:  %s, %d private halves held\n", kp, st.GetKeyPackageSecrets())
		a.printf("groups:        %d\n", st.GetGroups())
		a.printf("unread:        %d\n", st.GetUnreadMessages())
		a.printf("outbox:        %d pending\n", st.GetOutboxPending())
		a.printf("state:         %s\n", st.GetStateDir())
		a.printf("socket:        %s\n", c.SocketPath())
		return a.printf("qpd version:   %s\n", st.GetVersion())
	})
}

func (a *app) fetchKeyCommand() *cobra.Command {
	var peek bool
	cmd := &cobra.Command{
		Use: "fetch-key PEER_KEY", Short: "Fetch a peer's KeyPackage from the node and check it", GroupID: "node",
		Long: `Fetch a peer's KeyPackage from the node and show what it contains and
whether it is valid. The node hands out each KeyPackage once: a plain
fetch consumes one of the peer's KeyPackages (invite fetches its own).
With --peek nothing is consumed: the node shows the peer's last-resort
KeyPackage (the one it keeps for when the others run out), which is
enough to check the peer's credential, suite and lifetime.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
				r, err := c.FetchKey(ctx, &daemonv1.FetchKeyRequest{PeerKey: args[0], Peek: peek})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(map[string]any{
						"ref": r.GetRef(), "cipher_suite": r.GetCipherSuite(), "credential_identity": r.GetCredentialIdentity(),
						"valid": r.GetValid(), "problem": r.GetProblem(), "last_resort": r.GetLastResort(),
						"not_before": timeString(r.GetNotBefore()), "not_after": timeString(r.GetNotAfter()),
						"size": len(r.GetKeyPackage()),
					})
				}
				valid := "yes"
				if !r.GetValid() {
					valid = "NO: " + r.GetProblem()
				}
				return a.printf("ref:           %s\ncipher suite:  %d\nidentity:      %s\nvalid:         %s\nlast resort:   %v\nlifetime:      %s .. %s\nsize:          %d bytes\n",
					r.GetRef(), r.GetCipherSuite(), r.GetCredentialIdentity(), valid, r.GetLastResort(),
					timeString(r.GetNotBefore()), timeString(r.GetNotAfter()), len(r.GetKeyPackage()))
			})
		},
		Example: "  qpctl fetch-key --peek 3f9a0c…(64 hex characters)   # look, consume nothing\n  qpctl fetch-key 3f9a0c…(64 hex characters)          # take one KeyPackage",
	}
	cmd.Flags().BoolVar(&peek, "peek", false, "consume nothing: show the peer's last-resort KeyPackage")
	return cmd
}
