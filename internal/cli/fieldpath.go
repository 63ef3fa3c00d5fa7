package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fieldValues prints the values at p.field in m, one per line (--field).
//
// The path is field names separated by dots, as in -o json (lowerCamelCase)
// or as in the proto (snake_case): integration.application.clientId. A
// repeated field fans out: tenants.name prints every tenant's name. A map
// field takes a key as the next element: labels.tier. Strings print as they
// are (no quotes), enums by name, numbers and booleans as in JSON,
// timestamps and durations as RFC 3339 and "3600s", and messages, lists and
// maps as one line of JSON. An unset field prints an empty line, so each
// resource gives exactly one line; a name that is no field of the message
// is an error that lists the fields there are.
func (p *printer) fieldValues(m interface{ ProtoReflect() protoreflect.Message }) error {
	path := strings.Split(p.field, ".")
	values, err := selectPath(m.ProtoReflect(), path, p.field)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, v := range values {
		buf.WriteString(v)
		buf.WriteByte('\n')
	}
	_, err = p.out.Write(buf.Bytes())
	return err
}

// selectPath walks path from msg and renders the values found there.
func selectPath(msg protoreflect.Message, path []string, full string) ([]string, error) {
	fd, err := lookupField(msg.Descriptor(), path[0], full)
	if err != nil {
		return nil, err
	}
	rest := path[1:]
	v := msg.Get(fd)
	switch {
	case fd.IsList():
		if len(rest) == 0 {
			return []string{renderField(msg, fd)}, nil
		}
		if fd.Message() == nil {
			return nil, fmt.Errorf("--field %s: %s is a list of %s, it has no field %q", full, fd.JSONName(), fd.Kind(), rest[0])
		}
		l := v.List()
		var out []string
		for i := range l.Len() {
			vals, err := selectPath(l.Get(i).Message(), rest, full)
			if err != nil {
				return nil, err
			}
			out = append(out, vals...)
		}
		if l.Len() == 0 { // still check the rest of the path
			if _, err := selectPath(l.NewElement().Message(), rest, full); err != nil {
				return nil, err
			}
		}
		return out, nil
	case fd.IsMap():
		if len(rest) == 0 {
			return []string{renderField(msg, fd)}, nil
		}
		if len(rest) > 1 || fd.MapValue().Message() != nil {
			return nil, fmt.Errorf("--field %s: only a map of scalars may be indexed (%s.KEY)", full, fd.JSONName())
		}
		mv := v.Map().Get(protoreflect.ValueOfString(rest[0]).MapKey())
		if !mv.IsValid() {
			return []string{""}, nil
		}
		return []string{renderScalar(fd.MapValue(), mv)}, nil
	case len(rest) == 0:
		if fd.Message() != nil && !msg.Has(fd) {
			return []string{""}, nil
		}
		return []string{renderField(msg, fd)}, nil
	case fd.Message() == nil:
		return nil, fmt.Errorf("--field %s: %s is a %s, it has no field %q", full, fd.JSONName(), fd.Kind(), rest[0])
	case isWellKnown(fd.Message()):
		return nil, fmt.Errorf("--field %s: %s is a %s, it has no field %q", full, fd.JSONName(), fd.Message().Name(), rest[0])
	default:
		return selectPath(v.Message(), rest, full)
	}
}

// lookupField finds name (JSON or proto spelling) among d's fields.
func lookupField(d protoreflect.MessageDescriptor, name, full string) (protoreflect.FieldDescriptor, error) {
	fields := d.Fields()
	if fd := fields.ByJSONName(name); fd != nil {
		return fd, nil
	}
	if fd := fields.ByName(protoreflect.Name(name)); fd != nil {
		return fd, nil
	}
	names := make([]string, fields.Len())
	for i := range fields.Len() {
		names[i] = fields.Get(i).JSONName()
	}
	return nil, fmt.Errorf("--field %s: %s has no field %q (it has: %s)", full, d.Name(), name, strings.Join(names, ", "))
}

// isWellKnown reports the google.protobuf messages that JSON renders as a
// single value (Timestamp, Duration, wrappers, Struct, ...).
func isWellKnown(d protoreflect.MessageDescriptor) bool {
	return d.ParentFile().Package() == "google.protobuf"
}

// renderField renders the whole field fd of msg as its JSON value: a string
// without quotes, anything else as compact JSON.
func renderField(msg protoreflect.Message, fd protoreflect.FieldDescriptor) string {
	if !fd.IsList() && !fd.IsMap() && fd.Message() == nil {
		return renderScalar(fd, msg.Get(fd))
	}
	// Marshal a copy of msg holding only fd, then take fd's value out.
	only := msg.Type().New()
	if msg.Has(fd) {
		only.Set(fd, msg.Get(fd))
	}
	raw, err := protojson.MarshalOptions{EmitUnpopulated: fd.IsList() || fd.IsMap()}.Marshal(only.Interface())
	if err != nil {
		return ""
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return ""
	}
	return unquote(obj[fd.JSONName()])
}

// renderScalar renders a scalar value as -o json would, strings unquoted.
func renderScalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return v.String()
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.Itoa(int(v.Enum()))
	case protoreflect.BoolKind:
		return strconv.FormatBool(v.Bool())
	case protoreflect.BytesKind:
		b, _ := json.Marshal(v.Bytes()) // base64, as protojson
		return unquote(b)
	default:
		return v.String() // integers and floats in decimal
	}
}

// unquote returns a JSON string's content, or raw JSON as it is.
func unquote(raw json.RawMessage) string {
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}
