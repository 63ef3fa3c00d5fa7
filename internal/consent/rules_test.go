package consent

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/organization"
)

func TestForgetsConsents(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	for _, tc := range []struct {
		name   string
		cur    uuid.UUID
		next   uuid.UUID
		forget bool
	}{
		{"first provisioner", uuid.Nil, a, false},
		{"same application, new secret", a, a, false},
		{"another application", a, b, true},
	} {
		if got := forgetsConsents(organization.Organization{ProvisionerClientID: tc.cur}, tc.next); got != tc.forget {
			t.Errorf("%s: forgets = %v, want %v", tc.name, got, tc.forget)
		}
	}
}

func TestUsable(t *testing.T) {
	now := time.Now()
	used := now.Add(-time.Minute)
	for _, tc := range []struct {
		name string
		r    Request
		ok   bool
	}{
		{"fresh", Request{ExpireTime: now.Add(time.Hour)}, true},
		{"expired", Request{ExpireTime: now}, false},
		{"used (single use)", Request{ExpireTime: now.Add(time.Hour), UsedTime: &used, Result: ResultDeclined}, false},
	} {
		err := usable(tc.r, now)
		if (err == nil) != tc.ok || (err != nil && !apperr.Is(err, apperr.InvalidArgument)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
