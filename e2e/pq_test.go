package e2e

import (
	"strings"
	"testing"
)

// A post-quantum group end to end, on a node that requires the hybrid
// post-quantum TLS key exchange: Alice creates an X-Wing group with
// --pq, invites Bob and Carol (whose qpd publish X-Wing KeyPackages by
// default), they join and talk, and everyone's members show the suite.
// Dave's qpd publishes classical KeyPackages only: inviting him to the
// post-quantum group is a clear error, while a classical group takes him.
func TestPostQuantumGroup(t *testing.T) {
	root := tempDir(t)
	n := startNode(t, root, "127.0.0.1:0", "--require-pq-tls")
	alice, bob, carol := newUser(t, root, "alice", n.addr), newUser(t, root, "bob", n.addr), newUser(t, root, "carol", n.addr)
	dave := newUser(t, root, "dave", n.addr, "--pq-key-packages=false")
	for _, u := range []*user{alice, bob, carol, dave} {
		u.register(t)
	}
	gs := jsonLines[groupJSON](t, alice.must(t, "create-group", "--name", "vault", "--pq", "--json"))
	if len(gs) != 1 || !gs[0].PostQuantum || gs[0].CipherSuite != 0xf001 || gs[0].CipherSuiteName != "MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519" {
		t.Fatalf("create-group --pq: %+v", gs)
	}
	group := gs[0].GroupID
	alice.must(t, "invite", "--group", "vault", "--peer-key", bob.id, "--peer-key", carol.id)
	bob.join(t, group, "vault")
	carol.join(t, group, "vault")

	alice.must(t, "send", "--group", "vault", "--msg", "quantum-safe hello")
	for _, u := range []*user{bob, carol} {
		checkMessage(t, u.recvUntil(t, group, 1)[0], group, alice.id, "quantum-safe hello")
	}
	bob.must(t, "send", "--group", group, "--msg", "hi from bob")
	if got := alice.recvUntil(t, group, 1); got[0].Text != "hi from bob" {
		t.Fatalf("alice got %+v", got)
	}

	var auth string
	for _, u := range []*user{alice, bob, carol} {
		ms := u.members(t, group)
		if len(ms) != 3 || !ms[0].PostQuantum || ms[0].CipherSuiteName != "MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519" {
			t.Fatalf("%s members: %+v", u.name, ms)
		}
		if auth == "" {
			auth = ms[0].EpochAuthenticator
		} else if ms[0].EpochAuthenticator != auth {
			t.Fatalf("%s disagrees on the epoch authenticator", u.name)
		}
	}
	if out := carol.must(t, "members", "--group", group); !strings.Contains(out, "suite 0xf001 MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519 (post-quantum)") {
		t.Fatalf("members text: %q", out)
	}

	// Dave has no X-Wing KeyPackage: a clear error, the group unchanged.
	r := alice.run(t, "invite", "--group", "vault", "--peer-key", dave.id)
	if r.code == 0 || !strings.Contains(r.stderr, "no KeyPackage of the group's suite MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519 for "+dave.id) {
		t.Fatalf("invite dave to the PQ group: %+v", r)
	}
	if ms := alice.members(t, group); len(ms) != 3 {
		t.Fatalf("members after the refused invite: %+v", ms)
	}
	// A classical group takes him.
	classic := alice.createGroup(t, "plain")
	alice.must(t, "invite", "--group", "plain", "--peer-key", dave.id)
	dave.join(t, classic, "plain")

	// Every daemon negotiated the hybrid TLS key exchange with the node
	// that requires it.
	for _, u := range []*user{alice, bob, carol, dave} {
		if !strings.Contains(u.p.out.String(), "tls_key_exchange=X25519MLKEM768") {
			t.Errorf("%s's log does not show the hybrid key exchange", u.name)
		}
	}
}
