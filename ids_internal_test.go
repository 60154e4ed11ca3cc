package courier

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestFormatIDIsTheCanonicalForm(t *testing.T) {
	var buf [36]byte
	check := func(u uuid.UUID) {
		t.Helper()
		if got, want := formatID(u, &buf), u.String(); got != want {
			t.Fatalf("formatID(%x) = %s, want %s", u[:], got, want)
		}
	}
	check(uuid.UUID{})
	check(uuid.Max)
	for range 1000 {
		var u uuid.UUID
		for i := range u {
			u[i] = byte(rand.Uint32())
		}
		check(u)
	}
	check(newUUIDv7(time.Now()))
}
