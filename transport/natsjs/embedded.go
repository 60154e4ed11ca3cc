package natsjs

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// SyncPolicy says when the embedded server writes JetStream data to disk.
type SyncPolicy struct {
	always   bool
	interval time.Duration
}

// SyncAlways syncs every write before it is acknowledged: an acknowledged
// message survives a machine crash. The default.
var SyncAlways = SyncPolicy{always: true}

// SyncEvery syncs every d: faster, but a machine crash (not a process crash)
// loses what was written in the last d. d must be positive.
func SyncEvery(d time.Duration) SyncPolicy { return SyncPolicy{interval: d} }

func (p SyncPolicy) String() string {
	if p.always || p.interval <= 0 {
		return "sync always"
	}
	return "sync every " + p.interval.String()
}

// EmbeddedOptions configures [StartEmbedded].
type EmbeddedOptions struct {
	// Dir is where JetStream keeps its files. Required: the same Dir after a
	// restart brings the streams back.
	Dir string
	// Sync is the disk sync policy; the zero value means [SyncAlways].
	Sync SyncPolicy
	// Listen makes the server accept network clients on ListenHost:ListenPort
	// (a port of 0 picks a free one), so that other processes can share it.
	// By default it accepts only in-process connections.
	Listen     bool
	ListenHost string
	ListenPort int
	// ReadyTimeout bounds how long StartEmbedded waits for the server to be
	// ready. Default 10 s.
	ReadyTimeout time.Duration
}

// ErrNoDir is returned by StartEmbedded without EmbeddedOptions.Dir.
var ErrNoDir = errors.New("natsjs: embedded server needs a storage directory")

// Embedded is an in-process nats-server with JetStream. Stop it with
// Shutdown.
type Embedded struct {
	srv  *server.Server
	sync SyncPolicy
}

// StartEmbedded starts an embedded server and waits until it is ready for
// connections.
func StartEmbedded(opts EmbeddedOptions) (*Embedded, error) {
	if opts.Dir == "" {
		return nil, ErrNoDir
	}
	sync := opts.Sync
	if !sync.always && sync.interval <= 0 {
		sync = SyncAlways
	}
	so := &server.Options{
		JetStream:  true,
		StoreDir:   opts.Dir,
		SyncAlways: sync.always,
		NoLog:      true,
		NoSigs:     true,
		DontListen: !opts.Listen,
		Host:       opts.ListenHost,
		Port:       opts.ListenPort,
	}
	if !sync.always {
		so.SyncInterval = sync.interval
	}
	if opts.Listen && opts.ListenPort == 0 {
		so.Port = server.RANDOM_PORT
	}
	if opts.Listen && opts.ListenPort != 0 {
		// The server logs nothing here, and would only time out: say why.
		addr := net.JoinHostPort(opts.ListenHost, strconv.Itoa(opts.ListenPort))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("natsjs: embedded server cannot listen on %s: %w", addr, err)
		}
		l.Close()
	}
	srv, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("natsjs: embedded server: %w", err)
	}
	srv.Start()
	wait := opts.ReadyTimeout
	if wait <= 0 {
		wait = 10 * time.Second
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("natsjs: embedded server not ready after %v", wait)
	}
	return &Embedded{srv: srv, sync: sync}, nil
}

// Sync returns the server's sync policy.
func (e *Embedded) Sync() SyncPolicy { return e.sync }

// ClientURL returns the URL network clients connect to, or "" when the
// server accepts only in-process connections.
func (e *Embedded) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Connect opens an in-process connection to the server.
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect("", append([]nats.Option{nats.InProcessServer(e.srv)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("natsjs: connect to embedded server: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until it has stopped and flushed its
// files. Close connections first, or they will try to reconnect.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// JetStreamConfig returns the server's JetStream configuration, to check
// what it runs with.
func (e *Embedded) JetStreamConfig() server.JetStreamConfig {
	if c := e.srv.JetStreamConfig(); c != nil {
		return *c
	}
	return server.JetStreamConfig{}
}
