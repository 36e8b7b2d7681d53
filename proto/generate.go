// Package proto holds the gRPC API of qpd (qpq/daemon/v1) and its generated
// Go code. Regenerate with `go generate ./proto` after editing a .proto file;
// it needs protoc (Debian: protobuf-compiler) and the two Go plugins:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
package proto

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative qpq/daemon/v1/daemon.proto
