package courier

import (
	"testing"
	"unsafe"
)

// A message is the one allocation of a send: keep a 64-byte body's message
// in the 352-byte size class (it was 512 before the failure record moved out
// of line, 416 before the scheduling and backoff state followed it).
func TestMessageFitsItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(Message[[64]byte]{}); n > 352 {
		t.Errorf("Message with a 64-byte body is %d bytes, want at most 352", n)
	}
}

// A delayed message makes one more allocation, its msgExtra: keep it in the
// 48-byte size class, with the state of failed attempts out of line again.
func TestDelayedMessageExtraIsSmall(t *testing.T) {
	if n := unsafe.Sizeof(msgExtra{}); n > 48 {
		t.Errorf("msgExtra is %d bytes, want at most 48", n)
	}
}
