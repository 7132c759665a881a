package config

import (
	"flag"
	"io"
)

// Storage is where a relay keeps its state, for the commands that work on
// it beside the relay (`deskside-relay ca`, `backup`): the data
// directory, the PostgreSQL URL (empty for SQLite) and the audit key file
// (empty: in the data directory).
type Storage struct {
	Data, Database, AuditKey string
	// File is the configuration file read; empty when none was.
	File string
}

// LoadStorage reads Storage as the relay reads its configuration: the
// file (file if not empty, else env DESKSIDE_CONFIG_FILE, else
// defaultFile when it exists), then the environment. A command's own
// flags override what it returns.
func LoadStorage(file string, lookupEnv func(string) (string, bool), defaultFile string) (Storage, error) {
	var args []string
	if file != "" {
		args = []string{"--config", file}
	}
	c, err := Load(Options{Name: "deskside-relay", Args: args, LookupEnv: lookupEnv, DefaultFile: defaultFile, Stderr: io.Discard})
	if err != nil {
		return Storage{}, err
	}
	sc := c.Service()
	return Storage{Data: sc.DataDir, Database: sc.Database, AuditKey: sc.AuditKeyFile, File: c.File}, nil
}

// StorageFlags adds --config, --data, --database and --audit-key to fs
// and returns a function that, after fs.Parse, resolves Storage: each
// flag given wins over the configuration file and the environment.
// database and auditKey say whether the command takes those flags.
func StorageFlags(fs *flag.FlagSet, lookupEnv func(string) (string, bool), defaultFile string, database, auditKey bool) func() (Storage, error) {
	file := fs.String("config", "", "the relay's configuration file (env "+FileEnv+"; default "+DefaultFile+" when it exists): --data, --database and --audit-key come from it unless given")
	data := fs.String("data", "", "the relay's data directory (default: from the configuration file, env DESKSIDE_DATA, else /var/lib/deskside-relay)")
	var db, ak *string
	if database {
		db = fs.String("database", "", "the relay's PostgreSQL URL, when it uses one (default: from the configuration file or env DESKSIDE_DATABASE)")
	}
	if auditKey {
		ak = fs.String("audit-key", "", "the relay's audit key, when it is kept outside the data directory (default: from the configuration file or env DESKSIDE_AUDIT_KEY)")
	}
	return func() (Storage, error) {
		s, err := LoadStorage(*file, lookupEnv, defaultFile)
		if err != nil {
			return Storage{}, err
		}
		if *data != "" {
			s.Data = *data
		}
		if db != nil && *db != "" {
			s.Database = *db
		}
		if ak != nil && *ak != "" {
			s.AuditKey = *ak
		}
		return s, nil
	}
}
