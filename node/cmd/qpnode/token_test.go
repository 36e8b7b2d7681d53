package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/pgtest"
	"github.com/quicproquo/quicproquo/node/client"
)

// TestTokenCommand: `qpnode token create` stores a token in the node's
// store (SQLite in the data directory, or PostgreSQL) while the node runs
// with --registration token; the token registers as many identities as
// its uses, and unregistered identities can neither upload nor enqueue.
func TestTokenCommand(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dir := t.TempDir()
			storeArgs := []string{"--data-dir", dir}
			if backend == "postgres" {
				storeArgs = []string{"--postgres", pgtest.NewDatabase(t)}
			}
			p := startQpnode(t, dir, append([]string{"--registration", "token"}, storeArgs...)...)
			token := createToken(t, append([]string{"--uses", "2", "--expires", "1d"}, storeArgs...)...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			var clients []*client.Client
			for range 3 {
				pub, priv := newKey(t)
				c := dialUnregistered(t, p.addr, dir, priv)
				if _, _, err := c.Enqueue(ctx, pub, []byte("x"), nil); !errors.Is(err, client.ErrNotRegistered) {
					t.Fatalf("enqueue before registering: %v", err)
				}
				if err := c.Register(ctx, ""); !errors.Is(err, client.ErrNotRegistered) {
					t.Fatalf("register without a token: %v", err)
				}
				clients = append(clients, c)
			}
			for i, c := range clients[:2] {
				if err := c.Register(ctx, token); err != nil {
					t.Fatalf("register %d with the token: %v", i, err)
				}
			}
			if err := clients[2].Register(ctx, token); !errors.Is(err, client.ErrBadToken) {
				t.Fatalf("a third identity on a two-use token: %v", err)
			}
			// An expired token registers nobody.
			old := createToken(t, append([]string{"--expires", "1ns"}, storeArgs...)...)
			if err := clients[2].Register(ctx, old); !errors.Is(err, client.ErrBadToken) {
				t.Fatalf("an expired token: %v", err)
			}
		})
	}
}

// createToken runs `qpnode token create args...` and returns the token it prints.
func createToken(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(qpnodeBinary(t), append([]string{"token", "create"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("qpnode token create: %v\n%s", err, errOut.String())
	}
	token := strings.TrimSpace(out.String())
	if !strings.HasPrefix(token, "qpt_") || strings.Contains(errOut.String(), token) {
		t.Fatalf("token %q (stderr %q)", token, errOut.String())
	}
	return token
}

func TestParseSizes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "4KiB": 4 << 10, "10GiB": 10 << 30} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "10GB", "1.5GiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
	if d, err := parseDays("30d"); err != nil || d != 30*24*time.Hour {
		t.Errorf("parseDays(30d) = %v, %v", d, err)
	}
}
