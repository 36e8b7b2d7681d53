package qpd

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsEnvAndDefaults(t *testing.T) {
	env := map[string]string{
		"QPQ_STATE_DIR":   "/env/state",
		"QPQ_SOCKET":      "/env/qpd.sock",
		"QPQ_SERVER":      "node.example:4201",
		"QPQ_SERVER_CERT": "/env/node.pem",
		"XDG_DATA_HOME":   "/xdg",
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := ParseFlags(nil, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StateDir != "/env/state" || cfg.Socket != "/env/qpd.sock" || cfg.Server != "node.example:4201" || cfg.ServerCert != "/env/node.pem" || cfg.LogLevel != slog.LevelInfo || cfg.SelfUpdateInterval != 24*time.Hour || cfg.ManualJoin {
		t.Errorf("from env: %+v", cfg)
	}
	cfg, err = ParseFlags([]string{"--state-dir", "/flag/state", "--socket=/flag/s", "--server", "h:1", "--log-level", "debug", "--repin", "--self-update-interval", "1h", "--auto-join=false"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StateDir != "/flag/state" || cfg.Socket != "/flag/s" || cfg.Server != "h:1" || cfg.LogLevel != slog.LevelDebug || !cfg.Repin || cfg.SelfUpdateInterval != time.Hour || !cfg.ManualJoin {
		t.Errorf("flags over env: %+v", cfg)
	}
	cfg, err = ParseFlags(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != DefaultServer || !strings.HasSuffix(cfg.StateDir, filepath.Join(".local", "share", "quicproquo")) && !strings.HasSuffix(cfg.StateDir, "quicproquo") {
		t.Errorf("defaults: %+v", cfg)
	}
	for _, bad := range [][]string{{"--log-level", "loud"}, {"--nope"}, {"extra"}, {"--self-update-interval", "-1s"}} {
		if _, err := ParseFlags(bad, getenv, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("ParseFlags(%q): %v, want a usage error", bad, err)
		}
	}
	if _, err := ParseFlags([]string{"--help"}, getenv, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
}

func TestDefaultStateDirFollowsXDG(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/xdg/data")
	if got := DefaultStateDir(); got != "/xdg/data/quicproquo" {
		t.Errorf("DefaultStateDir = %q", got)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got := DefaultStateDir(); got != "/home/u/.local/share/quicproquo" {
		t.Errorf("DefaultStateDir = %q", got)
	}
}

func TestSDNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v", err)
	}
}

func TestLockStateDir(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockStateDir(dir); err == nil || !strings.Contains(err.Error(), "in use by another qpd") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	unlock2, err := lockStateDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestReadCertRejectsGarbage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cert.pem")
	if err := writeTestFile(p, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := readCert(p); err == nil {
		t.Fatal("accepted a key as certificate")
	}
	if err := writeTestFile(p, "not a cert"); err != nil {
		t.Fatal(err)
	}
	if _, err := readCert(p); err == nil {
		t.Fatal("accepted garbage as certificate")
	}
}
