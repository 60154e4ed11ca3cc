package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/courierbus/courier"
)

// ReportRequest asks for a report.
type ReportRequest struct {
	Name    string `json:"name"`
	Quarter string `json:"quarter"`
}

// Report is a generated report.
type Report struct {
	Name     string `json:"name"`
	Quarter  string `json:"quarter"`
	Rows     int    `json:"rows"`
	Attempts int    `json:"attempts"` // how many attempts it took
}

// retryAfter is the Retry-After the API suggests to pollers, in seconds.
const retryAfter = 1

// maxWait bounds the long poll of GET /operations/{id}?wait=.
const maxWait = 30 * time.Second

// service is the report API: POST /reports submits a report request to the
// reports request queue, GET /operations/{id} reports its status, and GET
// /reports/{id} returns the report once it is done.
type service struct {
	reports *courier.RequestQueue[ReportRequest, Report]
	ops     *courier.Operations[ReportRequest, Report]
}

// newService declares the reports request queue on bus, serves it with
// generate, and keeps completed operations for retention.
func newService(bus *courier.Bus, generate courier.RequestHandler[ReportRequest, Report], retention time.Duration, opts ...courier.Option) (*service, error) {
	reports, err := courier.NewRequestQueue[ReportRequest, Report](bus, "reports", opts...)
	if err != nil {
		return nil, err
	}
	ops, err := courier.NewOperations(reports, courier.OperationOptions{Retention: retention})
	if err != nil {
		return nil, err
	}
	if err := reports.Serve(generate); err != nil {
		return nil, err
	}
	return &service{reports: reports, ops: ops}, nil
}

// routes returns the HTTP handler of the API.
func (s *service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /reports", s.submit)
	mux.HandleFunc("GET /operations/{id}", s.status)
	mux.HandleFunc("GET /reports/{id}", s.result)
	return mux
}

// statusBody is the JSON of an operation's status.
type statusBody struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
}

// submit answers POST /reports: 202 Accepted with the operation's Location.
// A request with an Idempotency-Key header that was submitted before gets
// the same operation.
func (s *service) submit(w http.ResponseWriter, r *http.Request) {
	var req ReportRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil || req.Name == "" {
		http.Error(w, "body must be JSON with a name", http.StatusBadRequest)
		return
	}
	var opts []courier.SendOption
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		opts = append(opts, courier.WithIdempotencyKey(key))
	}
	id, err := s.ops.Submit(r.Context(), req, opts...)
	if err != nil {
		http.Error(w, "cannot take the request now: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	body := statusBody{ID: id, Status: courier.OperationPending.String()}
	if op, err := s.ops.Status(id); err == nil { // a resubmission may be further on
		body.Status, body.Attempts = op.State.String(), op.Attempts
	}
	w.Header().Set("Location", "/operations/"+id)
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	writeJSON(w, http.StatusAccepted, body)
}

// status answers GET /operations/{id}: 200 with the status while the
// operation runs or after it failed, 303 See Other to the report once it
// succeeded. With ?wait=<duration> it first waits up to that long (at most
// maxWait) for the operation to complete.
func (s *service) status(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if wait := r.URL.Query().Get("wait"); wait != "" {
		d, err := time.ParseDuration(wait)
		if err != nil || d < 0 {
			http.Error(w, "wait must be a duration", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), min(d, maxWait))
		_, _ = s.ops.Wait(ctx, id) // the status below tells the outcome
		cancel()
	}
	op, err := s.ops.Status(id)
	if errors.Is(err, courier.ErrUnknownOperation) {
		http.Error(w, "no such operation", http.StatusNotFound)
		return
	}
	if op.State == courier.OperationSucceeded {
		http.Redirect(w, r, "/reports/"+id, http.StatusSeeOther)
		return
	}
	body := statusBody{ID: id, Status: op.State.String(), Attempts: op.Attempts}
	if op.Err != nil {
		body.Error = op.Err.Error()
	}
	if !op.State.Done() {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	writeJSON(w, http.StatusOK, body)
}

// result answers GET /reports/{id}: 200 with the report once the operation
// succeeded, 409 Conflict before or after a failure, 404 for an unknown one.
func (s *service) result(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	op, err := s.ops.Status(id)
	switch {
	case errors.Is(err, courier.ErrUnknownOperation):
		http.Error(w, "no such report", http.StatusNotFound)
	case op.State != courier.OperationSucceeded:
		http.Error(w, fmt.Sprintf("report is not ready: operation %s", op.State), http.StatusConflict)
	default:
		writeJSON(w, http.StatusOK, op.Result)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
