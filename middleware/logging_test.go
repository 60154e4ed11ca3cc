package middleware_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/middleware"
)

// jsonLogger returns a logger that writes JSON lines at level and above into
// the returned buffer.
func jsonLogger(level slog.Level) (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level})), &buf
}

// logLines parses every JSON line of buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
	for sc.Scan() {
		var line map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line), "line %q", sc.Text())
		lines = append(lines, line)
	}
	require.NoError(t, sc.Err())
	return lines
}

// withMsg returns the lines whose message is msg.
func withMsg(lines []map[string]any, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// requireKeys checks that line has exactly the given keys besides time, level
// and msg.
func requireKeys(t *testing.T, line map[string]any, keys ...string) {
	t.Helper()
	want := map[string]bool{"time": true, "level": true, "msg": true}
	for _, k := range keys {
		want[k] = true
	}
	got := make(map[string]bool, len(line))
	for k := range line {
		got[k] = true
	}
	require.Equal(t, want, got)
}

func TestLoggingName(t *testing.T) {
	mw := middleware.Logging(nil)
	require.Equal(t, "logging", mw.Name)
	require.NotNil(t, mw.Handle)
	require.NotNil(t, mw.Send)
}

func TestLoggingSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logger, buf := jsonLogger(slog.LevelDebug)
		bus := newBus(t)
		bus.Use(middleware.Logging(logger))
		q := newQueue[string](t, bus, "orders")
		var id string
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[string]) error {
			id = m.ID
			<-time.After(10 * time.Millisecond)
			return nil
		}))
		ctx := courier.WithCorrelationID(context.Background(), "corr-1")
		require.NoError(t, q.Send(ctx, "pizza"))
		shutdown(t, bus)

		lines := logLines(t, buf)
		require.Len(t, lines, 2)

		sent := withMsg(lines, "courier: message sent")
		require.Len(t, sent, 1)
		requireKeys(t, sent[0], "destination", "message_id", "correlation_id")
		require.Equal(t, "DEBUG", sent[0]["level"])
		require.Equal(t, "orders", sent[0]["destination"])
		require.Equal(t, id, sent[0]["message_id"])
		require.Equal(t, "corr-1", sent[0]["correlation_id"])

		handled := withMsg(lines, "courier: message handled")
		require.Len(t, handled, 1)
		requireKeys(t, handled[0], "destination", "message_id", "correlation_id", "attempt", "duration")
		require.Equal(t, "DEBUG", handled[0]["level"])
		require.Equal(t, "orders", handled[0]["destination"])
		require.Equal(t, id, handled[0]["message_id"])
		require.Equal(t, "corr-1", handled[0]["correlation_id"])
		require.EqualValues(t, 1, handled[0]["attempt"])
		require.EqualValues(t, 10*time.Millisecond, handled[0]["duration"], "duration in nanoseconds")
	})
}

func TestLoggingFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logger, buf := jsonLogger(slog.LevelDebug)
		bus := newBus(t)
		bus.Use(middleware.Logging(logger))
		// Two attempts, so the retry is logged with its attempt number.
		q := newQueue[string](t, bus, "orders", courier.WithRetry(courier.RetryPolicy{MaxAttempts: 2}))
		var id string
		require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[string]) error {
			id = m.ID
			return errors.New("boom")
		}))
		require.NoError(t, q.Send(context.Background(), "pizza"))
		shutdown(t, bus)

		lines := logLines(t, buf)
		require.Len(t, lines, 3) // one send, two failed attempts
		require.Empty(t, withMsg(lines, "courier: message handled"))
		failed := withMsg(lines, "courier: handler failed")
		require.Len(t, failed, 2)
		for i, line := range failed {
			requireKeys(t, line, "destination", "message_id", "correlation_id", "attempt", "duration", "error")
			// The first failure will be retried; the second is the last.
			require.Equal(t, []string{"WARN", "ERROR"}[i], line["level"])
			require.Equal(t, "orders", line["destination"])
			require.Equal(t, id, line["message_id"])
			require.Equal(t, id, line["correlation_id"], "a message sent outside any flow is its own correlation")
			require.EqualValues(t, i+1, line["attempt"])
			require.EqualValues(t, 0, line["duration"])
			require.Equal(t, "boom", line["error"])
		}
		require.Len(t, q.DeadLetters().List(), 1)
	})
}

func TestLoggingSubscription(t *testing.T) {
	logger, buf := jsonLogger(slog.LevelDebug)
	bus := newBus(t)
	bus.Use(middleware.Logging(logger))
	topic, err := courier.NewTopic[string](bus, "events")
	require.NoError(t, err)
	require.NoError(t, topic.Subscribe("audit", func(context.Context, *courier.Message[string]) error { return nil }))
	require.NoError(t, topic.Publish(context.Background(), "created"))
	shutdown(t, bus)

	lines := logLines(t, buf)
	require.Len(t, lines, 2)
	sent := withMsg(lines, "courier: message sent")
	require.Len(t, sent, 1)
	require.Equal(t, "events", sent[0]["destination"])
	handled := withMsg(lines, "courier: message handled")
	require.Len(t, handled, 1)
	requireKeys(t, handled[0], "destination", "subscription", "message_id", "correlation_id", "attempt", "duration")
	require.Equal(t, "events", handled[0]["destination"])
	require.Equal(t, "audit", handled[0]["subscription"])
	require.Equal(t, sent[0]["message_id"], handled[0]["message_id"])
}

func TestLoggingSendFailed(t *testing.T) {
	logger, buf := jsonLogger(slog.LevelDebug)
	bus := newBus(t)
	bus.Use(middleware.Logging(logger))
	q := newQueue[string](t, bus, "orders")
	shutdown(t, bus)

	err := q.Send(context.Background(), "too late")
	require.ErrorIs(t, err, courier.ErrClosed)

	lines := logLines(t, buf)
	require.Len(t, lines, 1)
	line := lines[0]
	requireKeys(t, line, "destination", "message_id", "correlation_id", "error")
	require.Equal(t, "courier: send failed", line["msg"])
	require.Equal(t, "WARN", line["level"])
	require.Equal(t, "orders", line["destination"])
	require.NotEmpty(t, line["message_id"])
	require.Equal(t, line["message_id"], line["correlation_id"])
	require.Equal(t, err.Error(), line["error"])
}

// At Info, successes and sends log nothing; failures are still logged.
func TestLoggingQuietAboveDebug(t *testing.T) {
	logger, buf := jsonLogger(slog.LevelInfo)
	bus := newBus(t)
	bus.Use(middleware.Logging(logger))
	q := newQueue[bool](t, bus, "orders")
	require.NoError(t, q.Consume(func(_ context.Context, m *courier.Message[bool]) error {
		if m.Body {
			return nil
		}
		return errors.New("boom")
	}))
	for range 3 {
		require.NoError(t, q.Send(context.Background(), true))
	}
	require.NoError(t, q.Send(context.Background(), false))
	shutdown(t, bus)

	require.EqualValues(t, 3, q.Stats().Handled)
	lines := logLines(t, buf)
	require.Len(t, lines, 1, "only the failure is logged: %s", buf.String())
	require.Equal(t, "courier: handler failed", lines[0]["msg"])
	require.Equal(t, "ERROR", lines[0]["level"], "one attempt: the failure is final")
}

func TestLoggingNilLoggerUsesDefault(t *testing.T) {
	logger, buf := jsonLogger(slog.LevelDebug)
	old := slog.Default()
	slog.SetDefault(logger)
	t.Cleanup(func() { slog.SetDefault(old) })

	bus := newBus(t)
	bus.Use(middleware.Logging(nil))
	q := newQueue[string](t, bus, "orders")
	require.NoError(t, q.Consume(func(context.Context, *courier.Message[string]) error { return nil }))
	require.NoError(t, q.Send(context.Background(), "pizza"))
	shutdown(t, bus)

	lines := logLines(t, buf)
	require.Len(t, withMsg(lines, "courier: message sent"), 1)
	require.Len(t, withMsg(lines, "courier: message handled"), 1)
}
