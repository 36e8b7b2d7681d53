// Package qpd puts the daemon together: configuration from flags, QPQ_
// environment variables and a TOML file (config.go), the state folder lock, the store, the Backend, the
// gRPC API on its Unix socket, systemd readiness, and graceful shutdown.
// The qpd command is a thin wrapper around Main.
package qpd

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/quicproquo/quicproquo/daemon/api"
	"github.com/quicproquo/quicproquo/daemon/backend"
	"github.com/quicproquo/quicproquo/daemon/client"
	"github.com/quicproquo/quicproquo/daemon/store"
	"github.com/quicproquo/quicproquo/internal/mls"
	"github.com/quicproquo/quicproquo/internal/passphrase"
	"github.com/quicproquo/quicproquo/internal/version"
)

// DefaultServer is the node address used when none is given.
const DefaultServer = "127.0.0.1:4201"

// Config is the daemon's configuration.
type Config struct {
	StateDir   string
	Socket     string
	Server     string
	ServerCert string // file with the node certificate (PEM or DER); empty: trust on first use
	LogLevel   slog.Level
	Repin      bool // forget the pinned node certificate at start
	// SelfUpdateInterval is how often own keys are rotated in every group
	// (0: never).
	SelfUpdateInterval time.Duration
	// ManualJoin keeps invitations until `qpctl join` accepts them.
	ManualJoin bool
	// RequirePQTLS refuses a node without the hybrid post-quantum TLS key
	// exchange X25519MLKEM768.
	RequirePQTLS bool
	// PQGroups makes new groups post-quantum (the X-Wing suite) unless the
	// caller asks otherwise; by default they are in suite 1.
	PQGroups bool
	// NoPQKeyPackages publishes KeyPackages in suite 1 only: others cannot
	// invite this user to post-quantum groups.
	NoPQKeyPackages bool
	// Invitations says whose invitations are taken without asking.
	Invitations backend.InvitePolicy
	// Retention prunes old messages and events (zero: keep).
	Retention backend.Retention
	// NoReceipts sends no delivery or read receipts.
	NoReceipts bool
	// RegistrationToken registers the identity with a node that asks for
	// an operator's token.
	RegistrationToken string
	// Restore is a backup (qpctl identity export) whose identity this
	// state takes at start; PassphraseFile holds its passphrase (else
	// QPQ_PASSPHRASE, else the terminal is asked).
	Restore, PassphraseFile string
	// Link is a code a primary device shows (qpctl link): an empty state
	// becomes a new device of that person at start (link.go); LinkName
	// labels this device.
	Link, LinkName string
}

// DefaultStateDir is $XDG_DATA_HOME/quicproquo, else ~/.local/share/quicproquo.
func DefaultStateDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "quicproquo")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return filepath.Join(".", "quicproquo")
	}
	return filepath.Join(home, ".local", "share", "quicproquo")
}

// errUsage marks a command-line error (exit status 2).
var errUsage = errors.New("usage")

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// ParseFlags reads the configuration from args, with QPQ_ environment
// variables (read through getenv) as defaults. --help and --version print
// to stdout and return flag.ErrHelp; errors are returned, not printed.
func ParseFlags(args []string, getenv func(string) string, stdout io.Writer) (Config, error) {
	fs := flag.NewFlagSet("qpd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg Config
	var level string
	var version bool
	fs.StringVar(&cfg.StateDir, "state-dir", envOr(getenv, "QPQ_STATE_DIR", DefaultStateDir()), "state folder (env QPQ_STATE_DIR)")
	fs.StringVar(&cfg.Socket, "socket", envOr(getenv, "QPQ_SOCKET", client.DefaultSocketPathNoEnv()), "API socket path (env QPQ_SOCKET)")
	fs.StringVar(&cfg.Server, "server", envOr(getenv, "QPQ_SERVER", DefaultServer), "node address host:port (env QPQ_SERVER)")
	fs.StringVar(&cfg.ServerCert, "server-cert", getenv("QPQ_SERVER_CERT"), "node certificate to pin, PEM or DER (env QPQ_SERVER_CERT); default: trust on first use")
	fs.StringVar(&cfg.RegistrationToken, "registration-token", getenv("QPQ_REGISTRATION_TOKEN"), "the node operator's registration token (qpnode token create), for a node that asks for one (env QPQ_REGISTRATION_TOKEN)")
	fs.StringVar(&level, "log-level", envOr(getenv, "QPQ_LOG_LEVEL", "info"), "debug, info, warn or error (env QPQ_LOG_LEVEL)")
	fs.DurationVar(&cfg.SelfUpdateInterval, "self-update-interval", 24*time.Hour, "how often to rotate own keys in every group (0: never)")
	autoJoin := true
	fs.BoolVar(&autoJoin, "auto-join", true, "join a group as soon as a contact's invitation arrives; with --auto-join=false they wait for 'qpctl join'")
	invitations := "contacts"
	fs.StringVar(&invitations, "invitations", "contacts", "whose invitations are taken without asking: contacts (the others wait in 'qpctl requests') or anyone")
	fs.DurationVar(&cfg.Retention.Messages, "keep-messages", 0, "delete messages older than this (0: keep them all)")
	fs.DurationVar(&cfg.Retention.Events, "keep-events", 0, "delete events older than this (0: keep them all)")
	fs.BoolVar(&cfg.NoReceipts, "no-receipts", false, "send no delivery or read receipts (the other members' receipts are still shown)")
	fs.BoolVar(&cfg.RequirePQTLS, "require-pq-tls", getenv("QPQ_REQUIRE_PQ_TLS") == "1",
		"refuse a node without the hybrid post-quantum TLS key exchange X25519MLKEM768 (env QPQ_REQUIRE_PQ_TLS=1)")
	var defaultSuite string
	fs.StringVar(&defaultSuite, "default-suite", envOr(getenv, "QPQ_DEFAULT_SUITE", "classic"),
		"MLS suite of new groups without --pq: classic (suite 1) or pq (X-Wing, post-quantum) (env QPQ_DEFAULT_SUITE)")
	pqKeyPackages := true
	fs.BoolVar(&pqKeyPackages, "pq-key-packages", true, "publish post-quantum (X-Wing) KeyPackages too, so that others can invite you to post-quantum groups")
	fs.BoolVar(&cfg.Repin, "repin", false, "forget the node certificate pinned on first use, and pin the one the node presents next")
	fs.StringVar(&cfg.Restore, "restore", "", "start with the identity of this backup (from 'qpctl identity export'); the state folder must have no other identity")
	fs.StringVar(&cfg.PassphraseFile, "passphrase-file", "", "with --restore: read the backup's passphrase from the first line of this file (else env "+passphrase.Env+", else the terminal)")
	fs.StringVar(&cfg.Link, "link", getenv("QPQ_LINK"), "become a new device of the person whose primary device shows this code ('qpctl link' there); the state folder must have no identity (env QPQ_LINK, which other local users cannot read in the process list)")
	fs.StringVar(&cfg.LinkName, "device-name", "", "with --link: this device's label, shown to the person (default: the host name)")
	fs.BoolVar(&version, "version", false, "print the version and exit")
	defConfig := DefaultConfigPath(getenv)
	configPath := fs.String("config", envOr(getenv, ConfigEnv, defConfig), "TOML configuration file (env "+ConfigEnv+"); flags and environment variables win over it")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "Usage: qpd [flags]\n\nqpd is the per-user quicproquo daemon. It keeps your identity, groups and\nmessages, and serves qpctl on a Unix socket.\n\nFlags:\n")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return Config{}, err
		}
		return Config{}, fmt.Errorf("%w: %w (see qpd --help)", errUsage, err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("%w: unexpected argument %q (see qpd --help)", errUsage, fs.Arg(0))
	}
	if version {
		fmt.Fprintln(stdout, "qpd", Version())
		return Config{}, flag.ErrHelp
	}
	if err := applyConfigFile(fs, *configPath, *configPath != defConfig, getenv); err != nil {
		return Config{}, err
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return Config{}, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, level)
	}
	cfg.ManualJoin = !autoJoin
	cfg.NoPQKeyPackages = !pqKeyPackages
	switch defaultSuite {
	case "classic":
	case "pq":
		if cfg.NoPQKeyPackages {
			return Config{}, fmt.Errorf("%w: --default-suite pq needs post-quantum KeyPackages (--pq-key-packages)", errUsage)
		}
		cfg.PQGroups = true
	default:
		return Config{}, fmt.Errorf("%w: --default-suite is classic or pq, not %q", errUsage, defaultSuite)
	}
	switch invitations {
	case "contacts":
		cfg.Invitations = backend.InviteContacts
	case "anyone":
		cfg.Invitations = backend.InviteAnyone
	default:
		return Config{}, fmt.Errorf("%w: --invitations %q: want contacts or anyone", errUsage, invitations)
	}
	if cfg.Retention.Messages < 0 || cfg.Retention.Events < 0 {
		return Config{}, fmt.Errorf("%w: --keep-messages and --keep-events must not be negative", errUsage)
	}
	if cfg.SelfUpdateInterval < 0 {
		return Config{}, fmt.Errorf("%w: --self-update-interval must not be negative", errUsage)
	}
	if cfg.StateDir == "" || cfg.Socket == "" {
		return Config{}, fmt.Errorf("%w: --state-dir and --socket must not be empty", errUsage)
	}
	if cfg.Link != "" && cfg.Restore != "" {
		return Config{}, fmt.Errorf("%w: --link and --restore both give the state an identity: choose one", errUsage)
	}
	if cfg.LinkName != "" && cfg.Link == "" {
		return Config{}, fmt.Errorf("%w: --device-name goes with --link", errUsage)
	}
	return cfg, nil
}

// Version is the version qpd was built as (see package internal/version).
func Version() string { return version.String() }

// Main runs qpd with args and returns the process exit status.
func Main(args []string) int {
	cfg, err := ParseFlags(args, os.Getenv, os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "qpd:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	// Everything qpd creates is for its user alone.
	unix.Umask(0o077)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, cfg, log); err != nil {
		log.Error("qpd stopped", "err", err)
		return 1
	}
	return 0
}

func readCert(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read node certificate: %w", err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("node certificate %s: PEM block is %q, want CERTIFICATE", path, blk.Type)
		}
		b = blk.Bytes
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		return nil, fmt.Errorf("node certificate %s: %w", path, err)
	}
	return b, nil
}

// Run runs the daemon until ctx is done, then shuts down gracefully.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	var nodeCert []byte
	if cfg.ServerCert != "" {
		var err error
		if nodeCert, err = readCert(cfg.ServerCert); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("create state folder: %w", err)
	}
	unlock, err := lockStateDir(cfg.StateDir)
	if err != nil {
		return err
	}
	defer unlock()

	st, err := store.Open(ctx, cfg.StateDir)
	if err != nil {
		return err
	}
	defer st.Close()

	b, err := backend.New(backend.Config{
		Store:              st,
		Logger:             log.With("component", "backend"),
		StateDir:           cfg.StateDir,
		Version:            Version(),
		NodeAddr:           cfg.Server,
		NodeCert:           nodeCert,
		KeyPackages:        backend.MLSKeyPackages{},
		Groups:             true,
		SelfUpdateInterval: cfg.SelfUpdateInterval,
		ManualJoin:         cfg.ManualJoin,
		RequirePQTLS:       cfg.RequirePQTLS,
		GroupSuite:         groupSuite(cfg.PQGroups),
		KeyPackageSuites:   keyPackageSuites(cfg.NoPQKeyPackages),
		Invitations:        cfg.Invitations,
		Retention:          cfg.Retention,
		NoReceipts:         cfg.NoReceipts,
		RegistrationToken:  cfg.RegistrationToken,
	})
	if err != nil {
		return err
	}
	if cfg.Restore != "" {
		if err := restore(ctx, b, cfg, log); err != nil {
			return err
		}
	}
	if cfg.Link != "" {
		if err := linkDevice(ctx, b, cfg, log); err != nil {
			return err
		}
	}
	if cfg.Repin {
		had, err := b.ForgetPin(ctx)
		if err != nil {
			return err
		}
		log.Info("forgot the pinned node certificate", "node", cfg.Server, "had_pin", had)
	}

	ln, err := api.ListenSocket(cfg.Socket)
	if err != nil {
		return err
	}
	gs, hs := api.NewGRPCServer(b, api.Options{Logger: log.With("component", "api")})

	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	backendDone := make(chan error, 1)
	go func() { backendDone <- b.Run(runCtx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- gs.Serve(ln) }()

	log.Info("qpd ready", "socket", cfg.Socket, "state_dir", cfg.StateDir, "node", cfg.Server, "version", Version())
	if err := sdNotify("READY=1\nSTATUS=serving on " + cfg.Socket); err != nil {
		log.Warn("sd_notify", "err", err)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-serveDone:
	}
	log.Info("qpd shutting down")
	sdNotify("STOPPING=1")
	hs.Shutdown()
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(3 * time.Second):
		gs.Stop() // ends open Subscribe streams
		<-stopped
	}
	cancelRun()
	if err := <-backendDone; err != nil {
		log.Warn("backend", "err", err)
	}
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// lockStateDir takes an exclusive lock on the state folder so that two
// daemons never share one state.
func lockStateDir(dir string) (func(), error) {
	path := filepath.Join(dir, "qpd.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state folder: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("state folder %s is in use by another qpd", dir)
		}
		return nil, fmt.Errorf("lock state folder: %w", err)
	}
	return func() { f.Close() }, nil
}

// sdNotify sends state to systemd's notification socket ($NOTIFY_SOCKET),
// doing nothing when qpd was not started by systemd with Type=notify.
func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, []byte(state), 0, &unix.SockaddrUnix{Name: addr}); err != nil {
		return fmt.Errorf("sd_notify %s: %w", os.Getenv("NOTIFY_SOCKET"), err)
	}
	return nil
}

// groupSuite is the suite of new groups: X-Wing when pq, else suite 1.
func groupSuite(pq bool) mls.CipherSuite {
	if pq {
		return backend.PostQuantumSuite
	}
	return backend.DefaultCipherSuite
}

// keyPackageSuites are the suites qpd publishes KeyPackages in.
func keyPackageSuites(noPQ bool) []mls.CipherSuite {
	if noPQ {
		return []mls.CipherSuite{backend.DefaultCipherSuite}
	}
	return backend.DefaultKeyPackageSuites
}
