package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

// orgName accepts organizations/ORG or a bare ORG.
func orgName(flag, s string) (string, error) {
	if s != "" && !strings.Contains(s, "/") {
		s = "organizations/" + s
	}
	return resourceName(flag, s, "organizations")
}

// resourceName checks that s is collections[0]/ID/collections[1]/ID/...
func resourceName(flag, s string, collections ...string) (string, error) {
	parts := strings.Split(s, "/")
	ok := len(parts) == 2*len(collections)
	for i := 0; ok && i < len(collections); i++ {
		ok = parts[2*i] == collections[i] && parts[2*i+1] != ""
	}
	if !ok {
		pattern := make([]string, 0, len(collections))
		for _, c := range collections {
			pattern = append(pattern, c+"/"+idPlaceholder[c])
		}
		return "", usageErrorf("invalid %s %q: want %s", flag, s, strings.Join(pattern, "/"))
	}
	return s, nil
}

var idPlaceholder = map[string]string{
	"organizations": "ORG",
	"apiKeys":       "KEY",
	"tenants":       "TENANT",
	"integrations":  "INTEGRATION",
}

func tenantName(flag, s string) (string, error) {
	return resourceName(flag, s, "organizations", "tenants")
}

func apiKeyName(flag, s string) (string, error) {
	return resourceName(flag, s, "organizations", "apiKeys")
}

func integrationName(flag, s string) (string, error) {
	return resourceName(flag, s, "organizations", "tenants", "integrations")
}

// parseEnum reads an enum value from its short form (microsoft-sentinel,
// microsoft_sentinel), its full name (INTEGRATION_KIND_MICROSOFT_SENTINEL)
// or an alias (sentinel). The zero value is refused.
func parseEnum(flag string, d protoreflect.EnumDescriptor, s string, aliases map[string]string) (protoreflect.EnumNumber, error) {
	in := strings.ToLower(strings.TrimSpace(s))
	if a, ok := aliases[in]; ok {
		in = a
	}
	key := strings.ToUpper(strings.ReplaceAll(in, "-", "_"))
	prefix := enumPrefix(d)
	for _, name := range []string{prefix + key, key} {
		if v := d.Values().ByName(protoreflect.Name(name)); v != nil && v.Number() != 0 {
			return v.Number(), nil
		}
	}
	return 0, usageErrorf("invalid %s %q: want one of %s", flag, s, strings.Join(enumChoices(d, aliases), ", "))
}

func enumChoices(d protoreflect.EnumDescriptor, aliases map[string]string) []string {
	var out []string
	for a := range aliases {
		out = append(out, a)
	}
	sort.Strings(out)
	prefix := enumPrefix(d)
	for i := 0; i < d.Values().Len(); i++ {
		v := d.Values().Get(i)
		if v.Number() == 0 {
			continue
		}
		out = append(out, strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(string(v.Name()), prefix)), "_", "-"))
	}
	return out
}

var kindAliases = map[string]string{"defender": "microsoft-365-defender", "sentinel": "microsoft-sentinel"}

var cloudAliases = map[string]string{"gcc": "us-gov-gcc", "gcc-high": "us-gov-gcc-high", "dod": "us-gov-dod"}

func parseKind(flag, s string) (dzconnectv1.IntegrationKind, error) {
	n, err := parseEnum(flag, dzconnectv1.IntegrationKind(0).Descriptor(), s, kindAliases)
	return dzconnectv1.IntegrationKind(n), err
}

func parseCloud(flag, s string) (dzconnectv1.Cloud, error) {
	n, err := parseEnum(flag, dzconnectv1.Cloud(0).Descriptor(), s, cloudAliases)
	return dzconnectv1.Cloud(n), err
}

func parseRole(flag, s string) (dzconnectv1.Role, error) {
	n, err := parseEnum(flag, dzconnectv1.Role(0).Descriptor(), s, nil)
	return dzconnectv1.Role(n), err
}

func parseState(flag, s string) (dzconnectv1.IntegrationState, error) {
	n, err := parseEnum(flag, dzconnectv1.IntegrationState(0).Descriptor(), s, nil)
	return dzconnectv1.IntegrationState(n), err
}

// parseFeatures reads a list of features (cloud_apps, live_response,
// exchange); an empty list is valid.
func parseFeatures(flag string, in []string) ([]dzconnectv1.Feature, error) {
	out := make([]dzconnectv1.Feature, 0, len(in))
	for _, s := range in {
		if strings.TrimSpace(s) == "" {
			continue
		}
		n, err := parseEnum(flag, dzconnectv1.Feature(0).Descriptor(), s, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, dzconnectv1.Feature(n))
	}
	return out, nil
}

// featuresString prints features as in the design: cloud_apps,exchange.
func featuresString(fs []dzconnectv1.Feature) string {
	parts := make([]string, 0, len(fs))
	for _, f := range fs {
		parts = append(parts, enumString(f, "_"))
	}
	return strings.Join(parts, ",")
}

// parseLabels reads repeated k=v flags.
func parseLabels(flag string, in []string) (map[string]string, error) {
	out := make(map[string]string, len(in))
	for _, kv := range in {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErrorf("invalid %s %q: want KEY=VALUE", flag, kv)
		}
		if _, dup := out[k]; dup {
			return nil, usageErrorf("invalid %s: key %q given twice", flag, k)
		}
		out[k] = v
	}
	return out, nil
}

// parseTime reads an RFC 3339 time.
func parseTime(flag, s string) (*timestamppb.Timestamp, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, usageErrorf("invalid %s %q: want an RFC 3339 time such as 2027-06-30T00:00:00Z", flag, s)
	}
	return timestamppb.New(t), nil
}

// parseTimeOrDuration reads an RFC 3339 time, or a duration from now: a Go
// duration (720h, 90m) or a whole number of days (30d). A negative duration
// is in the past.
func parseTimeOrDuration(flag, s string, now time.Time) (*timestamppb.Timestamp, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return timestamppb.New(t), nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= -36500 && n <= 36500 {
			return timestamppb.New(now.Add(time.Duration(n) * 24 * time.Hour)), nil
		}
	} else if d, err := time.ParseDuration(s); err == nil {
		return timestamppb.New(now.Add(d)), nil
	}
	return nil, usageErrorf("invalid %s %q: want an RFC 3339 time such as 2027-06-30T00:00:00Z, or a duration from now such as 720h or 30d", flag, s)
}

// parseDuration reads a Go duration (36h, 90m) or a whole number of days
// (30d).
func parseDuration(flag, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n <= 36500 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	return 0, usageErrorf("invalid %s %q: want a duration such as 30d, 36h or 90m", flag, s)
}

// maxSecretBytes bounds what is read as a client secret.
const maxSecretBytes = 64 << 10

// readSecret reads a client secret from path, or from stdin when path is
// "-". Surrounding whitespace (the trailing newline) is dropped. The value is
// never echoed or included in an error.
func (inv *invocation) readSecret(flag, path string) (string, error) {
	var r io.Reader
	switch path {
	case "":
		return "", usageErrorf("%s needs a file name, or - for standard input", flag)
	case "-":
		r = inv.app.stdin
		if isTerminal(r) {
			fmt.Fprintln(inv.app.stderr, "Reading the client secret from the terminal (it is echoed); end with Enter.")
			line, err := bufio.NewReader(r).ReadString('\n')
			if err != nil && err != io.EOF {
				return "", fmt.Errorf("reading client secret from standard input: %w", err)
			}
			r = strings.NewReader(line)
		}
	default:
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("reading client secret: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("reading client secret from %s: %w", displayPath(path), err)
	}
	if len(b) > maxSecretBytes {
		return "", fmt.Errorf("reading client secret from %s: more than %d bytes", displayPath(path), maxSecretBytes)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("reading client secret from %s: it is empty", displayPath(path))
	}
	return secret, nil
}

func displayPath(path string) string {
	if path == "-" {
		return "standard input"
	}
	return path
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// pageFlags are the flags of every list command.
type pageFlags struct {
	pageSize int32
	limit    int
}

func (p *pageFlags) add(cmd *cobra.Command) {
	cmd.Flags().Int32Var(&p.pageSize, "page-size", 0, "items per request, 1 to 1000 (default: the server's)")
	cmd.Flags().IntVar(&p.limit, "limit", 0, "stop after this many items (default: all)")
}

func (p *pageFlags) check() error {
	if p.pageSize < 0 || p.pageSize > 1000 {
		return usageErrorf("invalid --page-size %d: want 1 to 1000", p.pageSize)
	}
	if p.limit < 0 {
		return usageErrorf("invalid --limit %d: must not be negative", p.limit)
	}
	return nil
}

// maxPages guards against a server that never ends a listing.
const maxPages = 100000

// collect follows next_page_token until the last page or --limit, calling
// fetch with the page size and token of each request.
func collect[T any](ctx context.Context, p pageFlags, fetch func(ctx context.Context, pageSize int32, token string) ([]T, string, error)) ([]T, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	var all []T
	token := ""
	seen := map[string]bool{}
	for range maxPages {
		size := p.pageSize
		if p.limit > 0 {
			if rest := p.limit - len(all); size == 0 || int(size) > rest {
				size = int32(min(rest, 1000))
			}
		}
		items, next, err := fetch(ctx, size, token)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if p.limit > 0 && len(all) >= p.limit {
			return all[:p.limit], nil
		}
		if next == "" {
			return all, nil
		}
		if seen[next] {
			return nil, fmt.Errorf("server returned page token %q twice; stopping", next)
		}
		seen[next] = true
		token = next
	}
	return nil, fmt.Errorf("listing stopped after %d pages", maxPages)
}
