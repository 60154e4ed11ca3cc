// Package natsjs will carry Courier's queues and topics over NATS
// JetStream, embedded in the process or on an external server or cluster.
// It is a module of its own, so that the NATS server and client never enter
// the core module.
//
// This first slice holds the server side: [StartEmbedded] runs an in-process
// nats-server with JetStream file storage in a directory, so a single-binary
// service gets streams that survive a crash and a restart, and [Connect]
// reaches an external server or cluster by URL, with reconnects and a clear
// error when nothing answers. [Codec] (JSON by default) encodes bodies, and
// [EncodeHeaders] and [DecodeHeaders] carry a message's metadata in NATS
// headers. The transport itself, which maps queues,
// topics, retries, dead letters and ordering keys onto streams and
// consumers, comes next; it must pass the core's conformance suite
// (couriertest/conformance) unchanged.
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
package natsjs
