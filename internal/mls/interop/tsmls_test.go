package interop

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/quicproquo/quicproquo/internal/mls"
)

// TestTSMLSInterop checks our MLS against ts-mls 1.6.4, a separate
// TypeScript implementation of RFC 9420, running as a child process.
// It needs node and QPQ_TSMLS_DIR (see tsmlsSetup); it skips without them
// unless QPQ_TSMLS_REQUIRED=1.
func TestTSMLSInterop(t *testing.T) {
	tsmlsSetup(t)
	t.Run("wire", testTSMLSWire)
}

// testTSMLSWire decodes what ts-mls sends (KeyPackage, Welcome, commits,
// application messages, GroupInfo) with our codec, checks that re-encoding
// gives the same bytes, and verifies the signatures our side can check
// without group state.
func testTSMLSWire(t *testing.T) {
	suite, err := mls.LookupSuite(mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	alice := startTSMLSPeer(t, "alice")
	bob := startTSMLSPeer(t, "bob")

	roundTrip := func(what string, b []byte, want mls.WireFormat) *mls.MLSMessage {
		t.Helper()
		m, err := mls.ParseMLSMessage(b)
		if err != nil {
			t.Fatalf("%s from ts-mls: %v", what, err)
		}
		if m.WireFormat != want {
			t.Fatalf("%s: wire format %v, want %v", what, m.WireFormat, want)
		}
		if got := m.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("%s: re-encoding differs\n got %x\nwant %x", what, got, b)
		}
		return m
	}

	kpRes := bob.must("key_package", map[string]any{"identity": "bob"})
	kpMsg := roundTrip("KeyPackage", bob.bytesOf(kpRes, "key_package"), mls.WireFormatKeyPackage)
	kp := kpMsg.KeyPackage
	if kp.CipherSuite != suite.ID() {
		t.Fatalf("KeyPackage suite %v", kp.CipherSuite)
	}
	if err := kp.VerifySignature(suite); err != nil {
		t.Fatalf("ts-mls KeyPackage signature does not verify: %v", err)
	}
	if !bytes.Equal(kp.LeafNode.Credential.Identity, []byte("bob")) {
		t.Fatalf("KeyPackage identity %q", kp.LeafNode.Credential.Identity)
	}
	tampered := *kp
	tampered.InitKey = append([]byte(nil), kp.InitKey...)
	tampered.InitKey[0] ^= 1
	if err := tampered.VerifySignature(suite); err == nil {
		t.Fatal("a KeyPackage with a changed init key still verifies")
	}

	alice.must("create_group", map[string]any{"group_id": hex.EncodeToString([]byte("wire")), "identity": "alice"})
	add := alice.must("add", map[string]any{"key_package": kpRes["key_package"], "public": true})
	commit := roundTrip("public commit", alice.bytesOf(add, "commit"), mls.WireFormatPublicMessage)
	if ct := commit.PublicMessage.Content.ContentType; ct != mls.ContentCommit {
		t.Fatalf("commit content type %v", ct)
	}
	welcome := roundTrip("Welcome", alice.bytesOf(add, "welcome"), mls.WireFormatWelcome)
	if welcome.Welcome.Find(kp.Ref(suite)) == nil {
		t.Fatal("our KeyPackageRef of bob's KeyPackage is not among the Welcome's recipients")
	}
	tree, err := mls.ParseRatchetTree(alice.bytesOf(add, "ratchet_tree"))
	if err != nil {
		t.Fatalf("ts-mls ratchet tree: %v", err)
	}
	if tree.NumLeaves() != 2 {
		t.Fatalf("ratchet tree has %d leaves, want 2", tree.NumLeaves())
	}
	bob.must("join", map[string]any{"welcome": add["welcome"]})

	msg := alice.must("protect", map[string]any{"plaintext": hex.EncodeToString([]byte("hi"))})
	roundTrip("application message", alice.bytesOf(msg, "ciphertext"), mls.WireFormatPrivateMessage)
	upd := bob.must("commit_update", nil)
	roundTrip("private commit", bob.bytesOf(upd, "commit"), mls.WireFormatPrivateMessage)

	gi := alice.must("group_info", nil)
	giMsg := roundTrip("GroupInfo", alice.bytesOf(gi, "group_info"), mls.WireFormatGroupInfo)
	if giMsg.GroupInfo.GroupContext.Epoch != 1 {
		t.Fatalf("GroupInfo epoch %d, want 1", giMsg.GroupInfo.GroupContext.Epoch)
	}
}
