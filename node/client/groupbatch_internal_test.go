package client

import (
	"context"
	"errors"
	"testing"

	"capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/server"

	"github.com/quicproquo/quicproquo/schemas/group"
	nodecp "github.com/quicproquo/quicproquo/schemas/node"
)

// A node from before fanOutBatch (its method table without it) answers
// FanOutBatch with ErrUnimplemented, a failure of the whole call.
func TestFanOutBatchUnimplemented(t *testing.T) {
	var methods []server.Method
	for _, m := range nodecp.NodeService_Methods(nil, struct{ nodecp.NodeService_Server }{}) {
		if m.InterfaceID == group.GroupService_TypeID && m.MethodName == "fanOutBatch" {
			continue
		}
		methods = append(methods, m)
	}
	if len(methods) == len(nodecp.NodeService_Methods(nil, nil)) {
		t.Fatal("the method table has no fanOutBatch")
	}
	old := nodecp.NodeService(capnp.NewClient(server.New(methods, nil, nil)))
	defer old.Release()
	c := &Client{node: old, closing: make(chan struct{})}
	res, refused, err := c.FanOutBatch(context.Background(), []GroupMessage{{Message: []byte("m")}})
	if !errors.Is(err, ErrUnimplemented) || res != nil || refused != nil {
		t.Fatalf("FanOutBatch to an old node = %v, %v, %v; want ErrUnimplemented", res, refused, err)
	}
}
