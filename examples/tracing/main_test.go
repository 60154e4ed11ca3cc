package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var out, logs, export strings.Builder
	if err := run(ctx, &out, &logs, &export); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	t.Log("\n" + got)

	sections := strings.Split(got, "== order ")
	if len(sections) != 4 {
		t.Fatalf("want 3 order sections, got %d", len(sections)-1)
	}
	const (
		sendOrders = `(?m)^send orders  PRODUCER  ok  trace=[0-9a-f]{8}$`
		fanout     = `send payments\.completed  PRODUCER  ok  trace=[0-9a-f]{8}\n` +
			`            ⇢ process payments\.completed \[accounting\]  CONSUMER  attempt=1  ok  trace=[0-9a-f]{8}\n` +
			`            ⇢ process payments\.completed \[analytics\]  CONSUMER  attempt=1  ok  trace=[0-9a-f]{8}\n` +
			`            ⇢ process payments\.completed \[fulfillment\]  CONSUMER  attempt=1  ok  trace=[0-9a-f]{8}\n`
		okAttempt = `    ⇢ process orders  CONSUMER  attempt=%s  ok  trace=[0-9a-f]{8}\n        ` + fanout
	)
	want := map[string][]string{
		"O-1": {sendOrders, strings.ReplaceAll(okAttempt, "%s", "1")},
		"O-2": {sendOrders,
			`    ⇢ process orders  CONSUMER  attempt=1  ERROR \*errors\.errorString: payment gateway: timeout  trace=[0-9a-f]{8}\n` +
				strings.ReplaceAll(okAttempt, "%s", "2")},
		"O-3": {sendOrders,
			`    ⇢ process orders  CONSUMER  attempt=1  ERROR \*errors\.errorString: payment gateway: amount must be positive  trace=[0-9a-f]{8}\n` +
				`    ⇢ process orders  CONSUMER  attempt=2  ERROR \*errors\.errorString: payment gateway: amount must be positive  → dead-lettered  trace=[0-9a-f]{8}\n` +
				strings.ReplaceAll(okAttempt, "%s", "1")}, // the replay
	}
	for i, id := range []string{"O-1", "O-2", "O-3"} {
		sec := sections[i+1]
		if !strings.HasPrefix(sec, id+" ") {
			t.Errorf("section %d is not %s: %q", i+1, id, sec[:min(len(sec), 20)])
		}
		for _, pattern := range want[id] {
			if !regexp.MustCompile(pattern).MatchString(sec) {
				t.Errorf("order %s: no match for\n%s", id, pattern)
			}
		}
	}
	for _, line := range []string{
		"courier.message.dead_letters{destination=orders,reason=max_attempts} 1",
		"courier.message.retries{destination=orders,error.type=*errors.errorString} 2",
		"messaging.client.sent.messages{destination=orders,operation=send} 3",
		"messaging.client.consumed.messages{destination=orders,operation=process} 6",
	} {
		if !strings.Contains(got, "  "+line+"\n") {
			t.Errorf("no counter line %q", line)
		}
	}

	// Retries at Warn, the final failure at Error, both with trace IDs.
	if n := strings.Count(logs.String(), `level=WARN msg="courier: handler failed"`); n != 2 {
		t.Errorf("%d Warn lines, want 2:\n%s", n, logs.String())
	}
	if !regexp.MustCompile(`level=ERROR msg="courier: handler failed" .* attempt=2 .* trace_id=[0-9a-f]{32} span_id=[0-9a-f]{16}`).MatchString(logs.String()) {
		t.Errorf("no Error line with trace IDs:\n%s", logs.String())
	}
	// The stdout exporter wrote every span: 3 + 3 sends, 6 + 9 process spans.
	if n := strings.Count(export.String(), `"SpanKind": `); n != 21 {
		t.Errorf("exporter wrote %d spans, want 21", n)
	}
}
