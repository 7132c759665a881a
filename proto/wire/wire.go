// Package wire holds the facts about the Deskside wire protocol that both
// ends must agree on: the protocol version checked at hello, message size
// limits, and the caps applied to every value an agent reports.
package wire

// ProtocolVersion is the version of the agent ↔ relay protocol. The relay
// refuses a Hello whose version it does not speak.
//
// History (bump the version when a change needs both ends to know it; a
// message kind added to the oneofs below does not, because an agent answers
// a request it does not know with RequestError and the relay refuses an
// empty message, so additions are listed under the version they joined):
//
//	1 (2026-11-23): Enroll (token with CA pin, CSR, protocol version);
//	  on the Connect stream Hello/Welcome, InventoryReport and HealthReport
//	  with Ack/AckError, Ping/Pong, CollectInventory, RequestError.
//	  Added to 1 before its first release, all on 2026-11-23:
//	  - diagnostics: RunChecks → CheckReport (diag.proto);
//	  - commands: RunCommand → CommandOutput… then CommandExit, CancelCommand;
//	  - actions: RunAction → ActionResult;
//	  - remote desktop signaling: StartDesktop, DesktopSignal both ways,
//	    SignalAck, EndDesktop, DesktopEnded (desktop.proto);
//	  - inventory: Partition.free_bytes (statfs f_bavail, space available
//	    to unprivileged users).
//	  Added to 1 on 2026-12-06, compatible both ways (no bump):
//	  - Enroll: EnrollRequest.machine_id, a Deskside-specific hash of the
//	    machine's id; the relay re-enrolls the same machine into its
//	    existing device. An older agent sends none and gets a new device,
//	    an older relay ignores it.
//	  - meaning, not shape: ProcessUsage.cpu_percent is percent of one
//	    core, as top shows it (was a share of the whole machine).
//	  Added to 1 on 2026-12-06, compatible both ways (no bump): certificate
//	  renewal and CA rotation (docs/adr/0019).
//	  - RenewCertificate (agent) → CertificateRenewed or a refusing Ack. An
//	    older relay refuses the unknown message with an Ack, which the agent
//	    takes as "not renewed, ask again later"; an older agent never asks.
//	  - Welcome.trusted_ca_der: the CAs to pin. An older agent ignores it;
//	    an agent pins nothing new from an older relay that sends none.
const ProtocolVersion = 1

// MaxMessageBytes is the largest gRPC message either side sends or accepts.
// Anything bigger is refused by gRPC itself (ResourceExhausted).
const MaxMessageBytes = 4 << 20

// MaxHealthBatch is the largest number of samples in one HealthReport.
const MaxHealthBatch = 1000
