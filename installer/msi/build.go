package msi

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Names of what Build writes into Config.OutDir.
const (
	MSIName      = "deskside-agent.msi"
	AgentExeName = "deskside-agent.exe"
	TrayExeName  = "deskside-tray.exe"
	WXSName      = "deskside-agent.wxs"
)

// Custom action type bits (Windows Installer CustomAction table).
const (
	caExeFromFile   = 18     // run an installed file
	caDeferred      = 0x400  // in the install script, with the installer's privileges
	caNoImpersonate = 0x800  // as LocalSystem, not as the user who started msiexec
	caHideTarget    = 0x2000 // keep the command line (the token) out of the log
	// EnrollActionType is the type of the MSI's enroll action.
	EnrollActionType = caExeFromFile | caDeferred | caNoImpersonate | caHideTarget
	// PinActionType is the type of the release key action: its command
	// line holds no secret, so it stays in the log.
	PinActionType = caExeFromFile | caDeferred | caNoImpersonate
)

// Service restart on failure, as kardianos/service sets it for
// `deskside-agent install` (agent/service: OnFailure=restart): restart
// after 1 s, failure count reset after 10 s.
const (
	restartDelayMillis = 1000
	restartResetSecs   = 10
)

// Config is what Build needs.
type Config struct {
	Repo    string  // the module's root: go build and git run there
	OutDir  string  // where the executables, the .wxs and the .msi go
	Version Version // see GitVersion
	// Signer signs both executables and the MSI; nil builds them unsigned
	// unless RequireSigned.
	Signer        *Signer
	RequireSigned bool
	Go            string // the go command; default "go"
	Logger        *slog.Logger
}

// Result names what Build wrote.
type Result struct {
	MSI, AgentExe, TrayExe, WXS string
	Signed                      bool
}

// Build cross-compiles the agent and the tray for 64-bit Windows, signs
// them, packs them into the MSI and signs it.
func Build(ctx context.Context, cfg Config) (Result, error) {
	if cfg.RequireSigned && cfg.Signer == nil {
		return Result{}, ErrUnsigned
	}
	if cfg.Version.Product == "" || cfg.Version.Describe == "" {
		return Result{}, fmt.Errorf("%w: Config.Version is empty (see GitVersion)", ErrVersion)
	}
	tools := []string{"wixl", "msiinfo", "msibuild"}
	if cfg.Signer != nil {
		tools = append(tools, "osslsigncode")
	}
	if err := needTools(tools...); err != nil {
		return Result{}, err
	}
	log := cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return Result{}, err
	}
	out, err := filepath.Abs(cfg.OutDir)
	if err != nil {
		return Result{}, err
	}
	res := Result{
		MSI: filepath.Join(out, MSIName), AgentExe: filepath.Join(out, AgentExeName),
		TrayExe: filepath.Join(out, TrayExeName), WXS: filepath.Join(out, WXSName),
		Signed: cfg.Signer != nil,
	}
	ldflags := "-s -w -X main.version=" + cfg.Version.Describe
	for _, b := range []struct{ exe, pkg, ldflags string }{
		{res.AgentExe, "./agent/cmd/deskside-agent", ldflags},
		{res.TrayExe, "./agent/cmd/deskside-tray", ldflags + " -H=windowsgui"}, // no console window at login
	} {
		log.Info("building for windows/amd64", "package", b.pkg)
		cmd := exec.CommandContext(ctx, cmp.Or(cfg.Go, "go"), "build", "-trimpath", "-ldflags", b.ldflags, "-o", b.exe, b.pkg)
		cmd.Dir = cfg.Repo
		cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			return res, fmt.Errorf("msi: go build %s for windows/amd64: %w: %s", b.pkg, err, o)
		}
		if err := cfg.sign(ctx, b.exe); err != nil {
			return res, err
		}
	}
	f, err := os.Create(res.WXS)
	if err != nil {
		return res, err
	}
	err = RenderWXS(f, cfg.Version)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("msi: write %s: %w", res.WXS, err)
	}
	log.Info("compiling the MSI with wixl", "version", cfg.Version.Product, "describe", cfg.Version.Describe)
	tmp := res.MSI + ".tmp"
	defer os.Remove(tmp)
	cmd := exec.CommandContext(ctx, "wixl", "-a", "x64", "-o", tmp, WXSName)
	cmd.Dir = out // the .wxs names the executables relative to it
	if o, err := cmd.CombinedOutput(); err != nil {
		return res, fmt.Errorf("msi: wixl %s: %w: %s", res.WXS, err, o)
	}
	if err := postprocess(ctx, tmp); err != nil {
		return res, err
	}
	if err := os.Rename(tmp, res.MSI); err != nil {
		return res, err
	}
	if err := cfg.sign(ctx, res.MSI); err != nil {
		return res, err
	}
	return res, nil
}

// sign signs path in place when a signer is configured.
func (cfg Config) sign(ctx context.Context, path string) error {
	if cfg.Signer == nil {
		return nil
	}
	signed := path + ".signed"
	defer os.Remove(signed)
	if err := cfg.Signer.Sign(ctx, path, signed); err != nil {
		return err
	}
	return os.Rename(signed, path)
}

// postprocess sets with msibuild what wixl 0.101 has no attribute for:
//   - the enroll action's HideTarget bit, so that its command line, which
//     holds the token, is not written to the install log (wixl ignores
//     HideTarget and Property/@Hidden; MsiHiddenProperties is in the .wxs);
//   - RELAY, TOKEN and RELEASEKEY in SecureCustomProperties, so that msiexec passes
//     them from the command line to the elevated part of the install
//     (wixl ignores Property/@Secure);
//   - RemoveExistingProducts right after InstallValidate: an upgrade
//     removes the old version whole before installing the new one (the
//     executables carry no file version for Windows Installer to compare);
//   - the service's restart on failure (MsiServiceConfigFailureActions),
//     as `deskside-agent install` sets it.
func postprocess(ctx context.Context, path string) error {
	ca, err := ExportTable(ctx, path, "CustomAction")
	if err != nil {
		return err
	}
	rows := ca.Find("Action", "EnrollAgent")
	if want := fmt.Sprint(EnrollActionType &^ caHideTarget); len(rows) != 1 || rows[0]["Type"] != want {
		return fmt.Errorf("msi: wixl made the enroll action %v, want one of type %s (a wixl version this code does not know?)", rows, want)
	}
	props, err := ExportTable(ctx, path, "Property")
	if err != nil {
		return err
	}
	if rows := ca.Find("Action", "PinReleaseKey"); len(rows) != 1 || rows[0]["Type"] != fmt.Sprint(PinActionType) {
		return fmt.Errorf("msi: wixl made the release key action %v, want one of type %d (a wixl version this code does not know?)", rows, PinActionType)
	}
	secure := "RELAY;TOKEN;RELEASEKEY"
	if r := props.Find("Property", "SecureCustomProperties"); len(r) == 1 && r[0]["Value"] != "" {
		secure += ";" + r[0]["Value"]
	}
	queries := []string{
		fmt.Sprintf("UPDATE `CustomAction` SET `Type` = %d WHERE `Action` = 'EnrollAgent'", EnrollActionType),
		"DELETE FROM `Property` WHERE `Property` = 'SecureCustomProperties'",
		fmt.Sprintf("INSERT INTO `Property` (`Property`, `Value`) VALUES ('SecureCustomProperties', '%s')", secure),
		"UPDATE `InstallExecuteSequence` SET `Sequence` = 1401 WHERE `Action` = 'RemoveExistingProducts'",
		"CREATE TABLE `MsiServiceConfigFailureActions` (`MsiServiceConfigFailureActions` CHAR(72) NOT NULL, `Name` CHAR(255) NOT NULL, `Event` INT NOT NULL, `ResetPeriod` LONG, `RebootMessage` CHAR(255) LOCALIZABLE, `Command` CHAR(255) LOCALIZABLE, `Actions` CHAR(255), `DelayActions` CHAR(255), `Component_` CHAR(72) NOT NULL PRIMARY KEY `MsiServiceConfigFailureActions`)",
		// Event 1: when the service is installed; action 1: restart.
		fmt.Sprintf("INSERT INTO `MsiServiceConfigFailureActions` (`MsiServiceConfigFailureActions`, `Name`, `Event`, `ResetPeriod`, `Actions`, `DelayActions`, `Component_`) VALUES ('AgentRestart', '%s', 1, %d, '1', '%d', 'Agent')",
			serviceNameSQL(), restartResetSecs, restartDelayMillis),
		"INSERT INTO `InstallExecuteSequence` (`Action`, `Condition`, `Sequence`) VALUES ('MsiConfigureServices', 'VersionNT >= 600', 5850)",
	}
	args := []string{path}
	for _, q := range queries {
		args = append(args, "-q", q)
	}
	if o, err := exec.CommandContext(ctx, "msibuild", args...).CombinedOutput(); err != nil || len(strings.TrimSpace(string(o))) > 0 {
		return fmt.Errorf("msi: msibuild %s: %v: %s", path, err, o)
	}
	return nil
}
