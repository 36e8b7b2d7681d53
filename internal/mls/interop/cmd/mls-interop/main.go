// Command mls-interop serves the MLSClient interop gRPC service on top of
// quicproquo's MLS implementation, so that the MLS working group's interop
// test runner (or any other MLSClient driver) can test it against other
// implementations.
//
//	mls-interop --port 50051
//
// The service listens without TLS, on loopback unless --host says otherwise:
// it hands out private keys on request and is meant for test rigs only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"google.golang.org/grpc"

	"github.com/quicproquo/quicproquo/internal/mls/interop"
	pb "github.com/quicproquo/quicproquo/internal/mls/interop/mlsclientpb"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mls-interop:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mls-interop", flag.ContinueOnError)
	port := fs.Int("port", 50051, "TCP port to listen on (0 picks a free one)")
	host := fs.String("host", "127.0.0.1", "address to listen on")
	verbose := fs.Bool("v", false, "log every call")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("--port %d out of range", *port)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	lis, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	pb.RegisterMLSClientServer(srv, interop.NewServer(log))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.GracefulStop()
	}()
	// The test harness reads this line to learn the port.
	fmt.Printf("listening on %s\n", lis.Addr())
	log.Info("MLSClient interop service up", "addr", lis.Addr().String())
	if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}
