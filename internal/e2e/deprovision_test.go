package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/cli"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
	"github.com/dropzoneai/dzconnect/internal/provision"
	"github.com/dropzoneai/dzconnect/internal/resource"
)

func (f provisionFixture) deprovision(t *testing.T, name string, keep bool, requestID string) *v1.Operation {
	t.Helper()
	resp, err := f.prov.DeprovisionIntegration(f.operator(t), &v1.DeprovisionIntegrationRequest{Name: name, KeepApplication: keep, RequestId: requestID})
	if err != nil {
		t.Fatalf("DeprovisionIntegration: %v", err)
	}
	return resp.GetOperation()
}

// provisioned provisions spec and waits for success.
func (f provisionFixture) provisioned(t *testing.T, spec *v1.ProvisioningSpec) (*v1.Operation, *v1.Integration) {
	t.Helper()
	done := f.wait(t, f.provision(t, spec, "").GetName())
	if done.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("provision: %v\nlogs:\n%s", done, f.s.Logs.String())
	}
	return done, f.integration(t, done)
}

type secretRef struct {
	path    string
	version int
}

// secretRefs lists the integration's credential secrets (path, version).
func (f provisionFixture) secretRefs(t *testing.T, name string) []secretRef {
	t.Helper()
	n, err := resource.ParseIntegration("name", name)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := f.s.DB.Query(context.Background(), `select secret_path, secret_version from credentials
		where organization_id = $1 and integration_id = $2`, n.Org, n.Integration)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []secretRef
	for rows.Next() {
		var r secretRef
		var v int64
		if err := rows.Scan(&r.path, &v); err != nil {
			t.Fatal(err)
		}
		r.version = int(v)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no credential rows")
	}
	return out
}

// assertGone checks dzconnect's records and Vault after a deprovision:
// the integration is NotFound and every secret it had is destroyed.
func (f provisionFixture) assertGone(t *testing.T, name string, secrets []secretRef) {
	t.Helper()
	_, err := f.s.Clients().Integrations.GetIntegration(f.viewer(t), &v1.GetIntegrationRequest{Name: name})
	wantCode(t, err, codes.NotFound)
	for _, r := range secrets {
		if _, ok := secretAt(t, f.s, r.path, r.version); ok {
			t.Fatalf("secret %s v%d still readable in Vault", r.path, r.version)
		}
	}
}

// assertNothingLeft checks msftsim holds no application, service principal
// or deleted item of the app, and no Azure role assignment of its SP.
func (f provisionFixture) assertNothingLeft(t *testing.T, app msftsim.AppState, sp, scope string) {
	t.Helper()
	a := f.sim.Admin()
	apps, err := a.Applications(f.simTID, func(s msftsim.AppState) bool { return s.AppID == app.AppID || s.UniqueName == app.UniqueName })
	if err != nil || len(apps) != 0 {
		t.Fatalf("applications left: %+v, %v", apps, err)
	}
	if n, err := a.ServicePrincipalsOf(f.simTID, app.AppID); err != nil || n != 0 {
		t.Fatalf("service principals left: %d, %v", n, err)
	}
	items, err := a.DeletedItems(f.simTID)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.AppID == app.AppID {
			t.Fatalf("deleted item not purged: %+v", it)
		}
	}
	if scope != "" {
		ras, err := a.RoleAssignments(f.simTID, scope, sp)
		if err != nil || len(ras) != 0 {
			t.Fatalf("role assignments left: %+v, %v", ras, err)
		}
	}
}

// eventReceiver is a webhook endpoint that hands every delivered event to
// a channel.
type eventReceiver struct {
	srv    *httptest.Server
	events chan map[string]any
}

func newEventReceiver(t *testing.T) *eventReceiver {
	r := &eventReceiver{events: make(chan map[string]any, 64)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev map[string]any
		if json.Unmarshal(body, &ev) == nil {
			r.events <- ev
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// finished waits for the operation.finished event of operation name.
func (r *eventReceiver) finished(t *testing.T, name string) map[string]any {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case ev := <-r.events:
			if ev["type"] == "operation.finished" && ev["operation"] == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no operation.finished event for %s within a minute", name)
		}
	}
}

func (f provisionFixture) subscribe(t *testing.T, url string) {
	t.Helper()
	if _, err := v1.NewWebhookServiceClient(f.s.Conn).CreateWebhook(stack0(t, f), &v1.CreateWebhookRequest{
		Parent: f.org.Name, Webhook: &v1.Webhook{Url: url, Events: []v1.WebhookEvent{v1.WebhookEvent_WEBHOOK_EVENT_OPERATION_FINISHED}}}); err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
}

func stack0(t *testing.T, f provisionFixture) context.Context {
	ctx, cancel := context.WithTimeout(f.org.AdminCtx, 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestDeprovisionDefender provisions, deprovisions (request_id replayed)
// and provisions again: nothing is left in msftsim's directory or deleted
// items, the Vault secret is destroyed, the integration is gone, the next
// provision uses the next uniqueName generation, and each operation's end
// is announced by an operation.finished webhook event with its kind and
// target.
func TestDeprovisionDefender(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true, "--webhook-allow-private-networks")
	hooks := newEventReceiver(t)
	f.subscribe(t, hooks.srv.URL+"/hook")
	spec := &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER}
	pdone, in := f.provisioned(t, spec)
	ev := hooks.finished(t, pdone.GetName())
	if ev["operation_kind"] != provision.KindName || ev["target"] != in.GetName() || ev["state"] != "succeeded" {
		t.Fatalf("provision's operation.finished event %v", ev)
	}
	app := f.assertDirectory(t, pdone, in, "microsoft-365-defender")
	secrets := f.secretRefs(t, in.GetName())

	reqID := uuid.NewString()
	op := f.deprovision(t, in.GetName(), false, reqID)
	if op.GetKind() != provision.DeprovisionKindName || op.GetTarget() != in.GetName() {
		t.Fatalf("deprovision operation %v", op)
	}
	if again := f.deprovision(t, in.GetName(), false, reqID); again.GetName() != op.GetName() {
		t.Fatalf("replayed request_id: %s, want %s", again.GetName(), op.GetName())
	}
	done := f.wait(t, op.GetName())
	if done.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("deprovision: %v\nlogs:\n%s", done, f.s.Logs.String())
	}
	for _, st := range done.GetMetadata().GetSteps() {
		want := v1.StepState_STEP_STATE_SUCCEEDED
		switch st.GetName() {
		case provision.DStepSentinelRole, provision.DStepDirectoryRole, provision.DStepPasswords, provision.DStepNotes:
			want = v1.StepState_STEP_STATE_SKIPPED
		}
		if st.GetState() != want {
			t.Errorf("step %s: %v, want %v", st.GetName(), st.GetState(), want)
		}
	}
	f.assertNothingLeft(t, app, in.GetApplication().GetServicePrincipalObjectId(), "")
	f.assertGone(t, in.GetName(), secrets)
	ev = hooks.finished(t, done.GetName())
	if ev["operation_kind"] != provision.DeprovisionKindName || ev["target"] != in.GetName() || ev["state"] != "succeeded" {
		t.Fatalf("deprovision's operation.finished event %v", ev)
	}
	// A retry after the end returns the finished operation.
	if again := f.deprovision(t, in.GetName(), false, reqID); again.GetName() != op.GetName() || !again.GetDone() {
		t.Fatalf("replay after the end: %v", again)
	}

	// Provision again: a new application under the next generation.
	pdone2, in2 := f.provisioned(t, spec)
	u1, u2 := pdone.GetParams().AsMap()["unique_name"].(string), pdone2.GetParams().AsMap()["unique_name"].(string)
	if !strings.HasSuffix(u1, "-g1") || u2 != strings.TrimSuffix(u1, "-g1")+"-g2" {
		t.Fatalf("uniqueNames %s then %s, want generation 1 then 2", u1, u2)
	}
	app2 := f.assertDirectory(t, pdone2, in2, "microsoft-365-defender")
	if app2.AppID == app.AppID {
		t.Fatal("the re-provision reused the deleted application")
	}
}

// TestDeprovisionSentinel: the Azure role assignment dzconnect made goes
// too; one made by hand for the same service principal under another name
// is left alone until the service principal is deleted.
func TestDeprovisionSentinel(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	sub := uuid.NewString()
	if _, err := f.sim.Admin().AddWorkspace(f.simTID, msftsim.Workspace{SubscriptionID: sub, ResourceGroup: "rg-sentinel", Name: "ws-sentinel"}); err != nil {
		t.Fatal(err)
	}
	scope := "/subscriptions/" + sub + "/resourceGroups/rg-sentinel"
	if err := f.sim.Admin().GrantAzureRole(f.simTID, msftsim.AzureRole{Scope: scope, Role: "User Access Administrator"}, f.provSP); err != nil {
		t.Fatal(err)
	}
	pdone, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_SENTINEL,
		Workspace: &v1.ProvisioningWorkspace{ResourceId: scope + "/providers/Microsoft.OperationalInsights/workspaces/ws-sentinel"}})
	app := f.assertDirectory(t, pdone, in, "microsoft-sentinel")
	sp := in.GetApplication().GetServicePrincipalObjectId()
	if ras, err := f.sim.Admin().RoleAssignments(f.simTID, scope, sp); err != nil || len(ras) != 1 {
		t.Fatalf("role assignments before: %+v, %v", ras, err)
	}
	secrets := f.secretRefs(t, in.GetName())
	done := f.wait(t, f.deprovision(t, in.GetName(), false, "").GetName())
	if done.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("deprovision: %v\nlogs:\n%s", done, f.s.Logs.String())
	}
	if got := stepOutputs(done, provision.DStepSentinelRole)["role_assignment_names"]; got == nil {
		t.Fatalf("sentinel-role outputs %v", stepOutputs(done, provision.DStepSentinelRole))
	}
	f.assertNothingLeft(t, app, sp, scope)
	f.assertGone(t, in.GetName(), secrets)
}

// TestDeprovisionKeepApplication detaches: the application, its service
// principal and its grants stay; dzconnect's passwords go, the notes say
// so, dzconnect's records and secrets are gone.
func TestDeprovisionKeepApplication(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	pdone, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	app := f.assertDirectory(t, pdone, in, "microsoft-365-defender")
	sp := in.GetApplication().GetServicePrincipalObjectId()
	grants, err := f.sim.Admin().AppRoleAssignments(f.simTID, sp)
	if err != nil {
		t.Fatal(err)
	}
	secrets := f.secretRefs(t, in.GetName())
	done := f.wait(t, f.deprovision(t, in.GetName(), true, "").GetName())
	if done.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("deprovision: %v\nlogs:\n%s", done, f.s.Logs.String())
	}
	apps, err := f.sim.Admin().Applications(f.simTID, func(s msftsim.AppState) bool { return s.AppID == app.AppID })
	if err != nil || len(apps) != 1 {
		t.Fatalf("the application is gone: %+v, %v", apps, err)
	}
	if len(apps[0].Passwords) != 0 {
		t.Fatalf("passwords left: %+v", apps[0].Passwords)
	}
	if !strings.Contains(apps[0].Extra["notes"], "No longer managed by dzconnect") {
		t.Fatalf("notes %q", apps[0].Extra["notes"])
	}
	if n, err := f.sim.Admin().ServicePrincipalsOf(f.simTID, app.AppID); err != nil || n != 1 {
		t.Fatalf("service principals: %d, %v", n, err)
	}
	after, err := f.sim.Admin().AppRoleAssignments(f.simTID, sp)
	if err != nil || len(after) != len(grants) {
		t.Fatalf("grants %d before, %d after (%v)", len(grants), len(after), err)
	}
	if items, err := f.sim.Admin().DeletedItems(f.simTID); err != nil || len(items) != 0 {
		t.Fatalf("deleted items %+v, %v", items, err)
	}
	f.assertGone(t, in.GetName(), secrets)
	// The next provision does not adopt the detached application.
	pdone2, in2 := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	if in2.GetApplication().GetClientId() == app.AppID {
		t.Fatalf("re-provision adopted the detached application (%v)", pdone2.GetParams().AsMap()["unique_name"])
	}
}

// TestDeprovisionRefused: customer-managed (FailedPrecondition naming
// DeleteIntegration), unknown, other organization and wrong tenant
// (NotFound), bad name and request_id (InvalidArgument); nothing starts.
func TestDeprovisionRefused(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	cm := newIntegration(t, f.s, f.org.OperatorCtx, f.tenant, "customer~Secret.Value_1234567890abcdefghi")
	_, err := f.prov.DeprovisionIntegration(f.operator(t), &v1.DeprovisionIntegrationRequest{Name: cm.GetName()})
	st := wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(st.Message(), "DeleteIntegration") {
		t.Fatalf("message %q does not name the fix", st.Message())
	}
	_, err = f.prov.DeprovisionIntegration(f.operator(t), &v1.DeprovisionIntegrationRequest{Name: f.tenant + "/integrations/" + uuid.NewString()})
	wantCode(t, err, codes.NotFound)
	other := f.s.NewOrg(t, "Other")
	_, err = f.prov.DeprovisionIntegration(stack0ctx(t, other.OperatorCtx), &v1.DeprovisionIntegrationRequest{Name: cm.GetName()})
	wantCode(t, err, codes.NotFound)
	otherTenant := newTenant(t, f.s, f.org.OperatorCtx, f.org.Name)
	n, err := resource.ParseIntegration("name", cm.GetName())
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.prov.DeprovisionIntegration(f.operator(t), &v1.DeprovisionIntegrationRequest{Name: otherTenant.GetName() + "/integrations/" + n.Integration.String()})
	wantCode(t, err, codes.NotFound)
	_, err = f.prov.DeprovisionIntegration(f.operator(t), &v1.DeprovisionIntegrationRequest{Name: "organizations/x"})
	wantViolation(t, err, "name")
	_, err = f.prov.DeprovisionIntegration(f.operator(t), &v1.DeprovisionIntegrationRequest{Name: cm.GetName(), RequestId: "nope"})
	wantViolation(t, err, "request_id")
	ops, err := f.ops.ListOperations(f.viewer(t), &v1.ListOperationsRequest{Parent: f.org.Name})
	if err != nil || len(ops.GetOperations()) != 0 {
		t.Fatalf("operations started: %v, %v", ops.GetOperations(), err)
	}
}

func stack0ctx(t *testing.T, parent context.Context) context.Context {
	ctx, cancel := context.WithTimeout(parent, 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestProvisionCancelThenDeprovision cancels a provision while its
// service-principal step waits to retry: the operation ends CANCELED at
// the step boundary, its step outputs list what exists (the application),
// the integration leaves "provisioning", a deprovision while the
// provision ran was refused, and a deprovision afterwards removes the
// application.
func TestProvisionCancelThenDeprovision(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	f.sim.Admin().SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{
		// The service-principal step's call (an upsert by appId): 500,
		// which the adapter retries a few times and then hands to the
		// step (a 503 carries Retry-After, waited out by the adapter).
		"graph.servicePrincipals.upsert": {ServerErrors: &faults.ServerErrors{Rate: 1, Status: 500}}}}})
	op := f.provision(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER}, "")
	// Follow it until the application is recorded and the service
	// principal step has failed once.
	cur := op
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if time.Now().After(deadline) {
			t.Fatalf("the service-principal step never retried: %v", cur)
		}
		failed := false
		for _, st := range cur.GetMetadata().GetSteps() {
			if st.GetName() == provision.StepServicePrincipal {
				failed = st.GetLastError() != nil
			}
		}
		if failed && stepOutputs(cur, provision.StepApplication) != nil {
			break
		}
		r, err := f.ops.WaitOperation(f.viewer(t), &v1.WaitOperationRequest{Name: op.GetName(), Etag: cur.GetEtag(), Timeout: durationpb.New(10 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		cur = r.GetOperation()
	}
	// One operation at a time: a deprovision now is refused.
	_, err := f.prov.DeprovisionIntegration(f.operator(t), &v1.DeprovisionIntegrationRequest{Name: op.GetTarget()})
	wantCode(t, err, codes.FailedPrecondition)

	if _, err := f.ops.CancelOperation(f.operator(t), &v1.CancelOperationRequest{Name: op.GetName()}); err != nil {
		t.Fatal(err)
	}
	done := f.wait(t, op.GetName())
	if done.GetState() != v1.OperationState_OPERATION_STATE_CANCELED {
		t.Fatalf("after cancel: %v", done)
	}
	appOut := stepOutputs(done, provision.StepApplication)
	appObj, _ := appOut["application_object_id"].(string)
	apps, err := f.sim.Admin().Applications(f.simTID, func(s msftsim.AppState) bool { return s.ObjectID == appObj })
	if appObj == "" || err != nil || len(apps) != 1 {
		t.Fatalf("the canceled operation's outputs %v do not name the application that exists (%v, %v)", appOut, apps, err)
	}
	in := f.integration(t, done)
	if in.GetState() == v1.IntegrationState_INTEGRATION_STATE_PROVISIONING {
		t.Fatalf("integration still provisioning after the cancel: %v", in)
	}

	f.sim.Admin().SetFaults(faults.Config{})
	dep := f.wait(t, f.deprovision(t, in.GetName(), false, "").GetName())
	if dep.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("deprovision: %v\nlogs:\n%s", dep, f.s.Logs.String())
	}
	f.assertNothingLeft(t, apps[0], "", "")
}

// TestProvisionFailedEndsProvisioning: a provision that fails (the
// workspace does not exist) leaves the integration broken, not
// provisioning, and it can be deprovisioned.
func TestProvisionFailedEndsProvisioning(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	sub := uuid.NewString()
	scope := "/subscriptions/" + sub + "/resourceGroups/rg-sentinel"
	if _, err := f.sim.Admin().AddWorkspace(f.simTID, msftsim.Workspace{SubscriptionID: sub, ResourceGroup: "rg-sentinel", Name: "ws-sentinel"}); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.Admin().GrantAzureRole(f.simTID, msftsim.AzureRole{Scope: scope, Role: "User Access Administrator"}, f.provSP); err != nil {
		t.Fatal(err)
	}
	done := f.wait(t, f.provision(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_SENTINEL,
		Workspace: &v1.ProvisioningWorkspace{ResourceId: scope + "/providers/Microsoft.OperationalInsights/workspaces/missing"}}, "").GetName())
	if done.GetState() != v1.OperationState_OPERATION_STATE_FAILED || done.GetError().GetStep() != provision.StepSentinelRole {
		t.Fatalf("operation %v", done)
	}
	in := f.integration(t, done)
	if in.GetState() != v1.IntegrationState_INTEGRATION_STATE_BROKEN {
		t.Fatalf("integration state %v after a failed provision, want BROKEN", in.GetState())
	}
	dep := f.wait(t, f.deprovision(t, in.GetName(), false, "").GetName())
	if dep.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("deprovision: %v\nlogs:\n%s", dep, f.s.Logs.String())
	}
	apps, err := f.sim.Admin().Applications(f.simTID, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range apps {
		if strings.HasPrefix(a.UniqueName, "dzconnect-") {
			t.Fatalf("application left: %+v", a)
		}
	}
}

// TestDeprovisionDzctl: dzctl integration deprovision --wait shows the
// steps and exits 0.
func TestDeprovisionDzctl(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	_, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	var out, errOut bytes.Buffer
	env := map[string]string{"DZCONNECT_ADDR": f.s.GRPCAddr, "DZCONNECT_API_KEY": f.org.Operator}
	app := cli.New(strings.NewReader(""), &out, &errOut, cli.WithGetenv(func(k string) string { return env[k] }))
	code := app.Execute(context.Background(), []string{"integration", "deprovision", in.GetName(), "--wait"})
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"locate", "application", "purge", "records", "State:             succeeded"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	_, err := f.s.Clients().Integrations.GetIntegration(f.viewer(t), &v1.GetIntegrationRequest{Name: in.GetName()})
	wantCode(t, err, codes.NotFound)
}

// TestDeprovisionOwnsTheState: while a deprovision runs the integration is
// DEPROVISIONING (the sweep skips it; a check on demand is recorded as
// history and does not change the state); a deprovision that is canceled
// hands it back as UNVERIFIED, and a later deprovision removes it.
func TestDeprovisionOwnsTheState(t *testing.T) {
	t.Parallel()
	f := newProvisionFixture(t, true)
	_, in := f.provisioned(t, &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER})
	// Deleting the service principal fails until the fault is lifted, so
	// the operation cannot end on its own.
	f.sim.Admin().SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{
		"graph.servicePrincipals.delete": {ServerErrors: &faults.ServerErrors{Rate: 1, Status: 500}}}}})
	op := f.deprovision(t, in.GetName(), false, "")
	integrations := f.s.Clients().Integrations
	got, err := integrations.GetIntegration(f.viewer(t), &v1.GetIntegrationRequest{Name: in.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetIntegration().GetState() != v1.IntegrationState_INTEGRATION_STATE_DEPROVISIONING {
		t.Fatalf("state %v while the deprovision runs, want DEPROVISIONING", got.GetIntegration().GetState())
	}
	checked, err := integrations.CheckIntegration(f.operator(t), &v1.CheckIntegrationRequest{Name: in.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if checked.GetIntegration().GetState() != v1.IntegrationState_INTEGRATION_STATE_DEPROVISIONING {
		t.Fatalf("a check on demand changed the state to %v during the deprovision", checked.GetIntegration().GetState())
	}
	if _, err := f.ops.CancelOperation(f.operator(t), &v1.CancelOperationRequest{Name: op.GetName()}); err != nil {
		t.Fatal(err)
	}
	if done := f.wait(t, op.GetName()); done.GetState() != v1.OperationState_OPERATION_STATE_CANCELED {
		t.Fatalf("after cancel: %v", done)
	}
	got, err = integrations.GetIntegration(f.viewer(t), &v1.GetIntegrationRequest{Name: in.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	// UNVERIFIED, or already a check's outcome if the sweep got to it.
	if st := got.GetIntegration().GetState(); st == v1.IntegrationState_INTEGRATION_STATE_DEPROVISIONING ||
		st == v1.IntegrationState_INTEGRATION_STATE_PROVISIONING || st == v1.IntegrationState_INTEGRATION_STATE_UNSPECIFIED {
		t.Fatalf("state %v after a canceled deprovision, want it handed back to the checks", st)
	}
	f.sim.Admin().SetFaults(faults.Config{})
	if dep := f.wait(t, f.deprovision(t, in.GetName(), false, "").GetName()); dep.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("deprovision: %v\nlogs:\n%s", dep, f.s.Logs.String())
	}
}
