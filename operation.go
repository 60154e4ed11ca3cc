package courier

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultRetention is how long [Operations] keeps a completed operation by
// default.
const DefaultRetention = time.Hour

// ErrUnknownOperation is wrapped by the error of Status and Wait for an
// operation ID that was never submitted, or whose retention has passed.
var ErrUnknownOperation = errors.New("courier: unknown operation")

// OperationState is where an operation stands.
type OperationState uint8

const (
	// OperationPending: the request is queued; no attempt has started.
	OperationPending OperationState = iota + 1
	// OperationRunning: an attempt has started. The operation stays running
	// while a failed attempt waits for its retry.
	OperationRunning
	// OperationSucceeded: the handler returned a response; see
	// [Operation.Result].
	OperationSucceeded
	// OperationFailed: the request was dead-lettered; see [Operation.Err].
	OperationFailed
)

func (s OperationState) String() string {
	switch s {
	case OperationPending:
		return "pending"
	case OperationRunning:
		return "running"
	case OperationSucceeded:
		return "succeeded"
	case OperationFailed:
		return "failed"
	}
	return "OperationState(" + strconv.Itoa(int(s)) + ")"
}

// Done reports whether the operation has completed: succeeded or failed.
func (s OperationState) Done() bool { return s == OperationSucceeded || s == OperationFailed }

// Operation is a snapshot of one submitted request.
type Operation[Resp any] struct {
	// ID identifies the operation; it is the request message's ID.
	ID string
	// State says where the operation stands.
	State OperationState
	// IdempotencyKey is the request's key, or empty.
	IdempotencyKey string
	// Attempts counts the delivery attempts started so far.
	Attempts int
	// Result is the response, once State is [OperationSucceeded].
	Result Resp
	// Err is a [*RequestError], once State is [OperationFailed].
	Err error
	// SubmittedAt, StartedAt and CompletedAt are when the request was
	// submitted, when its first attempt started and when it completed; zero
	// until then.
	SubmittedAt, StartedAt, CompletedAt time.Time
}

// OperationOptions configures [NewOperations]. The zero value means the
// defaults.
type OperationOptions struct {
	// Retention is how long a completed operation stays known after it
	// completed; then Status and Wait report [ErrUnknownOperation], and its
	// idempotency key may start a new operation. Default [DefaultRetention].
	Retention time.Duration
}

// Operations runs requests of a [RequestQueue] asynchronously, in the
// asynchronous request-reply pattern: [Operations.Submit] returns an
// operation ID at once, [Operations.Status] tells where the operation stands
// and [Operations.Wait] waits for its outcome. A completed operation is kept
// for the retention, then forgotten.
//
// Operations keeps its table in memory, in the process: keep one per request
// queue and share it. Forgotten operations are dropped by the calls that come
// after their retention, so it runs no goroutine and needs no Close. Its
// methods are safe for concurrent use.
type Operations[Req, Resp any] struct {
	rq        *RequestQueue[Req, Resp]
	retention time.Duration

	mu        sync.Mutex
	ops       map[string]*opEntry[Resp]
	byKey     map[string]string    // idempotency key → operation ID
	completed ring[*opEntry[Resp]] // in order of completion, so of expiry
}

type opEntry[Resp any] struct {
	op      Operation[Resp] // guarded by Operations.mu
	done    chan struct{}   // closed when the operation completes
	expires time.Time
}

// NewOperations returns an empty operation table for rq. It fails with an
// error wrapping [ErrInvalidOption] for a nil rq or a negative retention.
func NewOperations[Req, Resp any](rq *RequestQueue[Req, Resp], opts OperationOptions) (*Operations[Req, Resp], error) {
	switch {
	case rq == nil:
		return nil, invalidOption("NewOperations: nil RequestQueue")
	case opts.Retention < 0:
		return nil, invalidOption("NewOperations: negative Retention %v", opts.Retention)
	case opts.Retention == 0:
		opts.Retention = DefaultRetention
	}
	return &Operations[Req, Resp]{
		rq:        rq,
		retention: opts.Retention,
		ops:       make(map[string]*opEntry[Resp]),
		byKey:     make(map[string]string),
	}, nil
}

// Submit sends req as a new operation and returns its ID once the request is
// queued, without waiting for it to be handled; it blocks like [Queue.Send]
// while the queue is full. opts are those of Send.
//
// A request with an idempotency key ([WithIdempotencyKey], or the queue's
// [IdempotencyKey] option) whose key belongs to an operation still known,
// pending, running or completed within its retention, is not sent again:
// Submit returns that operation's ID.
func (o *Operations[Req, Resp]) Submit(ctx context.Context, req Req, opts ...SendOption) (string, error) {
	m, err := o.rq.newRequest(ctx, req, opts)
	if err != nil {
		return "", err
	}
	// A copy: the operation outlives the request's message by its
	// retention, and m.ID would keep the message and its body alive.
	id, key := strings.Clone(m.ID), m.IdempotencyKey
	e := &opEntry[Resp]{
		op:   Operation[Resp]{ID: id, State: OperationPending, IdempotencyKey: key, SubmittedAt: m.SentAt},
		done: make(chan struct{}),
	}
	o.mu.Lock()
	o.expireLocked(time.Now())
	if key != "" {
		if existing, ok := o.byKey[key]; ok {
			o.mu.Unlock()
			return existing, nil
		}
		o.byKey[key] = id
	}
	o.ops[id] = e
	o.mu.Unlock()

	w := &waiter[Resp]{
		started: func(attempt int) { o.started(e, attempt) },
		done:    func(resp Resp, err error) { o.complete(e, resp, err) },
	}
	if err := o.rq.send(ctx, m, w); err != nil {
		// Never queued: the operation does not exist. A concurrent Submit of
		// the same key may have been given its ID; it will find it unknown.
		o.mu.Lock()
		delete(o.ops, id)
		if key != "" && o.byKey[key] == id {
			delete(o.byKey, key)
		}
		o.mu.Unlock()
		return "", err
	}
	return id, nil
}

// Status returns a snapshot of operation id, or an error wrapping
// [ErrUnknownOperation]. It does not block.
func (o *Operations[Req, Resp]) Status(id string) (Operation[Resp], error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.expireLocked(time.Now())
	e, ok := o.ops[id]
	if !ok {
		return Operation[Resp]{}, fmt.Errorf("%w: %q", ErrUnknownOperation, id)
	}
	return e.op, nil
}

// Wait blocks until operation id completes and returns its outcome: the
// response, or its [*RequestError]. It returns ctx's error if ctx ends first,
// and an error wrapping [ErrUnknownOperation] for an unknown id.
func (o *Operations[Req, Resp]) Wait(ctx context.Context, id string) (Resp, error) {
	var zero Resp
	o.mu.Lock()
	o.expireLocked(time.Now())
	e, ok := o.ops[id]
	o.mu.Unlock()
	if !ok {
		return zero, fmt.Errorf("%w: %q", ErrUnknownOperation, id)
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return e.op.Result, e.op.Err
}

// started records that an attempt of e began.
func (o *Operations[Req, Resp]) started(e *opEntry[Resp], attempt int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e.op.State.Done() {
		return
	}
	e.op.State, e.op.Attempts = OperationRunning, attempt
	if e.op.StartedAt.IsZero() {
		e.op.StartedAt = time.Now()
	}
}

// complete records e's outcome and starts its retention.
func (o *Operations[Req, Resp]) complete(e *opEntry[Resp], resp Resp, err error) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if e.op.State.Done() {
		return
	}
	if err != nil {
		e.op.State, e.op.Err = OperationFailed, err
		var re *RequestError
		if errors.As(err, &re) {
			e.op.Attempts = re.Attempts
		}
	} else {
		e.op.State, e.op.Result = OperationSucceeded, resp
	}
	e.op.CompletedAt = now
	e.expires = now.Add(o.retention)
	close(e.done)
	if _, known := o.ops[e.op.ID]; known {
		o.completed.push(e)
	}
}

// expireLocked forgets the completed operations whose retention has passed.
func (o *Operations[Req, Resp]) expireLocked(now time.Time) {
	for o.completed.len() > 0 {
		e := o.completed.at(0)
		if now.Before(e.expires) {
			return
		}
		o.completed.pop()
		delete(o.ops, e.op.ID)
		if k := e.op.IdempotencyKey; k != "" && o.byKey[k] == e.op.ID {
			delete(o.byKey, k)
		}
	}
}
