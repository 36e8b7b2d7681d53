package systemd

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func unitsNeedAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian: apt-get install systemd); the unit files are not verified")
	}
	return p
}

func unitsRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func unitsCopyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// verifyQpnode runs systemd-analyze verify on unit text as qpnode.service
// in a temporary root, and returns its exit error and output.
func verifyQpnode(t *testing.T, analyze, unit string) (string, error) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/local/bin", "etc/systemd/system", "usr/lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "usr/local/bin/qpnode"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/qpnode.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	unitsCopyTree(t, "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/system"))
	cmd := exec.Command(analyze, "verify", "--root="+root, "qpnode.service")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// verifyQpd runs systemd-analyze --user verify on unit text as qpd.service
// with a temporary HOME holding .local/bin/qpd.
func verifyQpd(t *testing.T, analyze, unit string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	home, run := filepath.Join(dir, "home"), filepath.Join(dir, "run")
	if err := os.MkdirAll(filepath.Join(home, ".local/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".local/bin/qpd"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "qpd.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "--user", "verify", path)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_RUNTIME_DIR="+run)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestUnitsVerify(t *testing.T) {
	analyze := unitsNeedAnalyze(t)
	t.Run("qpnode.service", func(t *testing.T) {
		out, err := verifyQpnode(t, analyze, unitsRead(t, "qpnode.service"))
		if err != nil || strings.TrimSpace(out) != "" {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
	t.Run("qpd.service", func(t *testing.T) {
		out, err := verifyQpd(t, analyze, unitsRead(t, "qpd.service"))
		if err != nil || strings.TrimSpace(out) != "" {
			t.Fatalf("systemd-analyze --user verify: %v\n%s", err, out)
		}
	})
}

// The check catches broken units: a bad value, a missing binary.
func TestUnitsVerifyCatchesMistakes(t *testing.T) {
	analyze := unitsNeedAnalyze(t)
	bad := strings.Replace(unitsRead(t, "qpnode.service"), "ProtectSystem=strict", "ProtectSystem=sometimes", 1)
	if out, err := verifyQpnode(t, analyze, bad); err == nil && strings.TrimSpace(out) == "" {
		t.Error("a bad ProtectSystem value passed verification")
	}
	bad = strings.Replace(unitsRead(t, "qpd.service"), "%h/.local/bin/qpd", "%h/.local/bin/qpd-missing", 1)
	if out, err := verifyQpd(t, analyze, bad); err == nil && strings.TrimSpace(out) == "" {
		t.Error("a missing ExecStart binary passed verification")
	}
}

func unitsDirectives(text string) map[string][]string {
	out := map[string][]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			out[k] = append(out[k], v)
		}
	}
	return out
}

func TestUnitsSettings(t *testing.T) {
	for file, want := range map[string]map[string]string{
		"qpd.service": {
			"Type":      "notify",
			"ExecStart": "%h/.local/bin/qpd --socket=%t/quicproquo/qpd.sock",
			"Restart":   "on-failure",
			"UMask":     "0077",
		},
		"qpnode.service": {
			"DynamicUser":     "yes",
			"StateDirectory":  "qpnode",
			"ProtectSystem":   "strict",
			"NoNewPrivileges": "yes",
			"PrivateTmp":      "yes",
			"ProtectHome":     "yes",
			"ExecStart":       "/usr/local/bin/qpnode --data-dir=/var/lib/qpnode",
		},
	} {
		got := unitsDirectives(unitsRead(t, file))
		for k, v := range want {
			if len(got[k]) != 1 || got[k][0] != v {
				t.Errorf("%s: %s = %q, want %q", file, k, got[k], v)
			}
		}
	}
	if !bytes.Contains([]byte(unitsRead(t, "qpd.service")), []byte("WantedBy=default.target")) {
		t.Error("qpd.service is not wanted by default.target")
	}
}

// exposure runs systemd-analyze security --offline on unit text saved as
// name (a user unit when user is set) and returns the overall exposure
// level: 0 is best, 10 worst.
func exposure(t *testing.T, analyze, name, unit string, user bool) float64 {
	t.Helper()
	dir := t.TempDir()
	home, run := filepath.Join(dir, "home"), filepath.Join(dir, "run")
	os.MkdirAll(home, 0o755)
	os.Mkdir(run, 0o700)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"security", "--offline=yes", path}
	if user {
		args = append([]string{"--user"}, args...)
	}
	cmd := exec.Command(analyze, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_RUNTIME_DIR="+run, "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze %q: %v\n%s", args, err, out)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// maxExposure is the highest `systemd-analyze security` exposure level the
// units may have.
const maxExposure = 2.0

func TestUnitsSecurityExposure(t *testing.T) {
	analyze := unitsNeedAnalyze(t)
	for _, c := range []struct {
		name string
		user bool
	}{{"qpnode.service", false}, {"qpd.service", true}} {
		unit := unitsRead(t, c.name)
		got := exposure(t, analyze, c.name, unit, c.user)
		t.Logf("%s: exposure %.1f", c.name, got)
		if got > maxExposure {
			t.Errorf("%s: systemd-analyze security exposure %.1f, want at most %.1f", c.name, got, maxExposure)
		}
		// The measure can fail: without the system call filter and the
		// /proc and user namespace options the unit scores worse than allowed.
		var weak []string
		for _, l := range strings.Split(unit, "\n") {
			if !regexp.MustCompile(`^(SystemCallFilter|ProtectProc|ProcSubset|PrivateUsers|PrivateDevices|ProtectSystem|ProtectHome|CapabilityBoundingSet|RestrictNamespaces)=`).MatchString(l) {
				weak = append(weak, l)
			}
		}
		if w := exposure(t, analyze, c.name, strings.Join(weak, "\n"), c.user); w <= maxExposure {
			t.Errorf("%s weakened: exposure %.1f, want above %.1f", c.name, w, maxExposure)
		}
	}
}

func TestUserUnitHasNoNetworkOnlineTarget(t *testing.T) {
	// network-online.target means nothing in a user manager: qpd retries
	// the node by itself.
	if u := unitsRead(t, "qpd.service"); strings.Contains(u, "network-online.target") {
		t.Error("qpd.service orders itself after network-online.target")
	}
}
