package s3blob_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/quicproquo/quicproquo/internal/s3test"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/s3blob"
	"github.com/quicproquo/quicproquo/node/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }

// The chunk half of the store's conformance suite, on a real S3 server.
func TestConformance(t *testing.T) {
	s, err := s3blob.Open(context.Background(), s3blob.Config{Endpoint: s3test.Endpoint(t), Bucket: s3test.Bucket(t), Prefix: "blobs/", Insecure: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunBlobChunks(t, s)
}

func TestOpenRefusesMissingBucket(t *testing.T) {
	_, err := s3blob.Open(context.Background(), s3blob.Config{Endpoint: s3test.Endpoint(t), Bucket: "qpq-no-such-bucket", Insecure: true}, nil)
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Open of a missing bucket: %v", err)
	}
}
