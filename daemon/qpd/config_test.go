package qpd

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigFile(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, ".config", "quicproquo", "qpd.toml")
	os.MkdirAll(filepath.Dir(path), 0o700)
	if err := writeTestFile(path, `# qpd settings
server = "file.example:4201"
state_dir = "/file/state"
socket = "/file/qpd.sock"
log_level = "warn"
self_update_interval = "2h"
auto_join = false
`); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": home}
	getenv := func(k string) string { return env[k] }
	cfg, err := ParseFlags(nil, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != "file.example:4201" || cfg.StateDir != "/file/state" || cfg.Socket != "/file/qpd.sock" || cfg.LogLevel != slog.LevelWarn || cfg.SelfUpdateInterval != 2*time.Hour || !cfg.ManualJoin {
		t.Fatalf("from the default file: %+v", cfg)
	}
	// The environment wins over the file, a flag over both.
	env["QPQ_SERVER"] = "env.example:1"
	cfg, err = ParseFlags([]string{"--socket", "/flag.sock", "--auto-join=true"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != "env.example:1" || cfg.Socket != "/flag.sock" || cfg.ManualJoin || cfg.StateDir != "/file/state" {
		t.Fatalf("env and flags over the file: %+v", cfg)
	}
	// XDG_CONFIG_HOME moves the default file; a missing default is fine.
	env["XDG_CONFIG_HOME"] = filepath.Join(home, "nowhere")
	if cfg, err = ParseFlags(nil, getenv, io.Discard); err != nil || cfg.StateDir == "/file/state" {
		t.Fatalf("with XDG_CONFIG_HOME elsewhere: %+v %v", cfg, err)
	}
	// --config and QPQ_CONFIG name another file, which must exist.
	if cfg, err = ParseFlags([]string{"--config", path}, getenv, io.Discard); err != nil || cfg.StateDir != "/file/state" {
		t.Fatalf("--config: %+v %v", cfg, err)
	}
	env[ConfigEnv] = path
	if cfg, err = ParseFlags(nil, getenv, io.Discard); err != nil || cfg.StateDir != "/file/state" {
		t.Fatalf("QPQ_CONFIG: %+v %v", cfg, err)
	}
	delete(env, ConfigEnv)
	for name, c := range map[string]struct{ text, want string }{
		"missing":      {"", "no such file"},
		"unknown key":  {`sever = "typo:1"`, `unknown key "sever"`},
		"bad duration": {`self_update_interval = "soon"`, "self_update_interval"},
		"bad type":     {`server = 4201`, "want a string"},
		"bad level":    {`log_level = "loud"`, "log-level"},
		"not TOML":     {`server = `, "config file"},
	} {
		p := filepath.Join(t.TempDir(), "qpd.toml")
		if c.text != "" {
			writeTestFile(p, c.text)
		}
		_, err := ParseFlags([]string{"--config", p}, getenv, io.Discard)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a usage error with %q", name, err, c.want)
		}
	}
}

// TestConfigPostQuantum: the post-quantum settings from the file, and
// their refusals.
func TestConfigPostQuantum(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qpd.toml")
	if err := writeTestFile(path, "default_suite = \"pq\"\nrequire_pq_tls = true\n"); err != nil {
		t.Fatal(err)
	}
	getenv := func(string) string { return "" }
	cfg, err := ParseFlags([]string{"--config", path}, getenv, io.Discard)
	if err != nil || !cfg.PQGroups || !cfg.RequirePQTLS || cfg.NoPQKeyPackages {
		t.Fatalf("from the file: %+v, %v", cfg, err)
	}
	if cfg, err = ParseFlags(nil, getenv, io.Discard); err != nil || cfg.PQGroups || cfg.RequirePQTLS {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	for _, args := range [][]string{{"--default-suite", "quantum"}, {"--default-suite", "pq", "--pq-key-packages=false"}} {
		if _, err := ParseFlags(args, getenv, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// FuzzConfigFile feeds arbitrary file contents to the configuration
// reader: it accepts them or fails with a usage error, never panics.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"server = \"h:1\"\nauto_join = false\nself_update_interval = \"1h\"\n",
		"log_level = \"debug\"\nstate_dir = \"/s\"\nsocket = \"/s.sock\"\n",
		"[table]\nx = 1\n", "server = [1, 2]\n", "auto_join = \"maybe\"\n", "= \"\"\n", "\x00",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		p := filepath.Join(dir, "qpd.toml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := ParseFlags([]string{"--config", p}, func(string) string { return "" }, io.Discard)
		if err != nil && !errors.Is(err, errUsage) {
			t.Fatalf("config %q: %v is not a usage error", text, err)
		}
	})
}

// TestConfigKeysNameFlags: every key the file may set is a flag of qpd,
// and its environment variable is the one qpd --help names.
func TestConfigKeysNameFlags(t *testing.T) {
	var help strings.Builder
	if _, err := ParseFlags([]string{"--help"}, func(string) string { return "" }, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	for k, env := range fileKeys {
		name := strings.ReplaceAll(k, "_", "-")
		i := strings.Index(help.String(), "  -"+name+" ")
		if i < 0 {
			i = strings.Index(help.String(), "  -"+name+"\n") // a boolean flag
		}
		if i < 0 {
			t.Errorf("file key %s: qpd has no flag --%s", k, name)
			continue
		}
		usage, _, _ := strings.Cut(help.String()[i:], "\n  -")
		if env != "" && !strings.Contains(usage, env) {
			t.Errorf("file key %s: --%s does not name %s: %q", k, name, env, usage)
		}
	}
}
