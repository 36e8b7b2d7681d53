package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EIdentityBackupRestore: alice exports her identity from her
// running qpd, loses that machine, and starts a qpd on a fresh state
// folder with --restore: it has her identity key, and the safety number
// with bob is the one they compared before. A wrong passphrase, a weak
// one, an existing output file and a restore over another identity are
// refused with clear errors.
func TestE2EIdentityBackupRestore(t *testing.T) {
	p := e2eStartDaemons(t)
	qpctl := p.qpctl
	must := func(sock string, args ...string) string { t.Helper(); return e2eMust(t, qpctl, sock, args...) }
	must(p.aliceSock, "add-contact", p.bobKey, "--name", "bob")
	before := strings.Split(must(p.aliceSock, "safety-number", "bob"), "\n")[0]

	dir := e2eDir(t)
	passFile, wrongFile, weakFile := filepath.Join(dir, "pass"), filepath.Join(dir, "wrong"), filepath.Join(dir, "weak")
	for f, s := range map[string]string{passFile: "a long enough passphrase\n", wrongFile: "another passphrase\n", weakFile: "short\n"} {
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	backup := filepath.Join(dir, "alice.pem")
	if r := e2eRun(t, qpctl, p.aliceSock, "identity", "export", "--out", backup, "--passphrase-file", weakFile); r.code != 1 || !strings.Contains(r.stderr, "passphrase too short") {
		t.Fatalf("weak passphrase: %+v", r)
	}
	if out := must(p.aliceSock, "identity", "export", "--out", backup, "--passphrase-file", passFile); !strings.Contains(out, p.aliceKey) {
		t.Fatalf("export: %q", out)
	}
	if st, err := os.Stat(backup); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v", st, err)
	}
	if r := e2eRun(t, qpctl, p.aliceSock, "identity", "export", "--out", backup, "--passphrase-file", passFile); r.code != 1 || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("export over an existing file: %+v", r)
	}
	bobBackup := filepath.Join(dir, "bob.pem")
	must(p.bobSock, "identity", "export", "--out", bobBackup, "--passphrase-file", passFile)

	// Alice's machine is gone.
	p.aliceD.stop(t)
	fresh := filepath.Join(dir, "new")
	if err := os.Mkdir(fresh, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(fresh, "qpd.sock")
	state := filepath.Join(fresh, "state")
	out, err := exec.Command(p.qpd, "--state-dir", state, "--socket", sock, "--server", p.node.Addr,
		"--restore", backup, "--passphrase-file", wrongFile).CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "wrong passphrase") {
		t.Fatalf("restore with a wrong passphrase: exit %d\n%s", code, out)
	}

	d := e2eStartQPD(t, p.qpd, fresh, sock, "--server", p.node.Addr, "--restore", backup, "--passphrase-file", passFile)
	if got := strings.TrimSpace(must(sock, "whoami")); got != p.aliceKey {
		t.Fatalf("restored identity %s, want %s", got, p.aliceKey)
	}
	must(sock, "add-contact", p.bobKey, "--name", "bob")
	after := strings.Split(must(sock, "safety-number", "bob"), "\n")[0]
	must(p.bobSock, "add-contact", p.aliceKey, "--name", "alice")
	bobSide := strings.Split(must(p.bobSock, "safety-number", "alice"), "\n")[0]
	if after != before || bobSide != before || len(before) != 71 {
		t.Fatalf("safety numbers before %q, after restore %q, bob's %q", before, after, bobSide)
	}
	if out := must(sock, "--json", "status"); !strings.Contains(out, p.aliceKey) {
		t.Fatalf("status: %s", out)
	}

	// Restarting with the same --restore is harmless; bob's backup over
	// alice's identity is refused.
	d.stop(t)
	d = e2eStartQPD(t, p.qpd, fresh, sock, "--server", p.node.Addr, "--restore", backup, "--passphrase-file", passFile)
	d.stop(t)
	out, err = exec.Command(p.qpd, "--state-dir", state, "--socket", sock, "--server", p.node.Addr,
		"--restore", bobBackup, "--passphrase-file", passFile).CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "already has another identity") {
		t.Fatalf("restore over another identity: exit %d\n%s", code, out)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
