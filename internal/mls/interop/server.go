package interop

import (
	"context"
	"log/slog"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quicproquo/quicproquo/internal/mls"
	pb "github.com/quicproquo/quicproquo/internal/mls/interop/mlsclientpb"
)

// Name is what the server answers to the Name call.
const Name = "quicproquo"

// Server implements the MLSClient service over our MLS package. Group
// states, pending joins and stored PSKs live in memory under the numeric
// handles the service hands out; nothing is persisted.
type Server struct {
	pb.UnimplementedMLSClientServer

	log *slog.Logger

	mu     sync.Mutex
	nextID uint32
	states map[uint32]*memberState
}

// memberState is one group state handed out under a state_id.
type memberState struct{}

// NewServer returns an empty Server. log receives one debug line per call
// and never any secret.
func NewServer(log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{log: log, states: map[uint32]*memberState{}}
}

// Name answers with the implementation name.
func (s *Server) Name(context.Context, *pb.NameRequest) (*pb.NameResponse, error) {
	return &pb.NameResponse{Name: Name}, nil
}

// SupportedCiphersuites lists the suites our MLS package implements.
func (s *Server) SupportedCiphersuites(context.Context, *pb.SupportedCiphersuitesRequest) (*pb.SupportedCiphersuitesResponse, error) {
	var out []uint32
	for _, cs := range mls.SupportedSuites() {
		out = append(out, uint32(cs))
	}
	return &pb.SupportedCiphersuitesResponse{Ciphersuites: out}, nil
}

// Free forgets a group state.
func (s *Server) Free(_ context.Context, req *pb.FreeRequest) (*pb.FreeResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.states[req.StateId]; !ok {
		return nil, status.Errorf(codes.NotFound, "no state %d", req.StateId)
	}
	delete(s.states, req.StateId)
	return &pb.FreeResponse{}, nil
}
