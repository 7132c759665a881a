// Command turnbench runs the relay's TURN server (package turnserver) on
// its own, so BenchmarkTURNRelayFlows can read the server's CPU time from
// /proc without counting its TURN clients. It prints the UDP port on the
// first line of standard output once it serves, and stops on SIGINT or
// SIGTERM.
//
//	turnbench --listen 127.0.0.1:0 --secret HEX [--cpuprofile FILE]
//	          [--udp-sockets N] [--socket-buffer BYTES] [--no-hairpin]
//	          [--send-batch N] [--send-delay DURATION] [--no-gso] [--no-hold] [--no-forward]
//
// --cpuprofile writes a CPU profile of the whole run for `go tool pprof`;
// the other flags set the turnserver.Config fields of the same names (their
// defaults are the server's). Each flag's default comes from the
// environment (DESKSIDE_TURNBENCH_CPUPROFILE, _UDP_SOCKETS, _SOCKET_BUFFER,
// _NO_HAIRPIN, _SEND_BATCH, _SEND_DELAY, _NO_GSO, _NO_HOLD, _NO_FORWARD), so that it can be set under the benchmark. On exit it
// prints the server's counters to standard error.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/deskside/deskside/relay/turnserver"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "UDP and TCP address")
	public := flag.String("public-ip", "127.0.0.1", "address relayed candidates advertise")
	secret := flag.String("secret", "", "shared secret, hex (required)")
	cpuprofile := flag.String("cpuprofile", os.Getenv("DESKSIDE_TURNBENCH_CPUPROFILE"), "write a CPU profile to this file")
	sockets := flag.Int("udp-sockets", envInt("DESKSIDE_TURNBENCH_UDP_SOCKETS"), "UDP sockets on the listening port (0: one per CPU)")
	sockBuf := flag.Int("socket-buffer", envInt("DESKSIDE_TURNBENCH_SOCKET_BUFFER"), "listening sockets' buffer in bytes (0: default, <0: system default)")
	sendBatch := flag.Int("send-batch", envInt("DESKSIDE_TURNBENCH_SEND_BATCH"), "datagrams a sendmmsg to clients (0: default, <0: one sendto each)")
	sendDelay := flag.Duration("send-delay", envDuration("DESKSIDE_TURNBENCH_SEND_DELAY"), "longest wait for a batch to fill (0: default, <0: none)")
	noGSO := flag.Bool("no-gso", os.Getenv("DESKSIDE_TURNBENCH_NO_GSO") != "", "no UDP GSO to clients")
	noHold := flag.Bool("no-hold", os.Getenv("DESKSIDE_TURNBENCH_NO_HOLD") != "", "send as written, not once per batch read")
	noForward := flag.Bool("no-forward", os.Getenv("DESKSIDE_TURNBENCH_NO_FORWARD") != "", "hand all ChannelData from clients to pion/turn")
	noHairpin := flag.Bool("no-hairpin", os.Getenv("DESKSIDE_TURNBENCH_NO_HAIRPIN") != "", "relay between allocations through the kernel")
	flag.Parse()
	key, err := hex.DecodeString(*secret)
	if err != nil || len(key) == 0 {
		fmt.Fprintln(os.Stderr, "turnbench: --secret HEX is required")
		os.Exit(2)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "turnbench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "turnbench:", err)
			os.Exit(1)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := turnserver.Start(turnserver.Config{Listen: *listen, PublicIP: net.ParseIP(*public), Secret: key,
		UDPSockets: *sockets, SocketBuffer: *sockBuf, NoHairpin: *noHairpin,
		SendBatch: *sendBatch, SendDelay: *sendDelay, NoGSO: *noGSO, NoHold: *noHold, NoForward: *noForward})
	if err != nil {
		fmt.Fprintln(os.Stderr, "turnbench:", err)
		os.Exit(1)
	}
	fmt.Println(s.Port())
	<-ctx.Done()
	// Diagnostics for the benchmark's output.
	st := s.Stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(os.Stderr, "turnbench: %d UDP sockets; %d ChannelData from clients relayed without pion/turn; %d datagrams relayed in-process between allocations (%d of them as ChannelData from the sending side), %d dropped for full relay queues; %d datagrams to clients in %d batches (%d GSO messages, %d refused); %d heap allocations, %d GC cycles\n",
		st.UDPSockets, st.Forwarded, st.Hairpinned, st.Channeled, st.RelayDropped, st.Sent, st.SendBatches, st.GSOMessages, st.SendErrors, ms.Mallocs, ms.NumGC)
	s.Close()
}

func envDuration(name string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(name))
	return d
}

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}
