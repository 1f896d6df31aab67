package chatnode

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/sidpin/sidpin/socketio"
)

// Chat is the chat application of namespace "/": welcome, sendMessage, join, leave and echo.
// Broadcasts are encoded once and reach the sockets of this node directly and the other nodes
// through the Fanout.
type Chat struct {
	node   string
	fanout Fanout // nil: this node works alone

	mu      sync.RWMutex
	sockets map[*Socket]map[string]bool // socket -> rooms it joined
	rooms   map[string]map[*Socket]bool
}

// Broadcast is one chat message on its way to every node: the Socket.IO packet encoded once,
// and the room it is for ("" = everyone).
type Broadcast struct {
	Room        string
	Packet      []byte
	Attachments [][]byte
}

// Fanout carries broadcasts between the nodes of a cluster.
type Fanout interface {
	Publish(b Broadcast) error
}

// NewChat returns the chat of node name.
func NewChat(name string) *Chat {
	return &Chat{node: name, sockets: map[*Socket]map[string]bool{}, rooms: map[string]map[*Socket]bool{}}
}

// SetFanout connects the chat to the other nodes; Deliver receives their broadcasts.
func (c *Chat) SetFanout(f Fanout) { c.fanout = f }

// Sockets is the number of connected chat sockets on this node.
func (c *Chat) Sockets() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.sockets)
}

// Authorize accepts every client.
func (c *Chat) Authorize(json.RawMessage) error { return nil }

// OnConnect greets the client with the node's name.
func (c *Chat) OnConnect(s *Socket, _ json.RawMessage) {
	c.mu.Lock()
	c.sockets[s] = map[string]bool{}
	c.mu.Unlock()
	_ = s.Emit("welcome", map[string]string{"node": c.node})
}

// OnDisconnect forgets the socket and its rooms.
func (c *Chat) OnDisconnect(s *Socket, _ string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for room := range c.sockets[s] {
		delete(c.rooms[room], s)
		if len(c.rooms[room]) == 0 {
			delete(c.rooms, room)
		}
	}
	delete(c.sockets, s)
}

// OnEvent runs the chat events; unknown events are ignored, as a Socket.IO app without a listener does.
func (c *Chat) OnEvent(s *Socket, ev *Event) {
	switch ev.Name {
	case "sendMessage":
		c.sendMessage(s, ev)
	case "join", "leave":
		room, ok := roomArg(ev)
		if !ok {
			_ = s.Ack(ev, map[string]string{"error": "room must be a non-empty string"})
			return
		}
		c.setMembership(s, room, ev.Name == "join")
		_ = s.Ack(ev, map[string]string{"node": c.node, "room": room})
	case "echo":
		_ = s.AckRaw(ev, argsArray(ev), ev.Attachments)
	}
}

func roomArg(ev *Event) (string, bool) {
	args := ev.Args()
	if len(args) == 0 || args[0].IsBinary {
		return "", false
	}
	var room string
	if json.Unmarshal(args[0].Raw, &room) != nil || room == "" {
		return "", false
	}
	return room, true
}

// argsArray is the event's arguments (without the name) as a JSON array, placeholders kept.
func argsArray(ev *Event) []byte { return namedArgsArray("", ev) }

// namedArgsArray is ["name", args...] (or [args...] when name is ""), placeholders kept byte for byte.
func namedArgsArray(name string, ev *Event) []byte {
	out := []byte{'['}
	if name != "" {
		enc, _ := json.Marshal(name)
		out = append(out, enc...)
	}
	for _, a := range ev.Args() {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, a.Raw...)
	}
	return append(out, ']')
}

func (c *Chat) setMembership(s *Socket, room string, join bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	mine := c.sockets[s]
	if mine == nil {
		return // disconnected meanwhile
	}
	if join {
		mine[room] = true
		if c.rooms[room] == nil {
			c.rooms[room] = map[*Socket]bool{}
		}
		c.rooms[room][s] = true
		return
	}
	delete(mine, room)
	delete(c.rooms[room], s)
	if len(c.rooms[room]) == 0 {
		delete(c.rooms, room)
	}
}

// sendMessage broadcasts {node, from, msg, ts} as "message" to everyone, or to a room when the argument
// is {room, msg}, and acknowledges with {node}.
func (c *Chat) sendMessage(s *Socket, ev *Event) {
	msg := json.RawMessage("null")
	if args := ev.Args(); len(args) > 0 {
		msg = args[0].Raw
	}
	room, inner := splitRoom(msg)
	if room != "" {
		msg = inner
	}
	b := Broadcast{Room: room, Attachments: ev.Attachments}
	b.Packet = c.encodeMessage(s.ID(), msg, len(ev.Attachments))
	c.Deliver(b)
	if c.fanout != nil {
		if err := c.fanout.Publish(b); err != nil {
			// The fan-out logs its failures itself, at a bounded rate.
			s.Session().engine.cfg.Logger.Debug("chat fan-out failed; message reached this node only", "err", err)
		}
	}
	_ = s.Ack(ev, map[string]string{"node": c.node})
}

// splitRoom recognises {"room": "...", "msg": ...}.
func splitRoom(msg json.RawMessage) (string, json.RawMessage) {
	if len(msg) == 0 || msg[0] != '{' {
		return "", nil
	}
	var m struct {
		Room *string         `json:"room"`
		Msg  json.RawMessage `json:"msg"`
	}
	if json.Unmarshal(msg, &m) != nil || m.Room == nil || *m.Room == "" {
		return "", nil
	}
	if m.Msg == nil {
		m.Msg = json.RawMessage("null")
	}
	return *m.Room, m.Msg
}

// encodeMessage writes the "message" event once: ["message",{"node":…,"from":…,"msg":…,"ts":…}].
// With attachments (msg holds their placeholders) it is a BINARY_EVENT announcing them.
func (c *Chat) encodeMessage(from string, msg json.RawMessage, attachments int) []byte {
	var data bytes.Buffer
	data.WriteString(`["message",{"node":`)
	writeJSONString(&data, c.node)
	data.WriteString(`,"from":`)
	writeJSONString(&data, from)
	data.WriteString(`,"msg":`)
	data.Write(msg)
	data.WriteString(`,"ts":`)
	data.WriteString(strconv.FormatInt(time.Now().UnixMilli(), 10))
	data.WriteString(`}]`)
	pkt := socketio.Packet{Type: socketio.Event, Namespace: "/", ID: -1, Data: data.Bytes()}
	if attachments > 0 {
		pkt.Type, pkt.Attachments = socketio.BinaryEvent, attachments
	}
	return socketio.Append(nil, pkt)
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always marshals
	b.Write(enc)
}

// Deliver sends a broadcast to this node's sockets (all of them, or the room's).
func (c *Chat) Deliver(b Broadcast) {
	c.mu.RLock()
	targets := make([]*Socket, 0, len(c.sockets))
	if b.Room == "" {
		for s := range c.sockets {
			targets = append(targets, s)
		}
	} else {
		for s := range c.rooms[b.Room] {
			targets = append(targets, s)
		}
	}
	c.mu.RUnlock()
	for _, s := range targets {
		_ = s.SendEncoded(b.Packet, b.Attachments) // a closed or slow session drops out on its own
	}
}
