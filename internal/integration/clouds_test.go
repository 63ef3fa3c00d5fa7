package integration

import (
	"errors"
	"strings"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/tenant"
)

func TestCheckCloud(t *testing.T) {
	err := CheckCloud(KindSentinel, tenant.CloudChina)
	var e *apperr.Error
	if !apperr.Is(err, apperr.FailedPrecondition) || !strings.Contains(err.Error(), "2026-08-18") || !strings.Contains(err.Error(), SentinelChinaSource) {
		t.Fatalf("Sentinel in China: %v", err)
	}
	if !errors.As(err, &e) || e.Reason != ReasonKindRetiredInCloud || e.Metadata["source"] != SentinelChinaSource {
		t.Fatalf("reason %q metadata %v", e.Reason, e.Metadata)
	}
	for _, c := range []tenant.Cloud{tenant.CloudGlobal, tenant.CloudUSGovGCC, tenant.CloudUSGovGCCHigh, tenant.CloudUSGovDoD} {
		if err := CheckCloud(KindSentinel, c); err != nil {
			t.Errorf("Sentinel in %s: %v", c, err)
		}
	}
	if err := CheckCloud(KindDefender, tenant.CloudChina); err != nil {
		t.Errorf("Defender in China: %v", err)
	}
}
