package downloads

import (
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"mime"
	"net/http"
	"strings"
)

// Prefix is the URL path the files are served under.
const Prefix = "/download/"

// Listing is what GET /download/ answers with Accept: application/json.
type Listing struct {
	// Relay is the address agents enroll with (host:port of the agent
	// listener, as the request reached this relay).
	Relay string `json:"relay"`
	// URL is the base URL the files are served at.
	URL   string `json:"url"`
	Files []File `json:"files"`
	// Patterns are the names served, for an empty directory's message.
	Patterns string `json:"patterns"`
}

// Handler serves Dir under Prefix: GET or HEAD only, no session needed
// (the packages hold no secret; enrolling needs a token).
type Handler struct {
	Dir *Dir
	// Relay returns the agent address for the request (Listing.Relay) and
	// the base URL of the downloads.
	Relay func(r *http.Request) (relay, url string)
	Log   *slog.Logger
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "downloads take GET and HEAD requests", http.StatusMethodNotAllowed)
		return
	}
	// The path as sent, not cleaned: a name is one segment that Served
	// accepts (no "/", no ".."), or nothing is served.
	p := r.URL.Path
	if p == strings.TrimSuffix(Prefix, "/") || p == Prefix {
		h.list(w, r)
		return
	}
	name, ok := strings.CutPrefix(p, Prefix)
	if !ok || !Served(name) {
		http.NotFound(w, r)
		return
	}
	f, fi, err := h.Dir.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	sum, err := h.Dir.hash(name, f, fi)
	if err != nil {
		h.Log.Warn("download unreadable", "name", name, "err", err)
		http.Error(w, "file unreadable", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", ContentType(name))
	hd.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	hd.Set("ETag", `"`+sum+`"`)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Checksum-Sha256", sum)
	// ServeContent answers HEAD, Range, If-None-Match and
	// If-Modified-Since, and sets Content-Length and Last-Modified.
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	files, err := h.Dir.List()
	if err != nil {
		h.Log.Warn("downloads directory unreadable", "dir", h.Dir.Path, "err", err)
		http.Error(w, "downloads directory unreadable (see the relay's log)", http.StatusInternalServerError)
		return
	}
	l := Listing{Files: files, Patterns: Patterns}
	if l.Files == nil {
		l.Files = []File{}
	}
	if h.Relay != nil {
		l.Relay, l.URL = h.Relay(r)
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Add("Vary", "Accept")
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodHead {
			return
		}
		json.NewEncoder(w).Encode(l)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	if err := listPage.Execute(w, l); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		h.Log.Debug("downloads listing", "err", err)
	}
}

func wantsJSON(r *http.Request) bool {
	for _, a := range strings.Split(r.Header.Get("Accept"), ",") {
		if t, _, _ := mime.ParseMediaType(strings.TrimSpace(a)); t == "application/json" {
			return true
		}
	}
	return false
}

var listPage = template.Must(template.New("list").Funcs(template.FuncMap{"size": sizeString}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Deskside agent downloads</title></head>
<body>
<h1>Deskside agent downloads</h1>
{{if .Files}}<p>Compare each SHA-256 with the SHA256SUMS of the machine that built the packages before installing.</p>
<table>
<thead><tr><th>File</th><th>Size</th><th>SHA-256</th></tr></thead>
<tbody>{{range .Files}}
<tr><td><a href="{{.Name}}" download>{{.Name}}</a></td><td>{{size .Size}}</td><td><code>{{.SHA256}}</code></td></tr>{{end}}
</tbody></table>
{{else}}<p>No agent packages on this relay yet. Build them with <code>make packages</code> (and <code>make msi</code>), then copy them here with
<code>deskside-relay downloads add dist/deskside-agent* dist/SHA256SUMS bin/deskside-agent.msi</code>.</p>{{end}}
<p>Served: {{.Patterns}}. The console's Add devices page shows the install commands.</p>
</body></html>
`))
