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

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// printer writes results in the --output format.
type printer struct {
	out  io.Writer
	errw io.Writer
	json bool
}

func (inv *invocation) printer() *printer {
	return &printer{out: inv.app.stdout, errw: inv.app.stderr, json: inv.output == "json"}
}

// field is one "key: value" line of a single resource in table output.
type field struct{ key, value string }

// protoJSON writes m as protojson (proto field names in lowerCamelCase,
// unpopulated fields omitted), re-indented so the bytes are stable:
// protojson itself randomizes whitespace on purpose.
func (p *printer) protoJSON(m proto.Message) error {
	raw, err := protojson.MarshalOptions{EmitUnpopulated: false}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err = p.out.Write(buf.Bytes())
	return err
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
		return p.protoJSON(m)
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
	if p.json {
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
