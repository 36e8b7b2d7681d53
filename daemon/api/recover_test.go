package api

import (
	"context"
	"log/slog"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRecoverInterceptors(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	boom := func(context.Context, any) (any, error) { panic("boom") }
	_, err := recoverUnary(log)(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x/Y"}, boom)
	if status.Code(err) != codes.Internal {
		t.Fatalf("unary panic gave %v, want Internal", err)
	}
	ok := func(context.Context, any) (any, error) { return "fine", nil }
	if resp, err := recoverUnary(log)(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x/Y"}, ok); err != nil || resp != "fine" {
		t.Fatalf("unary pass-through: %v %v", resp, err)
	}
	sboom := func(any, grpc.ServerStream) error { panic("boom") }
	if err := recoverStream(log)(nil, nil, &grpc.StreamServerInfo{FullMethod: "/x/Z"}, sboom); status.Code(err) != codes.Internal {
		t.Fatalf("stream panic gave %v, want Internal", err)
	}
}
