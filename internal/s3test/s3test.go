// Package s3test runs a real S3-compatible server for tests: SeaweedFS's
// `weed server -s3`, one per test binary, on loopback ports of its own and
// a temporary folder, so that code written against S3 is tested against a
// real object store, not a stand-in.
//
// # Use
//
//	func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) } // or call s3test.Stop after the tests
//
//	endpoint := s3test.Endpoint(t) // host:port of the S3 gateway (plain HTTP, anonymous access)
//	bucket := s3test.Bucket(t)     // a new, empty bucket on it
//
// # Requirements
//
// The weed binary: the file named by QPQ_WEED, or weed on PATH. It is
// built from the Go module github.com/seaweedfs/seaweedfs (scripts/weed.sh
// builds it; .ci/run does so and sets QPQ_WEED). Without it the tests
// that need S3 are skipped with a message saying so, unless
// QPQ_S3_REQUIRED=1, when they fail.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	mu       sync.Mutex
	started  bool
	endpoint string
	startErr error
	proc     *exec.Cmd
	dir      string
)

// Run runs the tests, then stops the server if one was started.
func Run(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the server if one was started (for a TestMain that also
// runs another harness's Run).
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if proc != nil {
		_ = proc.Process.Kill()
		_ = proc.Wait()
		_ = os.RemoveAll(dir)
		proc = nil
	}
}

// binary finds weed.
func binary() (string, error) {
	if p := os.Getenv("QPQ_WEED"); p != "" {
		return p, nil
	}
	return exec.LookPath("weed")
}

// Endpoint is the host:port of the S3 gateway, starting the server on
// the first call.
func Endpoint(t testing.TB) string {
	t.Helper()
	bin, err := binary()
	if err != nil {
		if os.Getenv("QPQ_S3_REQUIRED") == "1" {
			t.Fatalf("s3test: no weed binary (set QPQ_WEED or put weed on PATH; scripts/weed.sh builds it): %v", err)
		}
		t.Skip("s3test: no weed binary (set QPQ_WEED or put weed on PATH; scripts/weed.sh builds it)")
	}
	mu.Lock()
	defer mu.Unlock()
	if !started {
		started = true
		endpoint, startErr = start(bin)
	}
	if startErr != nil {
		t.Fatalf("s3test: %v", startErr)
	}
	return endpoint
}

// freePorts picks n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func start(bin string) (string, error) {
	var err error
	if dir, err = os.MkdirTemp("", "qpq-s3test-"); err != nil {
		return "", err
	}
	p, err := freePorts(7)
	if err != nil {
		return "", err
	}
	port := func(i int) string { return strconv.Itoa(p[i]) }
	proc = exec.Command(bin, "server", "-dir="+dir, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port="+port(0), "-master.port.grpc="+port(1), "-volume.port="+port(2), "-volume.port.grpc="+port(3),
		"-filer", "-filer.port="+port(4), "-filer.port.grpc="+port(5), "-s3", "-s3.port="+port(6),
		"-master.volumeSizeLimitMB=64", "-volume.max=64")
	log, err := os.Create(filepath.Join(dir, "weed.log"))
	if err != nil {
		return "", err
	}
	proc.Stdout, proc.Stderr = log, log
	// The kernel stops the server if the test binary dies first.
	proc.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := proc.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	ep := "127.0.0.1:" + port(6)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Ready once the gateway creates a bucket.
	probe := "http://" + ep + "/qpq-s3test-ready"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, probe, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusConflict {
				return ep, nil
			}
		}
		select {
		case <-ctx.Done():
			b, _ := os.ReadFile(filepath.Join(dir, "weed.log"))
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			return "", fmt.Errorf("weed server did not serve S3 within a minute; its log ends:\n%s", b)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Bucket creates a new, empty bucket and returns its name.
func Bucket(t testing.TB) string {
	t.Helper()
	ep := Endpoint(t)
	b := make([]byte, 6)
	rand.Read(b)
	name := "qpq-" + hex.EncodeToString(b)
	req, _ := http.NewRequest(http.MethodPut, "http://"+ep+"/"+name, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("s3test: create bucket: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("s3test: create bucket: %s", resp.Status)
	}
	return name
}
