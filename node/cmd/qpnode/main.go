// Command qpnode is the quicproquo node: a QUIC endpoint serving the
// NodeService (KeyPackage directory and message queues) from a SQLite
// database in its data directory, or from a PostgreSQL database that
// several nodes share (--postgres).
//
// Usage:
//
//	qpnode [--listen 0.0.0.0:4201] [--data-dir data] [--tls-cert FILE] [--tls-key FILE]
//	       [--postgres CONNSTRING] [--metrics-listen ADDR] [--log-level info] [--ready-file FILE]
//	       [--registration open|token|closed] [--message-ttl 720h] [--disk-budget 10GiB]
//	       [--max-blob-size 1GiB] [--blob-quota 4GiB] [--blob-ttl D] [--s3-endpoint HOST:PORT --s3-bucket B] ...
//	qpnode token create [--uses N] [--expires 7d] [--data-dir DIR | --postgres CONNSTRING]
//
// The second form makes a registration token for a node whose policy is
// token (or open: a token saves the proof of work) and prints it once.
//
//	[--max-conns N] [--max-conns-per-ip N] [--max-conns-per-identity N]
//	[--memory-budget MIB] [--sqlite-cache MIB] [--idle-timeout D] [--frame-timeout D] (and the size and rate limits)
//
// Each flag has an environment variable (QPQ_LISTEN, QPQ_DATA_DIR,
// QPQ_TLS_CERT, QPQ_TLS_KEY, QPQ_POSTGRES, QPQ_METRICS_LISTEN,
// QPQ_LOG_LEVEL); a flag given on the command line wins. With --postgres
// the node keeps no state of its own beyond its TLS files: any number of
// nodes may serve the same users from one database, and a client
// subscribed on one node is pushed what is stored through another (see
// package node/store/postgres). Pass a password through QPQ_POSTGRES,
// PGPASSWORD or ~/.pgpass rather than on the command line, where other
// users can read it. When the certificate and key files are both
// missing, qpnode generates a self-signed pair. It logs "listening" with the
// address it bound, writes that address to --ready-file if given, and shuts
// down gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/quicproquo/quicproquo/internal/transport"
	"github.com/quicproquo/quicproquo/internal/version"
	"github.com/quicproquo/quicproquo/node/server"
	"github.com/quicproquo/quicproquo/node/store"
	"github.com/quicproquo/quicproquo/node/store/postgres"
	"github.com/quicproquo/quicproquo/node/store/s3blob"
	"github.com/quicproquo/quicproquo/node/store/sqlite"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "token" {
		if err := runToken(context.Background(), os.Args[2:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "qpnode:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "qpnode:", err)
		os.Exit(1)
	}
}

type options struct {
	listen, dataDir, tlsCert, tlsKey, metricsListen, logLevel, readyFile string
	postgres                                                             string
	maxPayload, maxQueueDepth, maxKeyPackages                            int
	rateLimit                                                            float64
	rateBurst, maxConnsPerIP                                             int

	registration, diskBudget      string
	powBits, groupReserve         int
	strangerMsgs, lowWater        int
	maxRevokedDevices             int
	strangerBytes                 int64
	messageTTL                    time.Duration
	diskBudgetBytes               int64
	maxConns, maxConnsPerIdentity int
	memoryBudgetMiB               int64
	sqliteCacheMiB                int
	idleTimeout, frameTimeout     time.Duration
	requirePQTLS                  bool

	// Blobs (attachments' ciphertext).
	maxBlobSize, blobQuota         string
	maxBlobBytes, blobQuotaBytes   int64
	blobTTL                        time.Duration
	s3Endpoint, s3Bucket, s3Prefix string
	s3Region                       string
	s3Insecure                     bool
}

// softMemoryHeadroom is the Go runtime's soft memory limit over the RPC
// memory budget (GOMEMLIMIT, when set, replaces it).
const softMemoryHeadroom = 128 << 20

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// parseFlags reads the options; --help and --version print to stdout and
// return flag.ErrHelp.
func parseFlags(args []string, stdout io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("qpnode", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var showVersion bool
	fs.BoolVar(&showVersion, "version", false, "print the version and exit")
	fs.StringVar(&o.listen, "listen", env("QPQ_LISTEN", "0.0.0.0:4201"), "UDP address to serve QUIC on (env QPQ_LISTEN)")
	fs.StringVar(&o.dataDir, "data-dir", env("QPQ_DATA_DIR", "data"), "directory for the database and the TLS files (env QPQ_DATA_DIR)")
	fs.StringVar(&o.tlsCert, "tls-cert", env("QPQ_TLS_CERT", ""), "node certificate, DER (default <data-dir>/server-cert.der; env QPQ_TLS_CERT)")
	fs.StringVar(&o.tlsKey, "tls-key", env("QPQ_TLS_KEY", ""), "node private key, PKCS #8 DER (default <data-dir>/server-key.der; env QPQ_TLS_KEY)")
	fs.StringVar(&o.postgres, "postgres", env("QPQ_POSTGRES", ""),
		"PostgreSQL connection string (\"host=/run/postgresql dbname=qpnode\" or postgres://user@host/db) to keep the state in a database "+
			"that several nodes share, with push across them; empty: SQLite in <data-dir>/node.db (env QPQ_POSTGRES, the place for a password)")
	fs.StringVar(&o.metricsListen, "metrics-listen", env("QPQ_METRICS_LISTEN", ""), "TCP address for Prometheus /metrics; empty: off (env QPQ_METRICS_LISTEN)")
	fs.StringVar(&o.logLevel, "log-level", env("QPQ_LOG_LEVEL", "info"), "debug, info, warn or error (env QPQ_LOG_LEVEL)")
	fs.StringVar(&o.readyFile, "ready-file", "", "write the bound address to this file once serving")
	fs.IntVar(&o.maxPayload, "max-payload", server.DefaultMaxPayloadSize, "largest payload in bytes")
	fs.IntVar(&o.maxQueueDepth, "max-queue-depth", 0, "messages per queue (0: store default)")
	fs.IntVar(&o.maxKeyPackages, "max-key-packages", 0, "KeyPackages per identity (0: store default)")
	fs.Float64Var(&o.rateLimit, "rate-limit", server.DefaultRateLimit, "sustained requests per second per identity")
	fs.IntVar(&o.rateBurst, "rate-burst", server.DefaultRateBurst, "request burst per identity")
	fs.IntVar(&o.maxConnsPerIP, "max-conns-per-ip", server.DefaultMaxConnsPerIP, "open connections from one IP address")
	fs.StringVar(&o.registration, "registration", env("QPQ_REGISTRATION", "open"),
		"who may register: open (anyone, at a proof of work), token (only with a token from qpnode token create) or closed (env QPQ_REGISTRATION)")
	fs.IntVar(&o.powBits, "registration-pow-bits", server.DefaultPowDifficulty, "proof of work of an open registration, in bits (each doubles it)")
	fs.DurationVar(&o.messageTTL, "message-ttl", server.DefaultMessageTTL, "delete queued messages older than this, delivered or not")
	fs.StringVar(&o.diskBudget, "disk-budget", env("QPQ_DISK_BUDGET", "10GiB"), "disk the store may take (a tenth kept for group traffic); 0: no budget (env QPQ_DISK_BUDGET)")
	fs.IntVar(&o.groupReserve, "group-reserve", store.DefaultGroupReserve, "messages of each queue kept for group traffic")
	fs.IntVar(&o.strangerMsgs, "max-stranger-messages", store.DefaultMaxStrangerMessages, "direct messages all senders outside a user's groups together may leave in that user's queue")
	fs.Int64Var(&o.strangerBytes, "max-stranger-bytes", store.DefaultMaxStrangerBytes, "payload bytes of those messages")
	fs.IntVar(&o.maxRevokedDevices, "max-revoked-devices", server.DefaultMaxRevokedDevices, "devices one user's device lists may revoke (each revocation is kept for ever)")
	fs.IntVar(&o.lowWater, "key-package-low-water", server.DefaultLowWater, "notify an identity left with this many KeyPackages or fewer")
	fs.IntVar(&o.maxConns, "max-conns", server.DefaultMaxConns, "open connections in all")
	fs.IntVar(&o.maxConnsPerIdentity, "max-conns-per-identity", server.DefaultMaxConnsPerID, "open connections of one identity (its oldest is closed for a new one)")
	fs.Int64Var(&o.memoryBudgetMiB, "memory-budget", server.DefaultMemoryBudget>>20, "MiB of RPC messages all connections may hold together")
	fs.IntVar(&o.sqliteCacheMiB, "sqlite-cache", sqlite.DefaultWriterCacheMiB, "MiB of page cache for the SQLite writer (resident memory about twice this, outside --memory-budget); larger speeds up fan-out to large groups")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", server.DefaultIdleTimeout, "close a connection with no subscription after this long without a message")
	fs.DurationVar(&o.frameTimeout, "frame-timeout", server.DefaultFrameTimeout, "time to receive an RPC message once it started, and to send one")
	fs.BoolVar(&o.requirePQTLS, "require-pq-tls", env("QPQ_REQUIRE_PQ_TLS", "") == "1",
		"refuse clients without the hybrid post-quantum TLS key exchange X25519MLKEM768 (env QPQ_REQUIRE_PQ_TLS=1)")
	fs.StringVar(&o.maxBlobSize, "max-blob-size", "1GiB", "largest attachment (blob) in bytes")
	fs.StringVar(&o.blobQuota, "blob-quota", "4GiB", "live attachment bytes of one uploader; 0: no quota (all of them are bounded by --disk-budget)")
	fs.DurationVar(&o.blobTTL, "blob-ttl", 0, "delete attachments older than this (0: --message-ttl)")
	fs.StringVar(&o.s3Endpoint, "s3-endpoint", env("QPQ_S3_ENDPOINT", ""),
		"host:port of an S3-compatible object store for the attachments' chunks instead of the node's database; "+
			"credentials from QPQ_S3_ACCESS_KEY and QPQ_S3_SECRET_KEY (env QPQ_S3_ENDPOINT)")
	fs.StringVar(&o.s3Bucket, "s3-bucket", env("QPQ_S3_BUCKET", ""), "the object store's bucket, which must exist (env QPQ_S3_BUCKET)")
	fs.StringVar(&o.s3Prefix, "s3-prefix", env("QPQ_S3_PREFIX", "qpq-blobs/"), "prefix of the objects' names (env QPQ_S3_PREFIX)")
	fs.StringVar(&o.s3Region, "s3-region", env("QPQ_S3_REGION", ""), "the object store's region (env QPQ_S3_REGION)")
	fs.BoolVar(&o.s3Insecure, "s3-insecure", env("QPQ_S3_INSECURE", "") == "1", "plain HTTP to the object store, for one on loopback (env QPQ_S3_INSECURE=1)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, "Usage: qpnode [flags]\n\nqpnode is the quicproquo node: it keeps the KeyPackage directory and the\nmessage queues, and serves them over QUIC.\n\nFlags:\n")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil, err
		}
		return nil, fmt.Errorf("%w (see qpnode --help)", err)
	}
	if _, err := server.ParsePolicy(o.registration); err != nil {
		return nil, fmt.Errorf("--registration: %w", err)
	}
	budget, err := parseBytes(o.diskBudget)
	if err != nil {
		return nil, fmt.Errorf("--disk-budget: %w", err)
	}
	o.diskBudgetBytes = budget
	if o.maxBlobBytes, err = parseBytes(o.maxBlobSize); err != nil || o.maxBlobBytes <= 0 {
		return nil, fmt.Errorf("--max-blob-size %q: want a positive size", o.maxBlobSize)
	}
	if o.blobQuotaBytes, err = parseBytes(o.blobQuota); err != nil {
		return nil, fmt.Errorf("--blob-quota: %w", err)
	}
	if (o.s3Endpoint == "") != (o.s3Bucket == "") {
		return nil, errors.New("--s3-endpoint and --s3-bucket go together")
	}
	if o.maxRevokedDevices < 1 {
		return nil, fmt.Errorf("--max-revoked-devices %d: want at least 1", o.maxRevokedDevices)
	}
	if o.powBits < 0 || o.powBits > 32 {
		return nil, fmt.Errorf("--registration-pow-bits %d: want 0 to 32", o.powBits)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if showVersion {
		fmt.Fprintln(stdout, "qpnode", version.String())
		return nil, flag.ErrHelp
	}
	if o.tlsCert == "" {
		o.tlsCert = filepath.Join(o.dataDir, "server-cert.der")
	}
	if o.tlsKey == "" {
		o.tlsKey = filepath.Join(o.dataDir, "server-key.der")
	}
	return o, nil
}

// powBits maps --registration-pow-bits onto Config.PowDifficulty (where
// 0 means the default and a negative value none).
func powBits(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// diskBudget maps --disk-budget onto Config.DiskBudget (0: none).
func diskBudget(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// openBlobChunks opens the object store of --s3-endpoint, or returns nil
// (the chunks stay in the node's store).
func openBlobChunks(ctx context.Context, o *options, log *slog.Logger) (store.BlobChunks, error) {
	if o.s3Endpoint == "" {
		return nil, nil
	}
	s, err := s3blob.Open(ctx, s3blob.Config{Endpoint: o.s3Endpoint, Bucket: o.s3Bucket, Prefix: o.s3Prefix, Region: o.s3Region,
		AccessKey: os.Getenv("QPQ_S3_ACCESS_KEY"), SecretKey: os.Getenv("QPQ_S3_SECRET_KEY"), Insecure: o.s3Insecure}, log)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// openStore opens the PostgreSQL store when --postgres is set, else the
// SQLite database in the data directory.
func openStore(ctx context.Context, o *options, log *slog.Logger) (store.Store, error) {
	limits := store.Limits{MaxKeyPackages: o.maxKeyPackages, MaxQueueDepth: o.maxQueueDepth,
		GroupReserve: o.groupReserve, MaxStrangerMessages: o.strangerMsgs, MaxStrangerBytes: o.strangerBytes}
	if o.postgres != "" {
		st, err := postgres.Open(ctx, o.postgres, limits, log)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	st, err := sqlite.OpenOptions(ctx, filepath.Join(o.dataDir, "node.db"), limits, sqlite.Options{WriterCacheMiB: o.sqliteCacheMiB}, log)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// logCert logs a certificate's fingerprint, its key's fingerprint (what
// clients pin) and its end of validity.
func logCert(log *slog.Logger, msg string, cert tls.Certificate) {
	fp := transport.CertFingerprint(cert.Certificate[0])
	kfp, _ := transport.KeyFingerprint(cert.Certificate[0])
	log.Info(msg, "sha256", fmt.Sprintf("%x", fp), "key_sha256", fmt.Sprintf("%x", kfp), "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stdout)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log, err := newLogger(o.logLevel, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	cert, created, err := transport.LoadOrCreateServerCert(o.tlsCert, o.tlsKey)
	if err != nil {
		return err
	}
	if created {
		log.Info("generated node certificate", "cert", o.tlsCert, "key", o.tlsKey)
	} else if transport.RenewalDue(cert, time.Now()) {
		if cert, err = transport.RenewServerCert(cert, o.tlsCert, transport.CertLifetime); err != nil {
			return err
		}
		log.Info("renewed node certificate with the same key", "cert", o.tlsCert)
	}
	logCert(log, "node certificate", cert)
	certs := transport.NewCertSource(cert, o.tlsCert, func(c tls.Certificate, err error) {
		if err != nil {
			log.Error("renewing the node certificate failed; serving the old one", "err", err)
			return
		}
		logCert(log, "renewed node certificate with the same key", c)
	})

	st, err := openStore(ctx, o, log)
	if err != nil {
		return err
	}
	defer st.Close()

	var metrics *server.Metrics
	if o.metricsListen != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		metrics, err = server.NewMetrics(reg)
		if err != nil {
			return err
		}
		mln, err := net.Listen("tcp", o.metricsListen)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(mln)
		defer hs.Close()
		log.Info("metrics listening", "addr", mln.Addr().String())
	}

	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		// Make the garbage collector work harder before the process
		// passes what its bounds allow, rather than at twice its live
		// heap: the RPC memory budget plus room for everything else.
		debug.SetMemoryLimit(o.memoryBudgetMiB<<20 + softMemoryHeadroom)
	}
	chunks, err := openBlobChunks(ctx, o, log)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		Store:          st,
		Logger:         log,
		MaxPayloadSize: o.maxPayload,
		RateLimit:      rate.Limit(o.rateLimit),
		RateBurst:      o.rateBurst,
		MaxConnsPerIP:  o.maxConnsPerIP,
		Metrics:        metrics,

		Registration:       server.Policy(o.registration),
		PowDifficulty:      powBits(o.powBits),
		MessageTTL:         o.messageTTL,
		DiskBudget:         diskBudget(o.diskBudgetBytes),
		KeyPackageLowWater: o.lowWater,
		MaxRevokedDevices:  o.maxRevokedDevices,

		BlobChunks:     chunks,
		MaxBlobSize:    o.maxBlobBytes,
		BlobTTL:        o.blobTTL,
		BlobOwnerBytes: diskBudget(o.blobQuotaBytes),

		MaxConns:            o.maxConns,
		MaxConnsPerIdentity: o.maxConnsPerIdentity,
		MemoryBudget:        o.memoryBudgetMiB << 20,
		IdleTimeout:         o.idleTimeout,
		FrameTimeout:        o.frameTimeout,
	})
	if err != nil {
		return err
	}
	tlsConf := transport.ServerTLSConfig(cert)
	tlsConf.Certificates, tlsConf.GetCertificate = nil, certs.GetCertificate
	if o.requirePQTLS {
		transport.RequireHybridKeyExchange(tlsConf, log)
	}
	resetKey, err := server.StatelessResetKey(cert.PrivateKey)
	if err != nil {
		return err
	}
	ln, udp, err := server.ListenReset(o.listen, tlsConf, resetKey)
	if err != nil {
		return err
	}
	defer udp.Close()
	defer ln.Close()
	addr := ln.Addr().String()
	log.Info("listening", "addr", addr, "alpn", transport.ALPN, "require_pq_tls", o.requirePQTLS)
	if o.readyFile != "" {
		if err := os.WriteFile(o.readyFile, []byte(addr+"\n"), 0o600); err != nil {
			return fmt.Errorf("ready file: %w", err)
		}
	}
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	log.Info("shut down")
	return nil
}
