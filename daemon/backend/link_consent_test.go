package backend

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/testnode"
	nodestore "github.com/quicproquo/quicproquo/node/store"
)

// The primary's user says no: the new device learns it over the sealed
// channel (ErrLinkRefused) and stores nothing, the device list stays as
// it was, and the code is spent. The request the primary shows names the
// key the new device shows.
func TestLinkRefusedOnPrimary(t *testing.T) {
	node := startLinkNode(t)
	a, user := linkPrimary(t, node)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	newDevice := func() *Backend {
		nd := backendNew(t, Config{NodeAddr: node.Addr, NodeCert: node.CertDER, KeyPackages: MLSKeyPackages{}, Groups: true,
			Invitations: InviteAnyone, KeyPackageTarget: 2})
		runBackend(t, nd)
		return nd
	}
	nd := newDevice()
	codes := make(chan string, 1)
	asked := make(chan DeviceEntry, 1)
	primaryDone := make(chan error, 1)
	go func() {
		_, err := a.Link(ctx, time.Minute, func(s LinkStep) error {
			if s.Code != "" {
				codes <- s.Code
			}
			if s.Request != nil {
				asked <- *s.Request
				return errors.New("the user said no")
			}
			if s.Device != nil {
				t.Errorf("a refused device was certified: %+v", s.Device)
			}
			return nil
		})
		primaryDone <- err
	}()
	code := <-codes
	var shown ed25519.PublicKey
	_, err := nd.AcceptLinkShowing(ctx, code, "stranger", 30*time.Second, func(d ed25519.PublicKey) { shown = d })
	if !errors.Is(err, ErrLinkRefused) {
		t.Fatalf("new device: %v, want ErrLinkRefused", err)
	}
	if err := <-primaryDone; !errors.Is(err, ErrLinkRefused) {
		t.Fatalf("primary: %v, want ErrLinkRefused", err)
	}
	req := <-asked
	if !req.Key.Equal(shown) || req.Name != "stranger" {
		t.Fatalf("the primary asked about %x %q, the new device showed %x", req.Key, req.Name, shown)
	}
	if _, _, err := nd.OwnKeys(ctx); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("a refused device has keys: %v", err)
	}
	info, err := a.Devices(ctx)
	if err != nil || info.Version != 0 || len(info.Devices) != 1 || !info.Devices[0].Key.Equal(user) {
		t.Fatalf("device list after a refusal: %+v, %v", info, err)
	}
	if hasDeviceEvent(t, a, user, shown, "linked") {
		t.Fatal("a refused device was recorded as linked")
	}
	// The code is spent: another device cannot use it.
	if _, err := newDevice().AcceptLink(ctx, code, "second try", 5*time.Second); err == nil || errors.Is(err, ErrLinkRefused) {
		t.Fatalf("the code used again: %v, want a failed link", err)
	}
}

// failingResponseStore is a node that cannot store a link response.
type failingResponseStore struct {
	nodestore.Store
}

func (s failingResponseStore) PutSlotBox(ctx context.Context, id []byte, box int, payload []byte) error {
	if box == nodestore.BoxResponse {
		return errors.New("the disk is full")
	}
	return s.Store.PutSlotBox(ctx, id, box, payload)
}

// The primary listed the new device but its response did not reach the
// node: the primary withdraws the device, so the list holds no device
// that never got its identity.
func TestLinkWithdrawnWhenResponseFails(t *testing.T) {
	node := testnode.StartNodeWrapped(t, t.TempDir(), "127.0.0.1:0", func(st nodestore.Store) nodestore.Store {
		return failingResponseStore{st}
	})
	a, user := linkPrimary(t, node)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	nd := newLinkDevice(t, node)
	code, primaryDone := startLink(t, ctx, a, nil)
	if _, err := nd.AcceptLink(ctx, code, "laptop", 5*time.Second); err == nil {
		t.Fatal("the new device linked without a response")
	}
	if err := <-primaryDone; !errors.Is(err, ErrLink) || !strings.Contains(err.Error(), "withdrawn") {
		t.Fatalf("primary: %v, want ErrLink with the device withdrawn", err)
	}
	info, err := a.Devices(ctx)
	if err != nil || len(info.Devices) != 1 || !info.Devices[0].Key.Equal(user) || info.Version != 2 {
		t.Fatalf("device list after a failed response: %+v, %v; want the identity key alone at version 2", info, err)
	}
}

// TestRefusedLinksFreeTheirSlots: a refused link closes its slot once the
// new device has had time to read the refusal, so refusals do not use up
// the identity's link slots at the node (4 by default) for the slot's TTL:
// after five refusals in a row a sixth link opens its slot.
func TestRefusedLinksFreeTheirSlots(t *testing.T) {
	old := linkRefusalHold
	linkRefusalHold = time.Second
	t.Cleanup(func() { linkRefusalHold = old })
	node := startLinkNode(t)
	a, _ := linkPrimary(t, node)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 5 {
		nd := newLinkDevice(t, node)
		code, primaryDone := startLink(t, ctx, a, func(s LinkStep) error {
			if s.Request != nil {
				return errors.New("the user said no")
			}
			return nil
		})
		if _, err := nd.AcceptLink(ctx, code, fmt.Sprintf("stranger %d", i), 30*time.Second); !errors.Is(err, ErrLinkRefused) {
			t.Fatalf("new device %d: %v, want ErrLinkRefused", i, err)
		}
		if err := <-primaryDone; !errors.Is(err, ErrLinkRefused) {
			t.Fatalf("primary %d: %v, want ErrLinkRefused", i, err)
		}
	}
}

// newLinkDevice starts the backend of a device that is to be linked.
func newLinkDevice(t *testing.T, node *testnode.Node) *Backend {
	t.Helper()
	nd := backendNew(t, Config{NodeAddr: node.Addr, NodeCert: node.CertDER, KeyPackages: MLSKeyPackages{}, Groups: true,
		Invitations: InviteAnyone, KeyPackageTarget: 2})
	runBackend(t, nd)
	return nd
}

// startLink runs a.Link in the background, its steps answered by answer
// (nil: every step accepted), and returns the code and Link's result.
func startLink(t *testing.T, ctx context.Context, a *Backend, answer func(LinkStep) error) (string, <-chan error) {
	t.Helper()
	codes := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		_, err := a.Link(ctx, time.Minute, func(s LinkStep) error {
			if s.Code != "" {
				codes <- s.Code
			}
			if answer != nil {
				return answer(s)
			}
			return nil
		})
		done <- err
	}()
	select {
	case code := <-codes:
		return code, done
	case err := <-done:
		t.Fatalf("link: %v", err)
		return "", nil
	}
}
