package courier

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
)

// uuidWords returns u as the words newUUIDv7 returns and formatID takes.
func uuidWords(u uuid.UUID) (hi, lo uint64) {
	return binary.BigEndian.Uint64(u[0:8]), binary.BigEndian.Uint64(u[8:16])
}

func TestFormatIDIsTheCanonicalForm(t *testing.T) {
	var buf [36]byte
	check := func(u uuid.UUID) {
		t.Helper()
		hi, lo := uuidWords(u)
		if got, want := formatID(hi, lo, &buf), u.String(); got != want {
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
}

// newUUIDv7 lays out RFC 9562's version 7: the Unix milliseconds, the
// version, 12 bits of the millisecond's fraction, the variant, random bits.
func TestNewUUIDv7Layout(t *testing.T) {
	now := time.Date(2026, 11, 22, 9, 30, 0, 123_456_789, time.UTC)
	var buf [36]byte
	seen := map[uint64]bool{}
	for range 100 {
		hi, lo := newUUIDv7(now)
		u, err := uuid.Parse(formatID(hi, lo, &buf))
		if err != nil {
			t.Fatal(err)
		}
		if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("%s: version %d, variant %v", u, u.Version(), u.Variant())
		}
		if got, want := time.Unix(u.Time().UnixTime()), now.Truncate(time.Millisecond); !got.Equal(want) {
			t.Fatalf("%s: time %v, want %v", u, got, want)
		}
		if got, want := hi&0x0fff, uint64(456_789)*4096/1_000_000; got != want {
			t.Fatalf("%s: sub-millisecond bits %d, want %d", u, got, want)
		}
		seen[lo] = true
	}
	if len(seen) < 100 {
		t.Fatalf("%d distinct random parts in 100 IDs", len(seen))
	}
}
