package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/crashpoint"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/simtest"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/provision"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// The kill test (issue 8 item 4): a real `dzconnect serve` process, built
// from cmd/dzconnect, runs a Sentinel provision with a certificate (so
// every step but directory-role does its work) against Postgres, Vault and msftsim over TLS,
// and is SIGKILLed at named points (internal/crashpoint: the process
// kills itself exactly there when DZCONNECT_TEST_CRASH_AT names the
// point; no timing). After each kill a new process starts with a short
// operation lease and janitor interval, takes the operation over and
// runs on to the next point. Each chain below is one provision; each of
// its points is a subtest, in step order. After every kill the directory
// holds no duplicate; at the end the operation has succeeded with
// exactly one application, one service principal, one grant per catalog
// permission, one Sentinel role assignment, one certificate, one live
// dzconnect password, and the secret Entra holds is the one in Vault.
// The matrix is in docs/provisioning.md ("Crash safety: the kill test").

// directory-role has no kill points: without a feature that needs a
// directory role (Sentinel has none) it is recorded skipped with the step
// before it (its SkipIf), never run.
var killSteps = []string{
	provision.StepPolicy, provision.StepResources, provision.StepApplication, provision.StepServicePrincipal,
	provision.StepPermissions, provision.StepSentinelRole, provision.StepClientSecret,
	provision.StepCertificate, provision.StepVerify,
}

// lastRecord is the kill point after the last step's record, which also
// ends the operation (one transaction: docs/operations.md): the operation
// may be seen succeeded before the kill lands.
var lastRecord = crashpoint.Name(provision.KindName, provision.StepVerify, "recorded")

// killChains are the kill points, one provision per chain.
func killChains() []struct {
	name   string
	points []string
} {
	var boundaries, unrecorded []string
	for _, s := range killSteps {
		// After the step's record committed, before the next step starts.
		boundaries = append(boundaries, crashpoint.Name(provision.KindName, s, "recorded"))
		// The step's work done (every Microsoft call made), its record not.
		unrecorded = append(unrecorded, crashpoint.Name(provision.KindName, s, "returned"))
	}
	p := func(step, where string) string { return crashpoint.Name(provision.KindName, step, where) }
	return []struct {
		name   string
		points []string
	}{
		{"boundaries", boundaries},
		{"before-record", unrecorded},
		{"after-call", []string{
			p(provision.StepApplication, "after_call"),      // app made, IDs not on the row
			p(provision.StepServicePrincipal, "after_call"), // SP made, not on the row
			p(provision.StepPermissions, "after_call"),      // first grant made, the rest not
			p(provision.StepSentinelRole, "after_call"),     // Azure role assigned, workspace ID not on the row
			p(provision.StepClientSecret, "after_call"),     // password in Entra only (its value lost)
			p(provision.StepClientSecret, "after_vault"),    // password in Entra and Vault, no credential row
			p(provision.StepCertificate, "after_call"),      // key added, not recorded
		}},
	}
}

func TestProvisionKill(t *testing.T) {
	t.Parallel()
	bin := serveBinary(t)
	for _, chain := range killChains() {
		t.Run(chain.name, func(t *testing.T) {
			t.Parallel()
			k := newKillFixture(t, bin)
			var opName string
			for i, point := range chain.points {
				ok := t.Run(point, func(t *testing.T) {
					p := k.start(t, point)
					if i == 0 {
						opName = k.provision(t, p)
					}
					k.waitKilled(t, p, opName, point)
					k.assertNoDuplicates(t, opName)
				})
				if !ok {
					t.FailNow()
				}
			}
			t.Run("resume", func(t *testing.T) {
				p := k.start(t, "")
				k.waitDone(t, p, opName)
				k.assertProvisioned(t, p, opName)
			})
		})
	}
}

// serveBinary builds cmd/dzconnect once per test binary.
var serveBuild struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// removeServeBinary deletes the built binary's directory, if one was made.
func removeServeBinary() {
	if serveBuild.path != "" {
		_ = os.RemoveAll(filepath.Dir(serveBuild.path))
	}
}

func serveBinary(t *testing.T) string {
	t.Helper()
	serveBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "dzconnect-kill-")
		if err != nil {
			serveBuild.err = err
			return
		}
		serveBuild.path = filepath.Join(dir, "dzconnect")
		cmd := exec.Command("go", "build", "-o", serveBuild.path, "github.com/dropzoneai/dzconnect/cmd/dzconnect")
		serveBuild.out, serveBuild.err = cmd.CombinedOutput()
	})
	if serveBuild.err != nil {
		t.Fatalf("building dzconnect: %v\n%s", serveBuild.err, serveBuild.out)
	}
	return serveBuild.path
}

// killFixture: msftsim with a customer tenant, a Sentinel workspace and
// the provisioner consented (with the Azure role to assign roles there),
// set up through an in-process server that is stopped before the first
// serve process starts; then serve processes on the same Postgres and
// Vault, one at a time.
type killFixture struct {
	provisionFixture
	bin   string
	scope string
	armID string
	cert  string
}

func newKillFixture(t *testing.T, bin string) *killFixture {
	t.Helper()
	sim := stack.StartSim(t)
	s := stack.Start(t, stack.Options{ExtraArgs: stack.SimArgs(sim)})
	f := provisionFixture{consentFixture: consentFixture{s: s, sim: sim}}
	prov, err := sim.Admin().RegisterProvisioner(uuid.NewString(), msftsim.AppRequest{DisplayName: "Provisioner",
		RequestedRoles: simtest.ProvisionerRoles})
	if err != nil {
		t.Fatal(err)
	}
	f.org = s.NewOrg(t, "Kill")
	if _, err := s.Clients().Orgs.SetOrganizationProvisioner(f.org.AdminCtx, &v1.SetOrganizationProvisionerRequest{
		Name: f.org.Name, ClientId: prov.ClientID, ClientSecret: prov.ClientSecret}); err != nil {
		t.Fatal(err)
	}
	f.consentFixture.prov = prov
	f.tenant, f.simTID = f.newCustomer(t, f.org)
	link := f.link(t, f.operator(t), f.tenant)
	if _, err := s.Clients().Tenants.CompleteAdminConsent(f.operator(t), completeReq(f.org.Name, f.follow(t, link.GetUrl()))); err != nil {
		t.Fatal(err)
	}
	sp, ok := sim.Admin().ServicePrincipalID(f.simTID, prov.ClientID)
	if !ok {
		t.Fatal("no provisioner service principal")
	}
	f.provSP = sp
	sub := uuid.NewString()
	if _, err := sim.Admin().AddWorkspace(f.simTID, msftsim.Workspace{SubscriptionID: sub, ResourceGroup: "rg-sentinel", Name: "ws-sentinel"}); err != nil {
		t.Fatal(err)
	}
	k := &killFixture{provisionFixture: f, bin: bin, scope: "/subscriptions/" + sub + "/resourceGroups/rg-sentinel", cert: testCertificatePEM(t)}
	k.armID = k.scope + "/providers/Microsoft.OperationalInsights/workspaces/ws-sentinel"
	if err := sim.Admin().GrantAzureRole(f.simTID, msftsim.AzureRole{Scope: k.scope, Role: "User Access Administrator"}, f.provSP); err != nil {
		t.Fatal(err)
	}
	// From here on only serve processes run dzconnect (a graceful stop:
	// River resigns its leadership).
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	return k
}

// serveProcess is one `dzconnect serve` child process.
type serveProcess struct {
	cmd    *exec.Cmd
	addr   string
	out    *stack.Logs
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// start runs a serve process that dies at point ("": none), after River's
// leader row of the process killed before it is gone (River expires it
// 15 s after the dead leader's last election; the test deletes it at
// once, as nothing else holds it).
func (k *killFixture) start(t *testing.T, point string) *serveProcess {
	t.Helper()
	if _, err := k.s.DB.Exec(context.Background(), `delete from river_leader`); err != nil {
		t.Fatal(err)
	}
	// The process picks its own port and logs it ("serving"): a port
	// picked here and closed could be taken by another test's connection
	// before the process binds it (seen once in CI: "address already in
	// use").
	p := &serveProcess{out: &stack.Logs{}, exited: make(chan struct{})}
	p.cmd = exec.Command(k.bin, "serve",
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--internal-addr", "127.0.0.1:0",
		"--database-url", k.s.DatabaseURL, "--migrate-on-start=false",
		"--vault-addr", k.s.Vault.Addr, "--vault-mount", k.s.Vault.Mount, "--vault-token", k.s.Vault.Token,
		"--admin-key", k.s.AdminKey, "--log-level", "debug", "--shutdown-timeout", "5s",
		"--microsoft-endpoints-file", stack.SimEndpointsFile(k.sim), "--jobs=true",
		// Takeover of a dead process's operation in about 3 s.
		"--operation-lease", "2s", "--operation-janitor-interval", "1s")
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DZCONNECT_") {
			env = append(env, kv)
		}
	}
	if point != "" {
		env = append(env, crashpoint.Env+"="+point)
	}
	p.cmd.Env = env
	serving := &servingWatcher{addr: make(chan string, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, io.MultiWriter(p.out, serving) // the log is on stderr
	// Dies with the test binary, whatever happens to it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case p.addr = <-serving.addr:
	case <-p.exited:
		t.Fatalf("serve process exited before serving: %v\n%s", p.err, tail(p.out.String(), 4000))
	case <-time.After(2 * time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Fatalf("serve process not serving after 2 minutes:\n%s", tail(p.out.String(), 4000))
	}
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("serve process (crash point %q) output:\n%s", point, tail(p.out.String(), 12000))
		}
	})
	return p
}

// servingWatcher reads a serve process's log lines and sends the gRPC
// address of its "serving" line.
type servingWatcher struct {
	mu   sync.Mutex
	buf  []byte
	addr chan string
	sent bool
}

func (w *servingWatcher) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sent {
		return len(b), nil
	}
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := w.buf[:i]
		w.buf = w.buf[i+1:]
		var l struct {
			Msg      string `json:"msg"`
			GRPCAddr string `json:"grpc_addr"`
		}
		if json.Unmarshal(line, &l) == nil && l.Msg == "serving" && l.GRPCAddr != "" {
			w.addr <- l.GRPCAddr
			w.sent, w.buf = true, nil
			return len(b), nil
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// provision starts the provision through the process's API.
func (k *killFixture) provision(t *testing.T, p *serveProcess) string {
	t.Helper()
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := v1.NewProvisioningServiceClient(conn).ProvisionIntegration(k.operator(t), &v1.ProvisionIntegrationRequest{
		Parent: k.tenant, RequestId: uuid.NewString(),
		Spec: &v1.ProvisioningSpec{Kind: v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_SENTINEL,
			Workspace: &v1.ProvisioningWorkspace{ResourceId: k.armID}, CertificatePem: k.cert}},
		grpc.WaitForReady(true))
	if err == nil {
		return resp.GetOperation().GetName()
	}
	// A kill point right after the operation's first step may take the
	// process down before its answer is out; the operation is committed
	// then (it is the fixture's only one).
	select {
	case <-p.exited:
	case <-time.After(90 * time.Second):
		t.Fatalf("ProvisionIntegration: %v", err)
	}
	var org, id uuid.UUID
	if qerr := k.s.DB.QueryRow(context.Background(), `select organization_id, id from operations`).Scan(&org, &id); qerr != nil {
		t.Fatalf("ProvisionIntegration: %v; no operation: %v", err, qerr)
	}
	return operation.Name{Org: org, ID: id}.String()
}

// opState reads the operation's state from Postgres (the process that
// runs it may be dead).
func (k *killFixture) opState(t *testing.T, name string) string {
	t.Helper()
	n, err := operation.ParseName("name", name)
	if err != nil {
		t.Fatal(err)
	}
	var state string
	if err := k.s.DB.QueryRow(context.Background(), `select state from operations where organization_id = $1 and id = $2`,
		n.Org, n.ID).Scan(&state); err != nil {
		t.Fatal(err)
	}
	return state
}

// waitKilled waits until the process SIGKILLed itself at point; the
// operation ending first (the point was never reached) fails the test.
func (k *killFixture) waitKilled(t *testing.T, p *serveProcess, op, point string) {
	t.Helper()
	deadline := time.After(90 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond) // polling the operation's state, not waiting for it
	defer tick.Stop()
	for {
		select {
		case <-p.exited:
			var ee *exec.ExitError
			if !errors.As(p.err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the process ended with %v, want SIGKILL at %s", p.err, point)
			}
			if !strings.Contains(p.out.String(), "crashpoint: killing the process at "+point+"\n") {
				t.Fatalf("the process was killed, but not at %s", point)
			}
			return
		case <-tick.C:
			s := k.opState(t, op)
			if s == "succeeded" && point == lastRecord {
				continue // that record ended the operation; the kill follows it
			}
			if s != "running" && s != "pending" {
				t.Fatalf("operation %s while waiting for the kill at %s", s, point)
			}
		case <-deadline:
			t.Fatalf("the process did not reach %s within 90s", point)
		}
	}
}

// waitDone waits until the operation is done, with the process alive.
func (k *killFixture) waitDone(t *testing.T, p *serveProcess, op string) {
	t.Helper()
	deadline := time.After(90 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond) // polling the operation's state
	defer tick.Stop()
	for {
		select {
		case <-p.exited:
			t.Fatalf("the process ended: %v", p.err)
		case <-tick.C:
			if s := k.opState(t, op); s != "running" && s != "pending" {
				return
			}
		case <-deadline:
			t.Fatalf("operation %s still %s after 90s", op, k.opState(t, op))
		}
	}
}

// assertNoDuplicates: whatever the kill interrupted, msftsim holds at most
// one of everything the provision makes.
func (k *killFixture) assertNoDuplicates(t *testing.T, op string) {
	t.Helper()
	a := k.sim.Admin()
	apps, err := a.Applications(k.simTID, func(s msftsim.AppState) bool { return strings.HasPrefix(s.UniqueName, "dzconnect-") })
	if err != nil || len(apps) > 1 {
		t.Fatalf("%d dzconnect applications, %v", len(apps), err)
	}
	if len(apps) == 0 {
		return
	}
	app := apps[0]
	if n, err := a.ServicePrincipalsOf(k.simTID, app.AppID); err != nil || n > 1 {
		t.Fatalf("%d service principals, %v", n, err)
	}
	if len(app.Passwords) > 1 {
		t.Fatalf("%d passwords: %+v", len(app.Passwords), app.Passwords)
	}
	if len(app.KeyNames) > 1 {
		t.Fatalf("%d key credentials: %v", len(app.KeyNames), app.KeyNames)
	}
	sp, ok := a.ServicePrincipalID(k.simTID, app.AppID)
	if !ok {
		return
	}
	grants, err := a.AppRoleAssignments(k.simTID, sp)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, g := range grants {
		if seen[g.ResourceID+"|"+g.AppRoleID] {
			t.Fatalf("duplicate grant %s|%s", g.ResourceID, g.AppRoleID)
		}
		seen[g.ResourceID+"|"+g.AppRoleID] = true
	}
	if ras, err := a.RoleAssignments(k.simTID, k.scope, sp); err != nil || len(ras) > 1 {
		t.Fatalf("%d Azure role assignments, %v", len(ras), err)
	}
}

// assertProvisioned: the operation succeeded and the directory, Azure and
// Vault hold exactly what one provision makes.
func (k *killFixture) assertProvisioned(t *testing.T, p *serveProcess, opName string) {
	t.Helper()
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r, err := v1.NewOperationServiceClient(conn).GetOperation(k.viewer(t), &v1.GetOperationRequest{Name: opName}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	op := r.GetOperation()
	if op.GetState() != v1.OperationState_OPERATION_STATE_SUCCEEDED {
		t.Fatalf("operation %v", op)
	}
	reruns := []string{}
	for _, s := range op.GetMetadata().GetSteps() {
		if s.GetAttempts() > 1 {
			reruns = append(reruns, s.GetName())
		}
	}
	t.Logf("steps run again after a kill: %v", reruns)
	ir, err := v1.NewIntegrationServiceClient(conn).GetIntegration(k.viewer(t), &v1.GetIntegrationRequest{Name: op.GetTarget()})
	if err != nil {
		t.Fatal(err)
	}
	in := ir.GetIntegration()
	if in.GetState() != v1.IntegrationState_INTEGRATION_STATE_HEALTHY || in.GetSentinel().GetWorkspaceId() == "" {
		t.Fatalf("integration %v", in)
	}
	// One application, one SP, one grant per permission, one live
	// dzconnect password whose value is Vault's.
	app := k.assertDirectory(t, op, in, integration.KindSentinel)
	ras, err := k.sim.Admin().RoleAssignments(k.simTID, k.scope, in.GetApplication().GetServicePrincipalObjectId())
	if err != nil || len(ras) != 1 || !strings.HasSuffix(ras[0].RoleDefinitionID, provision.RoleDefinitions[provision.RoleReader].ID) {
		t.Fatalf("Azure role assignments %+v, %v", ras, err)
	}
	cert, err := provision.ParseCertificatePEM(k.cert)
	if err != nil {
		t.Fatal(err)
	}
	if len(app.KeyNames) != 1 || app.KeyNames[0] != "dzconnect "+cert.Thumbprint {
		t.Fatalf("key credentials %v, want the one certificate", app.KeyNames)
	}
	// Exactly one live credential row, and its Vault value is the
	// password's (assertDirectory compared them).
	var rows int
	if err := k.s.DB.QueryRow(context.Background(), `select count(*) from credentials where state = 'active'`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("%d active credentials, %v", rows, err)
	}
}

// testCertificatePEM is a self-signed public certificate.
func testCertificatePEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "dzconnect kill test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
