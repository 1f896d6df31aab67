package testredis

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a throwaway redis-server of one test's own, for tests that stop Redis midway (an outage)
// and maybe start it again on the same port. It is stopped by its own process handle when the test
// ends.
type Server struct {
	Addr string
	Port int
	cmd  *exec.Cmd
}

// Start runs a redis-server on a free loopback port and waits until it answers.
func Start(tb testing.TB) *Server { return StartOn(tb, FreePort(tb)) }

// StartOn runs a redis-server on port (one that was free, or this test's own stopped server's) and
// waits until it answers.
func StartOn(tb testing.TB, port int) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redis-server is needed (Debian: apt-get install redis-server): %v", err)
	}
	dir := tb.TempDir()
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "log"))
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Port: port, cmd: cmd}
	tb.Cleanup(s.Stop)
	WaitForPing(tb, s.Addr)
	return s
}

// Stop kills the server (once; later calls do nothing).
func (s *Server) Stop() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// FreePort returns a loopback port nothing listens on (now).
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitForPing waits up to 5 s for the Redis at addr to answer PING.
func WaitForPing(tb testing.TB, addr string) {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1})
	defer c.Close()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
	}
	tb.Fatalf("redis-server at %s does not answer", addr)
}
