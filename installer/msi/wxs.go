package msi

import (
	"bytes"
	"crypto/sha1"
	_ "embed"
	"encoding/xml"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/template"

	"github.com/deskside/deskside/agent/service"
)

//go:embed agent.wxs.tmpl
var wxsTemplate string

var wxs = template.Must(template.New("agent.wxs").Option("missingkey=error").Parse(wxsTemplate))

// Identifiers that stay the same across every version: Windows finds the
// installed agent by the upgrade code, and a component's GUID must not
// change while its file keeps its name and place.
const (
	UpgradeCode    = "{6F1C8E1A-3B2D-4C5E-9F7A-1B2C3D4E5F60}"
	agentComponent = "{0E4C2B7A-7D51-4E0B-9A1C-5D3F2E8B6A01}"
	trayComponent  = "{0E4C2B7A-7D51-4E0B-9A1C-5D3F2E8B6A02}"
)

// StateDir is the agent's state directory as the MSI formats it: the
// %ProgramData%\Deskside\agent the agent defaults to on Windows.
const StateDir = `[CommonAppDataFolder]Deskside\agent`

// EnrollArguments are the arguments of the install's enroll action.
var EnrollArguments = []string{"enroll", "--keep-existing", "--relay", "[RELAY]", "--token", "[TOKEN]", "--state", StateDir}

// PinArguments are the arguments of the install's release key action.
var PinArguments = []string{"update", "pin", "[RELEASEKEY]", "--state", StateDir}

// wxsParams are the template's values, each already escaped for XML.
type wxsParams struct {
	ProductCode, UpgradeCode, ProductVersion, Describe, URL string
	AgentComponent, TrayComponent                           string
	ServiceName, ServiceDisplayName, ServiceDescription     string
	ServiceArguments, EnrollCommand, PinCommand             string
}

// RenderWXS writes the WiX source of the agent MSI for version v. The
// executables are read from the directory wixl runs in.
func RenderWXS(w io.Writer, v Version) error {
	p := wxsParams{
		ProductCode: ProductCode(v), UpgradeCode: UpgradeCode, ProductVersion: v.Product, Describe: v.Describe, URL: signURL,
		AgentComponent: agentComponent, TrayComponent: trayComponent,
		ServiceName: service.AgentName, ServiceDisplayName: service.AgentDisplayName, ServiceDescription: service.AgentDescription,
		ServiceArguments: commandLine(service.AgentArguments(StateDir)),
		EnrollCommand:    commandLine(EnrollArguments),
		PinCommand:       commandLine(PinArguments),
	}
	pv := reflect.ValueOf(&p).Elem()
	for i := range pv.NumField() {
		var b bytes.Buffer
		if err := xml.EscapeText(&b, []byte(pv.Field(i).String())); err != nil {
			return err
		}
		pv.Field(i).SetString(b.String())
	}
	return wxs.Execute(w, p)
}

// ProductCode is the MSI ProductCode of version v: derived from the
// version, so that building the same version twice makes the same product.
func ProductCode(v Version) string {
	h := sha1.Sum([]byte("deskside-agent msi\x00" + UpgradeCode + "\x00" + v.Describe))
	h[6] = h[6]&0x0f | 0x50 // a name-based (version 5) UUID
	h[8] = h[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("{%x-%x-%x-%x-%x}", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16]))
}

// commandLine joins args as Windows parses a command line, quoting those
// with spaces or MSI formatted parts ([Property]), which may expand to a
// path with spaces.
func commandLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t[") {
			a = `"` + a + `"`
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// serviceNameSQL is the service name quoted for an MSI SQL string.
func serviceNameSQL() string { return strings.ReplaceAll(service.AgentName, "'", "''") }
