package msi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/service"
	"github.com/deskside/deskside/internal/testkit"
)

// testCA is a throw-away certificate authority and a code-signing
// certificate it issued, written as PEM files.
type testCA struct {
	CA, Cert, Key string
}

func newTestCA(t *testing.T, dir, name string) testCA {
	t.Helper()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name + " code signing", Organization: []string{"Deskside tests"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := testCA{CA: filepath.Join(dir, name+"-ca.pem"), Cert: filepath.Join(dir, name+"-cert.pem"), Key: filepath.Join(dir, name+"-key.pem")}
	for path, block := range map[string]*pem.Block{
		c.CA: {Type: "CERTIFICATE", Bytes: caDER}, c.Cert: {Type: "CERTIFICATE", Bytes: leafDER}, c.Key: {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// TestMSI builds the agent MSI as make msi does, signed with a throw-away
// CA, and reads what it built back with the real tools: msiinfo for the
// tables Windows Installer acts on, osslsigncode for the signatures.
// Installing it needs Windows and is not tested here.
func TestMSI(t *testing.T) {
	testkit.Heavy(t, "cross-compiles the agent for Windows and builds an MSI")
	for _, tool := range []string{"wixl", "msiinfo", "msibuild", "osslsigncode"} {
		_, err := exec.LookPath(tool)
		testkit.Need(t, tool, err, "install the Debian packages wixl msitools osslsigncode (make deps-msi)")
	}
	ctx := context.Background()
	dir := t.TempDir()
	ca := newTestCA(t, dir, "deskside")
	signer, err := SignerFromEnv(func(k string) string { return map[string]string{EnvSignCert: ca.Cert, EnvSignKey: ca.Key}[k] })
	if err != nil || signer == nil {
		t.Fatalf("SignerFromEnv: %v, %v", signer, err)
	}
	out, err := exec.Command("git", "rev-list", "--count", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-list: %v", err)
	}
	commits, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	const describe = "v9.8.7-6-gdeadbee-test"
	v, err := GitVersion(ctx, ".", describe)
	if err != nil {
		t.Fatal(err)
	}
	if want := "9.8." + strconv.Itoa(commits); v.Product != want {
		t.Fatalf("product version %s, want %s", v.Product, want)
	}
	res, err := Build(ctx, Config{Repo: filepath.Join("..", ".."), OutDir: filepath.Join(dir, "out"), Version: v, Signer: signer, RequireSigned: true})
	if err != nil {
		t.Fatal(err)
	}
	table := func(t *testing.T, name string) Table {
		t.Helper()
		tab, err := ExportTable(ctx, res.MSI, name)
		if err != nil {
			t.Fatal(err)
		}
		return tab
	}
	one := func(t *testing.T, tab Table, col, value string) map[string]string {
		t.Helper()
		rows := tab.Find(col, value)
		if len(rows) != 1 {
			t.Fatalf("%s: %d rows with %s=%q, want 1: %v", tab.Name, len(rows), col, value, tab.Rows)
		}
		return rows[0]
	}
	wantCols := func(t *testing.T, row map[string]string, want map[string]string) {
		t.Helper()
		for k, w := range want {
			if row[k] != w {
				t.Errorf("%s = %q, want %q (row %v)", k, row[k], w, row)
			}
		}
	}
	stateArg := `"[CommonAppDataFolder]Deskside\agent"`

	t.Run("ServiceInstall", func(t *testing.T) {
		// As `deskside-agent install` registers it: the same name and
		// arguments (run --state %ProgramData%\Deskside\agent), own process,
		// automatic start, LocalSystem (no StartName).
		row := one(t, table(t, "ServiceInstall"), "Name", service.AgentName)
		wantCols(t, row, map[string]string{
			"DisplayName": service.AgentDisplayName, "Description": service.AgentDescription,
			"ServiceType": "16", "StartType": "2", "ErrorControl": "1", "StartName": "",
			"Arguments": strings.Join(service.AgentArguments(stateArg), " "), "Component_": "Agent",
		})
		fa := one(t, table(t, "MsiServiceConfigFailureActions"), "Name", service.AgentName)
		wantCols(t, fa, map[string]string{"Event": "1", "Actions": "1", "DelayActions": "1000", "ResetPeriod": "10", "Component_": "Agent"})
		seq := table(t, "InstallExecuteSequence")
		if one(t, seq, "Action", "MsiConfigureServices")["Sequence"] == "" {
			t.Error("MsiConfigureServices is not sequenced: the failure actions would not be applied")
		}
	})
	t.Run("ServiceControl", func(t *testing.T) {
		// Start at install, stop at install and removal, delete at removal.
		row := one(t, table(t, "ServiceControl"), "Name", service.AgentName)
		wantCols(t, row, map[string]string{"Event": strconv.Itoa(0x01 | 0x02 | 0x20 | 0x80), "Wait": "1", "Component_": "Agent"})
	})
	t.Run("Properties", func(t *testing.T) {
		props := table(t, "Property")
		secure := strings.Split(one(t, props, "Property", "SecureCustomProperties")["Value"], ";")
		for _, p := range []string{"RELAY", "TOKEN", "RELEASEKEY", "WIX_UPGRADE_DETECTED"} {
			if !contains(secure, p) {
				t.Errorf("SecureCustomProperties %v lacks %s: msiexec would not pass it to the elevated install", secure, p)
			}
		}
		if h := one(t, props, "Property", "MsiHiddenProperties")["Value"]; !contains(strings.Split(h, ";"), "TOKEN") {
			t.Errorf("MsiHiddenProperties %q lacks TOKEN", h)
		}
		wantCols(t, one(t, props, "Property", "ProductVersion"), map[string]string{"Value": v.Product})
		wantCols(t, one(t, props, "Property", "ARPCOMMENTS"), map[string]string{"Value": describe})
		wantCols(t, one(t, props, "Property", "ALLUSERS"), map[string]string{"Value": "1"})
		wantCols(t, one(t, props, "Property", "UpgradeCode"), map[string]string{"Value": UpgradeCode})
		for _, p := range []string{"ARPNOMODIFY", "ARPHELPLINK", "ARPURLINFOABOUT"} {
			one(t, props, "Property", p)
		}
	})
	t.Run("EnrollAction", func(t *testing.T) {
		row := one(t, table(t, "CustomAction"), "Action", "EnrollAgent")
		typ, _ := strconv.Atoi(row["Type"])
		for bit, what := range map[int]string{caDeferred: "deferred", caNoImpersonate: "not impersonated", caHideTarget: "hidden from the log"} {
			if typ&bit == 0 {
				t.Errorf("enroll action type %d is not %s", typ, what)
			}
		}
		if typ&0x3f != caExeFromFile || row["Source"] != "AgentExe" {
			t.Errorf("enroll action type %d source %q: want the installed agent run", typ, row["Source"])
		}
		wantCols(t, row, map[string]string{"Target": `enroll --keep-existing --relay "[RELAY]" --token "[TOKEN]" --state ` + stateArg})
		seq := table(t, "InstallExecuteSequence")
		at := func(action string) int {
			n, err := strconv.Atoi(one(t, seq, "Action", action)["Sequence"])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		enroll := one(t, seq, "Action", "EnrollAgent")
		if enroll["Condition"] != "RELAY AND TOKEN AND NOT REMOVE" {
			t.Errorf("enroll runs when %q", enroll["Condition"])
		}
		if e := at("EnrollAgent"); e <= at("InstallFiles") || e <= at("InstallServices") || e >= at("StartServices") || e >= at("InstallFinalize") {
			t.Errorf("enroll at %d: want after the files and the service are installed and before the service starts", e)
		}
		if r := at("RemoveExistingProducts"); r <= at("InstallValidate") || r >= at("InstallInitialize") {
			t.Errorf("RemoveExistingProducts at %d: want right after InstallValidate", r)
		}
	})
	t.Run("PinAction", func(t *testing.T) {
		// RELEASEKEY=FP pins the release key as LocalSystem, like enrollment,
		// after the files are in place and before the service starts.
		row := one(t, table(t, "CustomAction"), "Action", "PinReleaseKey")
		typ, _ := strconv.Atoi(row["Type"])
		for bit, what := range map[int]string{caDeferred: "deferred", caNoImpersonate: "not impersonated"} {
			if typ&bit == 0 {
				t.Errorf("pin action type %d is not %s", typ, what)
			}
		}
		if typ&0x3f != caExeFromFile || row["Source"] != "AgentExe" || typ&0x40 != 0 {
			t.Errorf("pin action type %d source %q: want the installed agent run, its exit code checked", typ, row["Source"])
		}
		wantCols(t, row, map[string]string{"Target": `update pin "[RELEASEKEY]" --state ` + stateArg})
		seq := table(t, "InstallExecuteSequence")
		at := func(action string) int {
			n, err := strconv.Atoi(one(t, seq, "Action", action)["Sequence"])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if c := one(t, seq, "Action", "PinReleaseKey")["Condition"]; c != "RELEASEKEY AND NOT REMOVE" {
			t.Errorf("the release key is pinned when %q", c)
		}
		if p := at("PinReleaseKey"); p <= at("InstallFiles") || p >= at("StartServices") || p >= at("InstallFinalize") {
			t.Errorf("pin at %d: want after the files are installed and before the service starts", p)
		}
	})
	t.Run("FilesAndTray", func(t *testing.T) {
		files := table(t, "File")
		one(t, files, "FileName", AgentExeName)
		one(t, files, "FileName", TrayExeName)
		dirs := table(t, "Directory")
		wantCols(t, one(t, dirs, "Directory", "INSTALLDIR"), map[string]string{"Directory_Parent": "ProgramFiles64Folder", "DefaultDir": "Deskside"})
		run := one(t, table(t, "Registry"), "Name", "Deskside tray")
		wantCols(t, run, map[string]string{"Root": "2", "Key": `Software\Microsoft\Windows\CurrentVersion\Run`, "Value": `"[#TrayExe]"`})
		for _, c := range table(t, "Component").Rows {
			if a, _ := strconv.Atoi(c["Attributes"]); a&0x100 == 0 {
				t.Errorf("component %s is not 64-bit (attributes %d)", c["Component"], a)
			}
		}
		up := table(t, "Upgrade")
		if len(up.Find("ActionProperty", "WIX_UPGRADE_DETECTED")) != 1 || len(up.Find("ActionProperty", "WIX_DOWNGRADE_DETECTED")) != 1 {
			t.Errorf("Upgrade table %v: want the major upgrade and downgrade rows", up.Rows)
		}
	})
	t.Run("VersionStamped", func(t *testing.T) {
		for _, exe := range []string{res.AgentExe, res.TrayExe} {
			b, err := os.ReadFile(exe)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(describe)) {
				t.Errorf("%s does not carry the version %s", filepath.Base(exe), describe)
			}
		}
	})
	t.Run("Signatures", func(t *testing.T) {
		for _, f := range []string{res.AgentExe, res.TrayExe, res.MSI} {
			if err := Verify(ctx, f, ca.CA); err != nil {
				t.Errorf("%s: %v", filepath.Base(f), err)
			}
		}
		other := newTestCA(t, dir, "other")
		if err := Verify(ctx, res.MSI, other.CA); !errors.Is(err, ErrVerify) {
			t.Errorf("the MSI verified against another CA: %v", err)
		}
		// One byte of the agent's code changed after signing.
		b, err := os.ReadFile(res.AgentExe)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		tampered := filepath.Join(dir, "tampered.exe")
		if err := os.WriteFile(tampered, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Verify(ctx, tampered, ca.CA); !errors.Is(err, ErrVerify) {
			t.Errorf("a tampered agent verified: %v", err)
		}
		// The .wxs is not signed: verify refuses a file with no signature.
		if err := Verify(ctx, res.WXS, ca.CA); !errors.Is(err, ErrVerify) {
			t.Errorf("an unsigned file verified: %v", err)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestSignerFromEnv(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	for _, f := range []string{cert, key} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	if s, err := SignerFromEnv(env()); s != nil || err != nil {
		t.Errorf("nothing set: %v, %v; want no signer", s, err)
	}
	if s, err := SignerFromEnv(env(EnvSignCert, cert, EnvSignKey, key, EnvSignTimeURL, "http://tsa.example")); err != nil || s.Cert != cert || s.Key != key || s.TimestampURL == "" {
		t.Errorf("both set: %+v, %v", s, err)
	}
	for name, e := range map[string]func(string) string{
		"cert only":         env(EnvSignCert, cert),
		"key only":          env(EnvSignKey, key),
		"timestamp only":    env(EnvSignTimeURL, "http://tsa.example"),
		"missing cert file": env(EnvSignCert, filepath.Join(dir, "none.pem"), EnvSignKey, key),
		"missing pass file": env(EnvSignCert, cert, EnvSignKey, key, EnvSignKeyPass, filepath.Join(dir, "none")),
	} {
		if s, err := SignerFromEnv(e); err == nil {
			t.Errorf("%s: %+v, want an error", name, s)
		}
	}
	if _, err := Build(context.Background(), Config{RequireSigned: true}); !errors.Is(err, ErrUnsigned) {
		t.Errorf("a required signature without a signer: %v, want ErrUnsigned", err)
	}
}
