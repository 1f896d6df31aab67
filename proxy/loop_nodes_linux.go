//go:build linux

package proxy

import (
	"net"
	"os"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/internal/evloop"
)

// nodePool is one loop's connections to one node (through one transport): the idle ones kept alive
// for the next request, most recently used first, and every open one (a node that goes down has them
// all cut).
type nodePool struct {
	node *backends.Node
	ep   backends.Endpoint
	sa   *evloop.RawAddr // nil: an address family the loop does not dial
	idle []*nodeConn
	open map[*nodeConn]struct{}
}

// nodeConn is one connection from a loop to a node.
type nodeConn struct {
	s          *shard
	pool       *nodePool
	fd         int
	x          *loopExchange // the exchange it serves; nil while idle
	connecting bool
	reused     bool // it served a request before
	peerClosed bool // the node shut its side: it serves no other request
	idleSince  int64
	dialTimer  *evloop.Timer
}

// idleConnTimeout is how long a node connection may sit idle in a loop: below Node's 5 s
// keepAliveTimeout (as the HTTP client's), so the node never closes one under a request.
const loopIdleConnTimeout = 4 * time.Second

func (s *shard) poolFor(node *backends.Node, ep backends.Endpoint) *nodePool {
	np := s.pools[ep.Transport]
	if np == nil || np.ep.Addr != ep.Addr {
		sa, _ := evloop.NewRawAddr(sockaddr(ep))
		np = &nodePool{node: node, ep: ep, sa: sa, open: map[*nodeConn]struct{}{}}
		if old := s.pools[ep.Transport]; old != nil {
			s.dropIdle(old) // the node's address changed: its kept connections go
		}
		s.pools[ep.Transport] = np
	}
	return np
}

func sockaddr(ep backends.Endpoint) unix.Sockaddr {
	a := ep.Addr.Addr()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(ep.Addr.Port()), Addr: a.As4()}
	}
	return &unix.SockaddrInet6{Port: int(ep.Addr.Port()), Addr: a.As16()}
}

// takeConn gives x a connection to its node: the idle one used last, or a new one. An upgrade gets
// a new one: the connection becomes its tunnel's, as the node's first request.
func (s *shard) takeConn(x *loopExchange) (*nodeConn, error) {
	np := s.poolFor(x.node, x.ep)
	for len(np.idle) > 0 && !x.upgrading() {
		nc := np.idle[len(np.idle)-1]
		np.idle[len(np.idle)-1] = nil
		np.idle = np.idle[:len(np.idle)-1]
		s.idle--
		if !nc.peerClosed {
			return nc, nil
		}
		s.closeNodeConn(nc)
	}
	return s.dial(np, x)
}

// dial opens a new connection to the node without waiting: the exchange goes on once it is
// connected, or fails at timeouts.upstream_dial.
func (s *shard) dial(np *nodePool, x *loopExchange) (*nodeConn, error) {
	if x.node.Gone() {
		return nil, backends.ErrNodeDown
	}
	if np.ep.MaxConns > 0 && np.ep.Conns.Add(1) > int64(np.ep.MaxConns) {
		np.ep.Conns.Add(-1)
		return nil, fasthttp.ErrNoFreeConns
	} else if np.ep.MaxConns <= 0 {
		np.ep.Conns.Add(1)
	}
	if np.sa == nil {
		np.ep.Conns.Add(-1)
		return nil, dialError(unix.EAFNOSUPPORT)
	}
	fd, errno := evloop.Socket(np.sa.Family)
	if errno != 0 {
		np.ep.Conns.Add(-1)
		return nil, dialError(errno)
	}
	_ = evloop.NoDelay(fd)
	nc := &nodeConn{s: s, pool: np, fd: fd}
	switch errno := evloop.Connect(fd, np.sa); errno {
	case 0:
	case unix.EINPROGRESS:
		nc.connecting = true
	default:
		evloop.Close(fd)
		np.ep.Conns.Add(-1)
		return nil, dialError(errno)
	}
	if err := s.loop.Add(fd, nc, evloop.In|evloop.Out|evloop.RdHup|evloop.Edge); err != nil {
		evloop.Close(fd)
		np.ep.Conns.Add(-1)
		return nil, dialError(err)
	}
	np.open[nc] = struct{}{}
	if nc.connecting {
		nc.dialTimer = s.loop.After(np.ep.DialTimeout, func() {
			nc.dialTimer = nil
			if nc.connecting && nc.x != nil {
				nc.x.nodeFailed(fasthttp.ErrDialTimeout)
			}
		})
	}
	return nc, nil
}

// dialError is a failed connect as backends.ClassifyHTTP reads it.
func dialError(err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
}

// Event handles the node socket's readiness.
func (nc *nodeConn) Event(ev uint32) {
	if ev&(evloop.RdHup|evloop.Hup) != 0 {
		nc.peerClosed = true
	}
	switch {
	case nc.connecting:
		if ev&(evloop.Out|evloop.Err|evloop.Hup) != 0 {
			nc.connected(ev)
		}
	case nc.x == nil:
		// Idle: the node closed it, or sent what nobody asked for.
		nc.s.dropIdleConn(nc)
	default:
		nc.x.nodeEvent(ev)
	}
}

// connected ends the connect: the exchange sends its request, or fails as a dial that failed. A
// connect that failed reports an error or hang-up with its writability; only then is its error read
// (one getsockopt spared on every connection that works).
func (nc *nodeConn) connected(ev uint32) {
	nc.connecting = false
	nc.s.loop.Stop(nc.dialTimer)
	nc.dialTimer = nil
	x := nc.x
	if x == nil {
		nc.s.closeNodeConn(nc)
		return
	}
	if ev&(evloop.Err|evloop.Hup) != 0 {
		soErr, err := unix.GetsockoptInt(nc.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err == nil && soErr != 0:
			err = unix.Errno(soErr)
		case err == nil:
			err = unix.ECONNRESET // hung up before a byte: as a reset
		}
		x.nodeFailed(dialError(err))
		return
	}
	x.writeRequest()
}

// putIdle keeps nc for the next request to its node.
func (s *shard) putIdle(nc *nodeConn) {
	nc.reused = true
	nc.idleSince = s.loop.Now()
	nc.pool.idle = append(nc.pool.idle, nc)
	s.idle++
	if s.sweep == nil {
		s.sweep = s.loop.After(time.Second, s.sweepIdle)
	}
}

// sweepIdle closes the connections idle for longer than loopIdleConnTimeout.
func (s *shard) sweepIdle() {
	s.sweep = nil
	old := s.loop.Now() - int64(loopIdleConnTimeout)
	for _, np := range s.pools {
		kept := np.idle[:0]
		for _, nc := range np.idle {
			if nc.idleSince < old {
				s.idle--
				s.closeNodeConn(nc)
			} else {
				kept = append(kept, nc)
			}
		}
		clear(np.idle[len(kept):])
		np.idle = kept
	}
	if s.idle > 0 {
		s.sweep = s.loop.After(time.Second, s.sweepIdle)
	}
}

// dropIdleConn closes an idle connection the node closed.
func (s *shard) dropIdleConn(nc *nodeConn) {
	np := nc.pool
	for i, c := range np.idle {
		if c == nc {
			np.idle = append(np.idle[:i], np.idle[i+1:]...)
			np.idle = np.idle[:len(np.idle):len(np.idle)]
			s.idle--
			break
		}
	}
	s.closeNodeConn(nc)
}

// dropIdle closes every idle connection of np.
func (s *shard) dropIdle(np *nodePool) {
	for _, nc := range np.idle {
		s.idle--
		s.closeNodeConn(nc)
	}
	np.idle = nil
}

// closeNodeConn closes nc (the node sees the connection close).
func (s *shard) closeNodeConn(nc *nodeConn) {
	if s.detachNodeConn(nc) {
		s.loop.Remove(nc.fd)
	}
}

// detachNodeConn takes nc out of its pool, socket open (a tunnel takes it); false when it was not
// in it any more.
func (s *shard) detachNodeConn(nc *nodeConn) bool {
	if _, open := nc.pool.open[nc]; !open {
		return false
	}
	delete(nc.pool.open, nc)
	s.loop.Stop(nc.dialTimer)
	nc.dialTimer = nil
	nc.pool.ep.Conns.Add(-1)
	return true
}

// cutNode closes every connection of this loop to node: requests held on it are answered "Session
// ID unknown" (the node went down with their sessions), or cut when their answer had begun.
func (s *shard) cutNode(node *backends.Node) int {
	cut := 0
	for _, np := range s.pools {
		if np.node != node {
			continue
		}
		s.dropIdle(np)
		for nc := range np.open {
			cut++
			if x := nc.x; x != nil {
				x.nodeCut()
			}
			s.closeNodeConn(nc)
		}
	}
	return cut
}
