package server

import (
	"cmp"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/deskside/deskside/relay/audit"
	"github.com/deskside/deskside/relay/bus"
	"github.com/deskside/deskside/relay/helprequests"
	"github.com/deskside/deskside/relay/ingest"
	"github.com/deskside/deskside/relay/store"
)

// Config is everything the relay needs. CheckAndSetDefaults validates it in
// one place and names each bad field.
type Config struct {
	// DataDir holds the CA and the server certificate.
	DataDir string
	// Listen is the gRPC (agents and console) address; default ":7443".
	Listen string
	// AdminListen serves /metrics, /healthz and pprof; default
	// "127.0.0.1:7444". "off" disables it.
	AdminListen string
	// WebListen serves the web console over HTTPS; default ":8443", "off"
	// disables it.
	WebListen string
	// WebURL is the console's public base URL (behind a proxy); default
	// derived from the host a client used and the web port.
	WebURL string
	// DownloadsDir holds the agent packages served at /download/ on the
	// web listener (relay/downloads); default DataDir/downloads.
	DownloadsDir string
	// WebFiles are the console's files (the relay binary passes the
	// embedded build); required unless WebListen is "off".
	WebFiles fs.FS
	// TURN issues the credentials of the TURN relay offered to desktop
	// sessions (the built-in relay/turnserver or an external one); nil
	// offers none, and peers connect directly or not at all.
	TURN TURN
	// TURNCredentialTTL is how long session credentials last; default 10 min.
	TURNCredentialTTL time.Duration
	// CallerRecheck is how often a long-lived console call (a watch, a
	// remote-desktop session) re-reads its technician's session and
	// account, so signing out, disabling, deleting or demoting them ends
	// it on every relay; default 5 s.
	CallerRecheck time.Duration
	// Names are extra DNS names or IPs for the server certificate.
	Names []string
	// AdminName and AdminPassword seed the first technician when there is
	// none. An empty password generates one, printed once to Stdout.
	AdminName     string
	AdminPassword string
	// HealthInterval is what the relay tells agents; zero keeps theirs.
	HealthInterval time.Duration
	// HealthRetention keeps raw health samples this long before they are
	// downsampled into HealthBucket averages; default 7 days.
	HealthRetention time.Duration
	// HealthBucket is the width of downsampled points; default 1 hour.
	HealthBucket time.Duration
	// HealthDownsampledRetention keeps downsampled points this long;
	// default 400 days.
	HealthDownsampledRetention time.Duration
	// HelloTimeout bounds how long a new stream may wait before Hello.
	HelloTimeout time.Duration
	// Ingest are the per-device ingest limits (health reports and rows,
	// inventory reports); zero fields take the defaults ingest.Limits
	// states, derived from HealthInterval.
	Ingest ingest.Limits
	// HelpRates are the per-device limits on Get help (filing, searching);
	// zero fields take the defaults helprequests.Rates states.
	HelpRates helprequests.Rates
	// Store is the relay's persistent state (required). The process that
	// opened it closes it, after Close (see Release).
	Store store.Store
	// Audit seals the audit log with the relay's key (required; relay/service
	// opens it from the key file next to the store).
	Audit *audit.Log
	// Bus routes console requests to the relay holding the device's stream;
	// default bus.NewLocal() (one relay). A bus that announces device
	// changes (relay/bus/natsbus) carries them between relays too.
	Bus bus.Bus
	// Release, if set, runs once at the end of Close, after the last use of
	// Store, Bus and TURN: the process that opened them closes them there.
	Release func() error
	// Logger receives structured logs; default JSON on stderr.
	Logger *slog.Logger
	// Stdout receives the one-time admin password banner.
	Stdout io.Writer
	// Now is the clock.
	Now func() time.Time
	// Version is reported in logs.
	Version string
	// DeviceCertValidity is how long device certificates are valid; default
	// pki.DeviceValidity (a year). Agents renew at two thirds of it.
	DeviceCertValidity time.Duration
	// OrgKeyRefresh is how often the relay re-reads the organisation key
	// chain, so a statement published on another relay sharing the store
	// reaches this relay's agents; default 30 s.
	OrgKeyRefresh time.Duration
	// MailListen is the SMTP listener for answers by email to ticket mail
	// ("" or "off": none; e.g. ":2525" behind the domain's MX); MailDomain
	// is the name it greets with (default the first of Names).
	MailListen, MailDomain string
	// SMTPRootCAs verifies the outgoing SMTP server (nil: the system's).
	SMTPRootCAs *x509.CertPool
	// WebhookBackoff is the wait before each retry of a mail or a webhook
	// delivery (nil: notify's default, 5 s up to 30 min).
	WebhookBackoff []time.Duration
	// NotifyPoll is how often the outbox workers look for due mail and
	// webhook deliveries (0: notify's default, 2 s).
	NotifyPoll time.Duration
	// Reflection serves gRPC reflection to signed-in technicians
	// ("technicians", the default) or not at all ("off").
	Reflection string
}

// CheckAndSetDefaults validates c and fills defaults.
func (c *Config) CheckAndSetDefaults() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("config: DataDir (--data) is required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("config: Store is required (relay/service opens the one --database selects)"))
	}
	if c.Audit == nil {
		errs = append(errs, errors.New("config: Audit is required (relay/service opens it with the key file, --audit-key)"))
	}
	c.Listen = cmp.Or(c.Listen, ":7443")
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("config: Listen (--listen) %q: %w", c.Listen, err))
	}
	c.WebListen = cmp.Or(c.WebListen, ":8443")
	if c.WebListen != "off" && c.WebFiles == nil {
		errs = append(errs, errors.New("config: WebFiles is required to serve the web console (or set WebListen to \"off\")"))
	}
	if c.WebListen != "off" {
		if _, _, err := net.SplitHostPort(c.WebListen); err != nil {
			errs = append(errs, fmt.Errorf("config: WebListen (--web-listen) %q: %w", c.WebListen, err))
		}
	}
	if c.DownloadsDir == "" && c.DataDir != "" {
		c.DownloadsDir = filepath.Join(c.DataDir, "downloads")
	}
	c.AdminListen = cmp.Or(c.AdminListen, "127.0.0.1:7444")
	if c.AdminListen != "off" {
		if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
			errs = append(errs, fmt.Errorf("config: AdminListen (--admin-listen) %q: %w", c.AdminListen, err))
		}
	}
	c.AdminName = cmp.Or(c.AdminName, "admin")
	if c.AdminPassword != "" && len([]rune(c.AdminPassword)) < 12 {
		errs = append(errs, errors.New("config: AdminPassword (DESKSIDE_ADMIN_PASSWORD) must be at least 12 characters"))
	}
	if c.HealthInterval < 0 || (c.HealthInterval > 0 && c.HealthInterval < 100*time.Millisecond) {
		errs = append(errs, fmt.Errorf("config: HealthInterval %s must be 0 or at least 100ms", c.HealthInterval))
	}
	c.HealthRetention = cmp.Or(c.HealthRetention, 7*24*time.Hour)
	c.HealthBucket = cmp.Or(c.HealthBucket, time.Hour)
	c.HealthDownsampledRetention = cmp.Or(c.HealthDownsampledRetention, 400*24*time.Hour)
	if c.HealthDownsampledRetention < c.HealthRetention {
		errs = append(errs, errors.New("config: HealthDownsampledRetention must not be shorter than HealthRetention"))
	}
	c.HelloTimeout = cmp.Or(c.HelloTimeout, 10*time.Second)
	if err := c.Ingest.CheckAndSetDefaults(c.HealthInterval); err != nil {
		errs = append(errs, err)
	}
	c.TURNCredentialTTL = cmp.Or(c.TURNCredentialTTL, 10*time.Minute)
	c.CallerRecheck = cmp.Or(c.CallerRecheck, 5*time.Second)
	if c.CallerRecheck < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("config: CallerRecheck %s must be at least 10ms", c.CallerRecheck))
	}
	c.OrgKeyRefresh = cmp.Or(c.OrgKeyRefresh, 30*time.Second)
	if c.OrgKeyRefresh < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("config: OrgKeyRefresh %s must be at least 10ms", c.OrgKeyRefresh))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Version = cmp.Or(c.Version, "dev")
	c.Reflection = cmp.Or(c.Reflection, ReflectionTechnicians)
	if c.Reflection != ReflectionTechnicians && c.Reflection != ReflectionOff {
		errs = append(errs, fmt.Errorf("config: Reflection (--reflection) %q: want %q or %q", c.Reflection, ReflectionOff, ReflectionTechnicians))
	}
	if c.DeviceCertValidity < 0 {
		errs = append(errs, fmt.Errorf("config: DeviceCertValidity %s is negative", c.DeviceCertValidity))
	}
	return errors.Join(errs...)
}

// Values of Config.Reflection.
const (
	ReflectionTechnicians = "technicians"
	ReflectionOff         = "off"
)
