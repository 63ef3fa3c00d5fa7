package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// TestUpdateSecretKill: a real `dzconnect serve` SIGKILLed while
// UpdateIntegration replaces a secret — after the new value reached Vault,
// and after it was tried — leaves the old credential active and the new
// one pending and "not stored"; the next process's pending reaper removes
// the row and destroys the value, and the integration still works on its
// old secret.
func TestUpdateSecretKill(t *testing.T) {
	t.Parallel()
	bin := serveBinary(t)
	for _, point := range []string{integration.CrashUpdateSecretStored, integration.CrashUpdateSecretTried} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			f := newVerifyFixture(t, msftsim.TenantSpec{})
			in, creds := f.app(t, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: defenderRoles}, nil)
			oldPath := activeSecretPath(in)
			secret := f.addPassword(t, creds.ObjectID)
			if err := f.s.Stop(); err != nil {
				t.Fatal(err)
			}
			k := &killFixture{bin: bin}
			k.s, k.sim = f.s, f.sim

			p := k.start(t, point)
			conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := v1.NewIntegrationServiceClient(conn).UpdateIntegration(stack.Ctx(t, f.org.Operator), &v1.UpdateIntegrationRequest{
				Integration: &v1.Integration{Name: in.GetName()}, UpdateMask: &fieldmaskpb.FieldMask{}, ClientSecret: secret,
			}, grpc.WaitForReady(true)); err == nil {
				t.Fatal("the update succeeded: the process did not die at " + point)
			}
			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				t.Fatal("the process did not die")
			}
			if !strings.Contains(p.out.String(), "crashpoint: killing the process at "+point) {
				t.Fatalf("the process died elsewhere:\n%s", tail(p.out.String(), 4000))
			}

			// After the crash: the old credential active, the new one
			// pending and not stored, its value in Vault.
			n, err := resource.ParseIntegration("name", in.GetName())
			if err != nil {
				t.Fatal(err)
			}
			var active, pendingPath string
			var pendingVersion int64
			if err := k.s.DB.QueryRow(context.Background(), `select
				  (select secret_path from credentials where organization_id = $1 and integration_id = $2 and state = 'active'),
				  (select secret_path from credentials where organization_id = $1 and integration_id = $2 and state = 'pending'),
				  (select secret_version from credentials where organization_id = $1 and integration_id = $2 and state = 'pending')`,
				n.Org, n.Integration).Scan(&active, &pendingPath, &pendingVersion); err != nil {
				t.Fatal(err)
			}
			if active != oldPath || pendingVersion != 0 {
				t.Fatalf("after the crash: active %s (want %s), pending version %d (want 0: not stored)", active, oldPath, pendingVersion)
			}
			if v, ok := secretAt(t, k.s, pendingPath, 1); !ok || v != secret {
				t.Fatal("the new value is not in Vault: the kill point is not where it claims")
			}

			// The reaper (the janitor runs when the next process becomes
			// leader) removes rows pending longer than --pending-ttl: age
			// the row instead of waiting for it.
			if _, err := k.s.DB.Exec(context.Background(), `update credentials set create_time = now() - interval '1 hour'
				where organization_id = $1 and integration_id = $2 and state = 'pending'`, n.Org, n.Integration); err != nil {
				t.Fatal(err)
			}
			// The killed process's janitor run (unique per interval) would
			// keep the next one's start-up run from being inserted.
			if _, err := k.s.DB.Exec(context.Background(), `delete from river_job where kind = 'janitor'`); err != nil {
				t.Fatal(err)
			}
			p2 := k.start(t, "")
			waitJobs(t, k.s, "destroy_secret")
			if _, err := k.s.Vault.KV().GetMetadata(context.Background(), "dzconnect/"+pendingPath); err == nil {
				t.Fatalf("the new value survives in Vault at %s", pendingPath)
			}
			if ids := vaultCredentials(t, k.s, in.GetName()); len(ids) != 1 || !strings.HasSuffix(oldPath, ids[0]) {
				t.Fatalf("Vault holds %v, want only the old credential's", ids)
			}
			conn2, err := grpc.NewClient(p2.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn2.Close()
			resp, err := v1.NewIntegrationServiceClient(conn2).CheckIntegration(stack.Ctx(t, f.org.Operator),
				&v1.CheckIntegrationRequest{Name: in.GetName()}, grpc.WaitForReady(true))
			if err != nil {
				t.Fatal(err)
			}
			wantOutcome(t, resp.GetCheck(), v1.IntegrationState_INTEGRATION_STATE_HEALTHY)
			if got := resp.GetIntegration().GetCredentials(); len(got) != 1 || activeSecretPath(resp.GetIntegration()) != oldPath {
				t.Fatalf("credentials after the reaper: %v", got)
			}
		})
	}
}
