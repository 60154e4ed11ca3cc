package courier

import (
	"testing"
	"unsafe"
)

// A message is the one allocation of a send: keep a 64-byte body's message
// in the 416-byte size class (it was 512 before the failure record moved out
// of line).
func TestMessageFitsItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(Message[[64]byte]{}); n > 416 {
		t.Errorf("Message with a 64-byte body is %d bytes, want at most 416", n)
	}
}
