// Package devrun is what `make run` starts (through internal/cmd/deskside-dev):
// a relay on localhost, a local agent enrolled into it and running as the
// current user (no service install), and the CLI signed in. Its data
// directory (relay state, admin password, agent identity) is kept between
// runs, so the same password and devices come back; Fresh starts over.
// It prints where everything is and how to use it; Ctrl-C stops it all.
package devrun

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/internal/pemfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// Config is what Run needs.
type Config struct {
	// Bin is the directory holding deskside-relay, deskside-agent and deskside.
	Bin string
	// Data is the data directory kept between runs.
	Data string
	// Fresh deletes the data directory of previous runs first.
	Fresh bool
	// Out receives the progress lines and the instructions; default os.Stdout.
	Out io.Writer
}

// Run starts the relay and the agent and blocks until ctx is done or one of
// them exits.
func Run(ctx context.Context, cfg Config) error {
	out := cfg.Out
	if out == nil {
		out = os.Stdout
	}
	bin, err := filepath.Abs(cfg.Bin)
	if err != nil {
		return err
	}
	st, err := Open(cfg.Data, cfg.Fresh)
	if err != nil {
		return err
	}
	if st.Reused {
		fmt.Fprintf(out, "==> reusing %s (same admin password and devices; `make run-clean` starts fresh)\n", st.Dir)
		if err := st.CheckPorts(); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "==> new data directory %s\n", st.Dir)
	}
	if err := os.MkdirAll(st.LogDir(), 0o700); err != nil {
		return err
	}

	var procs []*exec.Cmd
	defer func() {
		stopAll(procs)
		if len(procs) > 0 {
			fmt.Fprintf(out, "\nStopped relay and agent. Data kept in %s (`make run` reuses it, `make run-clean` deletes it).\n", st.Dir)
		}
	}()

	fmt.Fprintln(out, "==> starting the relay")
	relayLog, err := openLog(st, "relay.log")
	if err != nil {
		return err
	}
	defer relayLog.Close()
	// --config= : a packaged relay's /etc/deskside/relay.yaml on this
	// machine is not the development relay's configuration.
	relay := exec.Command(filepath.Join(bin, "deskside-relay"), "--config=", "--data", st.RelayDir(), "--listen", st.Addrs.Relay,
		"--admin-listen", st.Addrs.Admin, "--web-listen", st.Addrs.Web, "--turn-listen", st.Addrs.TURN, "--log-format", "text")
	// Used only when the relay creates its first admin (a new data directory).
	relay.Env = append(os.Environ(), "DESKSIDE_ADMIN_PASSWORD="+st.Password)
	relay.Stdout, relay.Stderr = relayLog, relayLog
	if err := relay.Start(); err != nil {
		return fmt.Errorf("start the relay: %w (build it with `make build`)", err)
	}
	procs = append(procs, relay)

	cs, closeConn, err := dialRelay(ctx, st)
	if err != nil {
		return fmt.Errorf("%w (relay log: %s)", err, relayLog.Name())
	}
	defer closeConn()
	token, err := signIn(ctx, cs, st.Password)
	if err != nil {
		return fmt.Errorf("%w (relay log: %s)", err, relayLog.Name())
	}

	needs, err := NeedsEnroll(st.AgentDir(), st.Addrs.Relay)
	if err != nil {
		return err
	}
	if needs {
		fmt.Fprintln(out, "==> enrolling the local agent")
		if err := enrollAgent(ctx, cs, token, bin, st); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(out, "==> the local agent is already enrolled")
	}

	fmt.Fprintln(out, "==> starting the agent")
	agentLog, err := openLog(st, "agent.log")
	if err != nil {
		return err
	}
	defer agentLog.Close()
	agentArgs := []string{"run", "--state", st.AgentDir(), "--log-format", "text"}
	if sock := st.AgentSocket(); sock != "" {
		agentArgs = append(agentArgs, "--ipc-socket", sock)
	}
	agent := exec.Command(filepath.Join(bin, "deskside-agent"), agentArgs...)
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		return fmt.Errorf("start the agent: %w (build it with `make build`)", err)
	}
	procs = append(procs, agent)

	fmt.Fprintln(out, "==> signing the CLI in")
	login := exec.CommandContext(ctx, filepath.Join(bin, "deskside"), "login", "--relay", st.Addrs.Relay, "--ca", st.CAPath(), "--user", "admin", "--password-stdin")
	login.Env = append(os.Environ(), "DESKSIDE_CONFIG="+st.CLIConfig())
	login.Stdin = strings.NewReader(st.Password + "\n")
	if b, err := login.CombinedOutput(); err != nil {
		return fmt.Errorf("CLI login: %v\n%s", err, b)
	}

	fmt.Fprint(out, Instructions(st, bin))

	exited := make(chan error, len(procs))
	for _, p := range procs {
		go func() { exited <- p.Wait() }()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-exited:
		return fmt.Errorf("a process exited early (%v): see the logs in %s", err, st.LogDir())
	}
}

// NeedsEnroll reports whether the agent state in dir is missing or was
// enrolled with another relay address.
func NeedsEnroll(dir, relayAddr string) (bool, error) {
	st, err := enroll.Load(dir)
	switch {
	case errors.Is(err, enroll.ErrNotEnrolled):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("%w; or start fresh with `make run-clean`", err)
	}
	return st.Relay != relayAddr, nil
}

// Instructions is the text printed once everything runs.
func Instructions(st *State, bin string) string {
	cli := filepath.Join(bin, "deskside")
	return fmt.Sprintf(`
Deskside is running.

  Web console   https://%[1]s/
                sign in as admin with the password below. The relay's own CA
                signs the page: accept the browser's warning, or import
                %[2]s into the browser.
  Sign in       user: admin   password: %[3]s
                (kept in %[4]s)
  Relay         %[5]s (gRPC, TLS 1.3; CA %[2]s)
  Metrics       http://%[6]s/metrics
  Logs          %[7]s
  Data          %[8]s (kept between runs; start fresh with: make run-clean)

The CLI is signed in. In another shell (the local agent appears within seconds):

  export DESKSIDE_CONFIG=%[9]s
  %[10]s devices list
  %[10]s devices show <ID from the list>

%[11]sSign the CLI in again (when its session expired):

  DESKSIDE_CONFIG=%[9]s %[10]s login --relay %[5]s --ca %[2]s --user admin --password-stdin < %[4]s

Press Ctrl-C to stop everything.
`, st.Addrs.Web, st.CAPath(), st.Password, st.PasswordPath(), st.Addrs.Relay, st.Addrs.Admin, st.LogDir(), st.Dir,
		st.CLIConfig(), cli, trayLine(st, bin))
}

// trayLine says how to open the user's Get help page against the local
// agent, and how to put agent packages where this relay serves them.
func trayLine(st *State, bin string) string {
	env := ""
	if sock := st.AgentSocket(); sock != "" {
		env = "DESKSIDE_AGENT_SOCKET=" + sock + " "
	}
	return fmt.Sprintf(`Get help as the computer's user (the tray and its page; in a graphical session):

  %s%s --open

Agent packages for new installs (the console's Fleet page, Add devices…):

  make packages && %s downloads add --dir %s dist/deskside-agent* dist/SHA256SUMS

`, env, filepath.Join(bin, "deskside-tray"), filepath.Join(bin, "deskside-relay"), filepath.Join(st.RelayDir(), "downloads"))
}

func openLog(st *State, name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(st.LogDir(), name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return f, nil
}

// stopAll stops the processes in reverse order: SIGTERM, then SIGKILL
// after 10 seconds.
func stopAll(procs []*exec.Cmd) {
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
}

// dialRelay waits for the relay's CA file and connects to the relay with it.
func dialRelay(ctx context.Context, st *State) (desksidev1.ConsoleServiceClient, func(), error) {
	deadline := time.Now().Add(30 * time.Second)
	var ca *x509.Certificate
	for {
		c, err := pemfile.ReadCertificate(st.CAPath())
		if err == nil {
			ca = c
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, nil, errors.New("the relay did not create its CA within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cc, err := grpc.NewClient("passthrough:///"+st.Addrs.Relay, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: "127.0.0.1",
	})))
	if err != nil {
		return nil, nil, err
	}
	return desksidev1.NewConsoleServiceClient(cc), func() { cc.Close() }, nil
}

// signIn waits for the relay to answer and signs in as admin.
func signIn(ctx context.Context, cs desksidev1.ConsoleServiceClient, password string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := cs.Login(cctx, &desksidev1.LoginRequest{Name: "admin", Password: password}, grpc.WaitForReady(true))
		cancel()
		if err == nil {
			return resp.GetToken(), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("sign in to the relay as admin: %w (if the password was changed, start fresh with `make run-clean`)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// enrollAgent creates a one-use token and enrolls the local agent with it.
func enrollAgent(ctx context.Context, cs desksidev1.ConsoleServiceClient, token, bin string, st *State) error {
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	tok, err := cs.CreateEnrollmentToken(actx, &desksidev1.CreateEnrollmentTokenRequest{Ttl: durationpb.New(10 * time.Minute), Uses: 1})
	if err != nil {
		return fmt.Errorf("create an enrollment token: %w", err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "deskside-agent"), "enroll", "--relay", st.Addrs.Relay,
		"--token", tok.GetToken(), "--state", st.AgentDir(), "--force")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("enroll the agent: %v\n%s", err, b)
	}
	return nil
}
