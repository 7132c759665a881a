// Package wire holds the facts about the Deskside wire protocol that both
// ends must agree on: the protocol version checked at hello, message size
// limits, and the caps applied to every value an agent reports.
package wire

// ProtocolVersion is the version of the agent ↔ relay protocol. The relay
// refuses a Hello whose version it does not speak.
//
// History:
//
//	1 (2026-11-23): Hello/Welcome, inventory and health reports with acks,
//	  Ping/Pong, CollectInventory.
const ProtocolVersion = 1

// MaxMessageBytes is the largest gRPC message either side sends or accepts.
// Anything bigger is refused by gRPC itself (ResourceExhausted).
const MaxMessageBytes = 4 << 20

// MaxHealthBatch is the largest number of samples in one HealthReport.
const MaxHealthBatch = 1000
