package api_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quicproquo/quicproquo/daemon/api"
	"github.com/quicproquo/quicproquo/daemon/internal/daemontest"
)

// TestListenSocketRefusesAnotherUsersFolder: another local user made the
// fallback folder (as /tmp/quicproquo-UID) with mode 0777 and listens in it.
// ListenSocket refuses the folder without touching their listener.
func TestListenSocketRefusesAnotherUsersFolder(t *testing.T) {
	tmp := daemontest.ShortTempDir(t)
	if err := os.Chmod(tmp, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(tmp, "quicproquo-0", "qpd.sock")
	h := daemontest.StartHostileListener(t, path)
	ln, err := api.ListenSocket(path)
	if err == nil {
		ln.Close()
		t.Fatal("ListenSocket accepted a folder of another user")
	}
	if !errors.Is(err, api.ErrUnsafeSocketFolder) || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Fatalf("ListenSocket: %v, want ErrUnsafeSocketFolder naming the owner", err)
	}
	if n := h.BytesReceived(t); n != 0 {
		t.Fatalf("the other user's listener received %d bytes", n)
	}
}

func TestListenSocketRefusesUnsafeFolders(t *testing.T) {
	dir := daemontest.ShortTempDir(t)
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o777)
	real := filepath.Join(dir, "real")
	os.Mkdir(real, 0o700)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(dir, "loose")
	os.Mkdir(loose, 0o700)
	os.Chmod(loose, 0o777) // writable by all, not sticky
	for name, path := range map[string]string{
		"folder mode 0777":        filepath.Join(open, "qpd.sock"),
		"folder is a link":        filepath.Join(link, "qpd.sock"),
		"parent 0777, not sticky": filepath.Join(loose, "quicproquo", "qpd.sock"),
	} {
		ln, err := api.ListenSocket(path)
		if err == nil {
			ln.Close()
		}
		if !errors.Is(err, api.ErrUnsafeSocketFolder) {
			t.Errorf("%s: ListenSocket = %v, want ErrUnsafeSocketFolder", name, err)
		}
	}
	// A folder of ours that only we may write to is fine, and tightened.
	mine := filepath.Join(dir, "mine")
	os.Mkdir(mine, 0o700)
	os.Chmod(mine, 0o755)
	ln, err := api.ListenSocket(filepath.Join(mine, "qpd.sock"))
	if err != nil {
		t.Fatalf("own 0755 folder: %v", err)
	}
	ln.Close()
	if fi, _ := os.Stat(mine); fi.Mode().Perm() != 0o700 {
		t.Errorf("own folder left at %v", fi.Mode().Perm())
	}
	// A fresh folder in a sticky shared parent is made 0700.
	shared := filepath.Join(dir, "shared")
	os.Mkdir(shared, 0o700)
	os.Chmod(shared, 0o777|os.ModeSticky)
	ln, err = api.ListenSocket(filepath.Join(shared, "quicproquo-0", "qpd.sock"))
	if err != nil {
		t.Fatalf("fresh folder in a sticky parent: %v", err)
	}
	ln.Close()
	if fi, _ := os.Lstat(filepath.Join(shared, "quicproquo-0")); fi.Mode().Perm() != 0o700 {
		t.Errorf("fresh folder has mode %v", fi.Mode().Perm())
	}
}
