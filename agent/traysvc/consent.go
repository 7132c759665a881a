package traysvc

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/desktop/consent"
	"github.com/deskside/deskside/agent/desktop/session"
	"github.com/deskside/deskside/internal/mailbox"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// maxConsentTimeout caps how long a question stays open.
const maxConsentTimeout = 10 * time.Minute

// Reasons a question closes, as the tray page shows them.
const (
	ClosedAllowed  = "You allowed the session."
	ClosedDenied   = "You denied the session."
	ClosedNoAnswer = "No answer in time: the session was denied."
	ClosedEnded    = "The request was withdrawn: the session ended before you answered."
)

// errQuestionClosed answers a tray's answer to a question that is not
// open for its user (answered already, timed out, ended, or another
// user's: the same words, so a tray learns nothing of others').
var errQuestionClosed = errors.New("this request is no longer open (it was answered, timed out, or the session ended)")

// question is one open consent question.
type question struct {
	uid    uint32
	msg    *desksidev1.ConsentQuestion
	answer chan desksidev1.DesktopConsent_Answer // buffered 1: the first answer
}

// Asker is the consent.Asker for the trays of uid: the in-process
// desktop's (the agent runs in the user's session).
func (s *Service) Asker(uid uint32) consent.Asker {
	return consent.AskerFunc(func(ctx context.Context, r session.ConsentRequest) (desksidev1.DesktopConsent_Answer, error) {
		return s.AskConsent(ctx, uid, r)
	})
}

// AskConsent asks r on the trays of uid (no other user's tray sees it) and
// waits for the first answer: ANSWER_ALLOWED or ANSWER_DENIED from a tray,
// ANSWER_NO_ANSWER after r.Timeout (default
// session.DefaultConsentTimeout). ctx ending (the session ended) closes
// the question with ctx's error. consent.ErrNoTray: no tray of uid is
// connected.
func (s *Service) AskConsent(ctx context.Context, uid uint32, r session.ConsentRequest) (desksidev1.DesktopConsent_Answer, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = session.DefaultConsentTimeout
	}
	timeout = min(timeout, maxConsentTimeout)
	s.mu.Lock()
	n := 0
	for t := range s.subs {
		if t.uid == uid {
			n++
		}
	}
	if s.closed || n == 0 {
		s.mu.Unlock()
		return 0, consent.ErrNoTray
	}
	s.nextQuestion++
	q := &question{uid: uid, answer: make(chan desksidev1.DesktopConsent_Answer, 1), msg: &desksidev1.ConsentQuestion{
		QuestionId: s.nextQuestion, Technician: r.Technician, Tier: r.Tier, TicketCode: r.Ticket, Control: r.Control,
		Timeout: durationpb.New(timeout), Text: r.Text(), Deadline: timestamppb.New(time.Now().Add(timeout)),
	}}
	if s.questions == nil {
		s.questions = map[uint64]*question{}
	}
	s.questions[q.msg.GetQuestionId()] = q
	s.pushLocked(uid, &desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_TrayConsent{TrayConsent: q.msg}})
	s.mu.Unlock()
	s.log().Info("consent: asking on the user's tray", "uid", uid, "question", q.msg.GetQuestionId(), "trays", n)

	t := time.NewTimer(timeout)
	defer t.Stop()
	var (
		a      desksidev1.DesktopConsent_Answer
		err    error
		reason string
	)
	select {
	case a = <-q.answer:
		reason = ClosedDenied
		if a == desksidev1.DesktopConsent_ANSWER_ALLOWED {
			reason = ClosedAllowed
		}
	case <-t.C:
		a, reason = desksidev1.DesktopConsent_ANSWER_NO_ANSWER, ClosedNoAnswer
	case <-ctx.Done():
		err, reason = ctx.Err(), ClosedEnded
	}
	s.mu.Lock()
	delete(s.questions, q.msg.GetQuestionId())
	// An answer taken while the timeout or the end raced it counts: the
	// tray was told it was.
	select {
	case a = <-q.answer:
		err, reason = nil, ClosedDenied
		if a == desksidev1.DesktopConsent_ANSWER_ALLOWED {
			reason = ClosedAllowed
		}
	default:
	}
	s.pushLocked(uid, &desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_TrayConsentClosed{
		TrayConsentClosed: &desksidev1.ConsentClosed{QuestionId: q.msg.GetQuestionId(), Reason: reason}}})
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return a, nil
}

// pushLocked queues m for every tray of uid.
func (s *Service) pushLocked(uid uint32, m *desksidev1.LocalMessage) {
	for t := range s.subs {
		if t.uid == uid {
			mailbox.Put(t.consent, m)
		}
	}
}

// openLocked is the questions open for uid, oldest first.
func (s *Service) openLocked(uid uint32) []*desksidev1.LocalMessage {
	var out []*desksidev1.LocalMessage
	for _, q := range s.questions {
		if q.uid == uid {
			out = append(out, &desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_TrayConsent{TrayConsent: q.msg}})
		}
	}
	slices.SortFunc(out, func(a, b *desksidev1.LocalMessage) int {
		return cmp.Compare(a.GetTrayConsent().GetQuestionId(), b.GetTrayConsent().GetQuestionId())
	})
	return out
}

// answerConsent takes a tray's answer: only from a connection of the
// question's uid, only ALLOWED or DENIED, only the first.
func (s *Service) answerConsent(uid uint32, in *desksidev1.ConsentAnswer) error {
	a := in.GetAnswer()
	if a != desksidev1.DesktopConsent_ANSWER_ALLOWED && a != desksidev1.DesktopConsent_ANSWER_DENIED {
		return errors.New("answer ALLOWED or DENIED")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.questions[in.GetQuestionId()]
	if q == nil || q.uid != uid {
		if q != nil {
			s.log().Warn("consent: refused an answer from another user's tray", "uid", uid, "question", in.GetQuestionId())
		}
		return errQuestionClosed
	}
	select {
	case q.answer <- a:
	default:
		return errQuestionClosed
	}
	// Answered: no second answer (nor a timeout) can change it.
	delete(s.questions, in.GetQuestionId())
	return nil
}
