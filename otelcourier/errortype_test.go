package otelcourier_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/courierbus/courier"
	"github.com/courierbus/courier/otelcourier"
)

type validationError struct{}

func (*validationError) Error() string { return "invalid" }

func TestErrorType(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{courier.ErrClosed, "courier.ErrClosed"},
		{fmt.Errorf("send: %w", courier.ErrFull), "courier.ErrFull"},
		{courier.ErrOverflow, "courier.ErrOverflow"},
		{courier.ErrExpired, "courier.ErrExpired"},
		{courier.ErrAbandoned, "courier.ErrAbandoned"},
		{context.Canceled, "context.Canceled"},
		{fmt.Errorf("charge: %w", context.DeadlineExceeded), "context.DeadlineExceeded"},
		{courier.NewPanicError("boom"), "courier.PanicError"},
		{errors.New("x"), "*errors.errorString"},
		{&validationError{}, "*otelcourier_test.validationError"},
		{courier.Permanent(&validationError{}), "*otelcourier_test.validationError"},
		{fmt.Errorf("wrapped: %w", errors.New("x")), "*fmt.wrapError"},
	} {
		require.Equal(t, tc.want, otelcourier.ErrorType(tc.err), "%v", tc.err)
	}
}
