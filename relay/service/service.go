// Package service wires a relay process: it opens the backends a
// configuration selects (the SQLite or PostgreSQL store, the local or NATS
// bus, the built-in or an external TURN relay) and hands them to
// relay/server, which only knows their interfaces. The relay's main and the
// tests that run whole relays start here.
package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/audit"
	"github.com/deskside/deskside/relay/bus/natsbus"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/postgres"
	"github.com/deskside/deskside/relay/store/sqlite"
	"github.com/deskside/deskside/relay/turnserver"
)

// SQLiteFile is the SQLite database's name in the data directory.
const SQLiteFile = "deskside.db"

// Config is a relay process's configuration: the server's own and the
// backends'. A backend already set in Config (Store, Bus, TURN) is used as
// it is and left open.
type Config struct {
	server.Config

	// Database selects the store: empty for SQLite in DataDir, or a
	// PostgreSQL connection URL (postgres://… or postgresql://…, see
	// package relay/store/postgres) naming the database that the relays of
	// a scaled-out deployment share. Anything else is a config error.
	Database string
	// NATSURL, when set, routes console requests between the relays of a
	// scaled-out deployment over NATS (relay/bus/natsbus), and device
	// changes with them; NATSPrefix ("default") separates deployments
	// sharing one NATS. Use it with a shared Database and a shared CA.
	NATSURL, NATSPrefix string
	// TURNListen is the built-in TURN server's UDP+TCP address; default
	// ":3478", "off" disables it.
	TURNListen string
	// TURNPublicIP is the address TURN relays advertise; default 127.0.0.1
	// (set it to the relay's address as agents and browsers reach it).
	TURNPublicIP string
	// TURNAllow lists peer ranges (CIDR, or one IP address) the built-in
	// TURN server relays to although it refuses them by default (loopback,
	// link-local, private ranges, the relay's own addresses; see
	// turnserver.Config.Allow).
	TURNAllow []string
	// TURNExternalURLs and TURNSecret use an external TURN server (coturn
	// with use-auth-secret) instead of the built-in one. Its credentials
	// cannot be revoked when a session ends: they live out
	// TURNCredentialTTL. What it relays to is its own configuration
	// (coturn: denied-peer-ip, no-tcp-relay).
	TURNExternalURLs []string
	TURNSecret       string
	// AuditKeyFile is the audit log's key file (package relay/audit);
	// default DataDir/audit.key, created with the log's anchor on the
	// first start. Relays sharing a database need the same file: copy it
	// with the CA. Keep it off the database host.
	AuditKeyFile string
}

// CheckAndSetDefaults validates the backend fields and fills their
// defaults; server.New checks the rest.
func (c *Config) CheckAndSetDefaults() error {
	var errs []error
	if c.Store == nil {
		if c.Database == "" && c.DataDir == "" {
			errs = append(errs, errors.New("config: DataDir (--data) is required for the SQLite database"))
		}
		if c.Database != "" && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
			errs = append(errs, fmt.Errorf("config: Database (--database, DESKSIDE_DATABASE) %q is not a PostgreSQL URL (postgres://… or postgresql://…); leave it empty for SQLite in the data directory",
				postgres.Redact(c.Database)))
		}
	}
	if c.Audit == nil && c.AuditKeyFile == "" {
		if c.DataDir == "" {
			errs = append(errs, errors.New("config: DataDir (--data) is required for the audit key (or set --audit-key)"))
		}
		c.AuditKeyFile = filepath.Join(c.DataDir, audit.KeyFile)
	}
	c.TURNListen = cmp.Or(c.TURNListen, ":3478")
	c.TURNPublicIP = cmp.Or(c.TURNPublicIP, "127.0.0.1")
	if net.ParseIP(c.TURNPublicIP) == nil {
		errs = append(errs, fmt.Errorf("config: TURNPublicIP (--turn-ip) %q is not an IP address", c.TURNPublicIP))
	}
	if len(c.TURNExternalURLs) > 0 && c.TURNSecret == "" {
		errs = append(errs, errors.New("config: TURNSecret (DESKSIDE_TURN_SECRET) is required with an external TURN server"))
	}
	if _, err := ParseAllow(c.TURNAllow); err != nil {
		errs = append(errs, err)
	}
	if len(c.TURNAllow) > 0 && len(c.TURNExternalURLs) > 0 {
		errs = append(errs, errors.New("config: TURNAllow (--turn-allow) applies to the built-in TURN server; with an external one (--turn-url) set its own peer rules (coturn: allowed-peer-ip)"))
	}
	c.NATSPrefix = cmp.Or(c.NATSPrefix, "default")
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return errors.Join(errs...)
}

// New opens the backends cfg selects and builds the relay on them. The
// relay's Close closes them (after a Release cfg already had). New owns
// cfg.Release from the start: when New fails, it has run it.
func New(ctx context.Context, cfg Config) (*server.Server, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		if cfg.Release != nil {
			err = errors.Join(err, cfg.Release())
		}
		return nil, err
	}
	var closers []func() error // in the order to close them
	if prev := cfg.Release; prev != nil {
		closers = append(closers, prev)
	}
	release := sync.OnceValue(func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	})
	ok := false
	defer func() {
		if !ok {
			release()
		}
	}()
	log := cfg.Logger

	if cfg.Bus == nil && cfg.NATSURL != "" {
		nb, err := natsbus.Open(cfg.NATSURL, cfg.NATSPrefix, log)
		if err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		cfg.Bus = nb
		closers = append(closers, func() error { nb.Close(); return nil })
		log.Info("bus: NATS", "prefix", cfg.NATSPrefix)
	}
	if cfg.TURN == nil {
		switch {
		case len(cfg.TURNExternalURLs) > 0:
			cfg.TURN = ExternalTURN([]byte(cfg.TURNSecret), cfg.TURNExternalURLs)
		case cfg.TURNListen != "off":
			allow, _ := ParseAllow(cfg.TURNAllow) // checked by CheckAndSetDefaults
			ts, err := turnserver.Start(turnserver.Config{Listen: cfg.TURNListen, PublicIP: net.ParseIP(cfg.TURNPublicIP), Allow: allow, Logger: log})
			if err != nil {
				return nil, fmt.Errorf("relay: %w", err)
			}
			cfg.TURN = builtinTURN{ts}
			closers = append(closers, ts.Close)
		}
	}
	if cfg.Store == nil {
		st, err := openStore(ctx, cfg)
		if err != nil {
			return nil, err
		}
		cfg.Store = st
		closers = append(closers, st.Close) // last: the others may still use it
	}
	if cfg.Audit == nil {
		if err := os.MkdirAll(filepath.Dir(cfg.AuditKeyFile), 0o700); err != nil {
			return nil, fmt.Errorf("relay: audit key directory: %w", err)
		}
		lg, err := audit.Open(ctx, audit.Config{KeyFile: cfg.AuditKeyFile, Store: cfg.Store, Now: cfg.Now, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		cfg.Audit = lg
	}
	cfg.Release = release
	srv, err := server.New(ctx, cfg.Config)
	if err != nil {
		return nil, err
	}
	ok = true
	return srv, nil
}

// openStore opens the store cfg.Database selects: SQLite in DataDir when it
// is empty, else the PostgreSQL database it names (CheckAndSetDefaults
// has refused anything else). Logs name the database without a password.
func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	if cfg.Database == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("relay: data directory: %w", err)
		}
		path := filepath.Join(cfg.DataDir, SQLiteFile)
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, err
		}
		cfg.Logger.Info("store opened", "backend", "sqlite", "path", path)
		return st, nil
	}
	st, err := postgres.Open(ctx, cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	cfg.Logger.Info("store opened", "backend", "postgres", "database", postgres.Redact(cfg.Database))
	return st, nil
}

// The NATS bus carries device changes between relays.
var _ server.DeviceNotifier = (*natsbus.Bus)(nil)

// ParseAllow parses TURNAllow: CIDR ranges, or single IP addresses.
func ParseAllow(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range list {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(v); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		} else {
			return nil, fmt.Errorf("config: TURNAllow (--turn-allow) %q is neither a CIDR range (10.0.0.0/8) nor an IP address", v)
		}
	}
	return out, nil
}

// builtinTURN offers the relay's own TURN server.
type builtinTURN struct{ s *turnserver.Server }

var _ server.TURN = builtinTURN{}

// ICEServer implements server.TURN.
func (t builtinTURN) ICEServer(session string, ttl time.Duration) *desksidev1.IceServer {
	return iceServer(t.s.Credentials(session, ttl))
}

// EndSession implements server.TURN: the session's allocations close and
// its credentials stop working.
func (t builtinTURN) EndSession(session string) { t.s.EndSession(session) }

// externalTURN offers an external TURN server that shares a secret with
// the relay (TURN REST credentials, coturn's use-auth-secret).
type externalTURN struct {
	secret []byte
	urls   []string
}

var _ server.TURN = externalTURN{}

// ExternalTURN offers the TURN server at urls, which shares secret with
// the relay (TURN REST credentials, coturn's use-auth-secret).
func ExternalTURN(secret []byte, urls []string) server.TURN {
	return externalTURN{secret: secret, urls: urls}
}

// ICEServer implements server.TURN.
func (t externalTURN) ICEServer(session string, ttl time.Duration) *desksidev1.IceServer {
	return iceServer(turnserver.Issue(t.secret, t.urls, session, ttl))
}

// EndSession implements server.TURN: an external server's credentials
// cannot be revoked; they expire after their ttl.
func (externalTURN) EndSession(string) {}

func iceServer(c turnserver.Credentials) *desksidev1.IceServer {
	return &desksidev1.IceServer{Urls: c.URLs, Username: c.Username, Credential: c.Password}
}
