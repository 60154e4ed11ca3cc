package otelcourier_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"
)

func withBaggage(t *testing.T, key, value string) context.Context {
	t.Helper()
	m, err := baggage.NewMember(key, value)
	require.NoError(t, err)
	b, err := baggage.New(m)
	require.NoError(t, err)
	return baggage.ContextWithBaggage(context.Background(), b)
}

func baggageOf(ctx context.Context, key string) string {
	return baggage.FromContext(ctx).Member(key).Value()
}
