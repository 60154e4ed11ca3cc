package courier

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
)

// RequestHandler serves one delivery attempt of a request: it returns the
// response, or an error that fails the attempt as a [Handler]'s does (it is
// retried, or with [Permanent] dead-lettered at once).
type RequestHandler[Req, Resp any] func(ctx context.Context, m *Message[Req]) (Resp, error)

// RequestQueue is a queue of requests of type Req whose handler answers each
// with a Resp: a caller sends a request and waits for its reply
// ([RequestQueue.Request]), or submits it and asks for its status later
// ([Operations]). It is a [Queue] underneath, with its retries, dead letters,
// ordering keys and middleware; the reply goes straight back to the waiting
// caller in the process, matched by the request message's ID.
//
// A RequestQueue is a handle: every handle of one name on one bus shares the
// queue and its waiting callers. Its methods are safe for concurrent use.
type RequestQueue[Req, Resp any] struct {
	q  *Queue[Req]
	rc *replies[Resp]
}

// replies is the state a request queue's handles share: who waits for which
// request.
type replies[Resp any] struct {
	mu      sync.Mutex
	waiting map[string]*waiter[Resp] // request message ID → its caller
	watched atomic.Int64             // waiters in waiting that want started: none, no lookup per delivery

	delivered, dropped atomic.Uint64
	route              *replyRoute[Resp] // over a transport: where replies travel
}

// waiter is a caller waiting for one request: Request's, or an operation.
type waiter[Resp any] struct {
	started func(attempt int) // an attempt began; nil when nobody asks
	done    func(Resp, error) // called once, outside every lock, and must not block
}

// RequestStats is a snapshot of a request queue.
type RequestStats struct {
	// Stats are the counters of the queue the requests travel on.
	Stats
	// Waiting counts requests whose caller or operation waits for a reply.
	Waiting int
	// RepliesDelivered counts replies, responses and failures alike, handed
	// to a waiting caller or operation.
	RepliesDelivered uint64
	// RepliesDropped counts replies that found nobody waiting: the caller had
	// given up, another delivery of the same request had been answered, or
	// the message reached the queue without a caller (a replay, a plain
	// Send on [RequestQueue.Queue]).
	RepliesDropped uint64
}

// NewRequestQueue declares the request queue name on bus, for requests of
// type Req answered with a Resp, or returns a handle to it when it exists.
// It takes the options of [NewQueue] and fails like it; name must not be
// declared as anything else, plain queues of Req included ([ErrTypeMismatch]).
//
// On a bus with a [Transport], requests and replies both travel through the
// broker, so a request may be served by another process: each requesting
// bus consumes a reply queue of its own (see [WithName]), and a request
// carries its name in the [HeaderReplyTo] header. A [*RequestError] that
// crossed the broker keeps its reason and attempts, and the last error's
// text only: errors.Is no longer finds the handler's sentinel errors.
func NewRequestQueue[Req, Resp any](bus *Bus, name string, opts ...Option) (*RequestQueue[Req, Resp], error) {
	cfg, err := declarationConfig(bus, name, scopeQueue, opts)
	if err != nil {
		return nil, err
	}
	typ := reflect.TypeFor[func(Req) Resp]()
	bus.mu.Lock()
	defer bus.mu.Unlock()
	d, exists, err := bus.declareLocked(name, "request queue", typ)
	if err != nil {
		return nil, err
	}
	if exists {
		if len(opts) > 0 {
			return nil, invalidOption("request queue %q exists: options are taken only when it is first declared", name)
		}
		qc := d.obj.(*queueCore)
		return &RequestQueue[Req, Resp]{q: &Queue[Req]{c: qc}, rc: qc.ext.(*replies[Resp])}, nil
	}
	if err := cfg.checkKeyType(name, reflect.TypeFor[Req]()); err != nil {
		return nil, err
	}
	rc := &replies[Resp]{waiting: make(map[string]*waiter[Resp])}
	qc := &queueCore{bus: bus, name: name, workers: cfg.workers, mws: cfg.middleware, keyFn: cfg.keyFn, ext: rc}
	qc.mb = newMailbox(bus, name, "", &cfg, cfg.middleware)
	qc.mb.onDead = rc.deadLettered
	qc.mb.onHandled = rc.handled
	if err := qc.attach(&cfg, decodeMessage[Req]); err != nil {
		return nil, err
	}
	bus.names[name] = declaration{kind: "request queue", typ: typ, obj: qc}
	rq := &RequestQueue[Req, Resp]{q: &Queue[Req]{c: qc}, rc: rc}
	if bus.transport != nil {
		// The reply queue is declared like any queue, under bus.mu.
		bus.mu.Unlock()
		rt, err := openReplies(bus, name, rc)
		bus.mu.Lock()
		if err != nil {
			return nil, err
		}
		rc.route = rt
	}
	return rq, nil
}

// Name returns the request queue's name.
func (rq *RequestQueue[Req, Resp]) Name() string { return rq.q.Name() }

// Queue returns the queue the requests travel on, for its dead letters and
// stats. A message sent on it directly is served, but nobody gets its reply.
func (rq *RequestQueue[Req, Resp]) Queue() *Queue[Req] { return rq.q }

// Stats returns a snapshot of the request queue's counters.
func (rq *RequestQueue[Req, Resp]) Stats() RequestStats {
	rq.rc.mu.Lock()
	waiting := len(rq.rc.waiting)
	rq.rc.mu.Unlock()
	return RequestStats{
		Stats:            rq.q.Stats(),
		Waiting:          waiting,
		RepliesDelivered: rq.rc.delivered.Load(),
		RepliesDropped:   rq.rc.dropped.Load(),
	}
}

// Serve starts answering requests with h on [Workers] goroutines, like
// [Queue.Consume], whose options it takes. Serve may be called several
// times: the servers compete for requests.
//
// The response h returns is the reply, handed to the caller when h returns.
// An error fails the attempt; the caller gets nothing until the retry
// policy gives up or the error is [Permanent], and then a [*RequestError]
// that wraps the last error. A request delivered more than once (a retry
// after middleware outside h failed the attempt, a redelivery) still gets
// one reply: the first; the others are dropped and counted.
//
// It fails with [ErrNilHandler], [ErrInvalidOption], or [ErrClosed] once the
// bus shuts down.
func (rq *RequestQueue[Req, Resp]) Serve(h RequestHandler[Req, Resp], opts ...Option) error {
	if h == nil {
		return ErrNilHandler
	}
	rc := rq.rc
	return rq.q.Consume(func(ctx context.Context, m *Message[Req]) error {
		rc.started(m.ID, m.Attempt)
		resp, err := h(ctx, m)
		if err != nil {
			return err
		}
		if rc.route != nil && m.Header(HeaderReplyTo) != "" {
			return rc.route.answer(ctx, &m.Metadata, resp)
		}
		rc.reply(m.ID, resp, nil)
		return nil
	}, opts...)
}

// Request sends req and waits for its reply: the response, the
// [*RequestError] of a request that was dead-lettered (its handler's last
// error once the retries ran out or at once for a [Permanent] one; a time to
// live that ran out; a shutdown), or ctx's error when ctx ends first. opts
// are those of [Queue.Send]; Request blocks like Send while the queue is
// full.
//
// A caller that gives up leaves nothing behind: its request may still be
// handled, and the reply is then dropped and counted in
// [RequestStats.RepliesDropped]. Give the request a time to live
// ([WithTTL]) so that servers skip requests nobody waits for any more.
//
// A request that middleware acknowledges without running the handler (the
// idempotency middleware finding its key done) gets [ErrNoReply]; to get
// the earlier result of a resubmitted key, use [Operations], which
// recognises the key itself while it keeps the operation.
func (rq *RequestQueue[Req, Resp]) Request(ctx context.Context, req Req, opts ...SendOption) (Resp, error) {
	var zero Resp
	type reply struct {
		resp Resp
		err  error
	}
	ch := make(chan reply, 1)
	m, err := rq.newRequest(ctx, req, opts)
	if err != nil {
		return zero, err
	}
	id := m.ID
	w := &waiter[Resp]{done: func(resp Resp, err error) { ch <- reply{resp, err} }}
	if err := rq.send(ctx, m, w); err != nil {
		return zero, err
	}
	select {
	case r := <-ch:
		return r.resp, r.err
	case <-ctx.Done():
		if rq.rc.forget(id) {
			return zero, ctx.Err()
		}
		r := <-ch // the reply was on its way: it is in ch, or about to be
		return r.resp, r.err
	}
}

// newRequest builds the message of a request, with its idempotency key.
func (rq *RequestQueue[Req, Resp]) newRequest(ctx context.Context, req Req, opts []SendOption) (*Message[Req], error) {
	qc := rq.q.c
	m, err := newMessage(ctx, qc.name, req, false, opts)
	if err != nil {
		return nil, err
	}
	if qc.keyFn != nil && m.IdempotencyKey == "" {
		m.IdempotencyKey = qc.keyFn(m)
	}
	return m, nil
}

// send registers w as m's caller and sends m. When the send fails, w is
// forgotten (it may have been told already, if the send dead-lettered m).
func (rq *RequestQueue[Req, Resp]) send(ctx context.Context, m *Message[Req], w *waiter[Resp]) error {
	id := m.ID
	rq.rc.mu.Lock()
	rq.rc.waiting[id] = w
	if w.started != nil {
		rq.rc.watched.Add(1)
	}
	rq.rc.mu.Unlock()
	if rt := rq.rc.route; rt != nil {
		m.SetHeader(HeaderReplyTo, rt.inbox)
	}
	if err := rq.q.c.sendFunc()(ctx, m); err != nil {
		rq.rc.forget(id)
		return err
	}
	return nil
}

// forget removes the caller of request id and reports whether it was still
// waiting.
func (rc *replies[Resp]) forget(id string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.takeLocked(id) != nil
}

// takeLocked removes and returns the caller of request id, or nil.
func (rc *replies[Resp]) takeLocked(id string) *waiter[Resp] {
	w := rc.waiting[id]
	if w == nil {
		return nil
	}
	delete(rc.waiting, id)
	if w.started != nil {
		rc.watched.Add(-1)
	}
	return w
}

// started tells the caller of request id, if it asks, that an attempt began.
func (rc *replies[Resp]) started(id string, attempt int) {
	if rc.watched.Load() == 0 {
		return // only Request callers wait, and they do not ask
	}
	rc.mu.Lock()
	w := rc.waiting[id]
	rc.mu.Unlock()
	if w != nil && w.started != nil {
		w.started(attempt)
	}
}

// reply hands the outcome of request id to its caller, or counts it dropped.
func (rc *replies[Resp]) reply(id string, resp Resp, err error) {
	rc.mu.Lock()
	w := rc.takeLocked(id)
	rc.mu.Unlock()
	if w == nil {
		rc.dropped.Add(1)
		return
	}
	rc.delivered.Add(1)
	w.done(resp, err)
}

// handled is the mailbox's hook for an acknowledged request: one whose
// caller still waits got no reply from the handler (middleware, such as the
// idempotency middleware finding its key done, acknowledged it without
// running the handler), so the caller gets [ErrNoReply] instead of waiting
// for ever.
func (rc *replies[Resp]) handled(env Envelope) {
	md := env.Meta()
	if rc.route != nil && md.Header(HeaderReplyTo) != "" {
		if md.Header(replyDone) == "" {
			rc.route.failed(md.Header(HeaderReplyTo), replyMsg[Resp]{RequestID: md.ID, NoReply: true})
		}
		return
	}
	id := md.ID
	rc.mu.Lock()
	w := rc.takeLocked(id)
	rc.mu.Unlock()
	if w != nil {
		var zero Resp
		rc.delivered.Add(1)
		w.done(zero, ErrNoReply)
	}
}

// deadLettered is the mailbox's dead-letter hook: a request that ends in the
// dead-letter queue is answered with its failure.
func (rc *replies[Resp]) deadLettered(d DeadLetterInfo) {
	if to := d.Header(HeaderReplyTo); rc.route != nil && to != "" {
		re := newRequestError(d)
		rc.route.failed(to, replyMsg[Resp]{RequestID: d.ID, Reason: re.Reason, Attempts: re.Attempts, Error: re.Err.Error()})
		return
	}
	var zero Resp
	rc.reply(d.ID, zero, newRequestError(d))
}

// RequestError is the failure a request's caller gets when the request was
// dead-lettered instead of answered. It wraps the last error, so errors.Is
// and errors.As see the handler's own error.
type RequestError struct {
	// RequestID is the ID of the request message, and of its operation.
	RequestID string
	// Reason says why the request was dead-lettered.
	Reason Reason
	// Attempts is how many delivery attempts were made.
	Attempts int
	// Err is the last error: the handler's for [ReasonMaxAttempts] and
	// [ReasonPermanent], [ErrExpired], [ErrAbandoned], [ErrClosed] for a
	// request the shutdown caught before any attempt, [ErrOverflow] for one
	// the overflow policy dropped.
	Err error
}

func newRequestError(d DeadLetterInfo) *RequestError {
	err := d.Err
	if err == nil {
		err = ErrClosed
		if d.Reason == ReasonOverflow {
			err = ErrOverflow
		}
	}
	// The caller may keep the error: a copy of the ID does not keep the
	// request's message alive with it.
	return &RequestError{RequestID: strings.Clone(d.ID), Reason: d.Reason, Attempts: d.Attempts, Err: err}
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("courier: request %s failed (%s after %d attempt(s)): %v", e.RequestID, e.Reason, e.Attempts, e.Err)
}

// Unwrap returns the last error.
func (e *RequestError) Unwrap() error { return e.Err }
