package proxy

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/sessionlog"
)

// kickTimeout bounds the close packet sent to the node of a kicked session.
const kickTimeout = 2 * time.Second

// Kick ends a session: its pin is evicted (every instance sharing the pin table forgets it and closes
// the session's WebSocket if it holds it), and the node of a polling session is asked to close it
// with an Engine.IO close packet, so the client hears of it at once (its held poll answers) and
// reconnects. The pin is returned; found is false when the sid had none.
func (p *Proxy) Kick(ctx context.Context, sid string) (pin affinity.Pin, found bool, err error) {
	return p.kick(ctx, sid, sessionlog.EndKicked)
}

// kick is Kick, for a migration too: the session's line names cause.
func (p *Proxy) kick(ctx context.Context, sid string, cause sessionlog.Cause) (pin affinity.Pin, found bool, err error) {
	pin, found, err = p.store.Lookup(ctx, sid)
	if err != nil || !found {
		return pin, found, err
	}
	p.sessions.End(sid, cause) // before the eviction, whose echo here would call it a kick
	if _, err := p.store.Evict(ctx, sid); err != nil {
		return pin, true, fmt.Errorf("proxy: kick %s: %w", sid, err)
	}
	if pin.Transport == affinity.TransportPolling {
		if err := p.closeAtNode(pin); err != nil {
			p.log.Warn("kicked session: the node did not take the close packet", "sid", sid, "node", pin.Node, "err", err)
		}
	}
	p.log.Info("session kicked", "sid", sid, "pool", pin.Pool, "node", pin.Node, "transport", pin.Transport)
	return pin, true, nil
}

// closeAtNode posts a close packet to the session on its node, as the client would to leave.
func (p *Proxy) closeAtNode(pin affinity.Pin) error {
	set := p.nodes.Current()
	pool := set.Pool(pin.Pool)
	var node *backends.Node
	if pool != nil {
		node = pool.Node(pin.Node)
	}
	if node == nil || node.Down() {
		return nil // nothing to tell: the node is gone
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	q := url.Values{"EIO": {fmt.Sprint(pin.EIO)}, "transport": {"polling"}, "sid": {pin.SID}}
	req.SetRequestURI(pool.EngineIOPath + "?" + q.Encode())
	req.SetHost(node.Addr)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("text/plain;charset=UTF-8")
	body := "1"
	if pin.EIO == 3 {
		body = "1:1" // v3 payloads are length-prefixed
	}
	req.SetBodyString(body)
	if err := node.Do(req, resp, time.Now().Add(kickTimeout)); err != nil {
		return err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return fmt.Errorf("node answered %d %q", resp.StatusCode(), resp.Body())
	}
	return nil
}

// sessionTunnels maps the sid of each WebSocket this instance relays to the function that closes it.
type sessionTunnels struct{ m sync.Map }

func (t *sessionTunnels) add(sid string, closeTunnel func()) { t.m.Store(sid, closeTunnel) }
func (t *sessionTunnels) remove(sid string)                  { t.m.Delete(sid) }

// close closes the WebSocket of sid, if this instance relays it.
func (t *sessionTunnels) close(sid string) bool {
	v, ok := t.m.LoadAndDelete(sid)
	if ok {
		v.(func())()
	}
	return ok
}

// evicted ends what this instance holds of a session evicted by any instance: its WebSocket.
func (p *Proxy) evicted(sid string) {
	p.sessions.End(sid, p.evictedCause(sid))
	if p.tunnels.close(sid) {
		p.log.Info("kicked session's websocket closed", "sid", sid)
	}
}
