package server_test

import (
	"bytes"
	"testing"

	"github.com/quicproquo/quicproquo/node/client"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
)

// suiteKeyPackage is testKeyPackage in cipher suite cs.
func suiteKeyPackage(identity []byte, tag byte, cs uint16) []byte {
	b := testKeyPackage(identity, tag)
	b[2], b[3] = byte(cs>>8), byte(cs)
	return b
}

// TestKeyPackagesPerSuite: the directory keeps each identity's packages per
// cipher suite. A fetch in one suite never returns or consumes a package of
// another; a fetch without a suite is suite 1; an identity with packages
// only in suite 1 has none in the X-Wing suite (a clear noKeyPackage); a
// suite the node does not keep is refused on upload and answered with
// noKeyPackage on fetch.
func TestKeyPackagesPerSuite(t *testing.T) {
	n := startTestNode(t, server.Config{}, store.Limits{})
	ctx := testCtx(t)
	a, b := newTestIdentity(t), newTestIdentity(t)
	ca, cb := n.dial(t, a.priv), n.dial(t, b.priv)
	const xwing = 0xF001

	classic := suiteKeyPackage(a.pub, 1, 1)
	pq := suiteKeyPackage(a.pub, 2, xwing)
	pqLast := suiteKeyPackage(a.pub, 3, xwing)
	for _, c := range []struct {
		kp []byte
		lr bool
	}{{classic, false}, {pq, false}, {pqLast, true}} {
		if _, err := ca.UploadKeyPackage(ctx, a.pub, c.kp, c.lr); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := ca.KeyPackageCountSuite(ctx, a.pub, xwing); err != nil || c != (client.KeyPackageCount{Remaining: 1, LastResort: true}) {
		t.Fatalf("X-Wing count %+v, %v", c, err)
	}
	if c, err := ca.KeyPackageCount(ctx, a.pub); err != nil || c != (client.KeyPackageCount{Remaining: 1}) {
		t.Fatalf("suite 1 count %+v, %v", c, err)
	}
	got, err := cb.FetchKeyPackageSuite(ctx, a.pub, xwing)
	if err != nil || !bytes.Equal(got, pq) {
		t.Fatalf("X-Wing fetch: %x, %v", got, err)
	}
	for range 2 {
		if got, err := cb.FetchKeyPackageSuite(ctx, a.pub, xwing); err != nil || !bytes.Equal(got, pqLast) {
			t.Fatalf("X-Wing fetch after the consumable one: %x, %v; want the X-Wing last resort", got, err)
		}
	}
	if got, err := cb.FetchKeyPackage(ctx, a.pub); err != nil || !bytes.Equal(got, classic) {
		t.Fatalf("suite 1 fetch: %x, %v", got, err)
	}
	if _, err := cb.FetchKeyPackage(ctx, a.pub); err == nil {
		t.Fatal("suite 1 fetch returned a package of another suite")
	}

	// b has only suite-1 packages: none in X-Wing.
	if _, err := cb.UploadKeyPackage(ctx, b.pub, suiteKeyPackage(b.pub, 4, 1), true); err != nil {
		t.Fatal(err)
	}
	_, err = ca.FetchKeyPackageSuite(ctx, b.pub, xwing)
	wantErr(t, "X-Wing fetch from an identity with suite-1 packages only", err, client.ErrNoKeyPackage)

	// A suite the node does not keep.
	_, err = ca.UploadKeyPackage(ctx, a.pub, suiteKeyPackage(a.pub, 5, 0x0002), false)
	wantErr(t, "upload in suite 2", err, client.ErrInvalidArgument)
	_, err = cb.FetchKeyPackageSuite(ctx, a.pub, 0x0002)
	wantErr(t, "fetch in suite 2", err, client.ErrNoKeyPackage)
	_, err = ca.KeyPackageCountSuite(ctx, a.pub, 0x0002)
	wantErr(t, "count in suite 2", err, client.ErrInvalidArgument)
	checkServing(t, n)
}
