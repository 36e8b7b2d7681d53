package qpd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/daemon/api"
	"github.com/quicproquo/quicproquo/daemon/internal/daemontest"
)

func TestMain(m *testing.M) {
	daemontest.HostileListenerMain()
	os.Exit(m.Run())
}

// TestRunRefusesFallbackFolderOfAnotherUser: another user pre-created the
// fallback socket folder (<tmp>/quicproquo-UID) with mode 0777 and listens
// there; qpd refuses to start, and their listener gets nothing.
func TestRunRefusesFallbackFolderOfAnotherUser(t *testing.T) {
	tmp := daemontest.ShortTempDir(t)
	if err := os.Chmod(tmp, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	t.Setenv("XDG_RUNTIME_DIR", "")
	cfg, err := ParseFlags([]string{"--state-dir", filepath.Join(t.TempDir(), "state"), "--server", "127.0.0.1:9"}, func(k string) string { return os.Getenv(k) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.Socket, tmp) {
		// /run/user/UID exists here, so the fallback is not used by default;
		// test the fallback folder's shape anyway.
		cfg.Socket = filepath.Join(tmp, "quicproquo-0", "qpd.sock")
	}
	h := daemontest.StartHostileListener(t, cfg.Socket)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = Run(ctx, cfg, daemontest.Logger())
	if !errors.Is(err, api.ErrUnsafeSocketFolder) {
		t.Fatalf("Run in another user's folder: %v, want ErrUnsafeSocketFolder", err)
	}
	if n := h.BytesReceived(t); n != 0 {
		t.Fatalf("the other user's listener received %d bytes", n)
	}
}
