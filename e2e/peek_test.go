package e2e

import (
	"strings"
	"testing"
)

// fetch-key --peek, through qpctl, qpd and a real node, twice: the peer's
// KeyPackage count at the node stays as it was, and what is shown is the
// peer's valid last-resort package; a plain fetch then takes one.
func TestFetchKeyPeekConsumesNothing(t *testing.T) {
	root := tempDir(t)
	n := startNode(t, root, "127.0.0.1:0")
	alice, bob := newUser(t, root, "alice", n.addr), newUser(t, root, "bob", n.addr)
	alice.register(t)
	bob.register(t)
	// register returns once the node holds some of bob's KeyPackages; qpd
	// keeps 10 there, so wait for all of them before counting.
	const before = 10
	waitFor(t, "bob's KeyPackages all at the node", func() bool { return *bob.status(t).KeyPackagesLeft == before })
	type keyJSON struct {
		Valid              bool   `json:"valid"`
		LastResort         bool   `json:"last_resort"`
		CredentialIdentity string `json:"credential_identity"`
	}
	for range 2 {
		ks := jsonLines[keyJSON](t, alice.must(t, "fetch-key", "--peek", bob.id, "--json"))
		if len(ks) != 1 || !ks[0].Valid || !ks[0].LastResort || ks[0].CredentialIdentity != bob.id {
			t.Fatalf("fetch-key --peek: %+v, want bob's valid last-resort KeyPackage", ks)
		}
		if left := *bob.status(t).KeyPackagesLeft; left != before {
			t.Fatalf("bob has %d KeyPackages at the node after a peek, %d before", left, before)
		}
	}
	ks := jsonLines[keyJSON](t, alice.must(t, "fetch-key", bob.id, "--json"))
	if len(ks) != 1 || !ks[0].Valid || ks[0].LastResort {
		t.Fatalf("fetch-key: %+v, want one of bob's consumable KeyPackages", ks)
	}
	if left := *bob.status(t).KeyPackagesLeft; left != before-1 {
		t.Fatalf("bob has %d KeyPackages at the node after a fetch, want %d", left, before-1)
	}
	// Someone never registered has nothing to peek at: a clear error.
	r := alice.run(t, "fetch-key", "--peek", strings.Repeat("ab", 32))
	if r.code == 0 || !strings.Contains(r.stderr, "no last-resort KeyPackage") {
		t.Fatalf("peek at a stranger: %+v", r)
	}
}
