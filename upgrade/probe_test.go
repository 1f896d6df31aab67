package upgrade

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidpin/sidpin/internal/testnode"
)

// sinkNode answers every upgrade with a 101 and reads what comes after it, counting and keeping it.
type sinkNode struct {
	addr string
	read atomic.Int64
	mu   sync.Mutex
	got  [][]byte // per connection, capped at 1 MiB each
}

func newSinkNode(t *testing.T) *sinkNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &sinkNode{addr: ln.Addr().String()}
	var conns sync.WaitGroup
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { defer conns.Done(); n.serve(t, c) }()
		}
	}()
	return n
}

func (n *sinkNode) serve(t *testing.T, c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	if testnode.ReadHead(br) != nil {
		return
	}
	c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n"))
	n.mu.Lock()
	i := len(n.got)
	n.got = append(n.got, nil)
	n.mu.Unlock()
	buf := make([]byte, 4<<10)
	for {
		k, err := br.Read(buf)
		n.read.Add(int64(k))
		n.mu.Lock()
		if len(n.got[i])+k <= 1<<20 {
			n.got[i] = append(n.got[i], buf[:k]...)
		}
		n.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// maskedFrameHeader is the header of a masked client frame announcing n payload bytes.
func maskedFrameHeader(opcode byte, n uint64) []byte {
	h := []byte{0x80 | opcode, 0x80 | 127}
	h = binary.BigEndian.AppendUint64(h, n)
	return append(h, 1, 2, 3, 4)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestProbeMemoryIsBoundedByWhatArrives: a probe whose client announces a frame of almost a megabyte
// and sends 14 bytes of it costs the relay a fixed buffer, not the announced length (it did: 973 KiB).
func TestProbeMemoryIsBoundedByWhatArrives(t *testing.T) {
	node := newSinkNode(t)
	addr, relay := routedFront(t, Options{MaxFrame: 1 << 20, ProbeTimeout: 20 * time.Second},
		func(string) string { return node.addr }, func() Hooks { return Hooks{OnUpgrade: func() {}} })
	const probes = 100
	hdr := maskedFrameHeader(0x2, 1_000_000)
	before := heapInUse()
	for range probes {
		c := dialRaw(t, addr, "/ws")
		c.Write(hdr)
	}
	for end := time.Now().Add(5 * time.Second); relay.Count() < probes; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d tunnels of %d probes", relay.Count(), probes)
		}
	}
	// The watchers have the headers once the node has them (a watcher that waits for the whole frame
	// never passes them on: then give it a moment to read them).
	for end := time.Now().Add(500 * time.Millisecond); node.read.Load() < probes*int64(len(hdr)) && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
	grown := int64(heapInUse()) - int64(before)
	t.Logf("%d probes each announcing 1,000,000 bytes: heap grew %d KiB (%d B per probe); %d tunnels", probes, grown>>10, grown/probes, relay.Count())
	if per := grown / probes; per > 64<<10 {
		t.Fatalf("each probe costs %d KiB of heap: the announced length decides the memory", per>>10)
	}
}

// TestProbeLargeFrameForwardedWhole: a frame above the inspected size is passed on in pieces, byte for
// byte, and the "5" after it still upgrades.
func TestProbeLargeFrameForwardedWhole(t *testing.T) {
	node := newSinkNode(t)
	upgraded := make(chan struct{})
	addr, _ := routedFront(t, Options{MaxFrame: 1 << 20}, func(string) string { return node.addr },
		func() Hooks { return Hooks{OnUpgrade: func() { close(upgraded) }} })
	c := dialRaw(t, addr, "/ws")
	payload := bytes.Repeat([]byte("abcdefgh"), 100_000/8)
	big := append(maskedFrameHeader(0x2, uint64(len(payload))), payload...) // masked with 1,2,3,4: content does not matter
	five := maskedText("5")
	c.Write(append(append([]byte{}, big...), five...))
	select {
	case <-upgraded:
	case <-time.After(5 * time.Second):
		t.Fatal(`the "5" after a large frame did not upgrade`)
	}
	want := append(big, five...)
	for end := time.Now().Add(3 * time.Second); node.read.Load() < int64(len(want)); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the node read %d bytes, want %d", node.read.Load(), len(want))
		}
	}
	node.mu.Lock()
	got := node.got[0]
	node.mu.Unlock()
	if !bytes.Equal(got, want) {
		t.Fatalf("the node got %d bytes that differ from the %d sent", len(got), len(want))
	}
}

// TestProbeTimeout: a probe whose client never sends "5" ends after the probe timeout; the session
// is not moved to it.
func TestProbeTimeout(t *testing.T) {
	node := newSinkNode(t)
	var upgradedOnce atomic.Bool
	closed := make(chan struct{})
	addr, _ := routedFront(t, Options{ProbeTimeout: 300 * time.Millisecond}, func(string) string { return node.addr },
		func() Hooks {
			return Hooks{OnUpgrade: func() { upgradedOnce.Store(true) }, OnClose: func(Ended) { close(closed) }}
		})
	c := dialRaw(t, addr, "/ws")
	c.Write(maskedText("2probe"))
	start := time.Now()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("a probe without 5 was never ended")
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadAll(c.br); err != nil {
		t.Fatalf("the client's connection did not end: %v", err)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Fatalf("the probe ended after %v, before its timeout", waited)
	}
	if upgradedOnce.Load() {
		t.Fatal("OnUpgrade ran without a 5")
	}
}

// FuzzReadFrame: whatever a peer sends, reading one frame and forwarding it passes on exactly the
// bytes of that frame, in order, through the fixed buffer; a frame over the limit is refused.
func FuzzReadFrame(f *testing.F) {
	f.Add(maskedText("5"), 100)
	f.Add(append(maskedFrameHeader(0x2, 10), bytes.Repeat([]byte{1}, 10)...), 100)
	f.Add(append(maskedFrameHeader(0x2, 5000), bytes.Repeat([]byte{2}, 5000)...), 8000)
	f.Add(maskedFrameHeader(0x2, 1<<40), 1<<20)
	f.Add([]byte{0x81, 0x7e, 0x00}, 100)
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o', 0x81}, 100)
	f.Fuzz(func(t *testing.T, in []byte, maxFrame int) {
		maxFrame = max(0, maxFrame%(1<<16))
		r := bytes.NewReader(in)
		fr, err := readFrame(r, new(frameBuf), maxFrame)
		if err != nil {
			return
		}
		var out []byte
		err = fr.forward(r, func(b []byte) error { out = append(out, b...); return nil }, new(frameBuf))
		if uint64(len(fr.raw)) > maxFrameHeader+maxInspect {
			t.Fatalf("raw of %d bytes", len(fr.raw))
		}
		if err == nil && !bytes.Equal(out, in[:len(out)]) {
			t.Fatalf("forwarded bytes differ from the input")
		}
		if err == nil && fr.payload != nil && len(fr.payload) > maxInspect {
			t.Fatalf("inspected payload of %d bytes", len(fr.payload))
		}
	})
}

// TestShutdownLetsAProbeFinish: a shutdown that comes between the node's "3probe" and the client's
// "5" lets the "5" through (the session moves to the WebSocket), then closes with 1001. Closing the
// probe in between left engine.io-client's session frozen (polling paused, upgrade half done).
func TestShutdownLetsAProbeFinish(t *testing.T) {
	node := newRecordingNode(t, []byte{0x81, 6, '3', 'p', 'r', 'o', 'b', 'e'})
	upgraded := make(chan struct{})
	addr, relay := routedFront(t, Options{}, func(string) string { return node.addr },
		func() Hooks { return Hooks{OnUpgrade: func() { close(upgraded) }} })
	c := dialRaw(t, addr, "/ws")
	c.Write(maskedText("2probe"))
	f, err := readFrame(c.br, new(frameBuf), 100)
	if err != nil || string(f.payload) != "3probe" {
		t.Fatalf("3probe: %q %v", f.payload, err)
	}
	done := make(chan struct{})
	go func() { relay.Shutdown(); close(done) }()
	time.Sleep(100 * time.Millisecond) // the client pauses its polling, as engine.io-client does
	c.Write(maskedText("5"))
	select {
	case <-upgraded:
	case <-time.After(3 * time.Second):
		t.Fatal(`the "5" sent after the shutdown began did not upgrade: the probe was cut`)
	}
	if rest := c.rest(t); !bytes.Equal(rest, closeGoingAway) {
		t.Fatalf("after the upgrade the client read %q, want close 1001", rest)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	node.waitReceived(t, len(maskedText("2probe"))+len(maskedText("5")))
}
