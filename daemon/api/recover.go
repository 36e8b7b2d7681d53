package api

import (
	"context"
	"github.com/quicproquo/quicproquo/internal/panicstack"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// recoverUnary turns a panic in a call into codes.Internal for that call, so
// one bad request (or a bug reached by one) never ends the daemon. The log
// names the method and the stack, never the request.
func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in call", "method", info.FullMethod, "stack", panicstack.Where())
				resp, err = nil, status.Error(codes.Internal, "internal error in "+info.FullMethod+"; qpd keeps serving")
			}
		}()
		return handler(ctx, req)
	}
}

// recoverStream is recoverUnary for streaming calls.
func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in stream", "method", info.FullMethod, "stack", panicstack.Where())
				err = status.Error(codes.Internal, "internal error in "+info.FullMethod+"; qpd keeps serving")
			}
		}()
		return handler(srv, ss)
	}
}
