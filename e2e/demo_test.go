package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The README's demo runs to the end: three people talk through a node.
func TestDemoScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("bash is needed for scripts/demo.sh: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "../scripts/demo.sh")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo.sh: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"Hello both, welcome to friends!", "Carol here, hello!", "Just us two now.", "demo finished"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
}
