package pgtest_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/quicproquo/quicproquo/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func connect(t *testing.T, connString string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("connect %q: %v", connString, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func setting(t *testing.T, conn *pgx.Conn, name string) string {
	t.Helper()
	var v string
	if err := conn.QueryRow(context.Background(), "SELECT current_setting($1)", name).Scan(&v); err != nil {
		t.Fatalf("current_setting(%s): %v", name, err)
	}
	return v
}

func TestFindBinaries(t *testing.T) {
	dir, err := pgtest.FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The server listens on its Unix socket only, with fsync on, and runs as
// nobody when the tests run as root.
func TestServerSettings(t *testing.T) {
	conn := connect(t, pgtest.NewDatabase(t))
	for name, want := range map[string]string{
		"listen_addresses":   "",
		"fsync":              "on",
		"synchronous_commit": "on",
	} {
		if got := setting(t, conn, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	sock := setting(t, conn, "unix_socket_directories")
	if _, err := os.Stat(filepath.Join(sock, ".s.PGSQL.5432")); err != nil {
		t.Errorf("socket in %s: %v", sock, err)
	}
	if os.Geteuid() == 0 {
		fi, err := os.Stat(setting(t, conn, "data_directory"))
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 65534 {
			t.Errorf("data directory owned by uid %d, want 65534 (nobody)", uid)
		}
	}
}

// Each NewDatabase is a separate, empty database, dropped at the end of
// its test.
func TestDatabasesAreSeparate(t *testing.T) {
	ctx := context.Background()
	var first string
	t.Run("first", func(t *testing.T) {
		first = pgtest.NewDatabase(t)
		a := connect(t, first)
		if _, err := a.Exec(ctx, "CREATE TABLE only_here (x int); INSERT INTO only_here VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		b := connect(t, pgtest.NewDatabase(t))
		_, err := b.Exec(ctx, "SELECT x FROM only_here")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42P01" {
			t.Fatalf("the second database sees the first one's table: err = %v, want undefined_table", err)
		}
		a.Close(ctx) // before the drop at cleanup
	})
	// The first subtest's databases are gone.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, first)
	if err == nil {
		conn.Close(ctx)
		t.Fatalf("database of a finished test still accepts connections")
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" {
		t.Fatalf("connect to a dropped database: err = %v, want invalid_catalog_name", err)
	}
}

// Each NewSchema is a separate, empty schema that unqualified names
// resolve to, dropped at the end of its test.
func TestSchemasAreSeparate(t *testing.T) {
	ctx := context.Background()
	var first string
	t.Run("first", func(t *testing.T) {
		first = pgtest.NewSchema(t)
		a := connect(t, first)
		if _, err := a.Exec(ctx, "CREATE TABLE only_here (x int); INSERT INTO only_here VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		b := connect(t, pgtest.NewSchema(t))
		_, err := b.Exec(ctx, "SELECT x FROM only_here")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42P01" {
			t.Fatalf("the second schema sees the first one's table: err = %v, want undefined_table", err)
		}
		var n int
		if err := a.QueryRow(ctx, "SELECT count(*) FROM only_here").Scan(&n); err != nil || n != 1 {
			t.Fatalf("the first schema's table: %d rows, %v", n, err)
		}
	})
	// The first subtest's schema is gone with its table.
	conn := connect(t, first)
	var schema string
	if err := conn.QueryRow(ctx, "SELECT current_setting('search_path')").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("schema %s of a finished test still exists", schema)
	}
}

// If the test binary dies without stopping its cluster, the server goes
// with it (the parent-death signal), rather than run on unowned.
func TestServerDiesWithTestBinary(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		conn := connect(t, pgtest.NewDatabase(t))
		fmt.Printf("dirs %s %s\n", setting(t, conn, "data_directory"), setting(t, conn, "unix_socket_directories"))
		time.Sleep(time.Minute) // killed before this ends
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServerDiesWithTestBinary$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PGTEST_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	var dataDir, sockDir string
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if _, err := fmt.Sscanf(lines.Text(), "dirs %s %s", &dataDir, &sockDir); err == nil {
			break
		}
	}
	if dataDir == "" {
		t.Fatal("the child test binary did not start a cluster")
	}
	defer os.RemoveAll(filepath.Dir(dataDir))
	defer os.RemoveAll(sockDir)
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil || !running(pid) {
		t.Fatalf("postmaster pid %d from %q: %v, running %v", pid, b, err, running(pid))
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("postgres (pid %d) still runs 15s after its test binary was killed", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running reports whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}
