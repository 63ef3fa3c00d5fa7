package microsoft_test

import (
	"testing"

	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

// UpsertServicePrincipal: created once (201), then found (204); right
// after a new application, Graph's lag answer is classified not-replicated.
func TestUpsertServicePrincipal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d, _ := e.directory()
	ctx := t.Context()
	app, _, err := d.UpsertApplicationByUniqueName(ctx, "dropzone-sp-upsert", microsoft.ApplicationSpec{DisplayName: "Dropzone AI"})
	if err != nil {
		t.Fatal(err)
	}
	sp, created, err := d.UpsertServicePrincipal(ctx, app.AppID, "Dropzone AI")
	if err != nil || !created || sp.ObjectID == "" {
		t.Fatalf("upsert: %+v %v %v", sp, created, err)
	}
	again, created, err := d.UpsertServicePrincipal(ctx, app.AppID, "Dropzone AI")
	if err != nil || created || again.ObjectID != sp.ObjectID {
		t.Fatalf("second upsert: %+v created=%v %v (first %s)", again, created, err, sp.ObjectID)
	}
	if n, _ := e.admin.ServicePrincipalsOf(e.tenant, app.AppID); n != 1 {
		t.Fatalf("%d service principals", n)
	}

	e.admin.SetFaults(faults.Config{Scope: faults.Scope{Rule: faults.Rule{ObjectLag: &faults.Lag{Reads: 1}}}})
	lagging, _, err := d.UpsertApplicationByUniqueName(ctx, "dropzone-sp-upsert-lag", microsoft.ApplicationSpec{DisplayName: "Dropzone AI"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = d.UpsertServicePrincipal(ctx, lagging.AppID, "Dropzone AI")
	if !microsoft.IsClass(err, mserr.ClassNotReplicated) {
		t.Fatalf("right after the application: %v, want not-replicated", err)
	}
}
