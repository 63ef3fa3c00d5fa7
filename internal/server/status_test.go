package server

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

func TestStatusMapsEveryKind(t *testing.T) {
	for kind, code := range codeOf {
		st := Status(fmt.Errorf("wrapped: %w", apperr.New(kind, "message")))
		if st.Code() != code {
			t.Errorf("%v -> %v, want %v", kind, st.Code(), code)
		}
	}
}

func TestStatusHidesUnclassifiedAndInternalDetails(t *testing.T) {
	secretish := errors.New("dial tcp: password=hunter2")
	if st := Status(secretish); st.Code() != codes.Internal || strings.Contains(st.Message(), "hunter2") {
		t.Fatalf("unclassified error leaked: %v", st)
	}
	if st := Status(apperr.Wrap(secretish, apperr.Internal, "database error")); strings.Contains(st.Message(), "hunter2") || st.Message() != "internal error" {
		t.Fatalf("internal error leaked: %v", st)
	}
	if st := Status(apperr.Wrap(secretish, apperr.Unavailable, "Vault unavailable")); strings.Contains(st.Message(), "hunter2") {
		t.Fatalf("cause leaked: %v", st)
	}
}

func TestStatusCarriesFieldViolations(t *testing.T) {
	var v apperr.Violations
	v.Add("tenant.entra_tenant_id", "must be a GUID")
	v.Add("tenant.cloud", "required")
	st := Status(v.Err())
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				fields = append(fields, fv.GetField())
			}
		}
	}
	if st.Code() != codes.InvalidArgument || strings.Join(fields, ",") != "tenant.entra_tenant_id,tenant.cloud" {
		t.Fatalf("status %v fields %v", st, fields)
	}
}

func TestEveryPolicyMethodExists(t *testing.T) {
	for m := range policies {
		if !strings.HasPrefix(m, "/dzconnect.v1.") {
			t.Errorf("policy for unknown method %s", m)
		}
	}
}
