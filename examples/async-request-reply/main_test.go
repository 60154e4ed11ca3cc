package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/courierbus/courier"
)

// TestMain checks that no test leaves a goroutine behind: not the bus's,
// not the server's, not the clients'.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	t.Log("\n" + got)
	const id = `[0-9a-f-]{36}`
	for _, pattern := range []string{
		`(?m)^  < 202 Accepted  Location: /operations/` + id + `  Retry-After: 1$`,
		`(?m)^  same operation: /operations/` + id + `$`,
		`(?m)^    \{"id":"` + id + `","status":"(pending|running)","attempts":[01]\}$`,
		`(?m)^  < 303 See Other  Location: /reports/` + id + `$`,
		`(?m)^  report "sales" for 2025-Q3: 15 rows, generated at attempt 2$`,
	} {
		if !regexp.MustCompile(pattern).MatchString(got) {
			t.Errorf("no line matches %s", pattern)
		}
	}
}

// api is the service under test, served by httptest, with a report
// generator the test controls.
type api struct {
	t       *testing.T
	srv     *httptest.Server
	client  *http.Client // does not follow redirects
	started chan string  // the name of each report whose generation starts
	release chan struct{}
}

func newAPI(t *testing.T) *api {
	t.Helper()
	a := &api{t: t, started: make(chan string, 10), release: make(chan struct{})}
	bus := courier.New(courier.WithLogger(slog.New(slog.DiscardHandler)))
	generate := func(ctx context.Context, m *courier.Message[ReportRequest]) (Report, error) {
		a.started <- m.Body.Name
		select {
		case <-a.release:
		case <-ctx.Done():
			return Report{}, ctx.Err()
		}
		if m.Body.Name == "broken" {
			return Report{}, courier.Permanent(errors.New("no such ledger"))
		}
		return Report{Name: m.Body.Name, Quarter: m.Body.Quarter, Rows: 7, Attempts: m.Attempt}, nil
	}
	svc, err := newService(bus, generate, time.Hour, courier.WithRetry(courier.RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	a.srv = httptest.NewServer(svc.routes())
	a.client = &http.Client{
		Transport:     a.srv.Client().Transport, // closed with the server
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(func() {
		a.srv.Close()
		if err := bus.Shutdown(context.Background()); err != nil {
			t.Errorf("bus shutdown: %v", err)
		}
	})
	return a
}

// do sends a request and returns the response with its body read.
func (a *api) do(method, path, body string, header ...string) (*http.Response, string) {
	a.t.Helper()
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return res, string(b)
}

// submit posts a report request and returns its operation's path.
func (a *api) submit(name string, header ...string) string {
	a.t.Helper()
	res, _ := a.do("POST", "/reports", `{"name":"`+name+`","quarter":"2025-Q3"}`, header...)
	if res.StatusCode != http.StatusAccepted {
		a.t.Fatalf("POST /reports: %s, want 202", res.Status)
	}
	if got := res.Header.Get("Retry-After"); got != "1" {
		a.t.Errorf("Retry-After %q, want 1", got)
	}
	loc := res.Header.Get("Location")
	if !strings.HasPrefix(loc, "/operations/") {
		a.t.Fatalf("Location %q", loc)
	}
	return loc
}

// status gets an operation's status, expecting 200.
func (a *api) status(path string) statusBody {
	a.t.Helper()
	res, body := a.do("GET", path, "")
	if res.StatusCode != http.StatusOK {
		a.t.Fatalf("GET %s: %s, want 200", path, res.Status)
	}
	var st statusBody
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		a.t.Fatalf("GET %s: %v in %q", path, err, body)
	}
	return st
}

func (a *api) waitStarted(name string) {
	a.t.Helper()
	select {
	case got := <-a.started:
		if got != name {
			a.t.Fatalf("report %q started, want %q", got, name)
		}
	case <-a.t.Context().Done():
		a.t.Fatal("no report started")
	}
}

func TestAPIPendingRunningSeeOtherReport(t *testing.T) {
	a := newAPI(t)

	first := a.submit("sales")
	a.waitStarted("sales") // it holds the only worker
	second := a.submit("costs")

	if st := a.status(first); st.Status != "running" || st.Attempts != 1 {
		t.Errorf("first: %+v, want running at attempt 1", st)
	}
	res, _ := a.do("GET", second, "")
	if st := a.status(second); st.Status != "pending" || res.Header.Get("Retry-After") != "1" {
		t.Errorf("second: %+v, Retry-After %q; want pending, 1", st, res.Header.Get("Retry-After"))
	}
	id := strings.TrimPrefix(first, "/operations/")
	if res, _ := a.do("GET", "/reports/"+id, ""); res.StatusCode != http.StatusConflict {
		t.Errorf("GET the report early: %s, want 409", res.Status)
	}

	close(a.release)
	res, _ = a.do("GET", first+"?wait=10s", "")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/reports/"+id {
		t.Fatalf("GET %s?wait: %s Location %q, want 303 to /reports/%s", first, res.Status, res.Header.Get("Location"), id)
	}
	res, body := a.do("GET", "/reports/"+id, "")
	var r Report
	if res.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &r) != nil || r != (Report{"sales", "2025-Q3", 7, 1}) {
		t.Fatalf("GET /reports/%s: %s %s", id, res.Status, body)
	}
	// A client that follows redirects lands on the report.
	follow, err := a.srv.Client().Get(a.srv.URL + second + "?wait=10s")
	if err != nil {
		t.Fatal(err)
	}
	follow.Body.Close()
	if follow.StatusCode != http.StatusOK || follow.Request.URL.Path != "/reports/"+strings.TrimPrefix(second, "/operations/") {
		t.Errorf("following the redirect ended at %s with %s", follow.Request.URL.Path, follow.Status)
	}
}

func TestAPIFailedOperation(t *testing.T) {
	a := newAPI(t)
	close(a.release)
	op := a.submit("broken")
	st := a.status(op + "?wait=10s")
	if st.Status != "failed" || !strings.Contains(st.Error, "no such ledger") || st.Attempts != 1 {
		t.Errorf("status %+v, want failed with the handler's error", st)
	}
	res, _ := a.do("GET", op, "")
	if res.Header.Get("Retry-After") != "" {
		t.Error("a failed operation needs no more polling")
	}
	if res, _ := a.do("GET", "/reports/"+strings.TrimPrefix(op, "/operations/"), ""); res.StatusCode != http.StatusConflict {
		t.Errorf("GET the failed report: %s, want 409", res.Status)
	}
}

func TestAPIIdempotentResubmission(t *testing.T) {
	a := newAPI(t)
	first := a.submit("sales", "Idempotency-Key", "k-1")
	a.waitStarted("sales")
	if again := a.submit("sales", "Idempotency-Key", "k-1"); again != first {
		t.Errorf("resubmission got %s, want %s", again, first)
	}
	if other := a.submit("sales", "Idempotency-Key", "k-2"); other == first {
		t.Error("another key got the same operation")
	}
	if plain := a.submit("sales"); plain == first {
		t.Error("a request without a key got an existing operation")
	}
	close(a.release)
	if res, _ := a.do("GET", first+"?wait=10s", ""); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET %s?wait: %s, want 303", first, res.Status)
	}
	if again := a.submit("sales", "Idempotency-Key", "k-1"); again != first {
		t.Errorf("resubmission after completion got %s, want %s", again, first)
	}
}

func TestAPIBadRequests(t *testing.T) {
	a := newAPI(t)
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/reports", `not json`, http.StatusBadRequest},
		{"POST", "/reports", `{"quarter":"2025-Q3"}`, http.StatusBadRequest},
		{"GET", "/operations/nope", "", http.StatusNotFound},
		{"GET", "/operations/nope?wait=soon", "", http.StatusBadRequest},
		{"GET", "/reports/nope", "", http.StatusNotFound},
		{"DELETE", "/reports", "", http.StatusMethodNotAllowed},
	} {
		if res, _ := a.do(c.method, c.path, c.body); res.StatusCode != c.want {
			t.Errorf("%s %s %s: %s, want %d", c.method, c.path, c.body, res.Status, c.want)
		}
	}
}
