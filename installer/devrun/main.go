// Command deskside-dev is what `make run` starts: a relay on localhost with
// a new data directory, a local agent enrolled into it and running as the
// current user (no service install), and the CLI signed in. It prints where
// everything is and how to sign in; Ctrl-C stops it all cleanly.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/deskside/deskside/internal/pemfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/pki"
)

func main() {
	bin := flag.String("bin", "bin", "directory holding the built binaries")
	data := flag.String("data", "", "data directory (default: a new temporary directory)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *data); err != nil {
		fmt.Fprintln(os.Stderr, "make run:", err)
		os.Exit(1)
	}
}

// freeAddr prefers the given port on 127.0.0.1 and falls back to any free one.
func freeAddr(prefer int) string {
	for _, p := range []int{prefer, 0} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			a := l.Addr().String()
			l.Close()
			return a
		}
	}
	return "127.0.0.1:0"
}

func run(ctx context.Context, bin, data string) error {
	bin, _ = filepath.Abs(bin)
	if data == "" {
		var err error
		if data, err = os.MkdirTemp("", "deskside-run-"); err != nil {
			return err
		}
	}
	relayData := filepath.Join(data, "relay")
	agentState := filepath.Join(data, "agent")
	cliConfig := filepath.Join(data, "cli.json")
	logDir := filepath.Join(data, "logs")
	os.MkdirAll(logDir, 0o700)
	password := auth.RandomPassword()
	addr := freeAddr(7443)
	admin := freeAddr(7444)
	webAddr := freeAddr(8443)

	relayLog, _ := os.Create(filepath.Join(logDir, "relay.log"))
	defer relayLog.Close()
	relay := exec.Command(filepath.Join(bin, "deskside-relay"), "--data", relayData, "--listen", addr,
		"--admin-listen", admin, "--web-listen", webAddr, "--turn-listen", freeAddr(3478), "--log-format", "text")
	relay.Env = append(os.Environ(), "DESKSIDE_ADMIN_PASSWORD="+password)
	relay.Stdout, relay.Stderr = relayLog, relayLog
	if err := relay.Start(); err != nil {
		return fmt.Errorf("start relay: %w", err)
	}
	procs := []*exec.Cmd{relay}
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			p := procs[i]
			p.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				p.Process.Kill()
				<-done
			}
		}
		fmt.Println("\nStopped relay and agent. Data kept in", data)
	}()

	caPath := filepath.Join(relayData, pki.CAFile)
	token, err := enrollmentToken(ctx, addr, caPath, password)
	if err != nil {
		return fmt.Errorf("%w (relay log: %s)", err, relayLog.Name())
	}
	enroll := exec.CommandContext(ctx, filepath.Join(bin, "deskside-agent"), "enroll", "--relay", addr, "--token", token, "--state", agentState)
	if out, err := enroll.CombinedOutput(); err != nil {
		return fmt.Errorf("enroll agent: %v\n%s", err, out)
	}
	agentLog, _ := os.Create(filepath.Join(logDir, "agent.log"))
	defer agentLog.Close()
	agent := exec.Command(filepath.Join(bin, "deskside-agent"), "run", "--state", agentState, "--log-format", "text")
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	procs = append(procs, agent)

	login := exec.CommandContext(ctx, filepath.Join(bin, "deskside"), "login", "--relay", addr, "--ca", caPath, "--user", "admin", "--password-stdin")
	login.Env = append(os.Environ(), "DESKSIDE_CONFIG="+cliConfig)
	login.Stdin = strings.NewReader(password + "\n")
	if out, err := login.CombinedOutput(); err != nil {
		return fmt.Errorf("CLI login: %v\n%s", err, out)
	}

	fmt.Printf(`
Deskside is running.

  Web console            https://%s/
                         (the relay's own CA signs it: accept the warning, or
                         import %s into the browser)
  Relay (gRPC, TLS 1.3)  %s
  Relay CA               %s
  Metrics and pprof      http://%s/metrics
  Sign in                user: admin   password: %s
  Logs                   %s

The CLI is signed in. List the fleet (the local agent appears within seconds):

  DESKSIDE_CONFIG=%s %s devices list

Sign in from another shell:

  %s login --relay %s --ca %s --user admin

Press Ctrl-C to stop everything.
`, webAddr, caPath, addr, caPath, admin, password, logDir, cliConfig, filepath.Join(bin, "deskside"),
		filepath.Join(bin, "deskside"), addr, caPath)

	exited := make(chan error, 2)
	for _, p := range procs {
		go func() { exited <- p.Wait() }()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-exited:
		return fmt.Errorf("a process exited early (%v); see %s", err, logDir)
	}
}

// enrollmentToken waits for the relay, signs in as admin and creates a
// one-use token for the local agent.
func enrollmentToken(ctx context.Context, addr, caPath, password string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	var ca *x509.Certificate
	for {
		c, err := pemfile.ReadCertificate(caPath)
		if err == nil {
			ca = c
			break
		}
		if time.Now().After(deadline) {
			return "", errors.New("relay did not create its CA within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: "127.0.0.1",
	})))
	if err != nil {
		return "", err
	}
	defer cc.Close()
	cs := desksidev1.NewConsoleServiceClient(cc)
	var resp *desksidev1.LoginResponse
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err = cs.Login(cctx, &desksidev1.LoginRequest{Name: "admin", Password: password}, grpc.WaitForReady(true))
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("sign in to relay: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+resp.GetToken())
	tok, err := cs.CreateEnrollmentToken(actx, &desksidev1.CreateEnrollmentTokenRequest{Ttl: durationpb.New(10 * time.Minute), Uses: 1})
	if err != nil {
		return "", fmt.Errorf("create enrollment token: %w", err)
	}
	return tok.GetToken(), nil
}
