package server

// The authorization of every RPC: the role table (Rules) and the
// interceptors that apply it to the agent, console and web servers.

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/store"
)

// Public marks a method callable without a session.
const Public = desksidev1.Role_ROLE_UNSPECIFIED

// Rules is the authorization rule of every RPC the relay serves: the
// least role that may call it (Public: no session needed). A method
// without a rule is refused; a test fails when one is missing.
//
// The roles follow the help-desk tiers (TestTierTable checks each through
// a real relay):
//   - tier 1: tickets, the fleet and inventory, diagnostics, and view-only
//     remote sessions with the user's consent;
//   - tier 2: tier 1 plus desktop control, actions and commands on one
//     device;
//   - tier 3: tier 2 plus commands on many devices at once (a filter or
//     fan-out) and unattended access (sessions without consent);
//   - admin: everything, plus technicians, policy and settings.
//
// Some rules depend on the request, not only the method; the handlers
// check them with needRole: desktop control (tier 2) and unattended
// sessions (tier 3) in StartDesktopSession, a command for more than one
// device (tier 3) in RunCommand.
var Rules = map[string]desksidev1.Role{
	desksidev1.AgentService_Enroll_FullMethodName:  Public, // authenticated by the enrollment token
	desksidev1.AgentService_Connect_FullMethodName: Public, // authenticated by the device certificate

	desksidev1.ConsoleService_Login_FullMethodName:                   Public,
	desksidev1.ConsoleService_Logout_FullMethodName:                  desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_WhoAmI_FullMethodName:                  desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_ListDevices_FullMethodName:             desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_GetDevice_FullMethodName:               desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_GetInventoryHistory_FullMethodName:     desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_GetHealthHistory_FullMethodName:        desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_ExportInventory_FullMethodName:         desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_RefreshInventory_FullMethodName:        desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_PingDevice_FullMethodName:              desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_RevokeDevice_FullMethodName:            desksidev1.Role_ROLE_ADMIN,
	desksidev1.ConsoleService_CreateEnrollmentToken_FullMethodName:   desksidev1.Role_ROLE_ADMIN,
	desksidev1.ConsoleService_ListAuditEvents_FullMethodName:         desksidev1.Role_ROLE_ADMIN,
	desksidev1.ConsoleService_WatchDevices_FullMethodName:            desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_BeginTotpEnrollment_FullMethodName:     desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_ConfirmTotpEnrollment_FullMethodName:   desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_DisableTotp_FullMethodName:             desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_RunChecks_FullMethodName:               desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_ListCheckReports_FullMethodName:        desksidev1.Role_ROLE_TIER1,
	desksidev1.ConsoleService_RunAction_FullMethodName:               desksidev1.Role_ROLE_TIER2,
	desksidev1.ConsoleService_RunCommand_FullMethodName:              desksidev1.Role_ROLE_TIER2, // many devices: tier3
	desksidev1.ConsoleService_SetDeviceGroup_FullMethodName:          desksidev1.Role_ROLE_ADMIN,
	desksidev1.ConsoleService_SetGroupCheckConfig_FullMethodName:     desksidev1.Role_ROLE_ADMIN,
	desksidev1.ConsoleService_StartDesktopSession_FullMethodName:     desksidev1.Role_ROLE_TIER1, // control: tier2; unattended: tier3
	desksidev1.ConsoleService_SendDesktopSignal_FullMethodName:       desksidev1.Role_ROLE_TIER1, // own sessions only
	desksidev1.ConsoleService_SetDevicePolicy_FullMethodName:         desksidev1.Role_ROLE_ADMIN,
	desksidev1.ConsoleService_UnlockTechnician_FullMethodName:        desksidev1.Role_ROLE_ADMIN,
	desksidev1.ConsoleService_ResetTechnicianPassword_FullMethodName: desksidev1.Role_ROLE_ADMIN,
	desksidev1.ConsoleService_VerifyAuditLog_FullMethodName:          desksidev1.Role_ROLE_ADMIN,
	desksidev1.OrgService_PublishRevocations_FullMethodName:          desksidev1.Role_ROLE_ADMIN,
	desksidev1.OrgService_GetRevocations_FullMethodName:              desksidev1.Role_ROLE_TIER1,
	desksidev1.OrgService_PublishOrgKey_FullMethodName:               desksidev1.Role_ROLE_ADMIN,
	desksidev1.OrgService_GetOrgKey_FullMethodName:                   desksidev1.Role_ROLE_TIER1,
	// Own keys for anyone; another technician's for admins (techkeysvc.go).
	desksidev1.OrgService_RegisterTechnicianKey_FullMethodName: desksidev1.Role_ROLE_TIER1,
	desksidev1.OrgService_ListTechnicianKeys_FullMethodName:    desksidev1.Role_ROLE_TIER1,
	desksidev1.OrgService_DeleteTechnicianKey_FullMethodName:   desksidev1.Role_ROLE_TIER1,
	desksidev1.OrgService_PublishCertificate_FullMethodName:    desksidev1.Role_ROLE_ADMIN,
	desksidev1.UpdateService_UploadRelease_FullMethodName:      desksidev1.Role_ROLE_ADMIN,
	desksidev1.UpdateService_StartRollout_FullMethodName:       desksidev1.Role_ROLE_ADMIN,
	desksidev1.UpdateService_GetUpdates_FullMethodName:         desksidev1.Role_ROLE_ADMIN,
	desksidev1.UpdateService_ListReleases_FullMethodName:       desksidev1.Role_ROLE_ADMIN,

	desksidev1.TechnicianService_ListTechnicians_FullMethodName:       desksidev1.Role_ROLE_ADMIN,
	desksidev1.TechnicianService_CreateTechnician_FullMethodName:      desksidev1.Role_ROLE_ADMIN,
	desksidev1.TechnicianService_UpdateTechnician_FullMethodName:      desksidev1.Role_ROLE_ADMIN,
	desksidev1.TechnicianService_SetTechnicianDisabled_FullMethodName: desksidev1.Role_ROLE_ADMIN,
	desksidev1.TechnicianService_DeleteTechnician_FullMethodName:      desksidev1.Role_ROLE_ADMIN,
	desksidev1.TechnicianService_ChangePassword_FullMethodName:        desksidev1.Role_ROLE_TIER1, // own password only
	desksidev1.TechnicianService_ListAssignees_FullMethodName:         desksidev1.Role_ROLE_TIER1, // names and roles only
	// Tickets: every technician works tickets; what a tier may do to a
	// ticket of another tier (escalate, claim, assign) is relay/tickets'
	// rule, checked per ticket.
	desksidev1.TicketService_CreateTicket_FullMethodName:          desksidev1.Role_ROLE_TIER1,
	desksidev1.TicketService_GetTicket_FullMethodName:             desksidev1.Role_ROLE_TIER1,
	desksidev1.TicketService_ListTickets_FullMethodName:           desksidev1.Role_ROLE_TIER1,
	desksidev1.TicketService_ReplyTicket_FullMethodName:           desksidev1.Role_ROLE_TIER1,
	desksidev1.TicketService_SetTicketStatus_FullMethodName:       desksidev1.Role_ROLE_TIER1,
	desksidev1.TicketService_UpdateTicket_FullMethodName:          desksidev1.Role_ROLE_TIER1,
	desksidev1.TicketService_EscalateTicket_FullMethodName:        desksidev1.Role_ROLE_TIER1,
	desksidev1.TicketService_AssignTicket_FullMethodName:          desksidev1.Role_ROLE_TIER1,
	desksidev1.TicketService_MergeTicket_FullMethodName:           desksidev1.Role_ROLE_TIER1,
	desksidev1.TicketService_LinkTicket_FullMethodName:            desksidev1.Role_ROLE_TIER1,
	desksidev1.TicketService_CompareTicketSnapshot_FullMethodName: desksidev1.Role_ROLE_TIER1,
	desksidev1.TicketService_GetTicketSettings_FullMethodName:     desksidev1.Role_ROLE_TIER1,
	desksidev1.TicketService_SetTicketSettings_FullMethodName:     desksidev1.Role_ROLE_ADMIN,
	desksidev1.TicketService_WatchTickets_FullMethodName:          desksidev1.Role_ROLE_TIER1,
	desksidev1.TicketService_SendChat_FullMethodName:              desksidev1.Role_ROLE_TIER1,
	desksidev1.TicketService_ListTicketAttachments_FullMethodName: desksidev1.Role_ROLE_TIER1,
	// Notifications (docs/adr 24): settings, secrets and templates are
	// admin business.
	desksidev1.NotificationService_GetSmtp_FullMethodName:               desksidev1.Role_ROLE_ADMIN,
	desksidev1.NotificationService_SetSmtp_FullMethodName:               desksidev1.Role_ROLE_ADMIN,
	desksidev1.NotificationService_TestSmtp_FullMethodName:              desksidev1.Role_ROLE_ADMIN,
	desksidev1.NotificationService_ListWebhooks_FullMethodName:          desksidev1.Role_ROLE_ADMIN,
	desksidev1.NotificationService_AddWebhook_FullMethodName:            desksidev1.Role_ROLE_ADMIN,
	desksidev1.NotificationService_RemoveWebhook_FullMethodName:         desksidev1.Role_ROLE_ADMIN,
	desksidev1.NotificationService_ListWebhookDeliveries_FullMethodName: desksidev1.Role_ROLE_ADMIN,
	desksidev1.NotificationService_GetTemplate_FullMethodName:           desksidev1.Role_ROLE_ADMIN,
	desksidev1.NotificationService_SetTemplate_FullMethodName:           desksidev1.Role_ROLE_ADMIN,
	desksidev1.NotificationService_SetTechnicianEmail_FullMethodName:    desksidev1.Role_ROLE_ADMIN,
	desksidev1.NotificationService_ListOutbox_FullMethodName:            desksidev1.Role_ROLE_ADMIN,
	desksidev1.NotificationService_RetryOutbox_FullMethodName:           desksidev1.Role_ROLE_ADMIN,
	// The knowledge base (docs/adr 23): technicians read and write,
	// tier 2 decides what users see, admins delete.
	desksidev1.KnowledgeService_CreateArticle_FullMethodName:           desksidev1.Role_ROLE_TIER1,
	desksidev1.KnowledgeService_UpdateArticle_FullMethodName:           desksidev1.Role_ROLE_TIER1,
	desksidev1.KnowledgeService_GetArticle_FullMethodName:              desksidev1.Role_ROLE_TIER1,
	desksidev1.KnowledgeService_ListArticles_FullMethodName:            desksidev1.Role_ROLE_TIER1,
	desksidev1.KnowledgeService_SearchArticles_FullMethodName:          desksidev1.Role_ROLE_TIER1,
	desksidev1.KnowledgeService_PublishArticle_FullMethodName:          desksidev1.Role_ROLE_TIER2,
	desksidev1.KnowledgeService_UnpublishArticle_FullMethodName:        desksidev1.Role_ROLE_TIER2,
	desksidev1.KnowledgeService_DeleteArticle_FullMethodName:           desksidev1.Role_ROLE_ADMIN,
	desksidev1.KnowledgeService_LinkArticleToTicket_FullMethodName:     desksidev1.Role_ROLE_TIER1,
	desksidev1.KnowledgeService_UnlinkArticleFromTicket_FullMethodName: desksidev1.Role_ROLE_TIER1,
	desksidev1.KnowledgeService_ListArticlesForTicket_FullMethodName:   desksidev1.Role_ROLE_TIER1,
	desksidev1.KnowledgeService_RenderPreview_FullMethodName:           desksidev1.Role_ROLE_TIER1,
	// Reports rate technicians: tier 3 (help-desk leads) and admins.
	desksidev1.ReportService_GetReport_FullMethodName:       desksidev1.Role_ROLE_TIER3,
	desksidev1.ReportService_ExportReportCsv_FullMethodName: desksidev1.Role_ROLE_TIER3,

	"/grpc.health.v1.Health/Check": Public,
	"/grpc.health.v1.Health/Watch": Public,
	"/grpc.health.v1.Health/List":  Public,
	// Reflection names every method and message: signed-in technicians
	// only (or not served, Config.Reflection).
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      desksidev1.Role_ROLE_TIER1,
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": desksidev1.Role_ROLE_TIER1,
}

// passwordChangeAllows are the methods a technician who must change
// their password may call.
var passwordChangeAllows = map[string]bool{
	desksidev1.TechnicianService_ChangePassword_FullMethodName: true,
	desksidev1.ConsoleService_WhoAmI_FullMethodName:            true,
	desksidev1.ConsoleService_Logout_FullMethodName:            true,
}

// needRole refuses, audited, a request whose content needs a higher role
// than its method's rule (see Rules): what names the request.
func (s *Server) needRole(ctx context.Context, need desksidev1.Role, target, what string) error {
	me := callerFrom(ctx)
	if desksidev1.Role(me.Role) >= need {
		return nil
	}
	s.audit(ctx, me.Name, "access.denied", target, fmt.Sprintf("%s: role %s, needs %s", what, roleName(desksidev1.Role(me.Role)), roleName(need)))
	return status.Errorf(codes.PermissionDenied, "%s needs role %s; you are %s (an admin changes roles: deskside technician set NAME --role %s)",
		what, roleName(need), roleName(desksidev1.Role(me.Role)), roleName(need))
}

type techKey struct{}

// caller is the authenticated technician of a console call.
type caller struct {
	store.Technician
	session store.Session
}

// callerRef holds a call's caller. A long-lived call (a watch, a desktop
// session) has it replaced as recheckCaller re-reads the account, so a
// change of groups or role applies to streams already open.
type callerRef struct {
	p    atomic.Pointer[caller]
	mu   sync.Mutex
	reqs []requirement
}

func callerFrom(ctx context.Context) *caller {
	r, _ := ctx.Value(techKey{}).(*callerRef)
	if r == nil {
		return nil
	}
	return r.p.Load()
}

func (s *Server) authorize(ctx context.Context, method string) (context.Context, error) {
	need, ok := Rules[method]
	if !ok {
		s.log.Error("refused a method with no authorization rule", "method", method)
		return nil, status.Errorf(codes.PermissionDenied, "%s has no authorization rule", method)
	}
	if need == Public {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var token string
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			token = t
		}
	}
	if token == "" {
		return nil, status.Error(codes.Unauthenticated, "not signed in: run `deskside login`")
	}
	c, err := s.checkCaller(ctx, auth.HashToken(token), method, need, true)
	if err != nil {
		return nil, err
	}
	r := new(callerRef)
	r.p.Store(c)
	return context.WithValue(ctx, techKey{}, r), nil
}

// checkCaller reads the session of tokenHash and its technician and
// checks they may call method, which needs role need. It audits a
// refusal by role when audit is set.
func (s *Server) checkCaller(ctx context.Context, tokenHash []byte, method string, need desksidev1.Role, audit bool) (*caller, error) {
	sess, err := s.store.GetSession(ctx, tokenHash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Error(codes.Unauthenticated, "session is unknown or was signed out: run `deskside login`")
	} else if err != nil {
		return nil, storeErr(err)
	}
	if !s.cfg.Now().Before(sess.ExpiresAt) {
		return nil, status.Error(codes.Unauthenticated, "session expired: run `deskside login` again")
	}
	tech, err := s.store.GetTechnician(ctx, sess.Technician)
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Error(codes.Unauthenticated, "session's technician no longer exists")
	} else if err != nil {
		return nil, storeErr(err)
	}
	if tech.Disabled {
		// Disabling ends the sessions; this covers a session created
		// concurrently with the disabling.
		return nil, status.Error(codes.Unauthenticated, "this account is disabled; an admin can enable it (`deskside technician enable NAME`)")
	}
	if tech.MustChangePassword && !passwordChangeAllows[method] {
		return nil, status.Error(codes.FailedPrecondition,
			"your password was set by an admin and must be changed before anything else: run `deskside password` (or sign in to the web console)")
	}
	if desksidev1.Role(tech.Role) < need {
		if audit {
			s.audit(ctx, tech.Name, "access.denied", method, fmt.Sprintf("role %s, needs %s", roleName(desksidev1.Role(tech.Role)), roleName(need)))
		}
		return nil, status.Errorf(codes.PermissionDenied, "%s needs role %s; you are %s", path.Base(method), roleName(need), roleName(desksidev1.Role(tech.Role)))
	}
	return &caller{Technician: tech, session: sess}, nil
}

func roleName(r desksidev1.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := s.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return h(ctx, req)
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a authedStream) Context() context.Context { return a.ctx }

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := s.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	if ctx == ss.Context() {
		return h(srv, ss)
	}
	ctx, stop := s.recheckCaller(ctx, info.FullMethod)
	defer stop()
	return h(srv, authedStream{ss, ctx})
}
