package backends

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Fault is what an error on the way to a node says about the node itself. Only what the node did
// counts against it: a client can make a node's answer huge, slow to read or refused by sidpin's own
// limits, and none of that may take a node down.
type Fault int

// The faults, and NoFault for every error that says nothing about the node's health.
const (
	NoFault       Fault = iota // the client's doing, sidpin's own, or an answer the node did give
	FaultRefused               // the connection was refused or the host is unreachable
	FaultDial                  // connecting (TCP or TLS) failed or timed out
	FaultNoAnswer              // the connection was reset or closed before any answer byte
	FaultNotHTTP               // the node answered something that is not an HTTP response
	FaultSlow                  // the node missed the handshake timeout
)

// String names the fault for logs.
func (f Fault) String() string {
	switch f {
	case FaultRefused:
		return "refused"
	case FaultDial:
		return "dial failed"
	case FaultNoAnswer:
		return "no answer"
	case FaultNotHTTP:
		return "not HTTP"
	case FaultSlow:
		return "handshake timeout"
	}
	return "none"
}

// ClassifyHTTP reads an error of a node's HTTP client (the request up to the answer's head; bodies
// are streamed after it and never judged). handshake says whether the request opened a session, the
// only kind whose timeout is the node's own doing: other requests wait on what their session does.
func ClassifyHTTP(err error, handshake bool) Fault {
	switch {
	case err == nil, errors.Is(err, ErrNodeDown), errors.Is(err, fasthttp.ErrNoFreeConns):
		return NoFault // sidpin's own cut, or its own pool is full
	case isRefused(err):
		return FaultRefused
	case errors.Is(err, fasthttp.ErrDialTimeout), isDialOp(err):
		return FaultDial
	case errors.Is(err, fasthttp.ErrTimeout), isTimeout(err):
		if handshake {
			return FaultSlow
		}
		return NoFault
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, fasthttp.ErrConnectionClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return FaultNoAnswer
	case isMalformedHead(err):
		return FaultNotHTTP
	}
	return NoFault
}

// isMalformedHead reports a response head fasthttp could not parse, other than one too large for
// the read buffer (a client can make a node echo a huge URL into a redirect's Location).
func isMalformedHead(err error) bool {
	var small *fasthttp.ErrSmallBuffer
	if errors.As(err, &small) || errors.Is(err, fasthttp.ErrSmallReadBuffer) {
		return false
	}
	return strings.Contains(err.Error(), "error when reading response headers")
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH)
}

func isDialOp(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ObserveFault counts a fault of the node as a failed passive check; NoFault counts nothing. A
// refused connection also keeps new sessions off the node for a moment, before fall is reached.
func (n *Node) ObserveFault(f Fault, err error) {
	if f == NoFault {
		return
	}
	if f == FaultRefused {
		n.avoidTill.Store(time.Now().Add(avoidAfterRefusal).UnixNano())
	}
	n.failing.Store(true)
	n.observe(err, time.Now())
}
