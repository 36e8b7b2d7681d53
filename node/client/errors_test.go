package client

import (
	"errors"
	"strings"
	"testing"

	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

func TestParseNodeError(t *testing.T) {
	for code, sentinel := range codeSentinels {
		text := "delivery/delivery.capnp:DeliveryService.enqueue: qpq:" + code.String() + ": something: detail"
		err := callError("op", errors.New(text))
		if !errors.Is(err, sentinel) {
			t.Fatalf("%s: %v does not match its sentinel", code, err)
		}
		var ne *NodeError
		if !errors.As(err, &ne) || ne.Code != code || ne.Message != "something: detail" {
			t.Fatalf("%s: parsed %+v", code, ne)
		}
	}
	for _, text := range []string{"rpc: connection closed", "qpq:", "qpq:nosuchcode: x", "qpq:unauthorized"} {
		err := callError("op", errors.New(text))
		var ne *NodeError
		if errors.As(err, &ne) {
			t.Fatalf("%q parsed as a node error: %+v", text, ne)
		}
	}
	if ne, ok := parseNodeError("qpq:unknown: ?"); !ok || ne.Code != nodecp.ErrorCode_unknown || errors.Unwrap(ne) != nil {
		t.Fatalf("unknown code: %+v %v", ne, ok)
	}
}

func FuzzParseNodeError(f *testing.F) {
	f.Add("qpq:unauthorized: connection is authenticated as aa, not bb")
	f.Add("x: qpq:tooLarge: payload has 2 bytes, limit 1")
	f.Add("qpq:")
	f.Add("qpq:limit:")
	f.Fuzz(func(t *testing.T, text string) {
		ne, ok := parseNodeError(text)
		if !ok {
			return
		}
		if !strings.Contains(text, "qpq:"+ne.Code.String()+": "+ne.Message) {
			t.Fatalf("parsed %+v from %q", ne, text)
		}
	})
}
