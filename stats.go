package courier

// Stats counts what one queue or subscription holds and has done. Gauges
// (Depth, InFlight, Scheduled, DeadLetters) are read at one instant; counters
// only grow. For a bus or topic the values are sums.
type Stats struct {
	// Depth counts ready messages waiting for a worker, including keyed
	// messages held back behind an earlier message of their key.
	Depth int
	// InFlight counts messages a handler is working on.
	InFlight int
	// Scheduled counts messages waiting for their delay or their next retry.
	Scheduled int
	// DeadLetters counts the messages in the dead-letter queue now.
	DeadLetters int

	// Sent counts messages accepted: sends, a subscription's copies of
	// publishes, and replays.
	Sent uint64
	// Handled counts messages whose handler returned nil.
	Handled uint64
	// FailedAttempts counts delivery attempts that returned an error or
	// panicked.
	FailedAttempts uint64
	// Retried counts failed attempts that were scheduled for another.
	Retried uint64
	// DeadLettered counts messages sent to the dead-letter queue, for any
	// reason.
	DeadLettered uint64
	// Dropped counts the messages among DeadLettered that the overflow
	// policy dropped.
	Dropped uint64
	// Expired counts the messages among DeadLettered whose time to live ran
	// out.
	Expired uint64
	// DeadLettersEvicted counts dead letters pushed out of a full dead-letter
	// queue.
	DeadLettersEvicted uint64
	// Replayed counts dead letters sent back by Replay.
	Replayed uint64
	// Filtered counts published messages a subscription's filter turned away.
	Filtered uint64
}

func (s *Stats) add(o Stats) {
	s.Depth += o.Depth
	s.InFlight += o.InFlight
	s.Scheduled += o.Scheduled
	s.DeadLetters += o.DeadLetters
	s.Sent += o.Sent
	s.Handled += o.Handled
	s.FailedAttempts += o.FailedAttempts
	s.Retried += o.Retried
	s.DeadLettered += o.DeadLettered
	s.Dropped += o.Dropped
	s.Expired += o.Expired
	s.DeadLettersEvicted += o.DeadLettersEvicted
	s.Replayed += o.Replayed
	s.Filtered += o.Filtered
}

// TopicStats counts what a topic has done, and holds each subscription's
// [Stats].
type TopicStats struct {
	// Published counts messages published to the topic.
	Published uint64
	// Unrouted counts published messages that no subscription received: the
	// topic had no subscriptions, or every filter turned them away.
	Unrouted uint64
	// Subscriptions maps each subscription's name to its stats.
	Subscriptions map[string]Stats
}

// BusStats is a snapshot of a whole bus.
type BusStats struct {
	// Total sums every queue and subscription.
	Total Stats
	// Queues maps each queue's name to its stats.
	Queues map[string]Stats
	// Topics maps each topic's name to its stats.
	Topics map[string]TopicStats
}
