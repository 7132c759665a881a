package command

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const (
	// DefaultTimeout bounds a command whose request names no timeout.
	DefaultTimeout = 10 * time.Minute
	// MaxTimeout is the longest timeout honoured; longer ones are lowered.
	MaxTimeout = 24 * time.Hour
	// DefaultMaxOutput caps stdout and stderr together when the request
	// names no cap.
	DefaultMaxOutput uint64 = 10 << 20
	// DefaultChunkBytes is the largest output chunk emitted.
	DefaultChunkBytes = 32 << 10
	// DefaultFlushInterval is the longest output waits in a partial chunk.
	DefaultFlushInterval = 50 * time.Millisecond
	// DefaultKillGrace is the time between SIGTERM and SIGKILL.
	DefaultKillGrace = 2 * time.Second

	// killWait bounds the wait for the tree to vanish after SIGKILL
	// (a process in uninterruptible sleep dies only when it wakes up).
	killWait = 5 * time.Second
	// pollEvery is the interval of the waits for processes to go.
	pollEvery = 10 * time.Millisecond
	// drainCheck is how long the pipes may take to reach EOF once the tree
	// is gone before the agent looks for other holders of them.
	drainCheck = 100 * time.Millisecond
	// drainIdle and drainMax bound reading once the tree is gone and the
	// pipes still have not reached EOF: reading stops when they stay idle
	// that long, or that long after the stop at the latest.
	drainIdle = time.Second
	drainMax  = 10 * time.Second
	// readBuf is the size of one read from a pipe.
	readBuf = 32 << 10
)

// Log attribute keys.
const (
	logKeyKind     = "kind"
	logKeyBytes    = "bytes"
	logKeyRunAs    = "run_as"
	logKeyPID      = "pid"
	logKeyExitCode = "exit_code"
	logKeyTimedOut = "timed_out"
	logKeyCanceled = "canceled"
	logKeyTrunc    = "truncated"
	logKeyOutput   = "output_bytes"
	logKeyDuration = "duration"
	logKeyErr      = "err"
	logKeyCount    = "count"
)

// Options tune a Runner. The zero value gives the defaults.
type Options struct {
	// Logger receives start/end and process-tree events; default
	// slog.Default().
	Logger *slog.Logger
	// DefaultTimeout applies when a request names none: default
	// DefaultTimeout, at most MaxTimeout.
	DefaultTimeout time.Duration
	// DefaultMaxOutput caps output when a request names no cap: default
	// DefaultMaxOutput.
	DefaultMaxOutput uint64
	// ChunkBytes is the largest chunk emitted: default DefaultChunkBytes.
	ChunkBytes int
	// FlushInterval is the longest output waits in a partial chunk:
	// default DefaultFlushInterval.
	FlushInterval time.Duration
	// KillGrace is the time between SIGTERM and SIGKILL when the tree is
	// ended: default DefaultKillGrace.
	KillGrace time.Duration
}

// withDefaults returns o with zero or out-of-range values replaced.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = DefaultTimeout
	}
	o.DefaultTimeout = min(o.DefaultTimeout, MaxTimeout)
	if o.DefaultMaxOutput == 0 {
		o.DefaultMaxOutput = DefaultMaxOutput
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = DefaultChunkBytes
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.KillGrace <= 0 {
		o.KillGrace = DefaultKillGrace
	}
	return o
}

// Runner runs commands. It holds no state between runs and is safe for
// concurrent use.
type Runner struct {
	o   Options
	log *slog.Logger
}

// New returns a Runner.
func New(o Options) *Runner {
	o = o.withDefaults()
	return &Runner{o: o, log: o.Logger}
}

// account is the user a command runs as.
type account struct {
	name string // user name; may be empty when the agent's own is unknown
	home string // home directory; may be empty
	uid  uint32
	gid  uint32
	// groups are the supplementary groups.
	groups []uint32
	// switchTo is set when the process must get these credentials (the
	// user is not the agent's own).
	switchTo bool
}

// spec is a validated request.
type spec struct {
	command   string // command line, or
	script    string // script body
	timeout   time.Duration
	maxOutput uint64
	runAs     string
	acct      *account
}

func (s *spec) kind() string {
	if s.script != "" {
		return "script"
	}
	return "command"
}

// plan validates req and applies the defaults.
func (r *Runner) plan(req *desksidev1.RunCommand) (*spec, error) {
	sp := &spec{
		command:   req.GetCommand(),
		script:    req.GetScript(),
		timeout:   r.o.DefaultTimeout,
		maxOutput: r.o.DefaultMaxOutput,
		runAs:     req.GetRunAs(),
	}
	if (sp.command == "") == (sp.script == "") {
		return nil, fmt.Errorf("%w: exactly one of command and script must be set", ErrBadRequest)
	}
	if req.Timeout != nil {
		if err := req.GetTimeout().CheckValid(); err != nil {
			return nil, fmt.Errorf("%w: timeout: %w", ErrBadRequest, err)
		}
		switch d := req.GetTimeout().AsDuration(); {
		case d < 0:
			return nil, fmt.Errorf("%w: negative timeout %v", ErrBadRequest, d)
		case d > 0:
			sp.timeout = min(d, MaxTimeout)
		}
	}
	if n := req.GetMaxOutputBytes(); n > 0 {
		sp.maxOutput = n
	}
	acct, err := lookupAccount(sp.runAs)
	if err != nil {
		return nil, err
	}
	sp.acct = acct
	return sp, nil
}

// outcome says why the agent ended a command.
type outcome int

const (
	exitedByItself outcome = iota
	timedOut
	canceled
	emitFailed
)

// piece is one read from a pipe; done marks the reader's end.
type piece struct {
	stream desksidev1.CommandStream
	data   []byte
	done   bool
}

// Run runs req until it exits, times out, or ctx is cancelled (cancel =
// the console's cancel), calling emit for each output chunk in order (seq
// from 1; stdout and stderr chunks interleaved in arrival order), and
// returns the exit record. Run returns only after every process of the
// tree is gone and every goroutine it started has ended. See the package
// documentation for what "the tree" covers.
func (r *Runner) Run(ctx context.Context, req *desksidev1.RunCommand, emit func(*desksidev1.CommandOutput) error) *desksidev1.CommandExit {
	began := time.Now()
	res := &desksidev1.CommandExit{ExitCode: -1}
	defer func() { res.Duration = durationpb.New(time.Since(began)) }()

	sp, err := r.plan(req)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if err := ctx.Err(); err != nil {
		res.Canceled = true
		res.Error = "command: canceled before it started"
		return res
	}

	scriptPath := ""
	if sp.script != "" {
		dir, path, err := writeScript(sp.script, sp.acct)
		if err != nil {
			res.Error = err.Error()
			return res
		}
		defer func() {
			if err := os.RemoveAll(dir); err != nil {
				r.log.Warn("command: removing script directory", logKeyErr, err)
			}
		}()
		scriptPath = path
	}

	cmd, err := buildCmd(sp, scriptPath)
	if err != nil {
		res.Error = err.Error()
		return res
	}

	var outR, outW, errR, errW *os.File
	if outR, outW, err = os.Pipe(); err == nil {
		if errR, errW, err = os.Pipe(); err != nil {
			outR.Close()
			outW.Close()
		}
	}
	if err != nil {
		res.Error = fmt.Sprintf("command: output pipes: %v", err)
		return res
	}
	defer outR.Close()
	defer errR.Close()
	cmd.Stdout, cmd.Stderr = outW, errW

	t, err := startTree(cmd, r.log, outR, errR)
	// The child holds its own copies; ours must go so the pipes reach EOF.
	outW.Close()
	errW.Close()
	if err != nil {
		res.Error = fmt.Sprintf("command: start: %v", err)
		return res
	}
	defer t.close()
	r.log.Info("command started", logKeyKind, sp.kind(), logKeyBytes, len(sp.command)+len(sp.script),
		logKeyRunAs, sp.runAs, logKeyPID, cmd.Process.Pid)

	var (
		wg         sync.WaitGroup
		pieces     = make(chan piece, 8)
		exited     = make(chan struct{})
		emitFail   = make(chan struct{})
		readers    = [2]*pipeReader{newPipeReader(outR, desksidev1.CommandStream_COMMAND_STREAM_STDOUT, pieces), newPipeReader(errR, desksidev1.CommandStream_COMMAND_STREAM_STDERR, pieces)}
		exitCode   = -1
		waitErr    error
		ended      outcome
		emitErr    error
		emitBroken bool
	)
	for _, rd := range readers {
		wg.Go(rd.run)
	}
	// The waiter reaps the leader.
	wg.Go(func() {
		defer close(exited)
		exitCode, waitErr = t.wait()
	})
	// The controller ends the tree and then the reading.
	wg.Go(func() {
		ended = r.control(ctx, sp.timeout, t, exited, emitFail, readers)
	})

	// Run's own goroutine coalesces the output and emits it.
	send := func(m *desksidev1.CommandOutput) {
		if m == nil || emitBroken {
			return
		}
		if err := emit(m); err != nil {
			emitErr, emitBroken = err, true
			close(emitFail)
		}
	}
	ch := newChunker(r.o.ChunkBytes, sp.maxOutput)
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	armed := false
	for open := len(readers); open > 0; {
		select {
		case p := <-pieces:
			if p.done {
				open--
				continue
			}
			for _, m := range ch.add(p.stream, p.data) {
				send(m)
			}
			switch pending := ch.pending(); {
			case pending && !armed:
				flush.Reset(r.o.FlushInterval)
				armed = true
			case !pending && armed:
				flush.Stop()
				armed = false
			}
		case <-flush.C:
			armed = false
			send(ch.flush())
		}
	}
	flush.Stop()
	send(ch.flush())
	wg.Wait()
	if ch.truncated {
		send(ch.marker())
	}

	res.ExitCode = int32(exitCode)
	res.Truncated = ch.truncated
	res.OutputBytes = ch.total
	switch ended {
	case timedOut:
		res.TimedOut, res.ExitCode = true, -1
	case canceled:
		res.Canceled, res.ExitCode = true, -1
	case emitFailed:
		res.Canceled, res.ExitCode = true, -1
		res.Error = fmt.Sprintf("command: output could not be delivered: %v", emitErr)
	}
	if waitErr != nil && res.Error == "" {
		res.Error = fmt.Sprintf("command: wait: %v", waitErr)
	}
	r.log.Info("command ended", logKeyPID, cmd.Process.Pid, logKeyExitCode, res.ExitCode,
		logKeyTimedOut, res.TimedOut, logKeyCanceled, res.Canceled, logKeyTrunc, res.Truncated,
		logKeyOutput, res.OutputBytes, logKeyDuration, time.Since(began))
	return res
}

// control waits for the leader to exit, the timeout, a cancel or an emit
// failure; ends what remains of the tree; and then ends the reading once
// the pipes are drained. It returns why the command ended.
func (r *Runner) control(ctx context.Context, timeout time.Duration, t *tree, exited, emitFail <-chan struct{}, readers [2]*pipeReader) outcome {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	ended := exitedByItself
	select {
	case <-exited:
	case <-ctx.Done():
		ended = canceled
	case <-timer.C:
		ended = timedOut
	case <-emitFail:
		ended = emitFailed
	}
	if ended == exitedByItself {
		if t.leftovers() {
			r.log.Debug("command: leader exited; ending the processes it left")
			t.kill(r.o.KillGrace)
		}
	} else {
		t.kill(r.o.KillGrace)
		<-exited
	}

	readersDone := func(d time.Duration) bool {
		deadline := time.NewTimer(d)
		defer deadline.Stop()
		for _, rd := range readers {
			select {
			case <-rd.done:
			case <-deadline.C:
				return false
			}
		}
		return true
	}
	if readersDone(drainCheck) {
		return ended
	}
	// Something outside the group still holds the pipes (or Run is slow
	// to take the output): end the holders where the platform can find
	// them, then read until the pipes are idle.
	t.kill(r.o.KillGrace)
	for _, rd := range readers {
		rd.stop()
	}
	for _, rd := range readers {
		<-rd.done
	}
	return ended
}

// pipeReader reads one output pipe into pieces.
type pipeReader struct {
	f      *os.File
	stream desksidev1.CommandStream
	out    chan<- piece
	done   chan struct{}
	// stopAt is when stop was called (unix nanoseconds), 0 before.
	stopAt atomic.Int64
}

func newPipeReader(f *os.File, s desksidev1.CommandStream, out chan<- piece) *pipeReader {
	return &pipeReader{f: f, stream: s, out: out, done: make(chan struct{})}
}

// run reads until EOF, an error, or, after stop, drainIdle without data
// (drainMax after stop at the latest).
func (p *pipeReader) run() {
	defer close(p.done)
	defer func() { p.out <- piece{stream: p.stream, done: true} }()
	buf := make([]byte, readBuf)
	for {
		if at := p.stopAt.Load(); at != 0 {
			if time.Since(time.Unix(0, at)) > drainMax {
				return
			}
			// Pipes that cannot take deadlines (Windows) read to EOF.
			_ = p.f.SetReadDeadline(time.Now().Add(drainIdle))
		}
		n, err := p.f.Read(buf)
		if n > 0 {
			p.out <- piece{stream: p.stream, data: bytes.Clone(buf[:n])}
		}
		if err != nil {
			return
		}
	}
}

// stop makes run end once the pipe is idle for drainIdle. A Read already
// blocked gets the deadline too.
func (p *pipeReader) stop() {
	p.stopAt.CompareAndSwap(0, time.Now().UnixNano())
	_ = p.f.SetReadDeadline(time.Now().Add(drainIdle))
}

// chunker coalesces output into chunks and applies the output cap.
type chunker struct {
	max    int
	limit  uint64
	stream desksidev1.CommandStream
	pend   []byte
	seq    uint64
	// total counts all bytes seen, kept those within the cap.
	total, kept uint64
	truncated   bool
}

func newChunker(maxChunk int, limit uint64) *chunker {
	return &chunker{max: maxChunk, limit: limit, pend: make([]byte, 0, min(maxChunk, 4096))}
}

// add takes a read from stream s and returns the chunks complete now.
func (c *chunker) add(s desksidev1.CommandStream, p []byte) []*desksidev1.CommandOutput {
	c.total += uint64(len(p))
	if room := c.limit - c.kept; uint64(len(p)) > room {
		p = p[:room]
		c.truncated = true
	}
	c.kept += uint64(len(p))
	if len(p) == 0 {
		return nil
	}
	var out []*desksidev1.CommandOutput
	if s != c.stream && len(c.pend) > 0 {
		out = append(out, c.flush())
	}
	c.stream = s
	for len(p) > 0 {
		n := min(c.max-len(c.pend), len(p))
		c.pend = append(c.pend, p[:n]...)
		p = p[n:]
		if len(c.pend) == c.max {
			out = append(out, c.flush())
		}
	}
	return out
}

// pending reports whether a partial chunk waits.
func (c *chunker) pending() bool { return len(c.pend) > 0 }

// flush returns the partial chunk, or nil when there is none.
func (c *chunker) flush() *desksidev1.CommandOutput {
	if len(c.pend) == 0 {
		return nil
	}
	c.seq++
	m := &desksidev1.CommandOutput{Stream: c.stream, Data: bytes.Clone(c.pend), Seq: c.seq}
	c.pend = c.pend[:0]
	return m
}

// marker returns the chunk that says the output was truncated.
func (c *chunker) marker() *desksidev1.CommandOutput {
	c.seq++
	return &desksidev1.CommandOutput{
		Stream: desksidev1.CommandStream_COMMAND_STREAM_STDERR,
		Data:   fmt.Appendf(nil, "\n[deskside: output truncated at %d bytes; the command kept running until it ended]\n", c.limit),
		Seq:    c.seq,
	}
}

// writeScript writes body to a new private directory, owned by acct when
// the command switches user, and returns the directory and the file.
func writeScript(body string, acct *account) (dir, path string, err error) {
	dir, err = os.MkdirTemp("", "deskside-script-")
	if err != nil {
		return "", "", fmt.Errorf("command: script directory: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	path = filepath.Join(dir, scriptFileName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		return "", "", fmt.Errorf("command: script file: %w", err)
	}
	_, err = io.WriteString(f, body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", "", fmt.Errorf("command: script file: %w", err)
	}
	if acct != nil && acct.switchTo {
		for _, p := range []string{dir, path} {
			if err := os.Chown(p, int(acct.uid), int(acct.gid)); err != nil {
				return "", "", fmt.Errorf("command: script file: %w", err)
			}
		}
	}
	ok = true
	return dir, path, nil
}
