// Package testnode serves the tiny misbehaving nodes of tests: a loopback listener whose every
// connection is handed to a function of the test's, closed when the test ends.
package testnode

import (
	"bufio"
	"net"
	"testing"
)

// Serve listens on a free loopback port until the test ends and runs handle for each connection on
// its own goroutine; handle owns the connection. It returns the host:port.
func Serve(tb testing.TB, handle func(c *net.TCPConn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c.(*net.TCPConn))
		}
	}()
	return ln.Addr().String()
}

// ReadHead reads a request head up to its blank line (the tests' requests carry no body here).
func ReadHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			return nil
		}
	}
}
