package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Output formats of --output.
const (
	outputTable = "table" // aligned columns or "key: value" lines, for people
	outputJSON  = "json"  // protojson, indented, stable bytes
	outputYAML  = "yaml"  // the JSON document as YAML
	outputName  = "name"  // resource names only, one per line
)

// outputFormats lists the --output values, for help, errors and completion.
var outputFormats = []string{outputTable, outputJSON, outputYAML, outputName}

// printer writes results in the --output format, or the --field values.
type printer struct {
	out  io.Writer
	errw io.Writer
	// json is true for every machine-readable output (json, yaml, name, or
	// --field): commands then print the message through protoJSON instead
	// of their table, and progress goes to standard error.
	json   bool
	format string
	field  string // --field path, "" for none
}

func (inv *invocation) printer() *printer {
	return &printer{
		out: inv.app.stdout, errw: inv.app.stderr,
		json:   inv.output != outputTable || inv.field != "",
		format: inv.output, field: inv.field,
	}
}

// field is one "key: value" line of a single resource in table output.
type field struct{ key, value string }

// protoJSON writes m in the machine-readable format: --field values,
// names, YAML, or protojson (proto field names in lowerCamelCase,
// unpopulated fields omitted) re-indented so the bytes are stable:
// protojson itself randomizes whitespace on purpose.
func (p *printer) protoJSON(m proto.Message) error { return p.structured(m, false) }

// structured writes m as protoJSON does; list is true when m is a list
// response holding every page, so -o name prints its items' names.
func (p *printer) structured(m proto.Message, list bool) error {
	switch {
	case p.field != "":
		return p.fieldValues(m)
	case p.format == outputName:
		return p.names(m, list)
	}
	raw, err := protojson.MarshalOptions{EmitUnpopulated: false}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	if p.format == outputYAML {
		return p.yaml(raw)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err = p.out.Write(buf.Bytes())
	return err
}

// yaml re-encodes a JSON document as YAML, keeping its key order.
func (p *printer) yaml(raw []byte) error {
	var n yaml.Node
	if err := yaml.Unmarshal(raw, &n); err != nil { // JSON is YAML
		return fmt.Errorf("encoding YAML: %w", err)
	}
	clearStyle(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return fmt.Errorf("encoding YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encoding YAML: %w", err)
	}
	_, err := p.out.Write(buf.Bytes())
	return err
}

// clearStyle drops the flow style and quotes that parsing JSON leaves on
// every node, so the YAML is in block style and quotes only what needs it.
func clearStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		clearStyle(c)
	}
}

// names prints resource names, one per line: for a list, the name of each
// item; for one resource, its name, or the name of the resource a response
// wraps (CreateApiKeyResponse.api_key).
func (p *printer) names(m proto.Message, list bool) error {
	var names []string
	r := m.ProtoReflect()
	if !list {
		if n := nameOf(r); n != "" {
			names = []string{n}
		}
	}
	if names == nil {
		names = nestedNames(r, list)
	}
	if len(names) == 0 && !list {
		return fmt.Errorf("-o name: the result (%s) has no resource name; use -o json", r.Descriptor().FullName())
	}
	for _, n := range names {
		if _, err := fmt.Fprintln(p.out, n); err != nil {
			return err
		}
	}
	return nil
}

// nameOf is the message's string field "name", or "".
func nameOf(r protoreflect.Message) string {
	f := r.Descriptor().Fields().ByName("name")
	if f == nil || f.Kind() != protoreflect.StringKind || f.IsList() || f.IsMap() {
		return ""
	}
	return r.Get(f).String()
}

// nestedNames are the names of the messages in r's fields, in field order:
// every element of its repeated message fields, and, unless list, its
// singular message fields.
func nestedNames(r protoreflect.Message, list bool) []string {
	var names []string
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.Message() == nil || f.IsMap() || !r.Has(f) {
			continue
		}
		switch {
		case f.IsList():
			l := r.Get(f).List()
			for j := range l.Len() {
				if n := nameOf(l.Get(j).Message()); n != "" {
					names = append(names, n)
				}
			}
		case !list:
			if n := nameOf(r.Get(f).Message()); n != "" {
				names = append(names, n)
			}
		}
	}
	return names
}

// resource prints one resource: m as JSON, or fields as aligned lines.
func (p *printer) resource(m proto.Message, fields []field) error {
	if p.json {
		return p.protoJSON(m)
	}
	tw := tabwriter.NewWriter(p.out, 0, 4, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f.key, orDash(f.value))
	}
	return tw.Flush()
}

// table prints m (a list response holding every page) as JSON, or rows
// under header. An empty table prints "No <what> found." on stderr.
func (p *printer) table(m proto.Message, what string, header []string, rows [][]string) error {
	if p.json {
		return p.structured(m, true)
	}
	if len(rows) == 0 {
		fmt.Fprintf(p.errw, "No %s found.\n", what)
		return nil
	}
	tw := tabwriter.NewWriter(p.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			r[i] = orDash(r[i])
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// deleted reports a successful delete.
func (p *printer) deleted(name string) error {
	switch {
	case p.format == outputName || p.field == "name":
		_, err := fmt.Fprintln(p.out, name)
		return err
	case p.field != "":
		return fmt.Errorf("--field %s: a delete prints only name", p.field)
	case p.format == outputYAML:
		_, err := fmt.Fprintf(p.out, "name: %s\n", name)
		return err
	case p.json:
		b, err := json.MarshalIndent(map[string]string{"name": name}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.out, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintf(p.out, "Deleted %s\n", name)
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// timeString formats t in UTC RFC 3339, or "" when unset.
func timeString(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

// enumPrefix is the common prefix of an enum's value names, taken from its
// zero value: INTEGRATION_STATE_UNSPECIFIED -> INTEGRATION_STATE_.
func enumPrefix(d protoreflect.EnumDescriptor) string {
	zero := d.Values().ByNumber(0)
	if zero == nil {
		return ""
	}
	return strings.TrimSuffix(string(zero.Name()), "UNSPECIFIED")
}

// enumString is the short lowercase form of e: INTEGRATION_STATE_BLOCKED_BY_POLICY
// -> blocked-by-policy, or "" for the zero value. sep replaces underscores.
func enumString(e protoreflect.Enum, sep string) string {
	if e == nil || e.Number() == 0 {
		return ""
	}
	d := e.Descriptor()
	v := d.Values().ByNumber(e.Number())
	if v == nil {
		return fmt.Sprintf("%d", e.Number())
	}
	s := strings.ToLower(strings.TrimPrefix(string(v.Name()), enumPrefix(d)))
	return strings.ReplaceAll(s, "_", sep)
}

// short prints an enum with hyphens, e.g. microsoft-sentinel.
func short(e protoreflect.Enum) string { return enumString(e, "-") }

// labelsString prints labels as sorted k=v pairs.
func labelsString(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ",")
}
