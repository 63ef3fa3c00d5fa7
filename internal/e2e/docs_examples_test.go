package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/cli"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// The documented examples run (issue 10 item 9e): a fenced block in docs/
// preceded by a marker comment is executed against a running stack and
// msftsim, and what the program prints must have the shape the doc shows,
// so the docs cannot drift from the program again.
//
//	<!-- runnable -->          run in document order
//	<!-- runnable: settled --> run once the settle window of the example
//	                           integrations has ended
//
// A console block holds commands after "$ " and, below each, the output
// expected: dzctl (run in-process, as the e2e dzctl tests do: the same
// code as the binary), curl (sent with net/http: method, headers, JSON
// body, URL) and "echo $?" (the previous command's exit code). $NAME and
// "$NAME" are the example's variables (docExampleVars). Before comparing,
// both sides are normalized: UUIDs, RFC 3339 times, clock times ("14:05:09
// UTC"), durations ("12ms", "7s", "4m2s") become placeholders and runs of
// spaces one space; in the doc, "…" within a line matches any text, and a
// line holding only "…" matches any number of lines. A curl command's
// expected output is JSON: the response must have exactly the doc's keys,
// recursively (values are not compared).

const docSettleWindow = 8 * time.Second

type docBlock struct {
	file    string
	line    int
	settled bool
	text    string
}

var (
	runnableMarker = regexp.MustCompile(`^<!-- runnable(: *(settled))? -->$`)
	uuidRE         = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	rfc3339RE      = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	clockRE        = regexp.MustCompile(`\b\d\d:\d\d:\d\d UTC\b`)
	shellVarRE     = regexp.MustCompile(`^\$\{?([A-Za-z_][A-Za-z0-9_]*|\?)\}?`)
	durationRE     = regexp.MustCompile(`\b(\d+h)?(\d+m)?\d+(\.\d+)?(ms|s)\b`)
)

// docBlocks reads the runnable blocks of docs/*.md.
func docBlocks(t *testing.T) []docBlock {
	t.Helper()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("docs: %v %v", files, err)
	}
	var out []docBlock
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i < len(lines); i++ {
			m := runnableMarker.FindStringSubmatch(strings.TrimSpace(lines[i]))
			if m == nil {
				continue
			}
			if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
				t.Fatalf("%s:%d: a runnable marker must be followed by a fenced block", f, i+1)
			}
			j := i + 2
			for j < len(lines) && !strings.HasPrefix(lines[j], "```") {
				j++
			}
			out = append(out, docBlock{file: filepath.Base(f), line: i + 1, settled: m[2] == "settled", text: strings.Join(lines[i+2:j], "\n")})
			i = j
		}
	}
	return out
}

// docCommand is one "$ " command of a block and the output shown below it.
type docCommand struct {
	cmd  string
	want []string
}

func parseDocBlock(text string) []docCommand {
	var out []docCommand
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "$ "):
			out = append(out, docCommand{cmd: strings.TrimPrefix(l, "$ ")})
		case len(out) > 0 && strings.HasSuffix(out[len(out)-1].cmd, `\`) && len(out[len(out)-1].want) == 0:
			c := &out[len(out)-1]
			c.cmd = strings.TrimSuffix(c.cmd, `\`) + " " + strings.TrimSpace(l)
		case len(out) > 0:
			out[len(out)-1].want = append(out[len(out)-1].want, l)
		}
	}
	for k := range out {
		for len(out[k].want) > 0 && strings.TrimSpace(out[k].want[len(out[k].want)-1]) == "" {
			out[k].want = out[k].want[:len(out[k].want)-1]
		}
	}
	return out
}

// shellWords splits a command line as a POSIX shell would for the simple
// commands the docs show: words, 'single' and "double" quotes, $VARS.
func shellWords(line string, vars map[string]string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch { //nolint:staticcheck // the cases test more than c alone
		case c == ' ' || c == '\t':
			if in {
				words, in = append(words, cur.String()), false
				cur.Reset()
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", line)
			}
			cur.WriteString(line[i+1 : i+1+j])
			i, in = i+1+j, true
		case c == '"': // $VARS expand; \" \\ \$ escape
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				switch {
				case line[i] == '\\' && i+1 < len(line) && strings.IndexByte(`"\$`, line[i+1]) >= 0:
					i++
					cur.WriteByte(line[i])
				case line[i] == '$':
					m := shellVarRE.FindStringSubmatch(line[i:])
					if m == nil {
						cur.WriteByte('$')
						continue
					}
					cur.WriteString(vars[m[1]])
					i += len(m[0]) - 1
				default:
					cur.WriteByte(line[i])
				}
			}
			if i >= len(line) {
				return nil, fmt.Errorf("unterminated \" in %q", line)
			}
			in = true
		case c == '$':
			m := shellVarRE.FindStringSubmatch(line[i:])
			if m == nil {
				cur.WriteByte(c)
			} else {
				cur.WriteString(vars[m[1]])
				i += len(m[0]) - 1
			}
			in = true
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// normalizeDocLine turns run-dependent text into placeholders.
func normalizeDocLine(s string) string {
	s = uuidRE.ReplaceAllString(s, "<uuid>")
	s = rfc3339RE.ReplaceAllString(s, "<time>")
	s = clockRE.ReplaceAllString(s, "<clock>")
	s = durationRE.ReplaceAllString(s, "<dur>")
	return strings.Join(strings.Fields(s), " ")
}

// lineMatches compares a normalized output line with a normalized doc
// line in which "…" matches any text.
func lineMatches(doc, got string) bool {
	if !strings.Contains(doc, "…") {
		return doc == got
	}
	parts := strings.Split(doc, "…")
	for k := range parts {
		parts[k] = regexp.QuoteMeta(parts[k])
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(got)
}

// linesMatch matches output lines against the doc's, "…" lines matching
// any number of lines.
func linesMatch(doc, got []string) bool {
	if len(doc) == 0 {
		return len(got) == 0
	}
	if doc[0] == "…" {
		for k := 0; k <= len(got); k++ {
			if linesMatch(doc[1:], got[k:]) {
				return true
			}
		}
		return false
	}
	return len(got) > 0 && lineMatches(doc[0], got[0]) && linesMatch(doc[1:], got[1:])
}

func normalizedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if n := normalizeDocLine(l); n != "" || len(out) > 0 {
			out = append(out, n)
		}
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// jsonShape lists a JSON value's key paths, sorted.
func jsonShape(t *testing.T, data []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, data)
	}
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				out = append(out, prefix+k)
				walk(prefix+k+".", e)
			}
		case []any:
			for _, e := range x {
				walk(prefix+"[].", e)
			}
		}
	}
	walk("", v)
	sort.Strings(out)
	return slices.Compact(out)
}

// docExamples is the world the documented examples run in.
type docExamples struct {
	f        verifyFixture
	vars     map[string]string
	settled  time.Time // the example integrations' settle windows have ended
	lastCode int
}

func TestDocumentedExamplesRun(t *testing.T) {
	t.Parallel()
	blocks := docBlocks(t)
	if len(blocks) < 5 {
		t.Fatalf("%d runnable blocks in docs/, want the check, --wait, checks, webhook and REST examples", len(blocks))
	}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	f := newVerifyFixture(t, msftsim.TenantSpec{}, "--settle-window", docSettleWindow.String(), "--jobs=true",
		"--sweep-interval", "1h", "--webhook-allow-private-networks")
	e := &docExamples{f: f, vars: map[string]string{"ORG": f.org.Name, "TENANT": f.tenant, "DZCONNECT_HTTP": f.s.HTTPURL,
		"DZCONNECT_API_KEY": f.org.Admin}}

	// The webhook receives everything below.
	hook, _ := newWebhook(t, f.s, f.org.AdminCtx, f.org.Name, rcv.URL+"/dzconnect")
	e.vars["WEBHOOK"] = hook.GetName()

	// INTEGRATION lacks AuditLog.Read.All (required by the catalog) and
	// holds Directory.Read.All;
	// NEW_INTEGRATION was just created with a wrong secret.
	roles := append([]string{"Directory.Read.All"}, slices.DeleteFunc(slices.Clone(defenderRoles), func(r string) bool { return r == "AuditLog.Read.All" })...)
	in, _ := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: roles}, nil)
	e.vars["INTEGRATION"] = in.GetName()
	e.settled = in.GetCreateTime().AsTime().Add(docSettleWindow + time.Second)
	creds, err := f.sim.Admin().CreateApp(f.simTID, msftsim.AppRequest{DisplayName: "Dropzone AI (new)", Roles: defenderRoles})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.s.Clients().Integrations.CreateIntegration(f.org.OperatorCtx, &v1.CreateIntegrationRequest{Parent: f.tenant,
		Integration:  &v1.Integration{Kind: defenderKind, Application: &v1.EntraApplication{ClientId: creds.ClientID}},
		ClientSecret: "not~the.right_secret_value_0123456789abc"})
	if err != nil {
		t.Fatal(err)
	}
	e.vars["NEW_INTEGRATION"] = resp.GetIntegration().GetName()
	if end := resp.GetIntegration().GetCreateTime().AsTime().Add(docSettleWindow + time.Second); end.After(e.settled) {
		e.settled = end
	}

	// A consent as the REST example completes it: another organization
	// with a provisioner, a customer tenant, a link followed in msftsim.
	cf := consentFixture{s: f.s, sim: f.sim}
	corg, _ := cf.newProvisionedOrg(t, "Docs provisioned")
	ctenant, _ := cf.newCustomer(t, corg)
	back := cf.follow(t, cf.link(t, corg.OperatorCtx, ctenant).GetUrl())
	for k, v := range map[string]string{"CONSENT_ORG": corg.Name, "CONSENT_KEY": corg.Operator, "STATE": back.Get("state"),
		"ENTRA_TENANT_ID": back.Get("tenant"), "SCOPE": back.Get("scope"), "REDIRECT_URI": consentRedirect} {
		e.vars[k] = v
	}

	for _, settled := range []bool{false, true} {
		if settled {
			time.Sleep(time.Until(e.settled)) // wall-clock: the settle window itself
			e.waitDelivered(t)
			e.vars["DELIVERY"] = e.firstDelivery(t)
		}
		for _, b := range blocks {
			if b.settled == settled {
				if settled {
					e.waitDelivered(t) // the log the block may show is settled too
				}
				e.run(t, b)
			}
		}
	}
}

// waitDelivered waits until no delivery of the webhook is pending (the
// server sends them to the test's receiver).
func (e *docExamples) waitDelivered(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pending int
		if err := e.f.s.DB.QueryRow(context.Background(), `select count(*) from webhook_deliveries where status = 'pending'`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries still pending after 30s", pending)
		}
		time.Sleep(50 * time.Millisecond) // polling the delivery log
	}
}

func (e *docExamples) firstDelivery(t *testing.T) string {
	t.Helper()
	ds, err := v1.NewWebhookServiceClient(e.f.s.Conn).ListWebhookDeliveries(e.f.org.AdminCtx, &v1.ListWebhookDeliveriesRequest{Parent: e.vars["WEBHOOK"]})
	if err != nil || len(ds.GetDeliveries()) == 0 {
		t.Fatalf("deliveries: %v %v", ds, err)
	}
	return ds.GetDeliveries()[len(ds.GetDeliveries())-1].GetName()
}

func (e *docExamples) run(t *testing.T, b docBlock) {
	t.Helper()
	cmds := parseDocBlock(b.text)
	if len(cmds) == 0 {
		t.Fatalf("%s:%d: a runnable block without a \"$ \" command", b.file, b.line)
	}
	for _, c := range cmds {
		where := fmt.Sprintf("%s:%d: $ %s", b.file, b.line, c.cmd)
		words, err := shellWords(c.cmd, e.vars)
		if err != nil || len(words) == 0 {
			t.Fatalf("%s: %v", where, err)
		}
		switch words[0] {
		case "echo":
			if len(words) != 2 || c.cmd != "echo $?" || len(c.want) != 1 {
				t.Fatalf("%s: only 'echo $?' with one line of output is runnable", where)
			}
			if got := strconv.Itoa(e.lastCode); got != strings.TrimSpace(c.want[0]) {
				t.Fatalf("%s: exit code %s, the doc shows %s", where, got, c.want[0])
			}
		case "dzctl":
			out, errOut, code := e.dzctl(words[1:])
			e.lastCode = code
			if os.Getenv("DZCONNECT_DOCS_SHOW") != "" { // to write a doc: what the program prints
				t.Logf("%s (exit %d):\n%s", where, code, out)
			}
			want, got := normalizedLines(strings.Join(c.want, "\n")), normalizedLines(out)
			if !linesMatch(want, got) {
				t.Fatalf("%s: the output differs from the doc (normalized).\ndoc:\n%s\nprogram (exit %d):\n%s\nstderr:\n%s\nraw:\n%s",
					where, strings.Join(want, "\n"), code, strings.Join(got, "\n"), errOut, out)
			}
		case "curl":
			e.curl(t, where, words[1:], c.want)
		default:
			t.Fatalf("%s: %s is not runnable here", where, words[0])
		}
	}
}

func (e *docExamples) dzctl(args []string) (string, string, int) {
	var out, errOut bytes.Buffer
	env := map[string]string{"DZCONNECT_ADDR": e.f.s.GRPCAddr, "DZCONNECT_API_KEY": e.vars["DZCONNECT_API_KEY"]}
	app := cli.New(strings.NewReader(""), &out, &errOut, cli.WithGetenv(func(k string) string { return env[k] }))
	code := app.Execute(context.Background(), args)
	return out.String(), errOut.String(), code
}

// curl sends what a documented curl command sends and compares the JSON
// answer's shape with the doc's.
func (e *docExamples) curl(t *testing.T, where string, args []string, want []string) {
	t.Helper()
	method, body, target := http.MethodGet, "", ""
	header := http.Header{}
	for k := 0; k < len(args); k++ {
		switch a := args[k]; a {
		case "-s", "-S", "-sS", "--fail-with-body":
		case "-X":
			k++
			method = args[k]
		case "-H":
			k++
			name, value, _ := strings.Cut(args[k], ":")
			header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		case "-d", "--data":
			k++
			body = args[k]
			if method == http.MethodGet {
				method = http.MethodPost
			}
		default:
			if strings.HasPrefix(a, "-") {
				t.Fatalf("%s: curl option %s is not runnable here", where, a)
			}
			target = a
		}
	}
	req, err := http.NewRequestWithContext(context.Background(), method, target, strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", where, resp.StatusCode, got)
	}
	wantShape, gotShape := jsonShape(t, []byte(strings.Join(want, "\n"))), jsonShape(t, got)
	if !slices.Equal(wantShape, gotShape) {
		t.Fatalf("%s: the answer's fields differ from the doc's.\ndoc:     %v\nprogram: %v\n%s", where, wantShape, gotShape, got)
	}
}

// TestDocExampleMatching: the comparison rules themselves.
func TestDocExampleMatching(t *testing.T) {
	t.Parallel()
	doc := normalizedLines("BROKEN: Sign-in failed: … (AADSTS7000215) — …\n  organizations/01937c1e-2b1a-7c3d-9e4f-5a6b7c8d9e0f, checked 2026-11-30T14:00:00Z (api)\n…\n  ✓ secret   4ms")
	got := normalizedLines("BROKEN: Sign-in failed: Invalid client secret provided (AADSTS7000215) — paste the Value\n" +
		"  organizations/0193aaaa-2b1a-7c3d-9e4f-5a6b7c8d9e0f, checked 2026-12-01T01:02:03Z (api)\nextra\nlines\n  ✓ secret 12ms")
	if !linesMatch(doc, got) {
		t.Fatalf("no match:\n%v\n%v", doc, got)
	}
	if linesMatch(doc, got[:len(got)-1]) || linesMatch(normalizedLines("  ✓ secret 4ms"), normalizedLines("  ✓ token:graph 4ms")) {
		t.Fatal("a missing or renamed step matched")
	}
	words, err := shellWords(`dzctl check "$INTEGRATION" --x 'a b' $ORG -d "{\"s\": \"$ORG\"}"`, map[string]string{"INTEGRATION": "i 1", "ORG": "o"})
	if err != nil || !slices.Equal(words, []string{"dzctl", "check", "i 1", "--x", "a b", "o", "-d", `{"s": "o"}`}) {
		t.Fatalf("shellWords = %q, %v", words, err)
	}
}
