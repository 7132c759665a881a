package linuxpkg

import (
	"cmp"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// SPDX 2.3 JSON, only the fields the SBOM fills (spdx.github.io/spdx-spec/v2.3).
type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreation       `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID           string         `json:"SPDXID"`
	Name             string         `json:"name"`
	VersionInfo      string         `json:"versionInfo,omitempty"`
	PackageFileName  string         `json:"packageFileName,omitempty"`
	DownloadLocation string         `json:"downloadLocation"`
	FilesAnalyzed    bool           `json:"filesAnalyzed"`
	Checksums        []spdxChecksum `json:"checksums,omitempty"`
	ExternalRefs     []spdxRef      `json:"externalRefs,omitempty"`
	Comment          string         `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

var spdxIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

func spdxID(kind, name string) string {
	return "SPDXRef-" + kind + "-" + strings.Trim(spdxIDUnsafe.ReplaceAllString(name, "-"), "-")
}

// SBOM is the SPDX 2.3 JSON bill of materials of one package: the
// package, each binary in it (with its SHA-256), and the Go modules and
// toolchain linked into each binary, read from the binary's own build
// information (debug/buildinfo, as `go version -m` prints it), so it
// lists exactly what was compiled in, not the whole module graph.
// created is the packages' SOURCE_DATE_EPOCH, so the same inputs give the
// same bytes.
func SBOM(pkg, version, fileName string, binaries []string, created time.Time) ([]byte, error) {
	root := spdxID("Package", pkg)
	doc := spdxDoc{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name:              pkg + "-" + version,
		DocumentNamespace: "https://github.com/deskside/deskside/spdx/" + pkg + "-" + version,
		CreationInfo:      spdxCreation{Created: created.UTC().Format(time.RFC3339), Creators: []string{"Tool: deskside-package"}},
		Packages: []spdxPackage{{
			SPDXID: root, Name: pkg, VersionInfo: version, PackageFileName: fileName,
			DownloadLocation: "NOASSERTION",
		}},
		Relationships: []spdxRelationship{{Element: "SPDXRef-DOCUMENT", Type: "DESCRIBES", Related: root}},
	}
	var mods []spdxPackage
	seen := map[string]bool{}
	for _, bin := range binaries {
		name := filepath.Base(bin)
		bi, err := buildinfo.ReadFile(bin)
		if err != nil {
			return nil, fmt.Errorf("SBOM: read the build information of %s: %w (was it built with go build?)", bin, err)
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		binID := spdxID("File", name)
		doc.Packages = append(doc.Packages, spdxPackage{
			SPDXID: binID, Name: name, VersionInfo: version, DownloadLocation: "NOASSERTION",
			Checksums: []spdxChecksum{{Algorithm: "SHA256", Value: hex.EncodeToString(sum[:])}},
			Comment:   "Go binary, main package " + bi.Path + ", built with " + bi.GoVersion,
		})
		doc.Relationships = append(doc.Relationships, spdxRelationship{Element: root, Type: "CONTAINS", Related: binID})

		deps := []spdxPackage{{
			SPDXID: spdxID("Go", bi.GoVersion), Name: "stdlib", VersionInfo: bi.GoVersion,
			DownloadLocation: "https://go.dev/dl/",
			ExternalRefs:     []spdxRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: "pkg:golang/stdlib@" + bi.GoVersion}},
		}}
		for _, m := range bi.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			deps = append(deps, spdxPackage{
				SPDXID: spdxID("Module", m.Path+"@"+m.Version), Name: m.Path, VersionInfo: m.Version,
				DownloadLocation: "NOASSERTION",
				ExternalRefs:     []spdxRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: "pkg:golang/" + m.Path + "@" + m.Version}},
			})
		}
		for _, d := range deps {
			if !seen[d.SPDXID] {
				seen[d.SPDXID] = true
				mods = append(mods, d)
			}
			doc.Relationships = append(doc.Relationships, spdxRelationship{Element: binID, Type: "DEPENDS_ON", Related: d.SPDXID})
		}
	}
	// A fixed order: the package and its binaries first, then modules by ID.
	slices.SortFunc(mods, func(a, b spdxPackage) int { return cmp.Compare(a.SPDXID, b.SPDXID) })
	doc.Packages = append(doc.Packages, mods...)
	return json.MarshalIndent(doc, "", "  ")
}
