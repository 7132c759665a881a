package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/endpointtrust"
	"github.com/deskside/deskside/relay/store"
	"github.com/pquerna/otp/totp"
)

type consoleService struct {
	desksidev1.UnimplementedConsoleServiceServer
	s *Server
}

func techProto(t store.Technician) *desksidev1.Technician {
	return &desksidev1.Technician{Name: t.Name, Role: desksidev1.Role(t.Role), TotpEnabled: t.TOTPSecret != "",
		MustChangePassword: t.MustChangePassword, Groups: t.Groups}
}

// viaWeb reports whether a call came through the web console layer.
func viaWeb(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get(webHeader)
	return len(v) > 0 && v[0] == "1"
}

// consoleURL is the web console's base URL: the configured one, or the
// host the caller reached the relay at with the web listener's port.
func (s *Server) consoleURL(ctx context.Context) string {
	if s.cfg.WebURL != "" {
		return s.cfg.WebURL
	}
	if s.webL == nil {
		return ""
	}
	_, port, _ := net.SplitHostPort(s.webL.Addr().String())
	host := "localhost"
	md, _ := metadata.FromIncomingContext(ctx)
	if a := md.Get(":authority"); len(a) > 0 {
		if h, _, err := net.SplitHostPort(a[0]); err == nil {
			host = h
		} else {
			host = a[0]
		}
	}
	return "https://" + net.JoinHostPort(host, port) + "/"
}

// Logout implements ConsoleService.Logout.
func (c *consoleService) Logout(ctx context.Context, _ *desksidev1.LogoutRequest) (*desksidev1.LogoutResponse, error) {
	who := callerFrom(ctx)
	if err := c.s.store.DeleteSession(ctx, who.session.TokenHash); err != nil {
		return nil, storeErr(err)
	}
	c.s.audit(ctx, who.Name, "logout", who.Name, "")
	if viaWeb(ctx) {
		grpc.SetHeader(ctx, metadata.Pairs(sessionHeader, "clear"))
	}
	return &desksidev1.LogoutResponse{}, nil
}

// WhoAmI implements ConsoleService.WhoAmI.
func (c *consoleService) WhoAmI(ctx context.Context, _ *desksidev1.WhoAmIRequest) (*desksidev1.WhoAmIResponse, error) {
	who := callerFrom(ctx)
	return &desksidev1.WhoAmIResponse{Technician: techProto(who.Technician), SessionExpiresAt: timestamppb.New(who.session.ExpiresAt),
		ConsoleUrl: c.s.consoleURL(ctx)}, nil
}

func deviceProto(d store.Device) *desksidev1.Device {
	p := &desksidev1.Device{
		Id: d.ID, Hostname: d.Hostname, AgentVersion: d.AgentVersion, Os: d.OS, Arch: d.Arch,
		Online: d.Online, Revoked: d.Revoked, Model: d.Model, CpuModel: d.CPUModel,
		MemoryBytes: d.MemoryBytes, DiskTotalBytes: d.DiskTotalBytes, DiskFreeBytes: d.DiskFreeBytes, DiskUsedBytes: d.DiskUsedBytes, User: d.User,
		Group: d.Group, UnattendedAllowed: d.UnattendedAllowed, MaxSessions: uint32(d.MaxSessions),
		OsName: d.OSName, OsVersion: d.OSVersion, OsFamily: d.OSFamily, OsDisplay: d.OSDisplay,
		EndpointTrust: endpointtrust.Parse(d.EndpointTrust),
	}
	if !d.FirstSeen.IsZero() {
		p.FirstSeen = timestamppb.New(d.FirstSeen)
	}
	if !d.LastSeen.IsZero() {
		p.LastSeen = timestamppb.New(d.LastSeen)
	}
	return p
}

var deviceSorts = map[desksidev1.DeviceSort]store.DeviceSort{
	desksidev1.DeviceSort_DEVICE_SORT_UNSPECIFIED: store.SortHostname,
	desksidev1.DeviceSort_DEVICE_SORT_HOSTNAME:    store.SortHostname,
	desksidev1.DeviceSort_DEVICE_SORT_LAST_SEEN:   store.SortLastSeen,
	desksidev1.DeviceSort_DEVICE_SORT_OS:          store.SortOS,
	desksidev1.DeviceSort_DEVICE_SORT_MODEL:       store.SortModel,
	desksidev1.DeviceSort_DEVICE_SORT_CPU:         store.SortCPU,
	desksidev1.DeviceSort_DEVICE_SORT_MEMORY:      store.SortMemory,
	desksidev1.DeviceSort_DEVICE_SORT_DISK_FREE:   store.SortDiskFree,
	desksidev1.DeviceSort_DEVICE_SORT_USER:        store.SortUser,
	desksidev1.DeviceSort_DEVICE_SORT_ONLINE:      store.SortOnline,
}

// Page tokens: "k" + hostname NUL id continues a hostname-ordered listing
// (keyset, stable while devices come and go); "o" + offset pages any other
// order.
//
// scope is the caller's deviceScope: only devices of those groups (nil:
// all).
func deviceFilter(req *desksidev1.ListDevicesRequest, scope []string) (store.DeviceFilter, error) {
	sort, ok := deviceSorts[req.GetSort()]
	if !ok {
		return store.DeviceFilter{}, status.Errorf(codes.InvalidArgument, "unknown sort %v", req.GetSort())
	}
	dfp := req.GetDiskFreeBelowPercent()
	if !(dfp >= 0 && dfp <= 100) { // also refuses NaN
		return store.DeviceFilter{}, status.Error(codes.InvalidArgument, "disk_free_below_percent must be between 0 and 100")
	}
	f := store.DeviceFilter{
		Hostname: req.GetHostname(), OS: req.GetOs(), User: req.GetUser(), Model: req.GetModel(), Query: req.GetQuery(),
		IncludeRevoked: req.GetIncludeRevoked(), MemoryBelow: req.GetMemoryBelowBytes(), DiskFreeBelowPercent: dfp,
		Sort: sort, Descending: req.GetDescending(), Limit: int(req.GetPageSize()),
		Groups: scope,
	}
	if req.Online != nil {
		v := req.GetOnline()
		f.Online = &v
	}
	if f.Limit <= 0 {
		f.Limit = defaultPageSize
	}
	f.Limit = min(f.Limit, maxPageSize)
	if t := req.GetPageToken(); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		bad := status.Error(codes.InvalidArgument, "page_token is not one this relay issued for this listing")
		if err != nil || len(b) < 2 {
			return f, bad
		}
		switch b[0] {
		case 'k':
			host, id, ok := strings.Cut(string(b[1:]), "\x00")
			if !ok || f.Sort != store.SortHostname || f.Descending {
				return f, bad
			}
			f.AfterHostname, f.AfterID = host, id
		case 'o':
			n, err := strconv.Atoi(string(b[1:]))
			if err != nil || n < 0 {
				return f, bad
			}
			f.Offset = n
		default:
			return f, bad
		}
	}
	return f, nil
}

// nextPageToken continues f after the page that ended with last.
func nextPageToken(f store.DeviceFilter, last store.Device) string {
	if f.Sort == store.SortHostname && !f.Descending {
		return base64.RawURLEncoding.EncodeToString([]byte("k" + last.Hostname + "\x00" + last.ID))
	}
	return base64.RawURLEncoding.EncodeToString([]byte("o" + strconv.Itoa(f.Offset+f.Limit)))
}

// ListDevices implements ConsoleService.ListDevices.
func (c *consoleService) ListDevices(ctx context.Context, req *desksidev1.ListDevicesRequest) (*desksidev1.ListDevicesResponse, error) {
	f, err := deviceFilter(req, c.s.deviceScope(ctx))
	if err != nil {
		return nil, err
	}
	page := f
	f.Limit++ // one more tells whether another page exists
	devs, total, err := c.s.store.ListDevices(ctx, f)
	if err != nil {
		return nil, storeErr(err)
	}
	more := len(devs) > page.Limit
	devs = devs[:min(len(devs), page.Limit)]
	resp := &desksidev1.ListDevicesResponse{Total: total}
	for _, d := range devs {
		resp.Devices = append(resp.Devices, deviceProto(d))
	}
	if more {
		resp.NextPageToken = nextPageToken(page, devs[len(devs)-1])
	}
	return resp, nil
}

// GetDevice implements ConsoleService.GetDevice.
func (c *consoleService) GetDevice(ctx context.Context, req *desksidev1.GetDeviceRequest) (*desksidev1.GetDeviceResponse, error) {
	d, err := c.device(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	resp := &desksidev1.GetDeviceResponse{Device: deviceProto(d)}
	if resp.Device.DesktopMode, err = c.s.desktopMode(ctx, d); err != nil {
		return nil, err
	}
	if resp.Inventory, err = c.inventory(ctx, d.ID); err != nil {
		return nil, err
	}
	hs, err := c.s.store.LatestHealth(ctx, d.ID)
	switch {
	case err == nil:
		resp.LatestHealth = new(desksidev1.HealthSample)
		if err := proto.Unmarshal(hs.Detail, resp.LatestHealth); err != nil {
			return nil, status.Errorf(codes.DataLoss, "stored health of %s is unreadable: %v", d.ID, err)
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, storeErr(err)
	}
	return resp, nil
}

// GetInventoryHistory implements ConsoleService.GetInventoryHistory.
func (c *consoleService) GetInventoryHistory(ctx context.Context, req *desksidev1.GetInventoryHistoryRequest) (*desksidev1.GetInventoryHistoryResponse, error) {
	d, err := c.device(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	limit := clampLimit(req.GetLimit(), 1000, 10000)
	ch, err := c.s.store.InventoryHistory(ctx, d.ID, limit)
	if err != nil {
		return nil, storeErr(err)
	}
	resp := &desksidev1.GetInventoryHistoryResponse{}
	for _, x := range ch {
		resp.Changes = append(resp.Changes, &desksidev1.InventoryChange{Time: timestamppb.New(x.Time), Field: x.Field, From: x.From, To: x.To})
	}
	return resp, nil
}

// GetHealthHistory implements ConsoleService.GetHealthHistory.
func (c *consoleService) GetHealthHistory(ctx context.Context, req *desksidev1.GetHealthHistoryRequest) (*desksidev1.GetHealthHistoryResponse, error) {
	d, err := c.device(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	to := c.s.cfg.Now()
	if req.GetTo() != nil {
		to = req.GetTo().AsTime()
	}
	from := to.Add(-time.Hour)
	if req.GetFrom() != nil {
		from = req.GetFrom().AsTime()
	}
	if !from.Before(to) {
		return nil, status.Error(codes.InvalidArgument, "from must be before to")
	}
	pts, err := c.s.store.HealthRange(ctx, d.ID, from, to)
	if err != nil {
		return nil, storeErr(err)
	}
	resp := &desksidev1.GetHealthHistoryResponse{}
	for _, p := range pts {
		hp := &desksidev1.HealthPoint{
			Time: timestamppb.New(p.Time), CpuPercent: p.CPUPercent, Load1: p.Load1,
			MemUsedBytes: p.MemUsedBytes, MemAvailableBytes: p.MemAvailBytes, SwapUsedBytes: p.SwapUsedBytes,
			DiskUsedPercent: p.DiskUsedPercent, NetRxBytesPerSec: p.NetRxBps, NetTxBytesPerSec: p.NetTxBps,
		}
		if p.Bucket > 0 {
			hp.Bucket = durationpb.New(p.Bucket)
		}
		resp.Points = append(resp.Points, hp)
	}
	return resp, nil
}

// ExportInventory implements ConsoleService.ExportInventory.
func (c *consoleService) ExportInventory(req *desksidev1.ExportInventoryRequest, stream desksidev1.ConsoleService_ExportInventoryServer) error {
	ctx := stream.Context()
	fr := req.GetFilter()
	if fr == nil {
		fr = &desksidev1.ListDevicesRequest{}
	}
	fr = proto.Clone(fr).(*desksidev1.ListDevicesRequest)
	fr.PageSize = maxPageSize
	scope := c.s.deviceScope(ctx)
	n := 0
	for {
		f, err := deviceFilter(fr, scope)
		if err != nil {
			return err
		}
		devs, _, err := c.s.store.ListDevices(ctx, f)
		if err != nil {
			return storeErr(err)
		}
		for _, d := range devs {
			inv, err := c.inventory(ctx, d.ID)
			if err != nil {
				return err
			}
			if err := stream.Send(&desksidev1.ExportInventoryResponse{Device: deviceProto(d), Inventory: inv}); err != nil {
				return err
			}
			n++
		}
		if len(devs) < f.Limit {
			break
		}
		fr.PageToken = nextPageToken(f, devs[len(devs)-1])
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "inventory.export", "", fmt.Sprintf("%d devices", n))
	return nil
}

// RefreshInventory implements ConsoleService.RefreshInventory.
func (c *consoleService) RefreshInventory(ctx context.Context, req *desksidev1.RefreshInventoryRequest) (*desksidev1.RefreshInventoryResponse, error) {
	// Resolved first so that a device outside the caller's groups is not
	// audited as refreshed.
	if _, err := c.device(ctx, req.GetId()); err != nil {
		return nil, err
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "inventory.refresh", req.GetId(), "")
	m, err := c.agentRequest(ctx, req.GetId(), &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_CollectInventory{CollectInventory: &desksidev1.CollectInventory{}}})
	if err != nil {
		return nil, err
	}
	if m.GetInventory() == nil {
		return nil, status.Errorf(codes.Internal, "device %s answered with %T, not an inventory", req.GetId(), m.GetBody())
	}
	// The stream handler stored it already; return the sanitized, stored copy.
	inv, err := c.inventory(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &desksidev1.RefreshInventoryResponse{Inventory: inv}, nil
}

// PingDevice implements ConsoleService.PingDevice.
func (c *consoleService) PingDevice(ctx context.Context, req *desksidev1.PingDeviceRequest) (*desksidev1.PingDeviceResponse, error) {
	start := time.Now()
	m, err := c.agentRequest(ctx, req.GetId(), &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_Ping{Ping: &desksidev1.Ping{}}})
	if err != nil {
		return nil, err
	}
	if m.GetPong() == nil {
		return nil, status.Errorf(codes.Internal, "device %s answered a ping with %T", req.GetId(), m.GetBody())
	}
	return &desksidev1.PingDeviceResponse{RoundTrip: durationpb.New(time.Since(start))}, nil
}

// RevokeDevice implements ConsoleService.RevokeDevice.
func (c *consoleService) RevokeDevice(ctx context.Context, req *desksidev1.RevokeDeviceRequest) (*desksidev1.RevokeDeviceResponse, error) {
	d, err := c.device(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if err := c.s.store.RevokeDevice(ctx, d.ID, c.s.cfg.Now()); err != nil {
		return nil, storeErr(err)
	}
	c.s.disconnect(d.ID, "device revoked")
	c.s.deviceChanged(ctx, d.ID)
	c.s.audit(ctx, callerFrom(ctx).Name, "device.revoke", d.ID, fmt.Sprintf("hostname %q", d.Hostname))
	return &desksidev1.RevokeDeviceResponse{}, nil
}

// CreateEnrollmentToken implements ConsoleService.CreateEnrollmentToken.
func (c *consoleService) CreateEnrollmentToken(ctx context.Context, req *desksidev1.CreateEnrollmentTokenRequest) (*desksidev1.CreateEnrollmentTokenResponse, error) {
	ttl := time.Hour
	if req.GetTtl() != nil {
		ttl = req.GetTtl().AsDuration()
	}
	if ttl <= 0 || ttl > 30*24*time.Hour {
		return nil, status.Errorf(codes.InvalidArgument, "ttl %s must be between 1s and 720h", ttl)
	}
	uses := int(req.GetUses())
	if uses == 0 {
		uses = 1
	}
	if uses > 100000 {
		return nil, status.Error(codes.InvalidArgument, "uses must be at most 100000")
	}
	now := c.s.cfg.Now()
	tok := wire.NewToken(c.s.ca.Pin())
	// Agents enrolled with the token pin the organisation key at once.
	tok.OrgFingerprint = c.s.orgFingerprint(ctx)
	who := callerFrom(ctx).Name
	if err := c.s.store.CreateEnrollToken(ctx, store.EnrollToken{
		ID: tok.ID, SecretHash: auth.HashToken(tok.Secret), ExpiresAt: now.Add(ttl), Uses: uses, CreatedBy: who, CreatedAt: now,
	}); err != nil {
		return nil, storeErr(err)
	}
	c.s.audit(ctx, who, "token.create", "token:"+tok.ID, fmt.Sprintf("ttl %s, uses %d, organisation key %q", ttl, uses, tok.OrgFingerprint))
	return &desksidev1.CreateEnrollmentTokenResponse{Token: tok.String(), ExpiresAt: timestamppb.New(now.Add(ttl)), Uses: uint32(uses)}, nil
}

// WatchDevices implements ConsoleService.WatchDevices.
func (c *consoleService) WatchDevices(_ *desksidev1.WatchDevicesRequest, stream desksidev1.ConsoleService_WatchDevicesServer) error {
	sub := c.s.events.subscribe()
	defer c.s.events.unsubscribe(sub)
	// A first, empty message tells the client the watch is live (headers
	// alone may be held back by proxies and transcoders).
	if err := stream.Send(&desksidev1.WatchDevicesResponse{}); err != nil {
		return err
	}
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return revoked(ctx)
		case d, ok := <-sub.ch:
			if !ok {
				if sub.lagged {
					return status.Error(codes.ResourceExhausted, "device watch fell behind; list devices again and re-watch")
				}
				return status.Error(codes.Unavailable, "relay is shutting down")
			}
			c.s.events.received(sub)
			// The scope is read per event: a change of the technician's
			// groups applies to the open watch (recheckCaller).
			if !inScope(c.s.deviceScope(ctx), d.GetGroup()) {
				continue // a device outside the caller's groups
			}
			if err := stream.Send(&desksidev1.WatchDevicesResponse{Device: d}); err != nil {
				return err
			}
		}
	}
}

// BeginTotpEnrollment implements ConsoleService.BeginTotpEnrollment.
func (c *consoleService) BeginTotpEnrollment(ctx context.Context, _ *desksidev1.BeginTotpEnrollmentRequest) (*desksidev1.BeginTotpEnrollmentResponse, error) {
	who := callerFrom(ctx)
	if who.TOTPSecret != "" {
		return nil, status.Error(codes.FailedPrecondition, "a second factor is already set up; turn it off first to replace it")
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "Deskside", AccountName: who.Name})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "generate TOTP secret: %v", err)
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "QR code: %v", err)
	}
	var png bytes.Buffer
	if err := pngEncode(&png, img); err != nil {
		return nil, status.Errorf(codes.Internal, "QR code: %v", err)
	}
	c.s.totp.put(who.Name, key.Secret())
	return &desksidev1.BeginTotpEnrollmentResponse{Secret: key.Secret(), Url: key.URL(), QrPng: png.Bytes()}, nil
}

// ConfirmTotpEnrollment implements ConsoleService.ConfirmTotpEnrollment.
func (c *consoleService) ConfirmTotpEnrollment(ctx context.Context, req *desksidev1.ConfirmTotpEnrollmentRequest) (*desksidev1.ConfirmTotpEnrollmentResponse, error) {
	who := callerFrom(ctx)
	secret, ok := c.s.totp.take(who.Name)
	if !ok {
		return nil, status.Error(codes.FailedPrecondition, "no second-factor setup in progress (it expires after 10 minutes): start again")
	}
	if !auth.ValidTOTP(secret, req.GetCode(), c.s.cfg.Now()) {
		c.s.totp.put(who.Name, secret) // let them retry with the next code
		return nil, status.Error(codes.InvalidArgument, "that code does not match: check the authenticator app's clock and enter the current code")
	}
	t := who.Technician
	t.TOTPSecret = secret
	if err := c.s.store.UpdateTechnician(ctx, t); err != nil {
		return nil, storeErr(err)
	}
	c.s.totp.drop(who.Name)
	c.s.audit(ctx, who.Name, "totp.enable", who.Name, "")
	return &desksidev1.ConfirmTotpEnrollmentResponse{}, nil
}

// DisableTotp implements ConsoleService.DisableTotp.
func (c *consoleService) DisableTotp(ctx context.Context, req *desksidev1.DisableTotpRequest) (*desksidev1.DisableTotpResponse, error) {
	who := callerFrom(ctx)
	if who.TOTPSecret == "" {
		return nil, status.Error(codes.FailedPrecondition, "no second factor is set up")
	}
	if !auth.ValidTOTP(who.TOTPSecret, req.GetCode(), c.s.cfg.Now()) {
		c.s.audit(ctx, who.Name, "totp.disable.failed", who.Name, "wrong code")
		return nil, status.Error(codes.InvalidArgument, "that code does not match the current one")
	}
	t := who.Technician
	t.TOTPSecret = ""
	if err := c.s.store.UpdateTechnician(ctx, t); err != nil {
		return nil, storeErr(err)
	}
	c.s.audit(ctx, who.Name, "totp.disable", who.Name, "")
	return &desksidev1.DisableTotpResponse{}, nil
}

var pngEncode = png.Encode
