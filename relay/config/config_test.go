package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/config"
)

// env is an environment for Load.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// writeFile writes a configuration file with mode 0600 and returns its path.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "relay.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, args []string, lookup func(string) (string, bool)) (*config.Config, error) {
	t.Helper()
	return config.Load(config.Options{Name: "test", Args: args, LookupEnv: lookup, Stderr: &strings.Builder{}})
}

// TestDefaults: with no file, environment or flags every key has its
// built-in default, and the service configuration matches what the relay
// used before it had a file.
func TestDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != "" {
		t.Errorf("file %q read, want none", c.File)
	}
	for _, k := range config.Keys {
		s := c.Get(k.Name)
		if s.Source != config.Default || !reflect.DeepEqual(s.Value, k.Default) {
			t.Errorf("%s = %v from %v, want the default %v", k.Name, s.Value, s.Source, k.Default)
		}
	}
	sc := c.Service()
	if sc.Listen != ":7443" || sc.WebListen != ":8443" || sc.AdminListen != "127.0.0.1:7444" || sc.TURNListen != ":3478" ||
		sc.MailListen != "off" || sc.DataDir != "/var/lib/deskside-relay" || sc.AdminName != "admin" || sc.NATSPrefix != "default" ||
		sc.HealthRetention != 7*24*time.Hour || sc.Ingest.HealthRowBurst != 20160 || sc.Ingest.InventoryPerHour != 30 || sc.Reflection != "technicians" {
		t.Errorf("service configuration from the defaults: %+v", sc)
	}
}

// TestPrecedence: a flag beats the environment, which beats the file,
// which beats the default; a list from a higher source replaces a lower
// one, and a repeated list flag adds up.
func TestPrecedence(t *testing.T) {
	f := writeFile(t, `
listen: "127.0.0.1:9001"
web_listen: "127.0.0.1:9002"
health_interval: 30s
names: [file-a.example, file-b.example]
turn_allow: ["10.0.0.0/8"]
`)
	c, err := load(t, []string{"--config", f, "--health-interval", "1m", "--name", "flag-a.example", "--name", "flag-b.example,flag-c.example"},
		env("DESKSIDE_WEB_LISTEN", "off", "DESKSIDE_HEALTH_INTERVAL", "45s", "DESKSIDE_TURN_ALLOW", "192.168.0.0/16, 172.16.0.0/12", "DESKSIDE_NATS", ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		key   string
		value any
		src   config.Source
		where string
	}{
		{"listen", "127.0.0.1:9001", config.File, f + ":2"},
		{"web_listen", "off", config.Env, "DESKSIDE_WEB_LISTEN"},
		{"health_interval", time.Minute, config.Flag, "--health-interval"},
		{"names", []string{"flag-a.example", "flag-b.example", "flag-c.example"}, config.Flag, "--name"},
		{"turn_allow", []string{"192.168.0.0/16", "172.16.0.0/12"}, config.Env, "DESKSIDE_TURN_ALLOW"},
		{"nats", "", config.Default, ""}, // an empty variable counts as unset
		{"admin_listen", "127.0.0.1:7444", config.Default, ""},
	} {
		s := c.Get(want.key)
		if !reflect.DeepEqual(s.Value, want.value) || s.Source != want.src || s.Where != want.where {
			t.Errorf("%s = %#v from %v %q, want %#v from %v %q", want.key, s.Value, s.Source, s.Where, want.value, want.src, want.where)
		}
	}
	sc := c.Service()
	if sc.Listen != "127.0.0.1:9001" || sc.WebListen != "off" || sc.HealthInterval != time.Minute || len(sc.Names) != 3 || len(sc.TURNAllow) != 2 {
		t.Errorf("service configuration %+v", sc)
	}
}

// TestConfigFileChoice: --config beats DESKSIDE_CONFIG_FILE beats the
// default file; an absent default file is fine, an absent named one is an
// error, and --config "" reads none.
func TestConfigFileChoice(t *testing.T) {
	a := writeFile(t, "listen: \":1001\"\n")
	b := writeFile(t, "listen: \":1002\"\n")
	def := writeFile(t, "listen: \":1003\"\n")
	missing := filepath.Join(t.TempDir(), "none.yaml")
	for _, tc := range []struct {
		name, defaultFile string
		args              []string
		env               []string
		want              string // listen, or "error"
	}{
		{"flag", def, []string{"--config", a}, []string{"DESKSIDE_CONFIG_FILE", b}, ":1001"},
		{"env", def, nil, []string{"DESKSIDE_CONFIG_FILE", b}, ":1002"},
		{"default present", def, nil, nil, ":1003"},
		{"default absent", missing, nil, nil, ":7443"},
		{"flag names none", def, []string{"--config="}, []string{"DESKSIDE_CONFIG_FILE", b}, ":7443"},
		{"flag names a missing file", def, []string{"--config", missing}, nil, "error"},
		{"env names a missing file", def, nil, []string{"DESKSIDE_CONFIG_FILE", missing}, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Load(config.Options{Args: tc.args, LookupEnv: env(tc.env...), DefaultFile: tc.defaultFile, Stderr: &strings.Builder{}})
			if tc.want == "error" {
				if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "config example") {
					t.Fatalf("err = %v, want one naming %s and how to write it", err, missing)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Get("listen").Value; got != tc.want {
				t.Errorf("listen = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestUnknownKey: an unknown key is an error naming the file's line and
// the key, with the key meant when it is close.
func TestUnknownKey(t *testing.T) {
	for _, tc := range []struct {
		line, hint string
	}{
		{"web_lsten: \":8443\"", "did you mean web_listen?"},
		{"web-listen: \":8443\"", "did you mean web_listen?"},
		{"DESKSIDE_LISTEN: \":1\"", "did you mean listen?"},
		{"name: [a.example]", "did you mean names?"},
		{"turn-url: [turn:x]", "did you mean turn_urls?"},
		{"web:\n  listen: \":8443\"", "write web_listen"},
		{"colour: blue", "`deskside-relay config example` lists every key"},
		{"<<: {listen: \":1\"}", "config example"},
	} {
		f := writeFile(t, "# comment\nlisten: \":7443\"\n"+tc.line+"\n")
		_, err := load(t, []string{"--config", f}, nil)
		var ce *config.Error
		if !errors.As(err, &ce) || !errors.Is(err, config.ErrUnknownKey) {
			t.Errorf("%q: err = %v, want an unknown-key error", tc.line, err)
			continue
		}
		key, _, _ := strings.Cut(tc.line, ":")
		if ce.Line != 3 || ce.Where != f+":3" || ce.Key != key || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("%q: %v (line %d, key %q), want line 3, key %q and %q", tc.line, err, ce.Line, ce.Key, key, tc.hint)
		}
	}
}

// TestBadValues: wrong types and values that do not parse are errors
// naming the line and the key and what to write instead.
func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		text string
		line int
		hint string
	}{
		{"health_interval: 15", 1, `"15s"`},
		{"health_interval: \"15\"", 1, `"15s"`},
		{"health_retention: soon", 1, "a duration"},
		{"health_retention: -1h", 1, "negative"},
		{"listen: 7443", 1, `":7443"`},
		{"listen: \"off\"", 1, `cannot be "off"`},
		{"listen: localhost", 1, "host:port"},
		{"web_listen: false", 1, `write "off"`},
		{"admin_listen: [a, b]", 1, "a YAML list"},
		{"ingest_row_burst: \"20\"", 1, "without quotes"},
		{"ingest_row_burst: -3", 1, "whole number"},
		{"ingest_row_burst: many", 1, "whole number"},
		{"turn_ip: relay.example", 1, "not an IP address"},
		{"turn_allow: [10.0.0.0/33]", 1, "CIDR"},
		{"names: {a: b}", 1, "a YAML mapping"},
		{"reflection: on", 1, `not one of ["technicians" "off"]`},
		{"log_format: xml", 1, "not one of"},
		{"web_url: desk.example.org", 1, "https://"},
		{"mail_domain: 25", 1, `quote it: mail_domain: "25"`},
		{"\n\ndata:", 3, "no value"},
		{"data: \"\"", 1, "must not be empty"},
		{"listen: \":1\"\nweb_listen: off\nlisten: \":2\"", 3, "set twice, first at"},
		{"- listen\n", 1, "must be a mapping"},
	} {
		f := writeFile(t, tc.text+"\n")
		_, err := load(t, []string{"--config", f}, nil)
		var ce *config.Error
		if !errors.As(err, &ce) || !errors.Is(err, config.ErrValue) {
			t.Errorf("%q: err = %v, want a bad-value error", tc.text, err)
			continue
		}
		if ce.Line != tc.line || !strings.HasPrefix(err.Error(), f+":"+strconv.Itoa(tc.line)+":") || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("%q: %v, want line %d and %q", tc.text, err, tc.line, tc.hint)
		}
	}

	// Every error at once, not one per start.
	f := writeFile(t, "listen: 1\nweb_lsten: x\nhealth_interval: 2\n")
	_, err := load(t, []string{"--config", f}, nil)
	for _, want := range []string{f + ":1: listen", f + ":2: web_lsten", f + ":3: health_interval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to hold %q", err, want)
		}
	}

	// YAML syntax errors name the line.
	f = writeFile(t, "listen: \":1\"\nnames: [a\n")
	if _, err := load(t, []string{"--config", f}, nil); err == nil || !strings.Contains(err.Error(), f+": line") {
		t.Errorf("syntax error: %v, want the file and line", err)
	}

	// The environment and flags are checked the same way.
	_, err = load(t, nil, env("DESKSIDE_HEALTH_INTERVAL", "15", "DESKSIDE_LISTEN", "off"))
	if !errors.Is(err, config.ErrValue) || !strings.Contains(err.Error(), "environment DESKSIDE_HEALTH_INTERVAL: health_interval:") ||
		!strings.Contains(err.Error(), `"15s"`) || !strings.Contains(err.Error(), "environment DESKSIDE_LISTEN") {
		t.Errorf("environment: %v", err)
	}
	var stderr strings.Builder
	_, err = config.Load(config.Options{Args: []string{"--ingest-row-burst", "lots"}, Stderr: &stderr})
	if !errors.Is(err, config.ErrUsage) || !strings.Contains(stderr.String(), "-ingest-row-burst") || !strings.Contains(stderr.String(), "whole number") {
		t.Errorf("flag: %v, printed %q", err, stderr.String())
	}
	if _, err := load(t, []string{"stray"}, nil); err == nil || !strings.Contains(err.Error(), `"stray"`) {
		t.Errorf("positional argument: %v", err)
	}
}
