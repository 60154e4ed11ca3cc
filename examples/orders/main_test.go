package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	var out strings.Builder
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	t.Log("\n" + got)

	before, after, ok := strings.Cut(got, "== replaying the dead-letter queue ==")
	if !ok {
		t.Fatal("no replay section")
	}
	mustMatch := func(section, name, text, pattern string) {
		t.Helper()
		if !regexp.MustCompile(pattern).MatchString(text) {
			t.Errorf("%s: no line matches %s (%s)", section, pattern, name)
		}
	}

	// Before the replay: three failed attempts, then the dead letter.
	for _, attempt := range []string{"1/3", "2/3", "3/3"} {
		mustMatch("before replay", "failed attempt "+attempt, before,
			`(?m)^  \[orders\] +O-1004 carol attempt `+regexp.QuoteMeta(attempt)+` failed: payment gateway: amount must be positive$`)
	}
	mustMatch("before replay", "dead letter", before,
		`(?m)^  O-1004 carol +\$0\.00  message=…[0-9a-f]{8} reason=max_attempts attempts=3 err="payment gateway: amount must be positive"$`)
	if strings.Contains(before, "O-1004 carol free order") {
		t.Error("the poison order was charged before the fix")
	}

	// The replay: the order flows to every subscription.
	mustMatch("after replay", "replay count", after, `(?m)^  replayed 1 message\(s\); 0 left in the dead-letter queue$`)
	mustMatch("after replay", "order handled", after, `(?m)^  \[orders\] +O-1004 carol free order, nothing to charge +message=`)
	for _, sub := range []string{"accounting", "analytics", "fulfillment"} {
		mustMatch("after replay", sub, after,
			`(?m)^  \[`+sub+`\] +O-1004 .* causation=…[0-9a-f]{8} correlation=checkout-74$`)
	}

	// Good orders reached every subscription before the replay.
	for _, id := range []string{"O-1001", "O-1002", "O-1003", "O-1005"} {
		for _, sub := range []string{"accounting", "analytics", "fulfillment"} {
			mustMatch("before replay", sub+" "+id, before, `(?m)^  \[`+sub+`\] +`+id+` `)
		}
	}

	for _, want := range []string{
		"alice's 3 orders were charged one at a time, in the order placed: O-1001, O-1003, O-1005",
		"every payment event carried its order's correlation ID",
		"bus total: handled=20 retried=2 dead-lettered=1 replayed=1 failed-attempts=3",
	} {
		if !strings.Contains(after, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(got, "PROBLEM") {
		t.Error("output reports a problem")
	}
}
