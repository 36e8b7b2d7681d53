package backend

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/testnode"
	nodeclient "github.com/quicproquo/quicproquo/node/client"
)

// consentUser is a user with qpd's default invitation policy.
func consentUser(t *testing.T, node *testnode.Node) *groupsUser {
	t.Helper()
	return groupsStartOn(t, node, Config{}, nil, func(b *Backend) { b.cfg.Invitations = InviteContacts })
}

// A stranger sends 1000 Welcomes, real ones for a KeyPackage of the user's
// and junk: the request inbox
// keeps at most MaxRequests of them, within MaxRequestBytes; the events
// they cause and the database stay bounded, and so does the memory a
// listing of the requests takes.
func TestJunkWelcomesCostBoundedDiskAndMemory(t *testing.T) {
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	bob := consentUser(t, node)
	ctx := context.Background()
	_, spk, _ := ed25519.GenerateKey(rand.Reader)
	spub := spk.Public().(ed25519.PublicKey)
	stranger := pipelinePeer(t, node, spk)
	signer := &mls.Signer{Credential: mls.NewBasicCredential(spub), SignaturePub: spub, SignaturePriv: spk.Seed()}
	// One KeyPackage serves every Welcome: bob keeps its private half
	// until a Welcome for it is accepted.
	raw, err := stranger.FetchKeyPackage(ctx, bob.id)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := mls.ParseKeyPackage(raw)
	if err != nil {
		t.Fatal(err)
	}
	const total = 1000
	for i := range total {
		var payload []byte
		if i%4 == 3 {
			payload = append([]byte{0, 1, 0, 3}, make([]byte, 2000)...) // junk that says "Welcome"
		} else {
			gid := make([]byte, 16)
			rand.Read(gid)
			g, err := mls.CreateGroup(DefaultCipherSuite, gid, signer, &mls.CreateOptions{
				Extensions: []mls.Extension{{Type: ExtensionGroupName, Data: fmt.Appendf(nil, "spam %d", i)}}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := g.AddMembers([]*mls.KeyPackage{kp}, nil)
			if err != nil {
				t.Fatal(err)
			}
			payload = res.Welcome
		}
		for {
			_, _, err := stranger.Enqueue(ctx, bob.id, payload, fmt.Appendf(nil, "w%d", i))
			if err == nil {
				break
			}
			if errors.Is(err, nodeclient.ErrQuota) {
				// The node holds only strangers' share of Bob's queue
				// at once: wait for Bob to read some.
				time.Sleep(5 * time.Millisecond)
				continue
			}
			if !errors.Is(err, nodeclient.ErrRateLimited) {
				t.Fatalf("enqueue %d: %v", i, err)
			}
		}
	}
	groupsWait(t, "bob read his whole queue", func() bool {
		var cur uint64
		bob.b.view(ctx, func(tx *store.Tx) (err error) { cur, err = tx.NodeCursor(); return })
		return cur >= total
	})
	var n, events int
	var size int64
	bob.b.view(ctx, func(tx *store.Tx) (err error) {
		if n, size, err = tx.CountRequests(); err != nil {
			return err
		}
		evs, err := tx.EventsAfter(0, 10000)
		events = len(evs)
		return err
	})
	if n != MaxRequests || size > MaxRequestBytes {
		t.Fatalf("%d requests of %d bytes stored, want %d within %d bytes", n, size, MaxRequests, MaxRequestBytes)
	}
	// A request event per stored request, a bounded number of rejected
	// events for the junk, a few connection events.
	if limit := MaxRequests + strangerRejectBurst + 40; events > limit {
		t.Fatalf("%d events after %d Welcomes, want at most %d", events, total, limit)
	}
	if gs, err := bob.b.Groups(ctx); err != nil || len(gs) != 0 {
		t.Fatalf("bob joined %d groups, want none: %v", len(gs), err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rs, err := bob.b.Requests(ctx)
	if err != nil || len(rs) != MaxRequests {
		t.Fatalf("requests: %d %v", len(rs), err)
	}
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 256<<20 {
		t.Errorf("listing the requests allocated %d MiB", grown>>20)
	}
	bob.stop()
	fi, err := os.Stat(bob.b.st.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 4*MaxRequestBytes {
		t.Errorf("qpd.db is %d bytes after the junk", fi.Size())
	}
	if rs[0].Inviter == nil || string(rs[0].Inviter) != string(spub) || rs[0].GroupName == "" {
		t.Errorf("request %+v: want the stranger shown as inviter and the group's name", rs[0])
	}
}
