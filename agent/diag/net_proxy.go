package diag

import (
	"context"
	"net/url"
	"os"
	"slices"
	"strings"
)

// proxyVars are the variables HTTP clients read proxy settings from, in
// both the conventional spellings.
var proxyVars = []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"}

func checkProxy(_ context.Context, _ *checkEnv) *result {
	agent := map[string]string{}
	for _, k := range proxyVars {
		if v, ok := os.LookupEnv(k); ok && strings.TrimSpace(v) != "" {
			agent[k] = v
		}
	}
	system, source, err := systemProxySettings()
	return evalProxy(agent, system, source, err)
}

// evalProxy reports the agent's and the system's proxy settings. The check
// is informational: it always passes; the evidence is what matters.
func evalProxy(agent, system map[string]string, source string, sysErr error) *result {
	r := new(result)
	for _, k := range proxyVars {
		if v, ok := agent[k]; ok {
			r.add("agent "+k, redactProxy(v))
		}
	}
	switch {
	case sysErr != nil:
		r.add("system settings", "not read: "+firstLine(sysErr.Error()))
	default:
		for _, k := range proxyVars {
			if v, ok := system[k]; ok {
				r.add(source+" "+k, redactProxy(v))
			}
		}
	}
	differs := false
	if sysErr == nil {
		a, s := canonProxy(agent), canonProxy(system)
		for _, k := range []string{"https_proxy", "http_proxy", "all_proxy"} {
			differs = differs || a[k] != s[k]
		}
	}
	var used []string
	for _, m := range []map[string]string{agent, system} {
		for _, k := range proxyVars[:6] {
			if v := m[k]; v != "" && !slices.Contains(used, redactProxy(v)) {
				used = append(used, redactProxy(v))
			}
		}
	}
	if differs {
		r.add("note", "the agent's proxy settings differ from "+source+"'s (the agent may need a restart to pick them up)")
	}
	if len(used) == 0 {
		return r.pass("no proxy configured")
	}
	return r.pass("proxy configured: " + listNames(used, 2))
}

// canonProxy merges the two spellings of each variable (the lower-case
// one wins, as Go's and curl's clients prefer it).
func canonProxy(m map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range proxyVars {
		if v := strings.TrimSpace(m[k]); v != "" {
			if _, set := out[strings.ToLower(k)]; !set || k == strings.ToLower(k) {
				out[strings.ToLower(k)] = v
			}
		}
	}
	return out
}

// redactProxy hides the password of a proxy URL.
func redactProxy(v string) string {
	v = strings.TrimSpace(v)
	if u, err := url.Parse(v); err == nil && u.User != nil {
		return redactURL(u)
	}
	if at := strings.LastIndex(v, "@"); at >= 0 { // scheme-less "user:pass@host"
		if user, _, ok := strings.Cut(v[:at], ":"); ok {
			return user + ":xxxxx" + v[at:]
		}
	}
	return v
}
