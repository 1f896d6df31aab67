package configs

import "time"

// Default returns a config with every default filled in and no pools.
// Load decodes the file on top of it, so omitted fields keep these values.
func Default() Config {
	return Config{
		Listen: "127.0.0.1:3200",
		Store: Store{
			Kind:   StoreMemory,
			Memory: MemoryStore{MaxPins: 1_000_000},
			Redis: RedisStore{
				KeyPrefix:    "sidpin:",
				DialTimeout:  Duration(time.Second),
				ReadTimeout:  Duration(100 * time.Millisecond),
				WriteTimeout: Duration(100 * time.Millisecond),
			},
		},
		Limits: Limits{
			MaxHeaderBytes: 16 << 10,
			MaxBodyBytes:   2 << 20,
			MaxConnections: 100_000,
			PerClient: PerClient{
				MaxConnections: 1000,
				HandshakeRate:  20,
				HandshakeBurst: 100,
				IPv6Prefix:     64,
			},
		},
		Timeouts: Timeouts{
			ClientRead:       Duration(10 * time.Second),
			ClientIdle:       Duration(90 * time.Second),
			UpstreamDial:     Duration(2 * time.Second),
			UpstreamResponse: Duration(60 * time.Second),
			WebSocketIdle:    Duration(120 * time.Second),
			PinSlack:         Duration(15 * time.Second),
			MaxPinLifetime:   Duration(5 * time.Minute),
			Handshake:        Duration(10 * time.Second), // below socket.io-client's 20 s connect timeout
			UpgradeProbe:     Duration(10 * time.Second),
			ShutdownGrace:    Duration(30 * time.Second), // above Engine.IO's default pingInterval (25s): held polls end on their own
		},
		Log: Log{Level: "info", Format: "text"},
	}
}

// setDefaults fills a pool read from YAML before its own keys are decoded onto it.
func (p *Pool) setDefaults() {
	p.Match.PathPrefix = "/"
	p.EngineIOPath = "/socket.io/"
	p.Balance = BalanceLeastSessions
	p.OnNodeRemoved = RemovedDrain
	p.MigrateRate = 50
	p.Discovery = Discovery{Scheme: "http", Interval: Duration(5 * time.Second), Timeout: Duration(2 * time.Second)}
	// TCP by default: it works in front of any node, while an HTTP check needs a route the operator
	// knows the node has (an official socket.io server answers 404 to /healthz, and would be "down").
	p.Health = Health{
		Kind:         HealthTCP,
		Path:         "/healthz",
		ExpectStatus: 200,
		Interval:     Duration(2 * time.Second),
		Timeout:      Duration(time.Second),
		Rise:         2,
		Fall:         3,
	}
}

// setDefaults fills a node read from YAML before its own keys are decoded onto it.
func (n *Node) setDefaults() { n.Weight = 1 }

// defaulter is implemented by list elements that have defaults of their own.
type defaulter interface{ setDefaults() }
