// Package testdnsmasq runs a throwaway dnsmasq (Debian's dnsmasq-base, which make test installs) on
// a free loopback port for tests of DNS discovery: its answers come from a hosts file the test
// rewrites (Hosts, then a SIGHUP makes dnsmasq read it again), and its SRV records from the
// command line. It is authoritative for its domain: an unknown name there is NXDOMAIN.
package testdnsmasq

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binary is where Debian puts dnsmasq.
const Binary = "/usr/sbin/dnsmasq"

// Server is one dnsmasq process of the test's own.
type Server struct {
	Addr  string // 127.0.0.1:port, where it answers over UDP and TCP
	tb    testing.TB
	hosts string
	args  []string
	cmd   *exec.Cmd
}

// Options configure a Server.
type Options struct {
	Domain string   // answered with authority (NXDOMAIN for unknown names); default "sidpin.test"
	TTL    int      // the TTL of its answers, seconds (dnsmasq's local-ttl)
	SRV    []string // --srv-host values: "_service._tcp.domain,target,port,priority,weight"
}

// Start starts dnsmasq with hosts as its hosts file's content; it stops when the test ends.
func Start(tb testing.TB, hosts string, o Options) *Server {
	tb.Helper()
	if _, err := os.Stat(Binary); err != nil {
		tb.Fatalf("%s is needed for the DNS discovery tests (Debian: apt-get install dnsmasq-base; make test installs it): %v", Binary, err)
	}
	if o.Domain == "" {
		o.Domain = "sidpin.test"
	}
	dir := tb.TempDir()
	s := &Server{tb: tb, hosts: filepath.Join(dir, "hosts"), Addr: fmt.Sprintf("127.0.0.1:%d", freePort(tb))}
	s.Hosts(hosts)
	_, port, _ := net.SplitHostPort(s.Addr)
	s.args = []string{"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
		"--bind-interfaces", "--listen-address=127.0.0.1", "--port=" + port, "--user=root", "--pid-file=",
		"--addn-hosts=" + s.hosts, fmt.Sprintf("--local-ttl=%d", o.TTL), "--local=/" + o.Domain + "/",
		"--log-facility=" + filepath.Join(dir, "log")}
	for _, srv := range o.SRV {
		s.args = append(s.args, "--srv-host="+srv)
	}
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

// Hosts rewrites the hosts file (lines "ip name"); Reload makes dnsmasq read it.
func (s *Server) Hosts(content string) {
	if err := os.WriteFile(s.hosts, []byte(content), 0o644); err != nil {
		s.tb.Fatal(err)
	}
}

// Reload sends SIGHUP: dnsmasq reads its hosts file again.
func (s *Server) Reload() {
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		s.tb.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // dnsmasq reads the file between two queries
}

// Start starts dnsmasq (again, after Stop: a resolver outage that ends) and waits until it answers.
func (s *Server) Start() {
	s.cmd = exec.Command(Binary, s.args...)
	out, _ := os.Create(filepath.Join(filepath.Dir(s.hosts), "stderr"))
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start dnsmasq: %v", err)
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
	}
	b, _ := os.ReadFile(out.Name())
	s.tb.Fatalf("dnsmasq does not answer on %s: %s", s.Addr, strings.TrimSpace(string(b)))
}

// Stop stops dnsmasq (its process, by its handle) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// freePort returns a port free for both UDP and TCP on 127.0.0.1.
func freePort(tb testing.TB) int {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	tb.Fatal("no port free for both UDP and TCP")
	return 0
}
