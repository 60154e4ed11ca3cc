// Package natsjs carries Courier's queues and topics over NATS JetStream,
// embedded in the process or on an external server or cluster. It is a
// module of its own, so that the NATS server and client never enter the core
// module.
//
// Plug it in with one line; the rest of the code does not change:
//
//	nc, _ := natsjs.Connect("nats://nats:4222", natsjs.ConnectOptions{Name: "orders"})
//	tr, _ := natsjs.New(nc, natsjs.Options{})
//	bus := courier.New(courier.WithTransport(tr))
//	orders, _ := courier.NewQueue[Order](bus, "orders") // a JetStream work-queue stream
//
// [StartEmbedded] runs an in-process nats-server with JetStream file storage
// in a directory, so that a single-binary service gets queues that survive a
// crash and a restart; [Connect] reaches an external server or cluster by
// URL, with reconnects and a clear error ([ErrUnreachable]) when nothing
// answers. [Codec] (JSON by default) encodes bodies, and [EncodeHeaders] and
// [DecodeHeaders] carry a message's metadata in NATS headers.
//
// The README beside this file maps each Courier semantic onto JetStream:
// streams, consumers, partitions for ordering keys, message schedules for
// delays, a dead-letter stream per queue or subscription. What JetStream
// cannot do fails when the queue is declared, with an error wrapping
// courier.ErrUnsupported: the DropNewest and DropOldest overflow policies,
// and a capacity per subscription. Request-reply works across processes: the
// reply travels back through a reply queue of the requesting bus.
//
// # Durability
//
// By default the embedded server writes every JetStream message to disk
// (fsync) before it acknowledges it ([SyncAlways]). The stock NATS default
// syncs every two minutes, and Jepsen's 2025 analysis of NATS showed that it
// loses acknowledged messages when the machine crashes. Syncing every write
// costs throughput: about 240 µs per synchronous publish on the 2-core VMs
// this project is measured on. [SyncEvery] relaxes it to a periodic sync for
// services that can lose the last interval's writes on a machine crash (a
// process crash loses nothing: the data is in the operating system's page
// cache).
//
// Delivery is at least once. A crash can lose the acknowledgement of a
// message that was handled, and the message is delivered again: pair the
// transport with the idempotency middleware when a second run would do harm.
package natsjs
