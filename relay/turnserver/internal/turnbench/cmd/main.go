// Command turnbench runs the relay's TURN server (package turnserver) on
// its own, so BenchmarkTURNRelayFlows can read the server's CPU time from
// /proc without counting its TURN clients. It prints the UDP port on the
// first line of standard output once it serves, and stops on SIGINT or
// SIGTERM.
//
//	turnbench --listen 127.0.0.1:0 --secret HEX
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/deskside/deskside/relay/turnserver"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "UDP and TCP address")
	public := flag.String("public-ip", "127.0.0.1", "address relayed candidates advertise")
	secret := flag.String("secret", "", "shared secret, hex (required)")
	flag.Parse()
	key, err := hex.DecodeString(*secret)
	if err != nil || len(key) == 0 {
		fmt.Fprintln(os.Stderr, "turnbench: --secret HEX is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := turnserver.Start(turnserver.Config{Listen: *listen, PublicIP: net.ParseIP(*public), Secret: key})
	if err != nil {
		fmt.Fprintln(os.Stderr, "turnbench:", err)
		os.Exit(1)
	}
	fmt.Println(s.Port())
	<-ctx.Done()
	s.Close()
}
