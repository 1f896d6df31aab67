package chatnode

import (
	"encoding/json"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"
)

// PeerFanout carries chat broadcasts to other nodes by HTTP POST, for a small cluster without Redis
// (the demo). Delivery is best effort: a peer that is down misses the messages sent meanwhile.
type PeerFanout struct {
	peers  []string // base URLs
	origin string
	queue  chan []byte
	client *fasthttp.Client
	log    *slog.Logger
}

// peerPath is where a node receives its peers' broadcasts.
const peerPath = "/internal/peer-broadcast"

// peerQueue bounds the broadcasts waiting to be posted; past it they are dropped, not buffered.
const peerQueue = 1024

// NewPeerFanout posts every broadcast to each of peers.
func NewPeerFanout(peers []string, log *slog.Logger) *PeerFanout {
	f := &PeerFanout{peers: peers, origin: newSID(), queue: make(chan []byte, peerQueue), log: log,
		client: &fasthttp.Client{ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}}
	go f.send()
	return f
}

// Publish implements Fanout.
func (f *PeerFanout) Publish(b Broadcast) error {
	data, err := json.Marshal(envelope{Origin: f.origin, Room: b.Room, Packet: b.Packet, Attachments: b.Attachments})
	if err != nil {
		return err
	}
	select {
	case f.queue <- data:
	default:
		f.log.Warn("peer fan-out queue full; broadcast dropped")
	}
	return nil
}

func (f *PeerFanout) send() {
	for data := range f.queue {
		for _, peer := range f.peers {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI(peer + peerPath)
			req.Header.SetMethod(fasthttp.MethodPost)
			req.SetBody(data)
			if err := f.client.DoTimeout(req, resp, 2*time.Second); err != nil {
				f.log.Debug("peer unreachable", "peer", peer, "err", err)
			}
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
		}
	}
}

// servePeerBroadcast delivers a peer's broadcast to this node's sockets.
func (n *Node) servePeerBroadcast(ctx *fasthttp.RequestCtx) {
	var env envelope
	if !ctx.IsPost() || n.chat == nil || json.Unmarshal(ctx.PostBody(), &env) != nil {
		ctx.Error("bad peer broadcast", fasthttp.StatusBadRequest)
		return
	}
	n.chat.Deliver(Broadcast{Room: env.Room, Packet: env.Packet, Attachments: env.Attachments})
}
