package handlers

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/page"
	"google.golang.org/protobuf/proto"
)

var (
	labelKeyRE      = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,62}$`)
	labelValueRE    = regexp.MustCompile(`^[a-zA-Z0-9_.-]{0,63}$`)
	resourceGroupRE = regexp.MustCompile(`^[-\w.()]{1,90}$`)
	workspaceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$`)
)

// checkDisplayName validates a human-readable name.
func checkDisplayName(v *apperr.Violations, field, s string, required bool) {
	switch {
	case s == "" && required:
		v.Add(field, "required")
	case !utf8.ValidString(s):
		v.Add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(s) > 200:
		v.Add(field, "must be at most 200 characters")
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		v.Add(field, "must not contain control characters")
	case strings.TrimSpace(s) != s:
		v.Add(field, "must not start or end with white space")
	}
}

// checkGUID validates a Microsoft GUID in canonical 8-4-4-4-12 form.
func checkGUID(v *apperr.Violations, field, s string, required bool) uuid.UUID {
	if s == "" {
		if required {
			v.Add(field, "required")
		}
		return uuid.Nil
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		v.Add(field, "must be a GUID like 00000000-0000-0000-0000-000000000000")
		return uuid.Nil
	}
	if id == uuid.Nil {
		v.Add(field, "must not be the nil GUID")
	}
	return id
}

func checkLabels(v *apperr.Violations, field string, labels map[string]string) {
	if len(labels) > 64 {
		v.Add(field, "at most 64 labels")
		return
	}
	for k, val := range labels {
		if !labelKeyRE.MatchString(k) {
			v.Add(field+"."+k, "label keys are 1 to 63 characters: lowercase letters, digits, _ . -, starting with a letter")
		}
		if !labelValueRE.MatchString(val) {
			v.Add(field+"."+k, "label values are at most 63 characters: letters, digits, _ . -")
		}
	}
}

// checkClientSecret validates a client secret's shape without echoing it.
func checkClientSecret(v *apperr.Violations, field, s string, required bool) {
	switch {
	case s == "":
		if required {
			v.Add(field, "required: the client secret's Value, shown once when it was created")
		}
	case len(s) > 1024:
		v.Add(field, "must be at most 1024 bytes")
	case strings.IndexFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0:
		v.Add(field, "must be printable ASCII without spaces")
	default:
		if _, err := uuid.Parse(s); err == nil {
			v.Add(field, "looks like the secret ID (a GUID); paste the secret's Value instead")
		}
	}
}

func checkResourceGroup(v *apperr.Violations, field, s string) {
	if !resourceGroupRE.MatchString(s) || strings.HasSuffix(s, ".") {
		v.Add(field, "must be 1 to 90 letters, digits, underscores, hyphens, periods or parentheses, not ending with a period")
	}
}

func checkWorkspaceName(v *apperr.Violations, field, s string) {
	if !workspaceNameRE.MatchString(s) {
		v.Add(field, "must be 4 to 63 letters, digits or hyphens, starting and ending with a letter or digit")
	}
}

// requestKey validates request_id and builds the idempotency key.
func requestKey(v *apperr.Violations, requestID string, req proto.Message, clear func(proto.Message)) idempotency.Key {
	if requestID == "" {
		return idempotency.Key{}
	}
	id, err := uuid.Parse(requestID)
	if err != nil || len(requestID) != 36 {
		v.Add("request_id", "must be a UUID")
		return idempotency.Key{}
	}
	return idempotency.Key{RequestID: id, Hash: idempotency.HashRequest(req, clear)}
}

// parseEtag turns an etag into the row version it stands for (0: none).
func parseEtag(v *apperr.Violations, field, etag string) int64 {
	if etag == "" {
		return 0
	}
	n, err := strconv.ParseInt(strings.Trim(etag, `"`), 10, 64)
	if err != nil || n <= 0 {
		v.Add(field, "is not an etag this service issued")
		return 0
	}
	return n
}

func etag(version int64) string { return strconv.FormatInt(version, 10) }

// maskPaths validates update_mask against the mutable fields. An empty mask
// means every mutable field that is set in the request (AIP-134).
func maskPaths(v *apperr.Violations, mask *fieldmaskpb.FieldMask, allowed []string, populated func(string) bool) map[string]bool {
	out := map[string]bool{}
	if len(mask.GetPaths()) == 0 {
		for _, p := range allowed {
			if populated(p) {
				out[p] = true
			}
		}
		return out
	}
	if !v.CheckLen("update_mask", len(mask.GetPaths())) {
		return out
	}
	for _, p := range mask.GetPaths() {
		if p == "etag" || p == "name" {
			continue // identify the resource; the REST gateway infers them from the body
		}
		ok := false
		for _, a := range allowed {
			if p == a {
				ok = true
			}
		}
		if !ok {
			v.Add("update_mask", "path %q cannot be updated; allowed: %s", p, strings.Join(allowed, ", "))
			continue
		}
		out[p] = true
	}
	return out
}

// parsePage validates paging fields.
func parsePage(size int32, token string, filters ...string) (page.Request, error) {
	return page.Parse(size, token, filters...)
}
