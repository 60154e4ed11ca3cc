package natsjs

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// ErrUnreachable is wrapped by Connect's error when no server answered.
var ErrUnreachable = errors.New("natsjs: NATS server unreachable")

// ConnectOptions configures [Connect].
type ConnectOptions struct {
	// Name is the connection's name, shown by the server. Optional.
	Name string
	// Timeout bounds the first connection attempt. Default 5 s.
	Timeout time.Duration
	// ReconnectWait is the pause between reconnection attempts once
	// connected. Default 1 s. The client reconnects for ever and buffers
	// publishes meanwhile, up to the nats.go default.
	ReconnectWait time.Duration
	// Extra are further nats.go options, applied last.
	Extra []nats.Option
}

// Connect connects to the NATS server or cluster at url (a comma-separated
// list for a cluster). When the first attempt finds no server it fails at
// once with an error wrapping [ErrUnreachable] that names the URL; once
// connected, the client reconnects for ever.
func Connect(url string, opts ConnectOptions) (*nats.Conn, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	wait := opts.ReconnectWait
	if wait <= 0 {
		wait = time.Second
	}
	all := []nats.Option{
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(wait),
	}
	if opts.Name != "" {
		all = append(all, nats.Name(opts.Name))
	}
	nc, err := nats.Connect(url, append(all, opts.Extra...)...)
	if err != nil {
		if errors.Is(err, nats.ErrNoServers) {
			return nil, fmt.Errorf("%w at %s: %v", ErrUnreachable, url, err)
		}
		return nil, fmt.Errorf("natsjs: connect to %s: %w", url, err)
	}
	return nc, nil
}
