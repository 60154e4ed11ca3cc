// Package console serialises the lines that handlers on several goroutines
// print.
package console

import (
	"fmt"
	"io"
	"sync"
)

// Console writes whole lines to a writer, one at a time, and keeps the first
// write error.
type Console struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// New returns a console writing to w.
func New(w io.Writer) *Console { return &Console{w: w} }

// Printf writes one formatted line; it adds the newline.
func (c *Console) Printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		_, c.err = fmt.Fprintf(c.w, format+"\n", args...)
	}
}

// Err returns the first write error.
func (c *Console) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
