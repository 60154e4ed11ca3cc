package main

import (
	"cmp"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/courierbus/courier/otelcourier"
)

// node is one span and the spans under it: its children, and the process
// spans linked to it.
type node struct {
	span   sdktrace.ReadOnlySpan
	linked bool // under its parent by a link, not as a child
	kids   []*node
}

// buildForest arranges the spans of one conversation (a correlation ID) into
// trees: a span goes under its parent when the parent was recorded, else
// under the span its first link points to; the rest are roots.
func buildForest(all []sdktrace.ReadOnlySpan, conversation string) []*node {
	nodes := make(map[trace.SpanID]*node)
	var order []*node
	for _, s := range all {
		if attr(s, "messaging.message.conversation_id") == conversation {
			n := &node{span: s}
			nodes[s.SpanContext().SpanID()] = n
			order = append(order, n)
		}
	}
	var roots []*node
	for _, n := range order {
		if p, ok := nodes[n.span.Parent().SpanID()]; ok && n.span.Parent().IsValid() {
			p.kids = append(p.kids, n)
			continue
		}
		if links := n.span.Links(); len(links) > 0 {
			if p, ok := nodes[links[0].SpanContext.SpanID()]; ok {
				n.linked = true
				p.kids = append(p.kids, n)
				continue
			}
		}
		roots = append(roots, n)
	}
	for _, n := range order {
		sortNodes(n.kids)
	}
	sortNodes(roots)
	return roots
}

// sortNodes orders siblings by subscription, then start time: attempts in
// turn, subscriptions by name.
func sortNodes(ns []*node) {
	slices.SortFunc(ns, func(a, b *node) int {
		return cmp.Or(
			cmp.Compare(attr(a.span, "messaging.destination.subscription.name"), attr(b.span, "messaging.destination.subscription.name")),
			a.span.StartTime().Compare(b.span.StartTime()))
	})
}

func printTree(p *printer, roots []*node) {
	var walk func(n *node, depth int)
	walk = func(n *node, depth int) {
		p.printf("%s%s\n", strings.Repeat("    ", depth), describe(n))
		for _, k := range n.kids {
			walk(k, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
}

// describe is one line of the tree: how the span hangs from the one above,
// its name and kind, where it was delivered, and how it ended.
func describe(n *node) string {
	s := n.span
	var b strings.Builder
	if n.linked {
		b.WriteString("⇢ ")
	}
	b.WriteString(s.Name())
	if sub := attr(s, "messaging.destination.subscription.name"); sub != "" {
		b.WriteString(" [" + sub + "]")
	}
	b.WriteString("  " + strings.ToUpper(s.SpanKind().String()))
	if a := attr(s, string(otelcourier.AttrDeliveryAttempt)); a != "" {
		b.WriteString("  attempt=" + a)
	}
	if s.Status().Code == codes.Error {
		b.WriteString("  ERROR " + attr(s, "error.type") + ": " + s.Status().Description)
	} else {
		b.WriteString("  ok")
	}
	for _, e := range s.Events() {
		if e.Name == otelcourier.EventDeadLettered {
			b.WriteString("  → dead-lettered")
		}
	}
	b.WriteString("  trace=" + s.SpanContext().TraceID().String()[:8])
	return b.String()
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if kv.Key == attribute.Key(key) {
			return kv.Value.String()
		}
	}
	return ""
}
