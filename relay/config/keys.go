package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/deskside/deskside/relay/service"
)

// kind is how a key's value is written and parsed.
type kind int

const (
	kindString   kind = iota // text
	kindAddr                 // host:port, or "off" when the key allows it
	kindDuration             // a Go duration: 15s, 168h
	kindInt                  // a whole number ≥ 0
	kindList                 // a list of text; comma-separated in the environment and flags
)

// want says what a value of kind k looks like, for errors.
func (k kind) want(off bool) string {
	switch k {
	case kindAddr:
		if off {
			return `an address host:port such as ":8443", or "off"`
		}
		return `an address host:port such as ":7443"`
	case kindDuration:
		return `a duration such as "15s", "10m" or "168h"`
	case kindInt:
		return "a whole number such as 30"
	case kindList:
		return `a list such as ["a", "b"]`
	}
	return "text"
}

// Key is one setting: its name in the file, its flag and environment
// variable, its default, and where it goes in service.Config. The loader,
// the flags' help, `config example` and `config check` all read the one
// table, Keys, so the documentation cannot drift from the code.
type Key struct {
	// Name is the key in the file (snake_case).
	Name string
	// Flag is the command-line flag without dashes; empty for secrets,
	// which a command line would show to every user of the machine.
	Flag string
	// Env is the environment variable, DESKSIDE_ and Name in capitals.
	Env string
	// Group is the section of the example file the key is listed in.
	Group string
	// Usage documents the key.
	Usage string
	// Default is the built-in value: a string, []string, time.Duration
	// or int as the kind says.
	Default any
	// Secret keys are redacted in `config check` and refused inline in a
	// file that other users can read.
	Secret bool

	kind  kind
	off   bool            // kindAddr: "off" turns the listener off
	check func(any) error // extra validation of a parsed value
	apply func(*service.Config, any)
}

// Flag help and the example say this about every key.
const (
	// DefaultFile is the configuration file the relay reads when it exists
	// and neither --config nor DESKSIDE_CONFIG_FILE names another.
	DefaultFile = "/etc/deskside/relay.yaml"
	// FileEnv names the configuration file in the environment.
	FileEnv = "DESKSIDE_CONFIG_FILE"
)

func str(f func(*service.Config, string)) func(*service.Config, any) {
	return func(c *service.Config, v any) { f(c, v.(string)) }
}

func list(f func(*service.Config, []string)) func(*service.Config, any) {
	return func(c *service.Config, v any) { f(c, v.([]string)) }
}

func dur(f func(*service.Config, time.Duration)) func(*service.Config, any) {
	return func(c *service.Config, v any) { f(c, v.(time.Duration)) }
}

func num(f func(*service.Config, int)) func(*service.Config, any) {
	return func(c *service.Config, v any) { f(c, v.(int)) }
}

func oneOf(vals ...string) func(any) error {
	return func(v any) error {
		for _, ok := range vals {
			if v.(string) == ok {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %q", v, vals)
	}
}

// Keys is every setting of the relay, in the order the example lists them.
var Keys = []*Key{
	// Listeners.
	{Name: "listen", Group: "Listeners", kind: kindAddr, Default: ":7443",
		Usage: "gRPC listen address for agents and consoles.",
		apply: str(func(c *service.Config, v string) { c.Listen = v })},
	{Name: "web_listen", Group: "Listeners", kind: kindAddr, off: true, Default: ":8443",
		Usage: `HTTPS listen address of the web console, or "off".`,
		apply: str(func(c *service.Config, v string) { c.WebListen = v })},
	{Name: "web_url", Group: "Listeners", kind: kindString, Default: "",
		Usage: "Public base URL of the web console when it is behind a proxy (https://desk.example.org); empty derives it from the address a browser used.",
		check: checkURL,
		apply: str(func(c *service.Config, v string) { c.WebURL = v })},
	{Name: "admin_listen", Group: "Listeners", kind: kindAddr, off: true, Default: "127.0.0.1:7444",
		Usage: `Admin listener for /metrics, /healthz and pprof, or "off". Keep it off public addresses.`,
		apply: str(func(c *service.Config, v string) { c.AdminListen = v })},
	{Name: "names", Flag: "name", Group: "Listeners", kind: kindList, Default: []string{},
		Usage: "Extra DNS names or IP addresses for the server certificate: the names agents and browsers use to reach the relay (the flag is repeatable).",
		apply: list(func(c *service.Config, v []string) { c.Names = v })},
	{Name: "reflection", Group: "Listeners", kind: kindString, Default: "technicians",
		Usage: `gRPC reflection: "technicians" (signed-in technicians only) or "off".`,
		check: oneOf("technicians", "off"),
		apply: str(func(c *service.Config, v string) { c.Reflection = v })},

	// Storage.
	{Name: "data", Group: "Storage", kind: kindString, Default: "/var/lib/deskside-relay",
		Usage: "Data directory: the CA, certificates, audit key and the SQLite database.",
		check: nonEmpty,
		apply: str(func(c *service.Config, v string) { c.DataDir = v })},
	{Name: "database", Flag: "database", Group: "Storage", kind: kindString, Default: "", Secret: true,
		Usage: "PostgreSQL URL (postgres://user@host:5432/db?sslmode=verify-full) of the database the relays of a scaled-out deployment share; empty for SQLite in the data directory. " +
			"Keep its password out of it (PGPASSWORD or ~/.pgpass) or use database_file: a file that holds a password inline must not be readable by other users.",
		apply: str(func(c *service.Config, v string) { c.Database = v })},
	{Name: "database_file", Group: "Storage", kind: kindString, Default: "",
		Usage: "File holding the PostgreSQL URL instead of database (for a URL with a password).",
		apply: secretFile},
	{Name: "downloads", Group: "Storage", kind: kindString, Default: "",
		Usage: "Directory of the agent packages served for new installs at https://RELAY:8443/download/ (deskside-agent*.deb, .rpm, .msi, SHA256SUMS, SBOMs); empty for downloads in the data directory. " +
			"Copy files in with `deskside-relay downloads add FILE...`; they are served at once, without a restart.",
		apply: str(func(c *service.Config, v string) { c.DownloadsDir = v })},
	{Name: "audit_key", Group: "Storage", kind: kindString, Default: "",
		Usage: "Audit key file sealing the audit log; empty for audit.key in the data directory (created on the first start). " +
			"Relays sharing a database need a copy of the same file, like the CA; keep it off the database host.",
		apply: str(func(c *service.Config, v string) { c.AuditKeyFile = v })},

	// Scale-out.
	{Name: "nats", Group: "Scale-out", kind: kindString, Default: "",
		Usage: "NATS URL(s), comma-separated, that the relays of a scaled-out deployment route requests over; empty for one relay.",
		apply: str(func(c *service.Config, v string) { c.NATSURL = v })},
	{Name: "nats_prefix", Group: "Scale-out", kind: kindString, Default: "default",
		Usage: "NATS subject prefix separating deployments that share a NATS.",
		check: nonEmpty,
		apply: str(func(c *service.Config, v string) { c.NATSPrefix = v })},

	// TURN.
	{Name: "turn_listen", Group: "TURN (remote desktop relaying)", kind: kindAddr, off: true, Default: ":3478",
		Usage: `Built-in TURN server's UDP and TCP address, or "off".`,
		apply: str(func(c *service.Config, v string) { c.TURNListen = v })},
	{Name: "turn_ip", Group: "TURN (remote desktop relaying)", kind: kindString, Default: "127.0.0.1",
		Usage: "IP address TURN relays advertise: the relay's address as agents and browsers reach it.",
		check: func(v any) error {
			if net.ParseIP(v.(string)) == nil {
				return fmt.Errorf("%q is not an IP address", v)
			}
			return nil
		},
		apply: str(func(c *service.Config, v string) { c.TURNPublicIP = v })},
	{Name: "turn_allow", Group: "TURN (remote desktop relaying)", kind: kindList, Default: []string{},
		Usage: "Peer ranges (CIDR or IP) the built-in TURN server may relay to although it refuses them by default: loopback, link-local, private, multicast and the relay's own addresses. " +
			"A LAN deployment whose agents and browsers have private addresses allows them, e.g. [\"10.0.0.0/8\"]; a range holding the relay's own addresses exposes its services on them.",
		check: func(v any) error {
			_, err := service.ParseAllow(v.([]string))
			return err
		},
		apply: list(func(c *service.Config, v []string) { c.TURNAllow = v })},
	{Name: "turn_urls", Flag: "turn-url", Group: "TURN (remote desktop relaying)", kind: kindList, Default: []string{},
		Usage: "External TURN server URLs (with turn_secret) instead of the built-in one. Its credentials cannot be revoked when a session ends, " +
			"and what it relays to is its own configuration: refuse private and loopback peers there (coturn: denied-peer-ip, no-tcp-relay, no-multicast-peers).",
		apply: list(func(c *service.Config, v []string) { c.TURNExternalURLs = v })},
	{Name: "turn_secret", Group: "TURN (remote desktop relaying)", kind: kindString, Default: "", Secret: true,
		Usage: "Shared secret of the external TURN server (coturn use-auth-secret). Prefer turn_secret_file.",
		apply: str(func(c *service.Config, v string) { c.TURNSecret = v })},
	{Name: "turn_secret_file", Group: "TURN (remote desktop relaying)", kind: kindString, Default: "",
		Usage: "File holding turn_secret.",
		apply: secretFile},

	// Mail.
	{Name: "mail_listen", Group: "Mail", kind: kindAddr, off: true, Default: "off",
		Usage: `SMTP listen address for answers by email to ticket mail (point the reply-to domain's MX here), or "off".`,
		apply: str(func(c *service.Config, v string) { c.MailListen = v })},
	{Name: "mail_domain", Group: "Mail", kind: kindString, Default: "",
		Usage: "Name the inbound mail listener greets with; empty for the first of names.",
		apply: str(func(c *service.Config, v string) { c.MailDomain = v })},

	// First technician.
	{Name: "admin_name", Group: "First technician", kind: kindString, Default: "admin",
		Usage: "Name of the first technician, created when there is none.",
		check: nonEmpty,
		apply: str(func(c *service.Config, v string) { c.AdminName = v })},
	{Name: "admin_password", Group: "First technician", kind: kindString, Default: "", Secret: true,
		Usage: "The first technician's password; empty generates one and prints it once. Prefer admin_password_file.",
		apply: str(func(c *service.Config, v string) { c.AdminPassword = v })},
	{Name: "admin_password_file", Group: "First technician", kind: kindString, Default: "",
		Usage: "File holding admin_password.",
		apply: secretFile},

	// Health and ingest.
	{Name: "health_interval", Group: "Health and ingest limits", kind: kindDuration, Default: time.Duration(0),
		Usage: "Health sampling interval pushed to agents; 0s keeps the agents' own (15s by default).",
		apply: dur(func(c *service.Config, v time.Duration) { c.HealthInterval = v })},
	{Name: "health_retention", Group: "Health and ingest limits", kind: kindDuration, Default: 7 * 24 * time.Hour,
		Usage: "Keep raw health samples this long, then downsample them.",
		apply: dur(func(c *service.Config, v time.Duration) { c.HealthRetention = v })},
	{Name: "ingest_rows_per_hour", Group: "Health and ingest limits", kind: kindInt, Default: 0,
		Usage: "Health samples one device may send per hour, sustained; 0 for 4 × its sampling rate (960 at 15s).",
		apply: num(func(c *service.Config, v int) { c.Ingest.HealthRowsPerHour = v })},
	{Name: "ingest_row_burst", Group: "Health and ingest limits", kind: kindInt, Default: 20160,
		Usage: "Health samples one device may send at once, such as its backlog after reconnecting.",
		apply: num(func(c *service.Config, v int) { c.Ingest.HealthRowBurst = v })},
	{Name: "ingest_inventory_per_hour", Group: "Health and ingest limits", kind: kindInt, Default: 30,
		Usage: "Inventory reports one device may send per hour, sustained.",
		apply: num(func(c *service.Config, v int) { c.Ingest.InventoryPerHour = v })},

	// Logs.
	{Name: "log_format", Group: "Logs", kind: kindString, Default: "json",
		Usage: `Log format: "json" or "text".`,
		check: oneOf("json", "text"),
		apply: func(*service.Config, any) {}}, // read by Config.Logger
}

// secretFile is the apply of the *_file keys: Config.Service reads the
// file into the key it names.
func secretFile(*service.Config, any) {}

// secretPairs maps each secret to the key naming a file that holds it.
var secretPairs = map[string]string{
	"database":       "database_file",
	"admin_password": "admin_password_file",
	"turn_secret":    "turn_secret_file",
}

func nonEmpty(v any) error {
	if v.(string) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func checkURL(v any) error {
	s := v.(string)
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL such as https://desk.example.org", s)
	}
	return nil
}

// byName finds a key by its name in the file.
var byName = make(map[string]*Key, len(Keys))

func init() {
	for _, k := range Keys {
		if k.Env == "" {
			k.Env = "DESKSIDE_" + upper(k.Name)
		}
		if k.Flag == "" && !k.Secret {
			k.Flag = dash(k.Name)
		}
		byName[k.Name] = k
	}
}
