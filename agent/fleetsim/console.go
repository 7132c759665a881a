package fleetsim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/internal/pemfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

// console is a technician's session on one relay, through the same
// ConsoleService the CLI and the web console use.
type console struct {
	cc    *grpc.ClientConn
	cs    desksidev1.ConsoleServiceClient
	token string
	// tech, when set, signs commands as a technician's console does.
	tech *technician
}

// technician is a technician key certified by the organisation key the
// simulated agents pin.
type technician struct {
	key  ed25519.PrivateKey
	cert *desksidev1.TechnicianCertificate
}

// newOrg makes an organisation key and a tier-3 technician certified by
// it until valid; the agents pin the fingerprint it returns.
func newOrg(name string, valid time.Duration) (*technician, string, error) {
	orgPub, org, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	cert, err := envelope.Certify(org, &desksidev1.TechnicianCertificateBody{Technician: name, PublicKey: pub,
		Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER3, NotAfter: timestamppb.New(time.Now().Add(valid))})
	if err != nil {
		return nil, "", err
	}
	return &technician{key: key, cert: cert}, envelope.Fingerprint(orgPub), nil
}

// sign returns ctx carrying op sealed for ids, as the CLI sends it; ctx
// as is without a technician.
func (c *console) sign(ctx context.Context, op proto.Message, ids []string) (context.Context, error) {
	if c.tech == nil {
		return ctx, nil
	}
	env, err := envelope.Seal(c.tech.key, c.tech.cert, op, ids, time.Now())
	if err != nil {
		return ctx, err
	}
	return envelope.WithCall(ctx, env, ids)
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
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: host,
	}))}
	if la := consoleLocalAddr(addr); la != nil {
		// From outside the agents' addresses: a blackhole cuts only them.
		d := &net.Dialer{LocalAddr: la}
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", a)
		}))
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
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
	pick := mrand.Perm(len(ids))[:min(count, len(ids))]
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
	rc := &desksidev1.RunCommand{Command: "uptime", Timeout: durationpb.New(10 * time.Second)}
	ctx, err := c.sign(ctx, rc, []string{id})
	if err != nil {
		return false, "", fmt.Sprintf("command on %s: sign: %v", id, err)
	}
	st, err := c.cs.RunCommand(ctx, &desksidev1.RunCommandRequest{DeviceId: id, Command: rc})
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

// FanOut is the outcome of one command to the whole fleet at once, signed
// over every device in one envelope (the relay attaches each agent's
// Merkle proof).
type FanOut struct {
	After string `json:"after"`
	Relay string `json:"relay"`
	// Devices is how many the relay sent the command to; the rest count
	// its summary's outcomes.
	Devices   int `json:"devices"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Offline   int `json:"offline"`
	TimedOut  int `json:"timed_out"`
	// List is the time to list the devices and seal the envelope; First,
	// P50 and P99 when results came back (from the request), All when the
	// summary did.
	List  string `json:"list"`
	First string `json:"first_result"`
	P50   string `json:"p50"`
	P99   string `json:"p99"`
	All   string `json:"all_results"`
	// Errors are the first few devices' errors, and Problem what stopped
	// the request, if anything did.
	Errors  []string `json:"errors,omitempty"`
	Problem string   `json:"problem,omitempty"`
}

// fanOutFilter selects the simulated devices that are online.
func fanOutFilter() *desksidev1.ListDevicesRequest {
	online := true
	return &desksidev1.ListDevicesRequest{Hostname: "sim-", Online: &online}
}

// fanOut runs one command on every online simulated device, as
// `deskside run --filter` does: list the filter's devices, seal the
// command over them, send one request, read every result.
func (c *console) fanOut(ctx context.Context, after, relay string) FanOut {
	f := FanOut{After: after, Relay: relay}
	ctx, cancel := context.WithTimeout(c.ctx(ctx), 5*time.Minute)
	defer cancel()
	start := time.Now()
	var ids []string
	lr := fanOutFilter()
	lr.PageSize = 1000
	for {
		resp, err := c.cs.ListDevices(ctx, lr)
		if err != nil {
			f.Problem = "list the devices: " + status.Convert(err).Message()
			return f
		}
		for _, d := range resp.GetDevices() {
			ids = append(ids, d.GetId())
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		lr.PageToken = resp.GetNextPageToken()
	}
	if len(ids) == 0 {
		f.Problem = "no simulated device is online"
		return f
	}
	rc := &desksidev1.RunCommand{Command: "uptime", Timeout: durationpb.New(time.Minute)}
	sctx, err := c.sign(ctx, rc, ids)
	if err != nil {
		f.Problem = "sign: " + err.Error()
		return f
	}
	sent := time.Now()
	f.List = sent.Sub(start).Round(time.Millisecond).String()
	st, err := c.cs.RunCommand(sctx, &desksidev1.RunCommandRequest{Filter: fanOutFilter(), Command: rc})
	if err != nil {
		f.Problem = status.Convert(err).Message()
		return f
	}
	var at []time.Duration
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			f.Problem = "the stream ended without a summary"
			break
		}
		if err != nil {
			f.Problem = status.Convert(err).Message()
			break
		}
		switch {
		case m.GetExit() != nil:
			at = append(at, time.Since(sent))
			if e := m.GetExit().GetError(); e != "" && len(f.Errors) < 5 {
				f.Errors = append(f.Errors, m.GetHostname()+": "+e)
			}
		case m.GetOffline() != nil:
			at = append(at, time.Since(sent))
		case m.GetSummary() != nil:
			s := m.GetSummary()
			f.All = time.Since(sent).Round(time.Millisecond).String()
			f.Devices, f.Succeeded, f.Failed = int(s.GetDevices()), int(s.GetSucceeded()), int(s.GetFailed())
			f.Offline, f.TimedOut = int(s.GetOffline()), int(s.GetTimedOut())
		}
		if f.All != "" {
			break
		}
	}
	if len(at) > 0 {
		sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
		f.First = at[0].Round(time.Millisecond).String()
		f.P50 = at[len(at)/2].Round(time.Millisecond).String()
		f.P99 = at[len(at)*99/100].Round(time.Millisecond).String()
	}
	return f
}

func (f FanOut) line() string {
	if f.Problem != "" && f.All == "" {
		return fmt.Sprintf("fan-out %s via %s: %s", f.After, f.Relay, f.Problem)
	}
	s := fmt.Sprintf("fan-out %s via %s: %d devices, %d succeeded, %d failed, %d offline, %d timed out; listed and sealed in %s; results first %s, p50 %s, p99 %s, all %s",
		f.After, f.Relay, f.Devices, f.Succeeded, f.Failed, f.Offline, f.TimedOut, f.List, dash(f.First), dash(f.P50), dash(f.P99), dash(f.All))
	if len(f.Errors) > 0 {
		s += fmt.Sprintf("; errors %q", f.Errors)
	}
	if f.Problem != "" {
		s += "; " + f.Problem
	}
	return s
}
