package natsjs

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Codec turns message bodies into bytes and back. It must be safe for
// concurrent use.
type Codec interface {
	// Marshal encodes v, a message body.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, a pointer to a message body.
	Unmarshal(data []byte, v any) error
	// ContentType names the encoding, for the Content-Type header of every
	// message, so that a consumer can refuse bodies it cannot read.
	ContentType() string
}

// JSON is the default codec: encoding/json.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
func (jsonCodec) ContentType() string                { return "application/json" }

// ErrContentType is wrapped by Decode's error when a message was encoded
// with another codec than the one reading it.
var ErrContentType = errors.New("natsjs: message encoded with another codec")

// checkContentType fails when the message's content type is set and is not
// the codec's.
func checkContentType(c Codec, got string) error {
	if got != "" && got != c.ContentType() {
		return fmt.Errorf("%w: %q, reading %q", ErrContentType, got, c.ContentType())
	}
	return nil
}
