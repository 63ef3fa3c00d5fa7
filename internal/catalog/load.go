package catalog

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
)

//go:embed default.json
var defaultJSON []byte

// file is a catalog file's shape (default.json, --catalog-file).
type file struct {
	Version string  `json:"version"`
	Entries []Entry `json:"entries"`
}

var (
	defaultOnce sync.Once
	defaultCat  *Catalog
)

// Default returns the embedded default catalog. It panics when the
// embedded file is invalid (a test parses it).
func Default() *Catalog {
	defaultOnce.Do(func() {
		c, err := Parse(defaultJSON)
		if err != nil {
			panic("internal/catalog/default.json: " + err.Error())
		}
		defaultCat = c
	})
	return defaultCat
}

// DefaultJSON returns the embedded default catalog file, a starting point
// for a --catalog-file.
func DefaultJSON() []byte { return slices.Clone(defaultJSON) }

// LoadFile reads and validates a catalog file (--catalog-file). Its
// entries replace the default's as a whole.
func LoadFile(path string) (*Catalog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading catalog file: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("catalog file %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a catalog file. Unknown fields, kinds,
// features, types and requirements, duplicate entries, IDs that are not
// GUIDs and entries without a source are refused, naming the entry.
func Parse(b []byte) (*Catalog, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decoding: data after the catalog object")
	}
	if strings.TrimSpace(f.Version) == "" || strings.ContainsAny(f.Version, " \t\n+") {
		return nil, errors.New("version: required, without spaces or '+'")
	}
	if len(f.Entries) == 0 {
		return nil, errors.New("entries: at least one entry")
	}
	var errs []error
	seen := map[string]int{}
	for i, e := range f.Entries {
		if err := validEntry(e); err != nil {
			errs = append(errs, fmt.Errorf("entries[%d] (%s): %w", i, e.label(), err))
			continue
		}
		k := e.key()
		if j, dup := seen[k]; dup {
			errs = append(errs, fmt.Errorf("entries[%d] (%s): duplicate of entries[%d]", i, e.label(), j))
			continue
		}
		seen[k] = i
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i := range f.Entries {
		if f.Entries[i].ResourceAppID != "" {
			f.Entries[i].ResourceAppID = strings.ToLower(f.Entries[i].ResourceAppID)
		}
	}
	return &Catalog{version: f.Version, entries: f.Entries}, nil
}

// label names an entry in errors.
func (e Entry) label() string {
	s := string(e.Kind) + " " + e.Value
	if e.Feature != "" {
		s = string(e.Kind) + "/" + string(e.Feature) + " " + e.Value
	}
	return s
}

// key identifies an entry: one permission of one resource per kind.
func (e Entry) key() string {
	return string(e.Kind) + "|" + string(e.Type) + "|" + strings.ToLower(e.ResourceAppID) + "|" + e.Value
}

func validEntry(e Entry) error {
	switch e.Kind {
	case integration.KindDefender, integration.KindSentinel:
	default:
		return fmt.Errorf("kind: unknown kind %q", e.Kind)
	}
	if e.Feature != "" && !slices.Contains(FeaturesOf(e.Kind), e.Feature) {
		return fmt.Errorf("feature: %q is not a feature of %s", e.Feature, e.Kind)
	}
	switch e.Requirement {
	case Required, Optional, Alternative:
	default:
		return fmt.Errorf("requirement: unknown requirement %q (required, optional or alternative)", e.Requirement)
	}
	if strings.TrimSpace(e.Value) == "" {
		return errors.New("value: required")
	}
	if !isGUID(e.ID) {
		return fmt.Errorf("id: %q is not a GUID", e.ID)
	}
	switch e.Type {
	case TypeApplication:
		if !isGUID(e.ResourceAppID) {
			return fmt.Errorf("resource_app_id: %q is not a GUID (an application permission names its resource API)", e.ResourceAppID)
		}
	case TypeAzureRole, TypeDirectoryRole:
		if e.ResourceAppID != "" {
			return fmt.Errorf("resource_app_id: only application permissions have one")
		}
	default:
		return fmt.Errorf("type: unknown type %q (application, azure-role or directory-role)", e.Type)
	}
	if !strings.HasPrefix(e.Source, "https://") {
		return errors.New("source: required, an https URL citing where the entry comes from")
	}
	return nil
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

func equalFold(a, b string) bool { return strings.EqualFold(a, b) }
