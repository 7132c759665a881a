package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// maxFileSize bounds the configuration file read.
const maxFileSize = 1 << 20

// readFile reads the YAML configuration file at path: a mapping of keys
// from Keys to values. Every problem is an *Error naming its line.
func readFile(path string) (map[string]*Setting, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("configuration file %s is not a regular file", path)
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("configuration file %s is %d bytes, more than a relay configuration needs (%d at most)", path, fi.Size(), maxFileSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		// yaml's messages start "yaml: line N: …".
		return nil, fmt.Errorf("%s: %s (check the indentation and quoting there)", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	out := map[string]*Setting{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return out, nil // empty, or comments only
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Where: fmt.Sprintf("%s:%d", path, root.Line), Line: root.Line,
			Err: fmt.Errorf("%w: the file must be a mapping of keys to values (listen: \":7443\"); `deskside-relay config example` prints one", ErrValue)}
	}
	var errs []error
	var inline []*Setting // secrets written in the file itself
	for i := 0; i+1 < len(root.Content); i += 2 {
		kn, vn := root.Content[i], root.Content[i+1]
		where := fmt.Sprintf("%s:%d", path, kn.Line)
		fail := func(err error) { errs = append(errs, &Error{Where: where, Line: kn.Line, Key: kn.Value, Err: err}) }
		k, ok := byName[kn.Value]
		if !ok || kn.Kind != yaml.ScalarNode || kn.ShortTag() != "!!str" {
			fail(fmt.Errorf("%w; %s", ErrUnknownKey, suggest(kn.Value, vn)))
			continue
		}
		if prev, dup := out[k.Name]; dup {
			fail(fmt.Errorf("%w: set twice, first at %s: delete one", ErrValue, prev.Where))
			continue
		}
		v, err := nodeValue(k, vn)
		if err != nil {
			fail(err)
			continue
		}
		s := &Setting{Key: k, Value: v, Source: File, Where: where}
		out[k.Name] = s
		if k.Secret && holdsSecret(k, v.(string)) {
			inline = append(inline, s)
		}
	}
	if err := checkFileMode(path, fi, inline); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// holdsSecret says whether the value v of the secret key k is one: a
// database URL is only when it carries a password.
func holdsSecret(k *Key, v string) bool {
	if v == "" {
		return false
	}
	if k.Name != "database" {
		return true
	}
	u, err := url.Parse(v)
	if err != nil {
		return true
	}
	_, hasPw := u.User.Password()
	return hasPw || u.Query().Has("password")
}

// nodeValue parses the YAML value n of key k.
func nodeValue(k *Key, n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	tag := n.ShortTag()
	switch {
	case tag == "!!null":
		return nil, fmt.Errorf("%w: no value: write %s, or delete the line for the default (%s)", ErrValue, k.kind.want(k.off), formatValue(k.Default))
	case k.kind == kindList && n.Kind == yaml.SequenceNode:
		var items []string
		for _, it := range n.Content {
			if it.Kind != yaml.ScalarNode || it.ShortTag() == "!!null" {
				return nil, fmt.Errorf("%w: item at line %d is not a single value: want %s", ErrValue, it.Line, k.kind.want(k.off))
			}
			items = append(items, strings.TrimSpace(it.Value))
		}
		v, err := parseText(k, strings.Join(items, ","))
		if err != nil {
			return nil, err
		}
		return v, nil
	case n.Kind != yaml.ScalarNode:
		return nil, fmt.Errorf("%w: a YAML %s, want %s", ErrValue, nodeKind(n), k.kind.want(k.off))
	case k.kind == kindInt && tag != "!!int":
		return nil, fmt.Errorf("%w: want %s, without quotes", ErrValue, k.kind.want(k.off))
	case k.kind != kindInt && tag != "!!str":
		hint := ""
		switch {
		case k.kind == kindDuration && tag == "!!int":
			hint = fmt.Sprintf(`: a duration needs a unit, e.g. "%ss"`, n.Value)
		case k.kind == kindAddr && tag == "!!int":
			hint = fmt.Sprintf(`: write ":%s" for every address or "127.0.0.1:%s" for one`, n.Value, n.Value)
		case k.off && tag == "!!bool":
			hint = `: write "off" to turn it off`
		case !k.Secret:
			hint = fmt.Sprintf(`: quote it: %s: "%s"`, k.Name, n.Value)
		default:
			hint = ": quote it"
		}
		return nil, fmt.Errorf("%w: a YAML %s, want %s%s", ErrValue, strings.TrimPrefix(tag, "!!"), k.kind.want(k.off), hint)
	}
	return parseText(k, n.Value)
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

// parseText parses s, from the file, the environment or a flag, as a
// value of k. Errors do not repeat a secret.
func parseText(k *Key, s string) (any, error) {
	var v any
	switch k.kind {
	case kindAddr:
		if s == "off" && !k.off {
			return nil, fmt.Errorf(`%w: %s cannot be "off": want %s`, ErrValue, k.Name, k.kind.want(false))
		}
		if s != "off" {
			if _, _, err := net.SplitHostPort(s); err != nil {
				return nil, fmt.Errorf("%w: %q is not %s", ErrValue, s, k.kind.want(k.off))
			}
		}
		v = s
	case kindDuration:
		d, err := time.ParseDuration(s)
		if err != nil {
			if _, nerr := strconv.Atoi(s); nerr == nil {
				return nil, fmt.Errorf(`%w: %q needs a unit, e.g. "%ss"`, ErrValue, s, s)
			}
			return nil, fmt.Errorf("%w: %q is not %s", ErrValue, s, k.kind.want(false))
		}
		if d < 0 {
			return nil, fmt.Errorf("%w: %q is negative", ErrValue, s)
		}
		v = d
	case kindInt:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: %q is not %s", ErrValue, s, k.kind.want(false))
		}
		v = n
	case kindList:
		l := []string{}
		for it := range strings.SplitSeq(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				l = append(l, it)
			}
		}
		v = l
	default:
		v = s
	}
	if k.check != nil {
		if err := k.check(v); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrValue, err)
		}
	}
	return v, nil
}

// suggest names the next step for an unknown key: the key meant, or where
// the keys are listed.
func suggest(name string, v *yaml.Node) string {
	norm := strings.ToLower(strings.TrimLeft(strings.ReplaceAll(name, "-", "_"), "_"))
	norm = strings.TrimPrefix(norm, "deskside_")
	if k, ok := byName[norm]; ok {
		return fmt.Sprintf("did you mean %s?", k.Name)
	}
	for _, k := range Keys {
		if k.Flag != "" && dash(norm) == k.Flag {
			return fmt.Sprintf("did you mean %s? (the file's key for --%s)", k.Name, k.Flag)
		}
	}
	if v != nil && v.Kind == yaml.MappingNode {
		// web: {listen: …} for web_listen
		for i := 0; i < len(v.Content); i += 2 {
			if k, ok := byName[norm+"_"+v.Content[i].Value]; ok {
				return fmt.Sprintf("keys are not nested: write %s: … at the top level", k.Name)
			}
		}
	}
	best, bestD := "", 3
	for _, k := range Keys {
		if d := distance(norm, k.Name); d < bestD {
			best, bestD = k.Name, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %s?", best)
	}
	return "`deskside-relay config example` lists every key"
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func upper(s string) string { return strings.ToUpper(s) }

func dash(s string) string { return strings.ReplaceAll(s, "_", "-") }
