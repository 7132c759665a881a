package msi

import (
	"bytes"
	"encoding/xml"
	"regexp"
	"strings"
	"testing"
)

func TestRenderWXS(t *testing.T) {
	v := Version{Describe: `v1.2.3-4-g<&">`, Product: "1.2.5"}
	var b bytes.Buffer
	if err := RenderWXS(&b, v); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML, whatever the version string holds.
	d := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("rendered WXS is not XML: %v\n%s", err, b.String())
		}
	}
	for _, want := range []string{
		`Version="1.2.5"`,
		`Description="Deskside agent v1.2.3-4-g&lt;&amp;&#34;&gt;"`,
		`Arguments="run --state &#34;[CommonAppDataFolder]Deskside\agent&#34;"`,
		`ExeCommand="enroll --keep-existing --relay &#34;[RELAY]&#34; --token &#34;[TOKEN]&#34; --state &#34;[CommonAppDataFolder]Deskside\agent&#34;"`,
		`Name="deskside-agent"`,
		`ExeCommand="update pin &#34;[RELEASEKEY]&#34; --state &#34;[CommonAppDataFolder]Deskside\agent&#34;"`,
		`<Custom Action="PinReleaseKey" After="EnrollAgent">RELEASEKEY AND NOT REMOVE</Custom>`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("rendered WXS lacks %s", want)
		}
	}
}

func TestProductCode(t *testing.T) {
	a, b := ProductCode(Version{Describe: "v1.0.0"}), ProductCode(Version{Describe: "v1.0.0-1-gabc"})
	if a == b {
		t.Errorf("two versions share the product code %s", a)
	}
	if a != ProductCode(Version{Describe: "v1.0.0"}) {
		t.Error("the product code of one version changes between builds")
	}
	if !regexp.MustCompile(`^\{[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}\}$`).MatchString(a) {
		t.Errorf("product code %s is not a braced upper-case version 5 UUID", a)
	}
}
