package courier

import (
	"context"
	"sync/atomic"
)

// consumer is one Consume or Subscribe call: a handler, its own middleware,
// and the workers that run it against one mailbox.
type consumer struct {
	mb         *mailbox
	handler    HandlerFunc // the typed handler, adapted
	middleware []Middleware
	chain      atomic.Pointer[builtChain]
}

// builtChain caches the composed handling chain for one version of the bus
// middleware, so Use can be called at any time and costs a delivery nothing
// but an atomic load.
type builtChain struct {
	version uint64
	h       HandlerFunc
}

func (c *consumer) handle() HandlerFunc {
	b := c.mb.bus
	if bc := c.chain.Load(); bc != nil && bc.version == b.mwVersion.Load() {
		return bc.h
	}
	mws, version := b.middlewareSnapshot()
	layers := append([][]Middleware{mws}, c.mb.layers...)
	layers = append(layers, c.middleware)
	bc := &builtChain{version: version, h: chainHandle(c.handler, layers...)}
	c.chain.Store(bc)
	return bc.h
}

// worker is one goroutine of a consumer.
type worker struct {
	c       *consumer
	current Envelope         // guarded by c.mb.mu; the message being handled
	pending []DeadLetterInfo // dead letters to announce once mb.mu is released
}

func (w *worker) run() {
	mb := w.c.mb
	defer mb.bus.workerExited()
	var handled Envelope
	for {
		mb.mu.Lock()
		if handled != nil {
			mb.handledLocked(w, handled)
			handled = nil
		}
		env := mb.nextLocked(w)
		mb.mu.Unlock()
		for i, rec := range w.pending {
			mb.bus.announce(rec)
			w.pending[i] = DeadLetterInfo{}
		}
		w.pending = w.pending[:0]
		if env == nil {
			return
		}
		if err := w.deliver(env); err != nil {
			mb.failed(w, env, err)
		} else {
			if mb.onHandled != nil {
				mb.onHandled(env)
			}
			handled = env
		}
	}
}

// deliver runs one attempt of env through the chain. A panic anywhere in the
// chain becomes a *PanicError, so a worker never dies with its message.
func (w *worker) deliver(env Envelope) (err error) {
	ctx := w.c.mb.bus.handlerCtx
	if md := env.Meta(); !md.ExpiresAt.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, md.ExpiresAt)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			err = NewPanicError(r)
		}
	}()
	return w.c.handle()(handlerContext(ctx, env), env)
}
