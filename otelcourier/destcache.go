package otelcourier

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// dest holds what the middleware reuses for every message of one queue,
// topic or subscription, so that the hot path builds no span name and no
// attribute set.
type dest struct {
	sendName, processName string
	sendAttrs             []attribute.KeyValue // span and metric attributes of a send
	processAttrs          []attribute.KeyValue // of a delivery attempt
	sendAdd               []metric.AddOption
	sendRecord            []metric.RecordOption
	processAdd            []metric.AddOption
	processRecord         []metric.RecordOption
}

func newDest(name, sub string) *dest {
	base := destAttrs(name, sub)
	d := &dest{
		sendName:     OperationSend + " " + name,
		processName:  OperationProcess + " " + name,
		sendAttrs:    append([]attribute.KeyValue{attrOpSend, attrOpNameSend}, base...),
		processAttrs: append([]attribute.KeyValue{attrOpProcess, attrOpNameProc}, base...),
	}
	send := metric.WithAttributeSet(attribute.NewSet(d.sendAttrs...))
	proc := metric.WithAttributeSet(attribute.NewSet(d.processAttrs...))
	d.sendAdd, d.sendRecord = []metric.AddOption{send}, []metric.RecordOption{send}
	d.processAdd, d.processRecord = []metric.AddOption{proc}, []metric.RecordOption{proc}
	return d
}

type destKey struct{ name, sub string }

// destCache maps destinations to their [dest]. Reads take no lock: the map
// is replaced, never changed, when a destination is added. Destination and
// subscription names are declared by the program, so the map stays small.
type destCache struct {
	mu sync.Mutex
	m  atomic.Pointer[map[destKey]*dest]
}

func (c *destCache) get(name, sub string) *dest {
	k := destKey{name, sub}
	if m := c.m.Load(); m != nil {
		if d, ok := (*m)[k]; ok {
			return d
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if d, ok := (*old)[k]; ok {
			return d
		}
	}
	m := make(map[destKey]*dest, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	d := newDest(name, sub)
	m[k] = d
	c.m.Store(&m)
	return d
}

func lenOf(m *map[destKey]*dest) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
