// Package pgtest runs a throwaway PostgreSQL cluster for the tests of one
// test binary, so that code written against PostgreSQL is tested against
// the real server, not a stand-in.
//
// # Use
//
// A package whose tests need PostgreSQL routes its TestMain through Run,
// which stops the cluster (if a test started one) after the tests:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
//
// and each test asks for a database of its own:
//
//	conn := pgtest.NewDatabase(t) // a connection string for a new, empty database
//
// The first NewDatabase of the binary starts the cluster: initdb into a
// temporary folder, then the postgres server listening only on a Unix
// socket in another temporary folder (listen_addresses is empty, so no TCP
// port is opened and parallel test binaries never collide), with fsync
// and synchronous_commit on, as in production. Every later call creates
// one more database in that cluster (CREATE DATABASE), so tests are isolated
// from each other at the cost of a few tens of milliseconds each; the
// database is dropped when the test ends. NewSchema is cheaper still: a
// schema of its own in one shared database, for tests that do not depend
// on what PostgreSQL scopes to a whole database (LISTEN/NOTIFY, advisory
// locks). Run stops the server with
// pg_ctl stop -m fast and removes both folders.
//
// # Requirements
//
// The PostgreSQL server binaries: initdb, pg_ctl and postgres, found under
// /usr/lib/postgresql/*/bin (Debian's layout, newest version first) or on
// PATH. Without them NewDatabase fails the test, saying to install
// Debian's postgresql package; it never skips. initdb refuses to run as
// root, so when the tests run as root the server runs as the unprivileged
// user nobody (uid and gid 65534), with its folders handed to that user.
//
// If the test binary dies without running Run's cleanup (a panic, a
// timeout), the kernel stops the server too (it is started with a
// parent-death signal), and the next start removes folders such a run left
// behind.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// nobody is the uid and gid the server runs as when the tests run as root.
const nobody = 65534

// startTimeout bounds initdb plus the server's start-up.
const startTimeout = 60 * time.Second

// dirPrefix names the temporary folders of a cluster, so that stale ones
// can be recognised.
const dirPrefix = "qpq-pgtest-"

var (
	mu       sync.Mutex
	running  bool // Run is running the tests
	started  *Cluster
	startErr error
	dbSeq    atomic.Int64
)

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	dir     string // holds data/ and server.log; removed by stop
	sockDir string // the Unix socket's folder; removed by stop
	bin     string // folder of initdb, pg_ctl and postgres
	base    string // where dir and sockDir are made
	cred    *syscall.Credential
	exited  chan struct{} // closed when the postgres process has exited
	waitErr error         // its exit status, once exited is closed

	adminMu sync.Mutex
	admin   *pgx.Conn // to the postgres database, for CREATE/DROP DATABASE
}

// Run runs the tests of m and then stops the cluster, if a test started
// one. Call it from TestMain and pass its result to os.Exit.
func Run(m *testing.M) int {
	mu.Lock()
	running = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	c := started
	started, running = nil, false
	mu.Unlock()
	if c != nil {
		if err := c.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// NewDatabase creates a new, empty database in the test binary's cluster
// (starting the cluster on first use) and returns a connection string for
// it (keyword/value form: host, port, user, dbname, sslmode). The database
// is dropped when t ends; close every connection to it before then.
func NewDatabase(t testing.TB) string {
	t.Helper()
	c := cluster(t)
	name := fmt.Sprintf("test_%d", dbSeq.Add(1))
	if err := c.exec(fmt.Sprintf("CREATE DATABASE %s", name)); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// FORCE ends connections a test left open; the drop only saves
		// disk, since the whole cluster goes at the end.
		if err := c.exec(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return c.ConnString(name)
}

// schemaDB is the database that holds the schemas of NewSchema.
const schemaDB = "schemas"

var (
	schemaDBOnce sync.Once
	schemaDBErr  error
)

// NewSchema is the cheaper isolation: a new, empty schema of its own in a
// database the test binary's tests share, and a connection string for that
// database whose search_path names the schema, so that unqualified names
// are created and found there. It costs a few milliseconds where
// NewDatabase costs tens to hundreds (CREATE DATABASE copies and syncs a
// template). What PostgreSQL scopes to a database rather than a schema
// stays shared: LISTEN/NOTIFY channels, advisory locks, extensions. Tests
// of those take NewDatabase. The schema is dropped when t ends.
func NewSchema(t testing.TB) string {
	t.Helper()
	c := cluster(t)
	schemaDBOnce.Do(func() { schemaDBErr = c.exec("CREATE DATABASE " + schemaDB) })
	if schemaDBErr != nil {
		t.Fatalf("pgtest: create database %s: %v", schemaDB, schemaDBErr)
	}
	name := fmt.Sprintf("test_%d", dbSeq.Add(1))
	if err := c.execIn(schemaDB, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("pgtest: create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := c.execIn(schemaDB, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Logf("pgtest: drop schema %s: %v", name, err)
		}
	})
	return c.ConnString(schemaDB) + " search_path=" + quote(name)
}

// Get returns the test binary's cluster, starting it on first use.
func Get(t testing.TB) *Cluster {
	t.Helper()
	return cluster(t)
}

// ConnString returns a connection string for database dbname of c, as the
// superuser postgres over the Unix socket.
func (c *Cluster) ConnString(dbname string) string {
	return fmt.Sprintf("host=%s port=5432 user=postgres dbname=%s sslmode=disable", quote(c.sockDir), quote(dbname))
}

// quote quotes a keyword/value connection string value.
func quote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

func cluster(t testing.TB) *Cluster {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if !running {
		t.Fatal("pgtest: the package's TestMain must run its tests through pgtest.Run " +
			"(func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }), which stops the cluster afterwards")
	}
	if started == nil && startErr == nil {
		started, startErr = start()
	}
	if startErr != nil {
		t.Fatal(startErr)
	}
	return started
}

// FindBinaries returns the folder holding initdb, pg_ctl and postgres: the
// newest /usr/lib/postgresql/<version>/bin that has all three, else the
// folder of initdb on PATH if pg_ctl and postgres are beside it.
func FindBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if hasAll(d, "initdb", "pg_ctl", "postgres") {
			return d, nil
		}
	}
	return "", errors.New("pgtest: PostgreSQL server binaries (initdb, pg_ctl, postgres) not found " +
		"under /usr/lib/postgresql/*/bin or on PATH; install Debian's postgresql package " +
		"(apt-get install postgresql) to run these tests")
}

// versionOf reads the major version out of /usr/lib/postgresql/<v>/bin.
func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func hasAll(dir string, names ...string) bool {
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// start runs initdb and the server and connects the admin connection.
func start() (*Cluster, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, exited: make(chan struct{})}
	if os.Geteuid() == 0 {
		c.cred = &syscall.Credential{Uid: nobody, Gid: nobody, NoSetGroups: true}
	}
	c.base = baseDir(c.cred != nil)
	removeStale(c.base)
	if c.dir, err = c.mkdir(dirPrefix + "data-"); err != nil {
		return nil, err
	}
	if c.sockDir, err = c.mkdir(dirPrefix + "sock-"); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	if err := c.boot(); err != nil {
		c.kill()
		os.RemoveAll(c.dir)
		os.RemoveAll(c.sockDir)
		return nil, err
	}
	return c, nil
}

// baseDir is where the cluster's folders go: the temporary folder, unless
// its path is too long for a Unix socket (at most 107 bytes) or, when the
// server runs as nobody, nobody cannot reach it; then /tmp.
func baseDir(asNobody bool) string {
	base := os.TempDir()
	if len(base) > 60 {
		return "/tmp"
	}
	if asNobody {
		for d := base; ; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil || fi.Mode().Perm()&0o001 == 0 {
				return "/tmp"
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return base
}

// mkdir makes a temporary folder owned by the user the server runs as.
func (c *Cluster) mkdir(prefix string) (string, error) {
	d, err := os.MkdirTemp(c.base, prefix)
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(d, nobody, nobody); err != nil {
			os.RemoveAll(d)
			return "", fmt.Errorf("pgtest: hand %s to uid %d: %w", d, nobody, err)
		}
	}
	return d, nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) logPath() string { return filepath.Join(c.dir, "server.log") }

// command prepares one of the PostgreSQL programs, run as the server's user
// with a small, fixed environment.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C", "LC_ALL=C", "TZ=UTC", "PGTZ=UTC"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	return cmd
}

// boot runs initdb, starts postgres and waits until it accepts connections.
func (c *Cluster) boot() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	initdb := c.command(ctx, "initdb", "-D", c.dataDir(), "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	logf, err := os.OpenFile(c.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: server log: %w", err)
	}
	defer logf.Close()
	srv := c.command(context.Background(), "postgres", "-D", c.dataDir(),
		"-c", "listen_addresses=",
		"-c", "unix_socket_directories="+c.sockDir,
		"-c", "port=5432",
		"-c", "fsync=on",
		"-c", "synchronous_commit=on",
		"-c", "full_page_writes=on",
		"-c", "max_connections=200",
		"-c", "shared_buffers=32MB",
		"-c", "log_min_messages=warning",
	)
	srv.Stdout, srv.Stderr = logf, logf
	// Should this binary die without stopping it, the kernel sends the
	// server SIGQUIT (immediate shutdown). The signal follows the thread
	// that started the process, so that thread stays locked to the
	// goroutine waiting for the process until it exits.
	srv.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	startErr := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := srv.Start(); err != nil {
			startErr <- err
			close(c.exited)
			return
		}
		startErr <- nil
		c.waitErr = srv.Wait()
		close(c.exited)
	}()
	if err := <-startErr; err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	// Wait until it accepts connections.
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, c.ConnString("postgres"))
		ccancel()
		if err == nil {
			c.admin = conn
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("pgtest: postgres exited during start-up (%v); its log:\n%s", c.waitErr, c.logTail())
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres did not accept connections within %v (%v); its log:\n%s",
				startTimeout, err, c.logTail())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// exec runs one statement on the admin connection.
func (c *Cluster) exec(sql string) error {
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.admin.Exec(ctx, sql)
	return err
}

// execIn runs one statement in database dbname, on a connection of its
// own (the admin connection is to the postgres database).
func (c *Cluster) execIn(dbname, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.ConnString(dbname))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// logTail returns the end of the server's log, for error messages.
func (c *Cluster) logTail() string {
	b, _ := os.ReadFile(c.logPath())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// stop shuts the server down (pg_ctl stop -m fast) and removes its folders.
func (c *Cluster) stop() error {
	if c.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.admin.Close(ctx)
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var err error
	out, perr := c.command(ctx, "pg_ctl", "stop", "-D", c.dataDir(), "-m", "fast", "-w", "-t", "50").CombinedOutput()
	if perr != nil {
		err = fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", perr, out)
		c.kill()
	}
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		err = errors.Join(err, errors.New("pgtest: postgres did not exit"))
	}
	return errors.Join(err, os.RemoveAll(c.dir), os.RemoveAll(c.sockDir))
}

// kill ends the server at once, if it runs.
func (c *Cluster) kill() {
	select {
	case <-c.exited:
		return
	default:
	}
	if b, err := os.ReadFile(filepath.Join(c.dataDir(), "postmaster.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0]); err == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGQUIT)
		}
	}
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
	}
}

// removeStale removes the folders of clusters whose test binary died
// without stopping them: folders older than ten minutes (so that a
// cluster being set up right now is left alone) whose server is not
// running, judged by the process id in its lock file.
func removeStale(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), dirPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < 10*time.Minute {
			continue
		}
		dir := filepath.Join(base, e.Name())
		lock := filepath.Join(dir, "data", "postmaster.pid")
		if strings.HasPrefix(e.Name(), dirPrefix+"sock-") {
			lock = filepath.Join(dir, ".s.PGSQL.5432.lock")
		}
		if serverAlive(lock) {
			continue
		}
		os.RemoveAll(dir)
	}
}

// serverAlive reports whether the lock file names a running process; a
// missing lock file means no server, an unreadable one counts as running.
func serverAlive(lock string) bool {
	b, err := os.ReadFile(lock)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		return true
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM)
}
