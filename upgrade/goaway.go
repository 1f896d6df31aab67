package upgrade

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// closeWait bounds a graceful close: the close frames have that long to be written and the peers to
// answer with their own end of stream; then both sockets are closed whatever they did.
const closeWait = time.Second

// errEnded is what a flow's write returns once the tunnel ends: the bytes were dropped.
var errEnded = errors.New("upgrade: the tunnel is closing")

// flow is one direction of a tunnel while goroutines write it (before the event loop takes the
// tunnel, or instead of it). Its writes are serialized with end, which may put a close frame between
// two frames and then ends the direction: later writes are dropped.
type flow struct {
	mu     sync.Mutex
	dst    net.Conn
	frames frameCursor    // frames of the bytes written to dst
	sent   *atomic.Uint64 // the relay's count of bytes in this direction
	own    atomic.Uint64  // this tunnel's count of bytes in this direction
	// closedBy notes the sender of a close frame written in this direction as the peer that ended.
	closedBy func()
	open     bool // the WebSocket stream has begun (towards the client: once the 101 is written)
	ended    bool // nothing more is written; the write side is shut
}

// begin writes head, the bytes before the WebSocket stream (the 101), and opens the stream.
func (f *flow) begin(head []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return errEnded
	}
	_, err := f.dst.Write(head)
	f.open = err == nil
	return err
}

// write writes b, the next bytes of the stream; errEnded when the direction has ended.
func (f *flow) write(b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return errEnded
	}
	n, err := f.dst.Write(b)
	f.frames.advance(b[:n])
	if f.frames.closed && f.closedBy != nil {
		f.closedBy()
	}
	f.sent.Add(uint64(n))
	f.own.Add(uint64(n))
	return err
}

// end writes last (when not nil, and only between two frames of an open stream) and shuts the
// write side, once: the peer reads the frames written so far, last, and the end of the stream.
func (f *flow) end(last []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return
	}
	f.ended = true
	if last != nil && f.open && f.frames.atBoundary() {
		_, _ = f.dst.Write(last) // a failure ends the stream all the same
	}
	closeWrite(f.dst)
}

// cursor returns the position of the direction's stream, for the event loop that continues it.
func (f *flow) cursor() frameCursor {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frames
}

// goAway ends the tunnel as a server going away: close 1001 to the client and, with toNode, a masked
// close 1001 to the node, each only where its stream is between two frames; then both write sides
// are shut, and both sockets are closed once the peers ended theirs, at most closeWait later. It does
// not wait; OnClose runs when the tunnel is finished, as for any end.
func (t *tunnel) goAway(toNode bool) {
	t.mu.Lock()
	if t.going {
		t.mu.Unlock()
		return
	}
	t.going = true
	lt := t.loop
	t.mu.Unlock()
	var nodeLast []byte
	if toNode {
		nodeLast = maskedCloseGoingAway()
	}
	if lt != nil {
		lt.goAway(closeGoingAway, nodeLast, closeWait)
		return
	}
	go t.endFlows(nodeLast)
}

// endFlow passes the end of one direction on (a FIN after what was written), unless goAway is
// ending the tunnel: it ends both flows itself, with their close frames, and a peer that reacts to
// the first one by leaving must not have the second one dropped.
func (t *tunnel) endFlow(f *flow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.going {
		f.end(nil)
	}
}

// endFlows ends both directions of a tunnel relayed by goroutines. A copy blocked writing to a peer
// that reads nothing holds its flow; the write deadline frees it (mid-frame, so nothing is added).
func (t *tunnel) endFlows(nodeLast []byte) {
	time.AfterFunc(closeWait, t.close)
	deadline := time.Now().Add(closeWait)
	_ = t.toClient.dst.SetWriteDeadline(deadline)
	_ = t.toNode.dst.SetWriteDeadline(deadline)
	t.toClient.end(closeGoingAway)
	t.toNode.end(nodeLast)
}
