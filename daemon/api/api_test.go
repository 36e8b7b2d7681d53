package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/quicproquo/quicproquo/internal/mls"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/quicproquo/quicproquo/daemon/api"
	"github.com/quicproquo/quicproquo/daemon/client"
	"github.com/quicproquo/quicproquo/daemon/internal/daemontest"
	"github.com/quicproquo/quicproquo/daemon/store"
	daemonv1 "github.com/quicproquo/quicproquo/proto/qpq/daemon/v1"
)

func apiStart(t *testing.T, dir string) *daemontest.Daemon {
	t.Helper()
	return daemontest.StartDaemon(t, daemontest.DaemonConfig{
		StateDir: filepath.Join(dir, "state"),
		Socket:   filepath.Join(dir, "run", "qpd.sock"),
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSameUIDAllowedAndSocketModes(t *testing.T) {
	dir := daemontest.ShortTempDir(t)
	d := apiStart(t, dir)
	c := d.Dial(t)
	ctx := ctxT(t)
	st, err := c.Status(ctx, &daemonv1.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.GetRegistered() || st.GetIdentity() != "" {
		t.Errorf("fresh daemon reports registered: %v", st)
	}
	if st.GetNode().GetState() != daemonv1.ConnectionState_CONNECTION_STATE_NOT_REGISTERED {
		t.Errorf("node state = %v, want NOT_REGISTERED", st.GetNode().GetState())
	}
	h, err := c.Health.Check(ctx, &healthpb.HealthCheckRequest{Service: daemonv1.Daemon_ServiceDesc.ServiceName})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v %v", h, err)
	}
	fi, err := os.Stat(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode = %v, want socket 0600", fi.Mode())
	}
	di, _ := os.Stat(filepath.Dir(d.Socket))
	if di.Mode().Perm() != 0o700 {
		t.Errorf("socket folder mode = %v, want 0700", di.Mode().Perm())
	}
}

// peercredHelperEnv makes the test binary act as a client of the socket
// named in it (used when re-executed as another user).
const peercredHelperEnv = "QPD_TEST_PEERCRED_SOCKET"

func TestMain(m *testing.M) {
	if sock := os.Getenv(peercredHelperEnv); sock != "" {
		os.Exit(peercredHelper(sock))
	}
	daemontest.HostileListenerMain()
	os.Exit(m.Run())
}

// peercredHelper calls the daemon and prints one line per call:
// "<call> <code> <message>". It uses plain gRPC, as a hostile client
// would: package client itself refuses a daemon of another user.
func peercredHelper(sock string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println("dial error", err)
		return 1
	}
	defer conn.Close()
	c := struct {
		daemonv1.DaemonClient
		Health healthpb.HealthClient
	}{daemonv1.NewDaemonClient(conn), healthpb.NewHealthClient(conn)}
	_, err = c.Status(ctx, &daemonv1.StatusRequest{})
	fmt.Printf("status %s %s\n", status.Code(err), status.Convert(err).Message())
	_, err = c.Register(ctx, &daemonv1.RegisterRequest{})
	fmt.Printf("register %s %s\n", status.Code(err), status.Convert(err).Message())
	_, err = c.Health.Check(ctx, &healthpb.HealthCheckRequest{})
	fmt.Printf("health %s %s\n", status.Code(err), status.Convert(err).Message())
	stream, err := c.Subscribe(ctx, &daemonv1.SubscribeRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	fmt.Printf("subscribe %s %s\n", status.Code(err), status.Convert(err).Message())
	return 0
}

func TestPeerCredRefusesOtherUID(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: the test runs a client as uid 65534 (nobody) to prove the SO_PEERCRED check")
	}
	dir := daemontest.ShortTempDir(t)
	d := apiStart(t, dir)
	// Let nobody reach connect(2), so that the refusal comes from the
	// SO_PEERCRED check and not from file modes.
	for _, p := range []string{dir, filepath.Dir(d.Socket)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(d.Socket, 0o666); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "peercred-helper")
	copyExecutable(t, self, bin)

	cmd := exec.Command(bin)
	cmd.Dir = "/"
	cmd.Env = []string{peercredHelperEnv + "=" + d.Socket, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper as nobody: %v\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("helper output: %q", out.String())
	}
	for _, l := range lines {
		call, rest, _ := strings.Cut(l, " ")
		code, msg, _ := strings.Cut(rest, " ")
		if code != codes.PermissionDenied.String() {
			t.Errorf("%s as nobody: code %s (%s), want PermissionDenied", call, code, msg)
		}
		if !strings.Contains(msg, "uid 65534") || !strings.Contains(msg, fmt.Sprintf("serves only uid %d", os.Getuid())) {
			t.Errorf("%s as nobody: message %q does not explain the refusal", call, msg)
		}
	}
	// The refused client changed nothing, and the owner is still served.
	st, err := d.Dial(t).Status(ctxT(t), &daemonv1.StatusRequest{})
	if err != nil || st.GetRegistered() {
		t.Fatalf("owner after refusal: %v %v", st, err)
	}
}

func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterPersistsAcrossRestart(t *testing.T) {
	dir := daemontest.ShortTempDir(t)
	d := apiStart(t, dir)
	ctx := ctxT(t)
	r, err := d.Dial(t).Register(ctx, &daemonv1.RegisterRequest{})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if !r.GetCreated() || len(r.GetIdentity()) != 64 {
		t.Fatalf("Register: %v", r)
	}
	if len(r.GetNotices()) == 0 || r.GetKeyPackagesUploaded() != 0 {
		t.Errorf("Register without MLS: uploaded %d, notices %q; want 0 and a notice", r.GetKeyPackagesUploaded(), r.GetNotices())
	}
	d.Stop()
	if _, err := os.Stat(d.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after stop: %v", err)
	}

	d2 := apiStart(t, dir)
	c := d2.Dial(t)
	st, err := c.Status(ctx, &daemonv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !st.GetRegistered() || st.GetIdentity() != r.GetIdentity() {
		t.Fatalf("after restart: registered %v identity %q, want %q", st.GetRegistered(), st.GetIdentity(), r.GetIdentity())
	}
	r2, err := c.Register(ctx, &daemonv1.RegisterRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.GetCreated() || r2.GetIdentity() != r.GetIdentity() {
		t.Fatalf("second Register: %v, want the same identity, created=false", r2)
	}
}

func TestListenSocketStaleAndLive(t *testing.T) {
	dir := daemontest.ShortTempDir(t)
	path := filepath.Join(dir, "qpd.sock")
	// A stale socket: bound, then its listener gone without unlinking.
	ln, err := api.ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	ln2, err := api.ListenSocket(path)
	if err != nil {
		t.Fatalf("ListenSocket over a stale socket: %v", err)
	}
	defer ln2.Close()
	go func() {
		for {
			c, err := ln2.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := api.ListenSocket(path); !errors.Is(err, api.ErrDaemonRunning) {
		t.Fatalf("ListenSocket over a live socket: %v, want ErrDaemonRunning", err)
	}
	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, []byte("x"), 0o600)
	if _, err := api.ListenSocket(regular); err == nil {
		t.Fatal("ListenSocket replaced a regular file")
	}
}

func TestGroupCallsOffline(t *testing.T) {
	dir := daemontest.ShortTempDir(t)
	d := apiStart(t, dir)
	c := d.Dial(t)
	ctx := ctxT(t)
	if _, err := c.Register(ctx, &daemonv1.RegisterRequest{}); err != nil {
		t.Fatal(err)
	}
	cg, err := c.CreateGroup(ctx, &daemonv1.CreateGroupRequest{Name: "team"})
	if err != nil || cg.GetGroup().GetName() != "team" || cg.GetGroup().GetMemberCount() != 1 || len(cg.GetGroup().GetGroupId()) != 32 {
		t.Errorf("CreateGroup: %v, %v", cg, err)
	}
	mr, err := c.Members(ctx, &daemonv1.MembersRequest{Group: "team"})
	if err != nil || len(mr.GetMembers()) != 1 || !mr.GetMembers()[0].GetSelf() || len(mr.GetEpochAuthenticator()) == 0 {
		t.Errorf("Members: %v, %v", mr, err)
	}
	_, err = c.Invite(ctx, &daemonv1.InviteRequest{Group: "team", PeerKeys: []string{strings.Repeat("ab", 32)}})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("Invite offline: %v", err)
	}
	_, err = c.FetchKey(ctx, &daemonv1.FetchKeyRequest{PeerKey: strings.Repeat("ab", 32)})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("FetchKey: %v", err)
	}
	// Bad input is refused before anything else.
	for _, bad := range []string{"", "a\u202ename", strings.Repeat("ab", 33)} {
		_, err = c.FetchKey(ctx, &daemonv1.FetchKeyRequest{PeerKey: bad})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("FetchKey bad key %q: %v", bad, err)
		}
	}
	// A name is a contact reference: no such contact.
	_, err = c.FetchKey(ctx, &daemonv1.FetchKeyRequest{PeerKey: "zz"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("FetchKey unknown contact: %v", err)
	}
	_, err = c.Send(ctx, &daemonv1.SendRequest{Group: "nope", Text: "hi"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("Send to unknown group: %v", err)
	}
	_, err = c.Messages(ctx, &daemonv1.MessagesRequest{Limit: 5000})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("Messages limit 5000: %v", err)
	}
}

// apiSeed writes groups, messages and events straight into a stopped
// daemon's store, the way the receive path records them.
func apiSeed(t testing.TB, stateDir string, groupName string, texts ...string) {
	t.Helper()
	st, err := store.Open(context.Background(), stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gid := bytes.Repeat([]byte{0x42}, store.GroupIDSize)
	// A real one-member MLS group, so every call on it meets a state it can
	// decode.
	signer, err := mls.NewSigner(mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	g, err := mls.CreateGroup(mls.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, gid, signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	state, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(context.Background(), func(tx *store.Tx) error {
		if _, err := tx.Group(gid); errors.Is(err, store.ErrNotFound) {
			if err := tx.PutGroup(store.Group{ID: gid, Name: groupName, State: state, Epoch: g.Epoch()}); err != nil {
				return err
			}
			if _, err := tx.AppendEvent(store.Event{Kind: store.EventJoined, GroupID: gid, Epoch: g.Epoch()}); err != nil {
				return err
			}
		}
		for _, text := range texts {
			m, err := tx.AppendMessage(store.Message{GroupID: gid, MessageID: []byte(text), Sender: bytes.Repeat([]byte{7}, 32), Text: text, SentAt: time.Unix(1700000000, 0)})
			if err != nil {
				return err
			}
			if _, err := tx.AppendEvent(store.Event{Kind: store.EventMessage, GroupID: gid, MessageSeq: m.Seq}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func recvEvents(t *testing.T, stream interface {
	Recv() (*daemonv1.Event, error)
}, n int) []*daemonv1.Event {
	t.Helper()
	var out []*daemonv1.Event
	for len(out) < n {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv after %d events: %v", len(out), err)
		}
		out = append(out, ev)
	}
	return out
}

func TestSubscribeResumesFromCursor(t *testing.T) {
	dir := daemontest.ShortTempDir(t)
	stateDir := filepath.Join(dir, "state")
	apiSeed(t, stateDir, "team", "one", "two")
	d := apiStart(t, dir)
	ctx := ctxT(t)

	// First client: reads the three events (joined, one, two), remembers
	// its cursor and goes away.
	c1, err := client.Dial(ctx, d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	s1, err := c1.Subscribe(sctx, &daemonv1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	evs := recvEvents(t, s1, 3)
	if evs[0].GetJoined().GetName() != "team" || evs[1].GetMessage().GetText() != "one" || evs[2].GetMessage().GetText() != "two" {
		t.Fatalf("first events: %v", evs)
	}
	if m := evs[2].GetMessage(); m.GetSeq() != 2 || m.GetGroupName() != "team" || len(m.GetSender()) != 64 {
		t.Errorf("message event: %v", m)
	}
	cursor := evs[2].GetSeq()
	cancel()
	c1.Close()

	// While no client listens, more happens (the daemon restarts too).
	d.Stop()
	apiSeed(t, stateDir, "team", "three", "four")
	d = apiStart(t, dir)

	// The client comes back with its cursor: exactly the missed events.
	c2 := d.Dial(t)
	s2, err := c2.Subscribe(ctx, &daemonv1.SubscribeRequest{AfterSeq: cursor})
	if err != nil {
		t.Fatal(err)
	}
	evs = recvEvents(t, s2, 2)
	if evs[0].GetMessage().GetText() != "three" || evs[1].GetMessage().GetText() != "four" {
		t.Fatalf("resumed events: %v", evs)
	}
	if evs[0].GetSeq() != cursor+1 || evs[1].GetSeq() != cursor+2 {
		t.Fatalf("resumed seqs %d, %d after cursor %d", evs[0].GetSeq(), evs[1].GetSeq(), cursor)
	}
	// Nothing else is replayed: the next event is a new one.
	next := make(chan *daemonv1.Event, 1)
	go func() {
		ev, err := s2.Recv()
		if err == nil {
			next <- ev
		}
	}()
	select {
	case ev := <-next:
		t.Fatalf("unexpected extra event %v", ev)
	case <-time.After(300 * time.Millisecond):
	}

	// A cursor from elsewhere (ahead of this daemon's log) is refused.
	s3, err := c2.Subscribe(ctx, &daemonv1.SubscribeRequest{AfterSeq: 1000})
	if err == nil {
		_, err = s3.Recv()
	}
	if status.Code(err) != codes.OutOfRange {
		t.Fatalf("cursor ahead: %v, want OutOfRange", err)
	}
}

func TestMessagesReadFlags(t *testing.T) {
	dir := daemontest.ShortTempDir(t)
	apiSeed(t, filepath.Join(dir, "state"), "team", "a", "b", "c")
	d := apiStart(t, dir)
	c := d.Dial(t)
	ctx := ctxT(t)
	peek, err := c.Messages(ctx, &daemonv1.MessagesRequest{Group: "team", UnreadOnly: true})
	if err != nil || len(peek.GetMessages()) != 3 {
		t.Fatalf("peek: %v %v", peek, err)
	}
	r, err := c.Messages(ctx, &daemonv1.MessagesRequest{Group: "team", UnreadOnly: true, MarkRead: true, Limit: 2})
	if err != nil || len(r.GetMessages()) != 2 || !r.GetMore() || r.GetMessages()[0].GetText() != "a" {
		t.Fatalf("first read: %v %v", r, err)
	}
	r, err = c.Messages(ctx, &daemonv1.MessagesRequest{Group: "team", UnreadOnly: true, MarkRead: true})
	if err != nil || len(r.GetMessages()) != 1 || r.GetMessages()[0].GetText() != "c" {
		t.Fatalf("second read: %v %v", r, err)
	}
	start := time.Now()
	r, err = c.Messages(ctx, &daemonv1.MessagesRequest{Group: "team", UnreadOnly: true, MarkRead: true, Wait: durationpbMillis(200)})
	if err != nil || len(r.GetMessages()) != 0 {
		t.Fatalf("read with nothing unread: %v %v", r, err)
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Errorf("wait returned after %v, before 200ms", time.Since(start))
	}
	all, err := c.Messages(ctx, &daemonv1.MessagesRequest{Group: "team"})
	if err != nil || len(all.GetMessages()) != 3 || !all.GetMessages()[2].GetRead() {
		t.Fatalf("history: %v %v", all, err)
	}
	st, err := c.Status(ctx, &daemonv1.StatusRequest{})
	if err != nil || st.GetUnreadMessages() != 0 || st.GetGroups() != 1 {
		t.Fatalf("status: %v %v", st, err)
	}
	gs, err := c.ListGroups(ctx, &daemonv1.ListGroupsRequest{})
	if err != nil || len(gs.GetGroups()) != 1 || gs.GetGroups()[0].GetLastSeq() != 3 || gs.GetGroups()[0].GetName() != "team" {
		t.Fatalf("groups: %v %v", gs, err)
	}
}
