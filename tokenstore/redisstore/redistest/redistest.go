// Package redistest runs real Redis servers for tests: each its own
// redis-server process on a free loopback port, with its data in the test's
// temporary directory, so tests never touch a Redis they did not start.
// Start runs one server (StartWith: with the append-only file on), and
// StartCluster a Redis Cluster of three masters with a replica each.
// Proxy stands between a client and a server to lose replies, cut the
// connection or leave it silent.
//
// Start skips the test when redis-server is not installed (StartCluster
// also needs redis-cli), or fails it when the environment has CI=true (the
// repository's scripts/test installs the Debian packages redis-server and
// redis-tools).
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/multiapp-go/multiapp/internal/syncbuf"

	"github.com/redis/go-redis/v9"
)

// StartTimeout bounds how long Start and Restart wait for the server.
const StartTimeout = 10 * time.Second

// Config chooses how a server runs. The zero value keeps data in memory
// and saves it only on Stop.
type Config struct {
	// AppendOnly turns the append-only file on with appendfsync always:
	// Redis writes every command to disk before it answers, so Crash then
	// Restart loses nothing it acknowledged.
	AppendOnly bool
	// Args are more redis-server arguments, e.g. "--maxmemory", "10mb".
	Args []string
}

// Server is one redis-server process.
type Server struct {
	// Addr is host:port, the same across Stop and Restart.
	Addr string

	t    testing.TB
	bin  string
	dir  string
	port int
	cfg  Config

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *syncbuf.Buffer
	stopped bool
}

// Start runs redis-server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Config{})
}

// StartWith runs redis-server with cfg until the test ends.
func StartWith(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := &Server{t: t, bin: lookPath(t, "redis-server", "redis-server"), dir: t.TempDir(), cfg: cfg}
	var lastErr error
	for range 5 { // the free port can be taken between probe and start
		s.port = freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.kill)
			return s
		}
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

// lookPath finds a program of a Debian package, or skips the test (fails it
// with CI=true).
func lookPath(t testing.TB, prog, pkg string) string {
	t.Helper()
	bin, err := exec.LookPath(prog)
	if err != nil {
		msg := prog + " is not installed (Debian package " + pkg + "; scripts/test installs it)"
		if os.Getenv("CI") == "true" {
			t.Fatalf("redistest: %s", msg)
		}
		t.Skipf("redistest: %s: skipping", msg)
	}
	return bin
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start launches the process (loading dump.rdb from dir if a Stop saved
// one) and waits until it answers PING.
func (s *Server) start() error {
	args := []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--dbfilename", "dump.rdb",
		"--save", "", // only Stop saves an RDB
		"--daemonize", "no", "--loglevel", "warning", "--logfile", ""}
	if s.cfg.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command(s.bin, append(args, s.cfg.Args...)...)
	log := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited, s.log, s.stopped = cmd, exited, log, false
	s.mu.Unlock()

	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(StartTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, log.String())
		default:
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("redis-server on port %d not ready after %v: %v: %s", s.port, StartTimeout, err, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Client returns a client of db (0-15), closed when the test ends, after
// emptying the database.
func (s *Server) Client(t testing.TB, db int) *redis.Client {
	t.Helper()
	c := s.NewClient(t, db)
	if err := c.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("redistest: FLUSHDB: %v", err)
	}
	return c
}

// NewClient returns another client of db (its own connection pool), closed
// when the test ends. It leaves the data alone.
func (s *Server) NewClient(t testing.TB, db int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DB: db})
	t.Cleanup(func() { c.Close() })
	return c
}

// Stop shuts the server down, saving its data first (SHUTDOWN SAVE), so
// Restart brings back everything it held: a Redis that was down, not one
// that lost its data.
func (s *Server) Stop() {
	s.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	_ = c.ShutdownSave(context.Background()).Err() // the connection drops: no reply
	s.mu.Lock()
	exited := s.exited
	s.stopped = true
	s.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(StartTimeout):
		s.kill()
		s.t.Fatalf("redistest: redis-server did not shut down")
	}
}

// Crash kills the server without letting it save anything, as a crash or a
// power cut does: Restart then has what the server had persisted before
// (the append-only file with Config.AppendOnly; nothing otherwise).
func (s *Server) Crash() {
	s.t.Helper()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.kill()
}

// Restart starts the server again on the same port with the saved data.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// kill ends the process without saving.
func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Log returns what the server printed (warnings and errors).
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Dir is the server's data directory.
func (s *Server) Dir() string { return filepath.Clean(s.dir) }
