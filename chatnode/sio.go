package chatnode

import (
	"encoding/json"
	"errors"
	"net/url"
	"sync"
	"time"

	"github.com/sidpin/sidpin/engineio"
	"github.com/sidpin/sidpin/socketio"
)

// NamespaceHandler is the application of one Socket.IO namespace.
type NamespaceHandler interface {
	// Authorize accepts or refuses a CONNECT; auth is the CONNECT payload (v5) or the namespace query
	// as a JSON object (v4 protocol, socket.io-client v2). A refusal is sent as CONNECT_ERROR.
	Authorize(auth json.RawMessage) error
	OnConnect(s *Socket, auth json.RawMessage)
	OnEvent(s *Socket, ev *Event)
	OnDisconnect(s *Socket, reason string)
}

// Event is one EVENT or BINARY_EVENT from a client.
type Event struct {
	Name        string
	Packet      socketio.Packet // Data still holds the binary placeholders
	Attachments [][]byte
	args        []socketio.Value
}

// Args are the arguments after the event name; binary ones at the top level have IsBinary set.
func (e *Event) Args() []socketio.Value { return e.args }

// WantsAck reports whether the client asked for an acknowledgement.
func (e *Event) WantsAck() bool { return e.Packet.ID >= 0 }

// SocketIOServer runs Socket.IO (protocol v5, and v4 for Engine.IO v3 clients) on an Engine.
type SocketIOServer struct {
	namespaces     map[string]NamespaceHandler
	connectTimeout time.Duration
}

// NewSocketIOServer serves the given namespaces ("/" and others); CONNECTs to any other get
// "Invalid namespace". A session that connects no namespace within connectTimeout (0: Node's 45s)
// is closed.
func NewSocketIOServer(namespaces map[string]NamespaceHandler, connectTimeout time.Duration) *SocketIOServer {
	if connectTimeout <= 0 {
		connectTimeout = 45 * time.Second
	}
	return &SocketIOServer{namespaces: namespaces, connectTimeout: connectTimeout}
}

// conn is the Socket.IO state of one Engine.IO session.
type conn struct {
	server  *SocketIOServer
	session *Session
	v4Proto bool // Socket.IO protocol v4 (Engine.IO v3 clients): no CONNECT payloads

	mu      sync.Mutex
	sockets map[string]*Socket
	pending *socketio.Reconstructor // a binary packet waiting for its attachments
	timer   *time.Timer
}

// OnOpen implements EngineHandler.
func (srv *SocketIOServer) OnOpen(s *Session) {
	c := &conn{server: srv, session: s, v4Proto: s.Version() == engineio.V3, sockets: map[string]*Socket{}}
	s.Data = c
	if c.v4Proto {
		// Socket.IO v2 servers join "/" on their own and say so with a bare CONNECT.
		c.connect(socketio.Packet{Type: socketio.Connect, Namespace: "/", ID: -1})
		return
	}
	c.timer = time.AfterFunc(srv.connectTimeout, func() {
		c.mu.Lock()
		idle := len(c.sockets) == 0
		c.mu.Unlock()
		if idle {
			s.Close("no namespace connected in time")
		}
	})
}

// OnClose implements EngineHandler.
func (srv *SocketIOServer) OnClose(s *Session, reason string) {
	c, _ := s.Data.(*conn)
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	sockets := c.sockets
	c.sockets = map[string]*Socket{}
	c.mu.Unlock()
	for _, sock := range sockets {
		sock.handler.OnDisconnect(sock, reason)
	}
}

// OnMessage implements EngineHandler: a text message is a packet, a binary one an attachment.
func (srv *SocketIOServer) OnMessage(s *Session, p engineio.Packet) {
	c := s.Data.(*conn)
	if err := c.onMessage(p); err != nil {
		s.engine.cfg.Logger.Debug("socket.io protocol error", "sid", s.ID(), "err", err)
		s.Close("parse error")
	}
}

var errUnexpectedBinary = errors.New("binary message without a pending binary packet")

func (c *conn) onMessage(p engineio.Packet) error {
	if p.Binary {
		if c.pending == nil {
			return errUnexpectedBinary
		}
		done, err := c.pending.Add(p.Data)
		if err != nil || !done {
			return err
		}
		r := c.pending
		c.pending = nil
		return c.dispatch(r.Packet(), r)
	}
	if c.pending != nil {
		return errors.New("text message while binary attachments are pending")
	}
	pkt, err := socketio.Decode(p.Data)
	if err != nil {
		return err
	}
	if pkt.Attachments > 0 {
		c.pending = socketio.NewReconstructor(pkt)
		return nil
	}
	return c.dispatch(pkt, nil)
}

func (c *conn) dispatch(pkt socketio.Packet, r *socketio.Reconstructor) error {
	c.mu.Lock()
	sock := c.sockets[pkt.Namespace]
	c.mu.Unlock()
	switch {
	case pkt.Type == socketio.Connect && sock == nil:
		c.connect(pkt)
		return nil
	case sock == nil || pkt.Type == socketio.Connect || pkt.Type == socketio.ConnectError:
		return errors.New("packet for a namespace that is not connected, or a second CONNECT")
	}
	switch pkt.Type {
	case socketio.Disconnect:
		c.remove(sock)
		sock.handler.OnDisconnect(sock, "client namespace disconnect")
	case socketio.Event, socketio.BinaryEvent:
		ev, err := newEvent(pkt, r, true)
		if err != nil {
			return err
		}
		sock.handler.OnEvent(sock, ev)
	case socketio.Ack, socketio.BinaryAck:
		ev, err := newEvent(pkt, r, false)
		if err != nil {
			return err
		}
		sock.onAck(ev)
	}
	return nil
}

// connect answers a CONNECT: the handler authorizes it, then the client gets the socket id.
func (c *conn) connect(pkt socketio.Packet) {
	nsp := pkt.Namespace
	handler, ok := c.server.namespaces[nsp]
	if !ok || (pkt.Query != "" && !c.v4Proto) {
		c.connectError(nsp, "Invalid namespace")
		return
	}
	auth := pkt.Data
	if c.v4Proto {
		auth = queryAsJSON(pkt.Query)
	}
	if err := handler.Authorize(auth); err != nil {
		c.connectError(nsp, err.Error())
		return
	}
	sock := &Socket{id: c.socketID(nsp), nsp: nsp, conn: c, handler: handler}
	c.mu.Lock()
	c.sockets[nsp] = sock
	c.mu.Unlock()
	reply := socketio.Packet{Type: socketio.Connect, Namespace: nsp, ID: -1}
	if !c.v4Proto {
		reply.Data = []byte(`{"sid":"` + sock.id + `"}`)
	}
	_ = c.send(reply, nil)
	handler.OnConnect(sock, auth)
}

// socketID is a fresh id in protocol v5; a v2 client derives its id from the Engine.IO sid itself
// ("sid" for "/", "/nsp#sid" otherwise), so the server must use the same.
func (c *conn) socketID(nsp string) string {
	switch {
	case !c.v4Proto:
		return newSID()
	case nsp == "/":
		return c.session.ID()
	}
	return nsp + "#" + c.session.ID()
}

func (c *conn) connectError(nsp, msg string) {
	data, _ := json.Marshal(msg)
	if !c.v4Proto {
		data, _ = json.Marshal(map[string]string{"message": msg})
	}
	_ = c.send(socketio.Packet{Type: socketio.ConnectError, Namespace: nsp, ID: -1, Data: data}, nil)
}

func (c *conn) remove(sock *Socket) {
	c.mu.Lock()
	delete(c.sockets, sock.nsp)
	c.mu.Unlock()
}

// send writes one Socket.IO packet and its attachments as one batch of Engine.IO messages.
func (c *conn) send(pkt socketio.Packet, attachments [][]byte) error {
	pkt.Attachments = len(attachments)
	msgs := make([]engineio.Packet, 0, 1+len(attachments))
	msgs = append(msgs, engineio.Packet{Type: engineio.Message, Data: socketio.Append(nil, pkt)})
	for _, a := range attachments {
		msgs = append(msgs, engineio.Packet{Type: engineio.Message, Data: a, Binary: true})
	}
	return c.session.Send(msgs...)
}

// queryAsJSON turns a v4-protocol namespace query ("token=x&a=b") into a JSON object.
func queryAsJSON(query string) json.RawMessage {
	values, _ := url.ParseQuery(query)
	m := make(map[string]string, len(values))
	for k, v := range values {
		m[k] = v[0]
	}
	data, _ := json.Marshal(m)
	return data
}

// Socket is one client connected to one namespace.
type Socket struct {
	id      string
	nsp     string
	conn    *conn
	handler NamespaceHandler

	ackMu   sync.Mutex
	lastAck int64                  // ids of acks this server asks for start at 1, like socketioxide
	acks    map[int64]func(*Event) // waiting for the client's ACK
}

// ID is the Socket.IO socket id (not the Engine.IO sid).
func (s *Socket) ID() string { return s.id }

// Namespace is the socket's namespace.
func (s *Socket) Namespace() string { return s.nsp }

// Session is the Engine.IO session carrying the socket.
func (s *Socket) Session() *Session { return s.conn.session }

// Emit sends an event; []byte arguments travel as binary attachments.
func (s *Socket) Emit(event string, args ...socketio.Arg) error {
	pkt, attachments, err := socketio.EncodeEvent(s.nsp, -1, event, args...)
	if err != nil {
		return err
	}
	return s.conn.send(pkt, attachments)
}

// SendEncoded sends a packet encoded once for many sockets (a broadcast). text must not change.
func (s *Socket) SendEncoded(text []byte, attachments [][]byte) error {
	msgs := make([]engineio.Packet, 0, 1+len(attachments))
	msgs = append(msgs, engineio.Packet{Type: engineio.Message, Data: text})
	for _, a := range attachments {
		msgs = append(msgs, engineio.Packet{Type: engineio.Message, Data: a, Binary: true})
	}
	return s.conn.session.Send(msgs...)
}

// Disconnect removes the socket from its namespace and tells the client ("io server disconnect").
func (s *Socket) Disconnect() {
	s.conn.remove(s)
	_ = s.conn.send(socketio.Packet{Type: socketio.Disconnect, Namespace: s.nsp, ID: -1}, nil)
	s.handler.OnDisconnect(s, "server namespace disconnect")
}

// newEvent splits an EVENT (named) or ACK (unnamed) packet into its arguments.
func newEvent(pkt socketio.Packet, r *socketio.Reconstructor, named bool) (*Event, error) {
	ev := &Event{Packet: pkt}
	var err error
	if r != nil {
		ev.Attachments = r.Attachments()
		ev.args, err = r.Args()
	} else {
		ev.args, err = plainArgs(pkt.Data)
	}
	if err != nil || !named {
		return ev, err
	}
	if len(ev.args) == 0 {
		return nil, errors.New("event without a name")
	}
	if ev.Name, err = socketio.EventName(pkt.Data); err != nil {
		return nil, err
	}
	ev.args = ev.args[1:]
	return ev, nil
}

// EmitRaw sends an event whose JSON array (name first) and attachments are already encoded, byte for
// byte. With onAck set, the client is asked to acknowledge and onAck receives its answer.
func (s *Socket) EmitRaw(array []byte, attachments [][]byte, onAck func(*Event)) error {
	pkt := socketio.Packet{Type: socketio.Event, Namespace: s.nsp, ID: -1, Data: array}
	if len(attachments) > 0 {
		pkt.Type = socketio.BinaryEvent
	}
	if onAck != nil {
		s.ackMu.Lock()
		s.lastAck++
		pkt.ID = s.lastAck
		if s.acks == nil {
			s.acks = map[int64]func(*Event){}
		}
		s.acks[pkt.ID] = onAck
		s.ackMu.Unlock()
	}
	return s.conn.send(pkt, attachments)
}

func (s *Socket) onAck(ev *Event) {
	s.ackMu.Lock()
	fn := s.acks[ev.Packet.ID]
	delete(s.acks, ev.Packet.ID)
	s.ackMu.Unlock()
	if fn != nil {
		fn(ev)
	}
}

func plainArgs(data []byte) ([]socketio.Value, error) {
	raw, err := socketio.Args(data)
	if err != nil {
		return nil, err
	}
	values := make([]socketio.Value, len(raw))
	for i, r := range raw {
		values[i] = socketio.Value{Raw: r}
	}
	return values, nil
}

// Ack answers the event's acknowledgement with args ([]byte travels as binary).
func (s *Socket) Ack(ev *Event, args ...socketio.Arg) error {
	if !ev.WantsAck() {
		return nil
	}
	pkt, attachments, err := socketio.EncodeAck(s.nsp, ev.Packet.ID, args...)
	if err != nil {
		return err
	}
	return s.conn.send(pkt, attachments)
}

// AckRaw answers with the event's own arguments, placeholders and attachments unchanged (an echo).
func (s *Socket) AckRaw(ev *Event, dataJSONArray []byte, attachments [][]byte) error {
	if !ev.WantsAck() {
		return nil
	}
	typ := socketio.Ack
	if len(attachments) > 0 {
		typ = socketio.BinaryAck
	}
	return s.conn.send(socketio.Packet{Type: typ, Namespace: s.nsp, ID: ev.Packet.ID, Data: dataJSONArray}, attachments)
}
