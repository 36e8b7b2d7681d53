package panicstack

import (
	"strings"
	"testing"
)

func panicsWith(secret int) { panic(secret) }

func TestWhereNamesFramesWithoutArguments(t *testing.T) {
	var got string
	func() {
		defer func() {
			if recover() != nil {
				got = Where()
			}
		}()
		panicsWith(0x5ec2e7)
	}()
	if !strings.Contains(got, "panicsWith") || !strings.Contains(got, "panicstack_test.go:") {
		t.Fatalf("stack does not name the panicking function and file:\n%s", got)
	}
	if strings.Contains(got, "0x5ec2e7") || strings.Contains(strings.ToLower(got), "5ec2e7") {
		t.Fatalf("stack holds an argument value:\n%s", got)
	}
}
