package link

import (
	"errors"
	"fmt"
	"io"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// MaxUpdateChunk is the largest UpdateChunk the agent takes.
const MaxUpdateChunk = 1 << 20

// Updater installs releases the relay offers (agent/update.Updater):
// Verify checks an offer before anything is downloaded, Install checks
// it again and swaps in the executable read from exe.
type Updater interface {
	Verify(r *desksidev1.SignedRelease) (*desksidev1.ReleaseManifest, error)
	Install(r *desksidev1.SignedRelease, exe io.Reader) (*desksidev1.ReleaseManifest, error)
}

// download is an accepted UpdateOffer whose executable is arriving.
type download struct {
	offer   uint64 // the relay's UpdateOffer, which every status answers
	ref     uint64 // the agent's downloading UpdateStatus the chunks answer
	version string
	size    uint64
	offset  uint64
	pw      *io.PipeWriter
	done    chan error
}

func (s *session) updateStatus(ref uint64, version string, state desksidev1.UpdateState, reason string) (uint64, error) {
	return s.send(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_UpdateStatus{UpdateStatus: &desksidev1.UpdateStatus{
		Version: version, State: state, Reason: reason,
	}}})
}

// offer answers an UpdateOffer: refused, or downloading while Install
// reads the chunks through a pipe.
func (s *session) offer(ref uint64, o *desksidev1.UpdateOffer) error {
	u := s.l.cfg.Updates
	if u == nil {
		return s.unsupported(ref, "updates")
	}
	if s.dl != nil {
		_, err := s.updateStatus(ref, "", desksidev1.UpdateState_UPDATE_STATE_REFUSED, "a download is under way")
		return err
	}
	m, err := u.Verify(o.GetRelease())
	if err != nil {
		s.l.log.Warn("update refused", "err", err)
		_, err = s.updateStatus(ref, m.GetVersion(), desksidev1.UpdateState_UPDATE_STATE_REFUSED, err.Error())
		return err
	}
	pr, pw := io.Pipe()
	d := &download{offer: ref, version: m.GetVersion(), size: m.GetSize(), pw: pw, done: make(chan error, 1)}
	go func() {
		_, err := u.Install(o.GetRelease(), pr)
		pr.CloseWithError(fmt.Errorf("install ended: %v", err))
		d.done <- err
	}()
	if d.ref, err = s.updateStatus(ref, d.version, desksidev1.UpdateState_UPDATE_STATE_DOWNLOADING, ""); err != nil {
		s.abortDownload(err)
		return err
	}
	s.l.log.Info("downloading update", "version", d.version, "bytes", d.size)
	s.dl = d
	return nil
}

// chunk takes the next piece of the executable; the last one completes
// the install and the agent restarts.
func (s *session) chunk(ref uint64, c *desksidev1.UpdateChunk) error {
	d := s.dl
	if d == nil || ref != d.ref {
		return nil // a chunk of a download that ended: nothing to do
	}
	n := uint64(len(c.GetData()))
	if c.GetOffset() != d.offset || n == 0 || n > MaxUpdateChunk || d.offset+n > d.size {
		return s.failDownload(fmt.Sprintf("chunk at %d of %d bytes out of order or too large (expected offset %d of %d)", c.GetOffset(), n, d.offset, d.size))
	}
	if _, err := d.pw.Write(c.GetData()); err != nil {
		return s.failDownload(err.Error())
	}
	d.offset += n
	if d.offset < d.size {
		return nil
	}
	d.pw.Close()
	err := <-d.done
	s.dl = nil
	if err != nil {
		s.l.log.Error("update failed", "version", d.version, "err", err)
		_, err = s.updateStatus(d.offer, d.version, desksidev1.UpdateState_UPDATE_STATE_FAILED, err.Error())
		return err
	}
	s.l.log.Info("update installed; restarting into it", "version", d.version)
	if _, err := s.updateStatus(d.offer, d.version, desksidev1.UpdateState_UPDATE_STATE_INSTALLED, ""); err != nil {
		s.l.log.Warn("could not report the installed update", "err", err)
	}
	if s.l.cfg.OnUpdateInstalled != nil {
		s.l.cfg.OnUpdateInstalled()
	}
	return nil
}

func (s *session) failDownload(reason string) error {
	d := s.dl
	err := s.abortDownload(fmt.Errorf("%s", reason))
	s.l.log.Error("update failed", "version", d.version, "reason", reason, "err", err)
	_, serr := s.updateStatus(d.offer, d.version, desksidev1.UpdateState_UPDATE_STATE_FAILED, reason)
	return serr
}

// abortDownload stops a download under way: Install sees the error and
// removes what it wrote.
func (s *session) abortDownload(cause error) error {
	d := s.dl
	if d == nil {
		return nil
	}
	s.dl = nil
	d.pw.CloseWithError(cause)
	return <-d.done
}

var errStreamEnded = errors.New("the stream to the relay ended during the download")
