package proxy

import (
	"bytes"
	"io"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/backends"
)

// bufferLimit is the largest answer read whole before it is passed on: a node's usual answers (a
// ping, a few messages) cost one copy. A larger answer, or one of unknown length, is streamed to the
// client through fasthttp's buffers, so its size never decides sidpin's memory.
const bufferLimit = 64 << 10

// exchange is one request's trip to a node and back.
type exchange struct {
	node     *backends.Node
	deadline time.Time
	// handshake: the request opens a session, so a node that misses the deadline is at fault.
	handshake bool
	relay     relay
}

// relay says how an answer's body is passed on.
type relay struct {
	// watch, when set, sees every byte of the body as it passes; done then runs once the body is
	// over, with whether it was passed on whole.
	watch io.Writer
	done  func(complete bool)
	// prefix holds the body's first bytes, already read from the node (a handshake's sniffed start).
	prefix []byte
}

// forward sends the client's request to the node and relays its answer into ctx.Response. It never
// retries a request that may have reached the node. The error is the node's, already answered.
func (p *Proxy) forward(ctx *fasthttp.RequestCtx, x exchange) error {
	cleanRequest(&ctx.Request.Header)
	p.addForwarded(ctx)
	up, err := p.send(ctx, x)
	if err != nil {
		return err
	}
	relayAnswer(ctx, up, x.relay)
	return nil
}

// send makes the request and returns the node's answer with its head read and its body unread.
func (p *Proxy) send(ctx *fasthttp.RequestCtx, x exchange) (*fasthttp.Response, error) {
	up := fasthttp.AcquireResponse()
	up.StreamBody = true
	err := x.node.Do(&ctx.Request, up, x.deadline)
	if err != nil {
		fasthttp.ReleaseResponse(up)
		p.answerUpstreamError(ctx, x.node, err, x.handshake)
		return nil, err
	}
	x.node.ObserveSuccess()
	return up, nil
}

// relayAnswer moves the node's answer up into ctx.Response, cleaned of hop-by-hop headers, and
// releases up: at once when the body is small enough to be read whole, else when the client has it.
func relayAnswer(ctx *fasthttp.RequestCtx, up *fasthttp.Response, r relay) {
	up.Header.CopyTo(&ctx.Response.Header)
	cleanResponse(&ctx.Response.Header)
	body := up.BodyStream()
	size := up.Header.ContentLength()
	switch {
	case body == nil: // a HEAD, 204 or 304 answer: no body at all
		fasthttp.ReleaseResponse(up)
		finish(r.done, true)
	case size >= 0 && size <= bufferLimit && r.prefix == nil:
		complete := readWhole(ctx, body, size, r.watch)
		fasthttp.ReleaseResponse(up) // closes the stream: a whole read gives the connection back
		if !complete {
			ctx.Response.Reset()
			ctx.Error("sidpin: the chat node's answer was cut short", fasthttp.StatusBadGateway)
		}
		finish(r.done, complete)
	default:
		if size < 0 {
			size = -1 // chunked, or until the node closes: the client gets it chunked
		}
		s := &answerStream{body: body, up: up, watch: r.watch, done: r.done}
		if len(r.prefix) > 0 {
			s.body = io.MultiReader(bytes.NewReader(r.prefix), body)
			if r.watch != nil {
				_, _ = r.watch.Write(r.prefix)
			}
		}
		ctx.Response.SetBodyStream(s, size)
	}
}

func finish(done func(bool), complete bool) {
	if done != nil {
		done(complete)
	}
}

// readWhole reads a body of known, small size into ctx.Response.
func readWhole(ctx *fasthttp.RequestCtx, body io.Reader, size int, watch io.Writer) bool {
	buf := smallBodies.Get().(*[]byte)
	defer smallBodies.Put(buf)
	b := (*buf)[:size]
	if _, err := io.ReadFull(body, b); err != nil {
		return false
	}
	if watch != nil {
		_, _ = watch.Write(b)
	}
	ctx.Response.SetBody(b)
	return true
}

var smallBodies = sync.Pool{New: func() any { b := make([]byte, bufferLimit); return &b }}

// answerStream is a large answer on its way to the client: fasthttp's server reads it through its
// own buffer and closes it when done, which gives the node connection back (or closes it, when the
// body was not read to its end).
type answerStream struct {
	body  io.Reader
	up    *fasthttp.Response
	watch io.Writer
	done  func(bool)
	eof   bool
}

func (s *answerStream) Read(p []byte) (int, error) {
	n, err := s.body.Read(p)
	if n > 0 && s.watch != nil {
		_, _ = s.watch.Write(p[:n])
	}
	if err == io.EOF {
		s.eof = true
	}
	return n, err
}

func (s *answerStream) Close() error {
	fasthttp.ReleaseResponse(s.up) // closes the node's stream
	finish(s.done, s.eof)
	return nil
}
