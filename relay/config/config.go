// Package config loads the relay's configuration from one table of keys
// (Keys): built-in defaults, then a YAML file (/etc/deskside/relay.yaml,
// --config, DESKSIDE_CONFIG_FILE), then the environment (DESKSIDE_<KEY>),
// then flags, each overriding the one before. Unknown keys, wrong types and
// bad values are errors naming the file and line. `deskside-relay config
// example` and `config check` print the same table
// (docs/adr/0029-relay-configuration-file.md).
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/deskside/deskside/relay/service"
)

// Source is where a setting's value came from, in increasing precedence.
type Source int

// Sources, each overriding the ones before it.
const (
	Default Source = iota
	File
	Env
	Flag
)

func (s Source) String() string {
	return [...]string{"default", "file", "env", "flag"}[s]
}

// Setting is a key's effective value and where it was set.
type Setting struct {
	Key    *Key
	Value  any
	Source Source
	// Where names the place: "relay.yaml:12", "DESKSIDE_LISTEN",
	// "--listen"; empty for a default.
	Where string
}

// Errors a loader returns, wrapped in an *Error naming the place and key.
var (
	// ErrUnknownKey: the file holds a key the relay does not know.
	ErrUnknownKey = errors.New("unknown key")
	// ErrValue: a value of the wrong type, or one that does not parse.
	ErrValue = errors.New("bad value")
	// ErrSecretExposed: a secret is written in a file other users can read.
	ErrSecretExposed = errors.New("secret readable by other users")
	// ErrUsage: the command line was wrong; the flag package has printed
	// why and the usage.
	ErrUsage = errors.New("usage")
)

// Error is a bad setting, with its place.
type Error struct {
	// Where is "FILE:LINE", an environment variable or a flag.
	Where string
	// Line is the line in the file, 0 for the environment and flags.
	Line int
	// Key is the key as written.
	Key string
	Err error
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: %v", e.Where, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.Where, e.Key, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Options says where Load reads from.
type Options struct {
	// Name is the program's name in usage messages.
	Name string
	// Args are the command-line arguments after the program's name.
	Args []string
	// LookupEnv reads the environment (os.LookupEnv); nil reads none.
	LookupEnv func(string) (string, bool)
	// DefaultFile is read when it exists and no file is named (DefaultFile
	// for the relay; empty in tests).
	DefaultFile string
	// Stderr receives flag errors and -help.
	Stderr io.Writer
}

// Config is a loaded configuration.
type Config struct {
	// File is the configuration file read; empty when none was.
	File string
	// ShowVersion is --version.
	ShowVersion bool
	// Warnings are problems that do not stop the relay, for its log.
	Warnings []string

	settings map[string]*Setting
	secrets  map[string]string // a secret key read from its *_file
}

// Get returns the effective setting of the key name (a name from Keys).
func (c *Config) Get(name string) Setting { return *c.settings[name] }

// Load reads the configuration: the defaults of Keys, overridden by the
// file, then the environment, then the flags in o.Args.
func Load(o Options) (*Config, error) {
	getenv := o.LookupEnv
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	c := &Config{settings: map[string]*Setting{}, secrets: map[string]string{}}
	flags := map[string]*Setting{}
	fset, cfgFlag := newFlagSet(o, c, flags)
	if err := fset.Parse(o.Args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fset.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: the relay takes flags only (subcommands: ca, config, backup, restore, downloads; see -help)", fset.Arg(0))
	}

	var errs []error
	file, explicit := o.DefaultFile, false
	if v, ok := getenv(FileEnv); ok && v != "" {
		file, explicit = v, true
	}
	if cfgFlag.set {
		file, explicit = cfgFlag.path, true
	}
	var fromFile map[string]*Setting
	if file != "" {
		var err error
		fromFile, err = readFile(file)
		switch {
		case !explicit && errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Errorf("configuration file %s does not exist (write one with `deskside-relay config example > %s`, or name another with --config)", file, file))
		case err != nil:
			errs = append(errs, err)
		default:
			c.File = file
		}
	}

	fromEnv := map[string]*Setting{}
	for _, k := range Keys {
		raw, ok := getenv(k.Env)
		if !ok || raw == "" {
			continue
		}
		v, err := parseText(k, raw)
		if err != nil {
			errs = append(errs, &Error{Where: "environment " + k.Env, Key: k.Name, Err: err})
			continue
		}
		fromEnv[k.Name] = &Setting{Key: k, Value: v, Source: Env, Where: k.Env}
	}

	for _, k := range Keys {
		s := &Setting{Key: k, Value: k.Default, Source: Default}
		for _, layer := range []map[string]*Setting{fromFile, fromEnv, flags} {
			if l, ok := layer[k.Name]; ok {
				s = l
			}
		}
		c.settings[k.Name] = s
	}
	errs = append(errs, c.resolveSecrets()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// resolveSecrets picks, for each secret, its value or the file holding it
// (the one set with the higher precedence; both at once is an error), and
// reads the file.
func (c *Config) resolveSecrets() []error {
	var errs []error
	for _, k := range Keys {
		fileKey, ok := secretPairs[k.Name]
		if !ok {
			continue
		}
		inline, ref := c.settings[k.Name], c.settings[fileKey]
		if ref.Value.(string) == "" || inline.Source > ref.Source {
			continue
		}
		if inline.Source == ref.Source && inline.Value.(string) != "" {
			errs = append(errs, &Error{Where: ref.Where, Key: fileKey, Err: fmt.Errorf("%w: %s is set too (%s): set one of them", ErrValue, k.Name, inline.Where)})
			continue
		}
		b, err := os.ReadFile(ref.Value.(string))
		if err != nil {
			errs = append(errs, &Error{Where: ref.Where, Key: fileKey, Err: fmt.Errorf("%w (it names the file holding %s)", err, k.Name)})
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			errs = append(errs, &Error{Where: ref.Where, Key: fileKey, Err: fmt.Errorf("%w: %s is empty: write %s in it", ErrValue, ref.Value, k.Name)})
			continue
		}
		if w := readableByOthers(ref.Value.(string)); w != "" {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s (%s, holding %s) %s: run `chmod o-r %s`", ref.Value, fileKey, k.Name, w, ref.Value))
		}
		c.secrets[k.Name] = v
	}
	return errs
}

// secret is the effective value of a secret key: read from its file, or
// as set.
func (c *Config) secret(name string) string {
	if v, ok := c.secrets[name]; ok {
		return v
	}
	return c.settings[name].Value.(string)
}

// Service returns the relay's configuration. The caller adds what is not
// configuration (Version, WebFiles, Logger).
func (c *Config) Service() service.Config {
	var sc service.Config
	for _, k := range Keys {
		v := c.settings[k.Name].Value
		if _, ok := secretPairs[k.Name]; ok {
			v = c.secret(k.Name)
		}
		k.apply(&sc, v)
	}
	return sc
}

// Logger returns a logger on w in the configured format.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	if c.settings["log_format"].Value == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

type configFlag struct {
	path string
	set  bool
}

// newFlagSet makes the relay's flags from Keys; set flags land in flags.
func newFlagSet(o Options, c *Config, flags map[string]*Setting) (*flag.FlagSet, *configFlag) {
	fset := flag.NewFlagSet(o.Name, flag.ContinueOnError)
	if o.Stderr != nil {
		fset.SetOutput(o.Stderr)
	}
	cf := &configFlag{}
	fset.Func("config", fmt.Sprintf("configuration file (env %s; default %s when it exists; \"\" for none)", FileEnv, DefaultFile), func(s string) error {
		cf.path, cf.set = s, true
		return nil
	})
	fset.BoolVar(&c.ShowVersion, "version", false, "print the version and exit")
	for _, k := range Keys {
		if k.Flag == "" {
			continue
		}
		usage := fmt.Sprintf("%s (file key %s, env %s; default %s)", strings.TrimSuffix(k.Usage, "."), k.Name, k.Env, formatValue(k.Default))
		if k.kind == kindList {
			usage = strings.Replace(usage, " (file key", "; repeatable or comma-separated (file key", 1)
		}
		fset.Func(k.Flag, usage, func(s string) error {
			v, err := parseText(k, s)
			if err != nil {
				return err
			}
			if prev, ok := flags[k.Name]; ok && k.kind == kindList {
				v = append(prev.Value.([]string), v.([]string)...)
			}
			flags[k.Name] = &Setting{Key: k, Value: v, Source: Flag, Where: "--" + k.Flag}
			return nil
		})
	}
	return fset, cf
}
