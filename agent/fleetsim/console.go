package fleetsim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/deskside/deskside/internal/pemfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// console is a technician's session on one relay, through the same
// ConsoleService the CLI and the web console use.
type console struct {
	cc    *grpc.ClientConn
	cs    desksidev1.ConsoleServiceClient
	token string
}

// signIn connects to relay addr, trusting the CA in caFile, and signs in.
func signIn(ctx context.Context, addr, caFile, user, password string) (*console, error) {
	ca, err := pemfile.ReadCertificate(caFile)
	if err != nil {
		return nil, fmt.Errorf("read the relay's CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	host, _, _ := net.SplitHostPort(addr)
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: host,
	})))
	if err != nil {
		return nil, err
	}
	c := &console{cc: cc, cs: desksidev1.NewConsoleServiceClient(cc)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := c.cs.Login(lctx, &desksidev1.LoginRequest{Name: user, Password: password}, grpc.WaitForReady(true))
		cancel()
		if err == nil {
			c.token = resp.GetToken()
			return c, nil
		}
		if status.Code(err) == codes.Unauthenticated || time.Now().After(deadline) || ctx.Err() != nil {
			cc.Close()
			return nil, fmt.Errorf("sign in to %s as %s: %s", addr, user, status.Convert(err).Message())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *console) ctx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
}

func (c *console) close() { c.cc.Close() }

// createToken creates an enrollment token for uses agents.
func (c *console) createToken(ctx context.Context, uses int) (string, error) {
	resp, err := c.cs.CreateEnrollmentToken(c.ctx(ctx), &desksidev1.CreateEnrollmentTokenRequest{
		Ttl: durationpb.New(24 * time.Hour), Uses: uint32(uses)})
	if err != nil {
		return "", fmt.Errorf("create an enrollment token: %s", status.Convert(err).Message())
	}
	return resp.GetToken(), nil
}

// RequestRound is the outcome of console requests sent to a sample of
// the fleet after an event.
type RequestRound struct {
	After    string         `json:"after"`
	Relay    string         `json:"relay"`
	Sent     int            `json:"sent"`
	Answered int            `json:"answered"`
	Refused  int            `json:"refused"`
	Reasons  map[string]int `json:"reasons,omitempty"`
	// Unanswered requests got neither an answer nor a reason (a timeout,
	// a stream that ended without a result): the failure to avoid.
	Unanswered int      `json:"unanswered"`
	Problems   []string `json:"problems,omitempty"`
}

// requestTimeout bounds one console request.
const requestTimeout = 20 * time.Second

// round pings count devices picked at random from ids and runs a command
// on a quarter of them.
func (c *console) round(ctx context.Context, after, relay string, ids []string, count int) RequestRound {
	r := RequestRound{After: after, Relay: relay, Reasons: map[string]int{}}
	if len(ids) == 0 || count <= 0 {
		return r
	}
	pick := rand.Perm(len(ids))[:min(count, len(ids))]
	var mu sync.Mutex
	note := func(answered bool, reason string, problem string) {
		mu.Lock()
		defer mu.Unlock()
		r.Sent++
		switch {
		case answered:
			r.Answered++
		case reason != "":
			r.Refused++
			r.Reasons[reason]++
		default:
			r.Unanswered++
			if len(r.Problems) < 10 {
				r.Problems = append(r.Problems, problem)
			}
		}
	}
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for k, i := range pick {
		id := ids[i]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(c.ctx(ctx), requestTimeout)
			defer cancel()
			if k%4 == 3 {
				note(c.command(rctx, id))
				return
			}
			_, err := c.cs.PingDevice(rctx, &desksidev1.PingDeviceRequest{Id: id})
			note(classify(id, "ping", err))
		}()
	}
	wg.Wait()
	return r
}

// command runs a short command on device id and says how it ended.
func (c *console) command(ctx context.Context, id string) (bool, string, string) {
	st, err := c.cs.RunCommand(ctx, &desksidev1.RunCommandRequest{DeviceId: id,
		Command: &desksidev1.RunCommand{Command: "uptime", Timeout: durationpb.New(10 * time.Second)}})
	if err != nil {
		return classify(id, "command", err)
	}
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return false, "", fmt.Sprintf("command on %s: the stream ended without an exit", id)
		}
		if err != nil {
			return classify(id, "command", err)
		}
		if m.GetExit() != nil {
			if e := m.GetExit(); e.GetExitCode() != 0 {
				return false, "", fmt.Sprintf("command on %s: exit %d %s", id, e.GetExitCode(), e.GetError())
			}
			return true, "", ""
		}
		if m.GetOffline() != nil {
			return false, "device offline", ""
		}
	}
}

// classify sorts a console call's error: nil is an answer; an error with
// a message is a refusal with a reason (offline, not permitted); a
// deadline or an empty message is no answer.
func classify(id, what string, err error) (bool, string, string) {
	if err == nil {
		return true, "", ""
	}
	s := status.Convert(err)
	switch {
	case s.Code() == codes.DeadlineExceeded || s.Code() == codes.Canceled || s.Message() == "":
		return false, "", fmt.Sprintf("%s %s: %s %s", what, id, s.Code(), s.Message())
	}
	return false, s.Code().String() + ": " + s.Message(), ""
}

// reasonsSorted lists reasons, most frequent first.
func reasonsSorted(m map[string]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%d× %s", v, k))
	}
	sort.Strings(out)
	return out
}
