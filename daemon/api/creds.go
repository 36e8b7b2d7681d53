package api

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/quicproquo/quicproquo/internal/peercred"
)

// PeerAuthInfo is the AuthInfo of a connection on the daemon socket: the
// peer's credentials as the kernel reports them.
type PeerAuthInfo struct {
	credentials.CommonAuthInfo
	Cred peercred.Cred
}

// AuthType implements credentials.AuthInfo.
func (PeerAuthInfo) AuthType() string { return "peercred" }

// peerCreds is server-side transport credentials that read SO_PEERCRED.
// The socket is local, so there is nothing to encrypt.
type peerCreds struct{}

func (peerCreds) ClientHandshake(ctx context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, fmt.Errorf("peercred: client handshake not supported")
}

func (peerCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	cred, err := peercred.FromConn(conn)
	if err != nil {
		return nil, nil, err
	}
	return conn, PeerAuthInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}, Cred: cred}, nil
}

func (peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

func (c peerCreds) Clone() credentials.TransportCredentials { return c }

func (peerCreds) OverrideServerName(string) error { return nil }

// uidGuard refuses calls from any uid but allowed.
type uidGuard struct{ allowed uint32 }

func (g uidGuard) check(ctx context.Context) error {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.PermissionDenied, "qpd: no peer information for this connection")
	}
	info, ok := p.AuthInfo.(PeerAuthInfo)
	if !ok {
		return status.Error(codes.PermissionDenied, "qpd: connection has no peer credentials")
	}
	if info.Cred.UID != g.allowed {
		return status.Errorf(codes.PermissionDenied,
			"qpd: permission denied: this daemon serves only uid %d, and the caller is uid %d (pid %d); each user runs their own qpd",
			g.allowed, info.Cred.UID, info.Cred.PID)
	}
	return nil
}

func (g uidGuard) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := g.check(ctx); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (g uidGuard) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := g.check(ss.Context()); err != nil {
		return err
	}
	return h(srv, ss)
}
