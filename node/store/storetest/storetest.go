// Package storetest is the conformance suite for store.Store backends.
//
// A backend proves it keeps the store's contract by running the suite from
// its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := mybackend.Open(ctx, t.TempDir()+"/node.db", storetest.Limits(), nil)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Every subtest asks open for a fresh, empty store configured with Limits()
// (small limits, so that the limit tests stay fast). RunPersistence adds the
// checks that need to close a store and open the same data again.
//
// The suite checks, among others: KeyPackage put/take/count and last-resort
// semantics, fingerprints, 50 concurrent takers getting distinct packages,
// limits (store.ErrLimit) and malformed keys (store.ErrInvalid), FIFO queues
// with per-recipient sequence numbers that are never reused, receive from a
// cursor, idempotent ack, drain, idempotent enqueue (also after the ack),
// store.ErrClosed after Close, and group delivery: one commit per (group,
// epoch) with stale-epoch errors naming the current epoch (also under 10
// concurrent committers), all-or-nothing fan-out of commits, Welcomes and
// application messages, per-group sequence numbers and idempotent
// resubmission, real public views (mls.PublicGroup) moved by real commits
// and kept across a reopen, and registration: tokens by hash with uses and expiry,
// redeemed atomically. RunQuotas checks strangers' share of a queue, the
// room kept for group traffic, expiry, disk usage and the last-resort
// package on its own.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/node/store"
)

// Limits is the configuration every store handed to the suite must use.
func Limits() store.Limits {
	return store.Limits{MaxKeyPackages: 8, MaxQueueDepth: 16}
}

// Run runs the conformance suite. open must return a new, empty store using
// Limits(); the suite closes what it opens only when a test needs it closed,
// so open should also register a cleanup that closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"KeyPackage/PutTakeCount", testKPPutTakeCount},
		{"KeyPackage/Fingerprint", testKPFingerprint},
		{"KeyPackage/SameBytesTwice", testKPSameBytesTwice},
		{"KeyPackage/LastResort", testKPLastResort},
		{"KeyPackage/IdentitiesAreSeparate", testKPIdentitiesSeparate},
		{"KeyPackage/Limit", testKPLimit},
		{"KeyPackage/Invalid", testKPInvalid},
		{"KeyPackage/ConcurrentTakersWithLastResort", testKPConcurrentWithLastResort},
		{"KeyPackage/ConcurrentTakersWithoutLastResort", testKPConcurrentWithoutLastResort},
		{"Queue/FIFO", testQueueFIFO},
		{"Queue/ReceiveAfterCursor", testQueueReceiveAfter},
		{"Queue/AckUpTo", testQueueAck},
		{"Queue/SeqNeverReused", testQueueSeqNeverReused},
		{"Queue/Drain", testQueueDrain},
		{"Queue/DuplicateEnqueue", testQueueDuplicate},
		{"Queue/DuplicateAfterAck", testQueueDuplicateAfterAck},
		{"Queue/DedupKey", testQueueDedupKey},
		{"Queue/DepthLimit", testQueueDepthLimit},
		{"Queue/RecipientsAreSeparate", testQueueRecipientsSeparate},
		{"Queue/ConcurrentEnqueue", testQueueConcurrentEnqueue},
		{"Queue/Invalid", testQueueInvalid},
		{"Queue/ExtremeCursors", testQueueExtremeCursors},
		{"Queue/LastSeq", testQueueLastSeq},
		{"Closed", testClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
	runGroups(t, open)
	runRegistration(t, open)
	runBlobs(t, open)
	runDevices(t, open)
}

// RunPersistence runs the checks that close a store and open it again.
// newBacking creates fresh, empty backing storage (a file, a database) and
// returns a function that opens a store on it, using Limits(); the suite
// calls that function several times and closes each store before opening the
// next.
func RunPersistence(t *testing.T, newBacking func(t *testing.T) (open func(t *testing.T) store.Store)) {
	t.Helper()
	t.Run("Persistence/Reopen", func(t *testing.T) { testReopen(t, newBacking(t)) })
	t.Run("Persistence/GroupsReopen", func(t *testing.T) { testGroupsReopen(t, newBacking(t)) })
	t.Run("Persistence/PublicViewReopen", func(t *testing.T) { testPublicViewReopen(t, newBacking(t)) })
	t.Run("Persistence/DevicesReopen", func(t *testing.T) { testDevicesReopen(t, newBacking(t)) })
}

// Key returns a distinct, deterministic 32-byte identity key for label.
func Key(label string) []byte {
	k := sha256.Sum256([]byte("storetest key " + label))
	return k[:]
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantCount(t *testing.T, ctx context.Context, s store.Store, id []byte, remaining int, lastResort bool) {
	t.Helper()
	c, err := s.CountKeyPackages(ctx, id)
	noErr(t, "CountKeyPackages", err)
	if c.Remaining != remaining || c.LastResort != lastResort {
		t.Fatalf("CountKeyPackages = %+v, want {Remaining:%d LastResort:%v}", c, remaining, lastResort)
	}
}

// wantMessages checks that got are the messages with the given sequence
// numbers, with the payloads payloadFor(seq).
func wantSeqs(t *testing.T, got []store.Message, seqs ...uint64) {
	t.Helper()
	if len(got) != len(seqs) {
		t.Fatalf("got %d messages %v, want seqs %v", len(got), seqList(got), seqs)
	}
	for i, m := range got {
		if m.Seq != seqs[i] {
			t.Fatalf("got seqs %v, want %v", seqList(got), seqs)
		}
	}
}

func seqList(ms []store.Message) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

func payload(i int) []byte { return []byte(fmt.Sprintf("payload %d", i)) }

func wantMessage(t *testing.T, m store.Message, seq uint64, sender, cmid, body []byte) {
	t.Helper()
	if m.Seq != seq || !bytes.Equal(m.Sender, sender) || !bytes.Equal(m.ClientMsgID, cmid) || !bytes.Equal(m.Payload, body) {
		t.Fatalf("message = {Seq:%d Sender:%x ClientMsgID:%q Payload:%q}, want {Seq:%d Sender:%x ClientMsgID:%q Payload:%q}",
			m.Seq, m.Sender, m.ClientMsgID, m.Payload, seq, sender, cmid, body)
	}
}
