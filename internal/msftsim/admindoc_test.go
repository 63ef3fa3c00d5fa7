package msftsim_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// TestAdminDocWalkthrough runs the curl walkthrough of docs/msftsim.md
// ("Admin API with curl") against a running simulator: each curl line is
// turned into the HTTP request it sends (method, URL, body, headers) and
// must succeed (2xx, or 302 for the admin-consent link); VAR=$(curl … | jq
// -r .field) and VAR=$(echo "$X" | jq -r .field) capture values as in a
// shell. Every admin route must be met by the walkthrough or the field
// reference.
func TestAdminDocWalkthrough(t *testing.T) {
	doc, err := os.ReadFile("../../docs/msftsim.md")
	if err != nil {
		t.Fatal(err)
	}
	block := walkthroughBlock(t, string(doc))
	sim, err := msftsim.Start(t.Context(), msftsim.Options{Seed: 7, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	track(sim)
	t.Cleanup(func() { _ = sim.Close() })
	vars := map[string]string{"S": strings.TrimSuffix(sim.Endpoints().Authority, "/"), "CA": "(test CA)"}
	hc := *sim.HTTPClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	run := 0
	for _, ll := range logicalLines(block) {
		line := ll.text
		name, cmd, capture := splitAssign(line)
		if cmd == "" {
			if name != "" && name != "S" && name != "CA" {
				vars[name] = expandWord(capture, vars)
			}
			continue
		}
		var out string
		switch {
		case strings.HasPrefix(cmd, "curl "):
			curlPart, jq, _ := strings.Cut(cmd, "|")
			body := doCurl(t, &hc, tokenize(curlPart, vars), line, ll.want)
			out = body
			if jq != "" {
				out = jqField(t, body, jq, line)
			}
			run++
		case strings.HasPrefix(cmd, "echo "):
			src, jq, _ := strings.Cut(cmd, "|")
			words := tokenize(src, vars)
			out = jqField(t, strings.Join(words[1:], " "), jq, line)
		default:
			t.Fatalf("walkthrough line not understood: %s", line)
		}
		if name != "" {
			if out == "" || out == "null" {
				t.Fatalf("%s: captured nothing for %s", line, name)
			}
			vars[name] = out
		}
	}
	if run < 30 {
		t.Fatalf("walkthrough ran %d curl commands; expected the whole block", run)
	}
	t.Logf("ran %d documented curl commands; %d admin operations answered", run, len(adminSeen))
	if vars["EARLY"] != "1" {
		t.Errorf("the tenant's counters show %q early retries after the documented retry within Retry-After, want 1", vars["EARLY"])
	}
	// Every admin route is exercised by the walkthrough.
	for _, r := range adminRoutes {
		if !adminSeen["admin."+r] {
			t.Errorf("admin route %s is not in the documented walkthrough", r)
		}
	}
}

// adminSeen records the admin operations that answered (X-Msftsim-Route).
var adminSeen = map[string]bool{}

// adminRoutes are the admin API's routes (adminhttp.go) the walkthrough
// must show.
var adminRoutes = []string{"endpoints", "seeded", "tenants.list", "tenants.create", "tenants.get", "apps.create",
	"provisioners.create", "consents.create", "workspaces.create", "azureRoles.create", "azureRoles.delete", "licences.set",
	"policy.set", "appPolicies.add", "appPolicies.assign", "apps.enabled", "apps.servicePrincipal.delete", "apps.delete",
	"apps.redirectUris", "apps.passwords.add", "apps.passwords.remove", "groups.create", "users.create",
	"conditionalAccess.set", "tenants.removed", "adminConsent.set", "deletedItems.list", "softDelete.set",
	"faults.get", "faults.set", "tenantFaults.get", "tenantFaults.set", "tenantFaults.patch", "tenantFaults.delete",
	"clock.get", "clock.advance", "clock.set", "counters", "tenantCounters", "requests", "earlyRetries", "counters.reset"}

// walkthroughBlock returns the sh block after the walkthrough marker.
func walkthroughBlock(t *testing.T, doc string) string {
	t.Helper()
	const marker = "<!-- admin-walkthrough -->"
	i := strings.Index(doc, marker)
	if i < 0 {
		t.Fatalf("docs/msftsim.md has no %s", marker)
	}
	rest := doc[i:]
	start := strings.Index(rest, "```sh\n")
	end := strings.Index(rest[start+6:], "\n```")
	if start < 0 || end < 0 {
		t.Fatal("walkthrough block not found")
	}
	return rest[start+6 : start+6+end]
}

type docLine struct {
	text string
	want int // status a "# -> NNN" comment asks for (0: any success)
}

var wantRe = regexp.MustCompile(`#.*-> (\d{3})\b`)

// logicalLines joins backslash continuations and drops comments and blanks.
func logicalLines(block string) []docLine {
	var out []docLine
	cur := ""
	for _, l := range strings.Split(block, "\n") {
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		full := cur + l
		cur = ""
		text := strings.TrimSpace(stripComment(full))
		if text == "" {
			continue
		}
		dl := docLine{text: text}
		if m := wantRe.FindStringSubmatch(full[len(stripComment(full)):]); m != nil {
			dl.want, _ = strconv.Atoi(m[1])
		}
		out = append(out, dl)
	}
	return out
}

// stripComment drops a " # ..." comment outside quotes.
func stripComment(l string) string {
	var q rune
	for i, r := range l {
		switch {
		case q != 0:
			if r == q {
				q = 0
			}
		case r == '\'' || r == '"':
			q = r
		case r == '#' && (i == 0 || l[i-1] == ' '):
			return l[:i]
		}
	}
	return l
}

// splitAssign splits "NAME=$(cmd)" (cmd returned) or "NAME=value"
// (capture returned) or a bare command. "A=1; B=2" keeps only simple
// assignments (the walkthrough's first line).
func splitAssign(line string) (name, cmd, value string) {
	eq := strings.IndexByte(line, '=')
	if eq <= 0 || strings.ContainsAny(line[:eq], " '\"$") {
		return "", line, ""
	}
	name, rest := line[:eq], line[eq+1:]
	if strings.HasPrefix(rest, "$(") && strings.HasSuffix(rest, ")") {
		return name, strings.TrimSpace(rest[2 : len(rest)-1]), ""
	}
	if i := strings.Index(rest, "; "); i >= 0 {
		rest = rest[:i] // "S=…; CA=…": the test sets both itself
	}
	return name, "", rest
}

// tokenize splits a shell command into words: single quotes literal,
// double quotes and bare words with $VAR expansion and \ escapes.
func tokenize(s string, vars map[string]string) []string {
	var words []string
	var w strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			in = true
		case '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
			}
			w.WriteString(expandWord(s[i+1:j], vars))
			i = j
			in = true
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '\'' && s[j] != '"' {
				j++
			}
			w.WriteString(expandWord(s[i:j], vars))
			i = j - 1
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

// expandWord expands $VAR and ${VAR} and drops \ before $ and ".
func expandWord(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			j := strings.IndexByte(s[i:], '}')
			b.WriteString(vars[s[i+2:i+j]])
			i += j
		case s[i] == '$':
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			if j == i+1 {
				b.WriteByte('$')
				continue
			}
			b.WriteString(vars[s[i+1:j]])
			i = j - 1
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// doCurl sends what curl would and returns the body.
func doCurl(t *testing.T, hc *http.Client, words []string, line string, want int) string {
	t.Helper()
	method := ""
	var urls, data []string
	form := url.Values{}
	hdr := http.Header{}
	for i := 1; i < len(words); i++ {
		switch w := words[i]; w {
		case "--cacert", "-o", "-w":
			i++
		case "-s", "-i", "-sS":
		case "-X":
			method = words[i+1]
			i++
		case "-H":
			k, v, _ := strings.Cut(words[i+1], ":")
			hdr.Set(strings.TrimSpace(k), strings.TrimSpace(v))
			i++
		case "-d", "--data":
			data = append(data, words[i+1])
			i++
		case "--data-urlencode":
			k, v, _ := strings.Cut(words[i+1], "=")
			form.Add(k, v)
			i++
		default:
			if strings.HasPrefix(w, "-") {
				t.Fatalf("%s: curl option %s not understood", line, w)
			}
			urls = append(urls, w)
		}
	}
	var body string
	ctype := "application/json"
	if len(form) > 0 || len(data) > 1 || (len(data) == 1 && !strings.HasPrefix(strings.TrimSpace(data[0]), "{")) {
		for _, d := range data {
			k, v, _ := strings.Cut(d, "=")
			form.Add(k, v)
		}
		body, ctype = form.Encode(), "application/x-www-form-urlencoded"
	} else if len(data) == 1 {
		body = data[0]
	}
	if method == "" {
		method = "GET"
		if body != "" {
			method = "POST"
		}
	}
	var last string
	for _, u := range urls {
		req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		req.Header = hdr.Clone()
		if body != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if r := resp.Header.Get("X-Msftsim-Route"); r != "" {
			adminSeen[r] = true
		}
		if want != 0 && resp.StatusCode != want {
			t.Fatalf("%s\n-> %s %s: %d, the doc says %d: %s", line, method, u, resp.StatusCode, want, b)
		}
		if want == 0 && resp.StatusCode >= 300 {
			t.Fatalf("%s\n-> %s %s: %d %s", line, method, u, resp.StatusCode, b)
		}
		last = string(b)
	}
	return last
}

// jqField applies "jq -r .a.b" to a JSON document.
func jqField(t *testing.T, doc, jq, line string) string {
	t.Helper()
	f := strings.Fields(jq)
	if len(f) != 3 || f[0] != "jq" || f[1] != "-r" || !strings.HasPrefix(f[2], ".") {
		t.Fatalf("%s: only `jq -r .field` is understood", line)
	}
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("%s: not JSON: %q", line, doc)
	}
	for _, k := range strings.Split(strings.TrimPrefix(f[2], "."), ".") {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}
