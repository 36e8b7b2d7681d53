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

// lyingBatchNode answers fanOutBatch with results results and refusal.
type lyingBatchNode struct {
	nodecp.NodeService_Server
	results int
	refusal string
}

func (n lyingBatchNode) FanOutBatch(_ context.Context, call group.GroupService_fanOutBatch) error {
	out, err := call.AllocResults()
	if err != nil {
		return err
	}
	rl, err := out.NewResults(int32(n.results))
	if err != nil {
		return err
	}
	for i := range n.results {
		rl.At(i).SetGroupSeq(uint64(i + 1))
	}
	return out.SetRefusal(n.refusal)
}

// A node whose answer does not fit the batch (more results than messages,
// too few without a refusal, a refusal after answering every message, a
// refusal without a code) fails the call as a whole: nothing it said is
// taken as stored.
func TestFanOutBatchLyingNode(t *testing.T) {
	msgs := []GroupMessage{{Message: []byte("a")}, {Message: []byte("b")}}
	for _, tc := range []struct {
		name string
		node lyingBatchNode
	}{
		{"more results than messages", lyingBatchNode{results: 3}},
		{"too few results, no refusal", lyingBatchNode{results: 1}},
		{"refusal after every message", lyingBatchNode{results: 2, refusal: "qpq:limit: no"}},
		{"refusal without a code", lyingBatchNode{results: 1, refusal: "just no"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := nodecp.NodeService_ServerToClient(tc.node)
			defer node.Release()
			c := &Client{node: node, closing: make(chan struct{})}
			res, refused, err := c.FanOutBatch(context.Background(), msgs)
			if err == nil || res != nil || refused != nil {
				t.Fatalf("FanOutBatch = %v, %v, %v; want a failure of the call", res, refused, err)
			}
		})
	}
	// An honest partial answer is taken as it is.
	node := nodecp.NodeService_ServerToClient(lyingBatchNode{results: 1, refusal: "qpq:limit: full"})
	defer node.Release()
	c := &Client{node: node, closing: make(chan struct{})}
	res, refused, err := c.FanOutBatch(context.Background(), msgs)
	if err != nil || len(res) != 1 || !errors.Is(refused, ErrLimit) {
		t.Fatalf("a partial answer = %v, %v, %v", res, refused, err)
	}
}
