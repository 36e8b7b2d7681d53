package main

import (
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quicproquo/quicproquo/internal/testnode"
)

type e2eStatus struct {
	Identity string `json:"identity"`
	Node     struct {
		State            string `json:"state"`
		PinnedCertSHA256 string `json:"pinned_cert_sha256"`
	} `json:"node"`
	KeyPackagesLeft   *int `json:"key_packages_left"`
	KeyPackageSecrets int  `json:"key_package_secrets"`
}

func e2eStatusOf(t *testing.T, qpctl, socket string) e2eStatus {
	t.Helper()
	r := e2eRun(t, qpctl, socket, "status", "--json")
	var st e2eStatus
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		t.Fatalf("status: %+v", r)
	}
	return st
}

func e2eWaitKeyPackages(t *testing.T, qpctl, socket string, want int) e2eStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := e2eStatusOf(t, qpctl, socket)
		if st.Node.State == "connected" && st.KeyPackagesLeft != nil && *st.KeyPackagesLeft == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %d KeyPackages at the node: %+v", want, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// e2eWaitSecrets waits until qpd holds want KeyPackage secrets (its
// uploads to the node for every suite are done).
func e2eWaitSecrets(t *testing.T, qpctl, socket string, want int) e2eStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := e2eStatusOf(t, qpctl, socket)
		if st.KeyPackageSecrets == want || time.Now().After(deadline) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two qpd processes against a node: both register and publish
// KeyPackages, one pinning the node on first use and one given its
// certificate; one fetches the other's KeyPackage.
func TestE2ETwoDaemonsAndANode(t *testing.T) {
	qpd, qpctl := e2eBuild(t)
	node := testnode.StartNode(t, t.TempDir(), "127.0.0.1:0")
	dir := e2eDir(t)
	certPEM := filepath.Join(dir, "node.pem")
	if err := os.WriteFile(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: node.CertDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	aliceDir, bobDir := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	aliceSock, bobSock := filepath.Join(aliceDir, "qpd.sock"), filepath.Join(bobDir, "qpd.sock")
	for _, d := range []string{aliceDir, bobDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	aliceD := e2eStartQPD(t, qpd, aliceDir, aliceSock, "--server", node.Addr)
	e2eStartQPD(t, qpd, bobDir, bobSock, "--server", node.Addr, "--server-cert", certPEM)

	r := e2eRun(t, qpctl, aliceSock, "ping")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "pong from "+node.Addr) {
		t.Fatalf("ping: %+v", r)
	}
	alice := strings.TrimSpace(e2eRun(t, qpctl, aliceSock, "register").stdout)
	bob := strings.TrimSpace(e2eRun(t, qpctl, bobSock, "register").stdout)
	if !hex64.MatchString(alice) || !hex64.MatchString(bob) || alice == bob {
		t.Fatalf("identities %q %q", alice, bob)
	}
	e2eWaitKeyPackages(t, qpctl, aliceSock, 10)
	st := e2eWaitSecrets(t, qpctl, aliceSock, 22)
	if st.KeyPackageSecrets != 22 || st.Node.PinnedCertSHA256 == "" {
		t.Errorf("alice: %+v, want 22 secrets (10 + last resort in suite 1 and in X-Wing) and a pinned node", st)
	}
	e2eWaitKeyPackages(t, qpctl, bobSock, 10)

	r = e2eRun(t, qpctl, bobSock, "--json", "fetch-key", alice)
	var kp struct {
		Valid              bool   `json:"valid"`
		Problem            string `json:"problem"`
		CredentialIdentity string `json:"credential_identity"`
		CipherSuite        int    `json:"cipher_suite"`
		LastResort         bool   `json:"last_resort"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &kp) != nil {
		t.Fatalf("fetch-key: %+v", r)
	}
	if !kp.Valid || kp.CredentialIdentity != alice || kp.CipherSuite != 1 || kp.LastResort {
		t.Fatalf("fetched KeyPackage: %+v", kp)
	}
	// Consumed: alice has one fewer at the node.
	e2eWaitKeyPackages(t, qpctl, aliceSock, 9)

	r = e2eRun(t, qpctl, bobSock, "fetch-key", strings.Repeat("ab", 33))
	if r.code != 1 || !strings.Contains(r.stderr, "invalid argument") {
		t.Fatalf("fetch-key of a bad key: %+v", r)
	}

	// SIGKILL: the restarted daemon replaces the stale socket, keeps its
	// identity and every KeyPackage secret, and tops the node up again.
	if err := aliceD.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-aliceD.done
	if _, err := os.Stat(aliceSock); err != nil {
		t.Fatalf("a killed qpd leaves its socket behind: %v", err)
	}
	if r := e2eRun(t, qpctl, aliceSock, "status"); r.code != 3 {
		t.Fatalf("status with a stale socket: %+v", r)
	}
	e2eStartQPD(t, qpd, aliceDir, aliceSock, "--server", node.Addr)
	if r := e2eRun(t, qpctl, aliceSock, "whoami"); strings.TrimSpace(r.stdout) != alice {
		t.Fatalf("whoami after SIGKILL: %+v", r)
	}
	e2eWaitKeyPackages(t, qpctl, aliceSock, 10)
	if st = e2eWaitSecrets(t, qpctl, aliceSock, 23); st.KeyPackageSecrets != 23 {
		t.Errorf("secrets after restart = %d, want 23 (22 kept, 1 new)", st.KeyPackageSecrets)
	}
}
