package microsoft_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

func TestDefaultClouds(t *testing.T) {
	d := microsoft.DefaultClouds()
	for _, tc := range []struct {
		cloud          string
		api            microsoft.API
		scope          string
		graph, arm, la string
	}{
		{microsoft.CloudGlobal, microsoft.APIGraph, "https://graph.microsoft.com/.default", "https://graph.microsoft.com/v1.0", "https://management.azure.com", "https://api.loganalytics.io"},
		{microsoft.CloudGCCHigh, microsoft.APIGraph, "https://graph.microsoft.us/.default", "https://graph.microsoft.us/v1.0", "https://management.usgovcloudapi.net", "https://api.loganalytics.us"},
		{microsoft.CloudDoD, microsoft.APIGraph, "https://dod-graph.microsoft.us/.default", "https://dod-graph.microsoft.us/v1.0", "https://management.usgovcloudapi.net", "https://api.loganalytics.us"},
		{microsoft.CloudChina, microsoft.APIGraph, "https://microsoftgraph.chinacloudapi.cn/.default", "https://microsoftgraph.chinacloudapi.cn/v1.0", "https://management.chinacloudapi.cn", "https://api.loganalytics.azure.cn"},
		{microsoft.CloudGCCHigh, microsoft.APILogAnalytics, "https://api.loganalytics.us/.default", "https://graph.microsoft.us/v1.0", "https://management.usgovcloudapi.net", "https://api.loganalytics.us"},
		{microsoft.CloudGlobal, microsoft.APICloudApps, "05a65629-4c1b-48c1-a78b-804c4abdd4af/.default", "https://graph.microsoft.com/v1.0", "https://management.azure.com", "https://api.loganalytics.io"},
	} {
		ep := d[tc.cloud]
		if got := ep.Scope(tc.api); got != tc.scope || ep.Graph != tc.graph || ep.ARM != tc.arm || ep.LogAnalytics != tc.la {
			t.Errorf("%s %s: scope %q graph %q arm %q la %q", tc.cloud, tc.api, got, ep.Graph, ep.ARM, ep.LogAnalytics)
		}
	}
	if d[microsoft.CloudGCCHigh].Authority != "https://login.microsoftonline.us/" || d[microsoft.CloudChina].Authority != "https://login.partner.microsoftonline.cn/" {
		t.Errorf("authorities: %+v", d)
	}
	if _, err := microsoft.New(microsoft.Config{}); err != nil {
		t.Fatalf("New with defaults: %v", err)
	}
	// Defender for Endpoint: Microsoft's documented base URI, while the
	// token audience stays the securitycenter one (as msftsim's).
	if g := d[microsoft.CloudGlobal]; g.Defender != "https://api.security.microsoft.com" ||
		g.Scope(microsoft.APIDefender) != "https://api.securitycenter.microsoft.com/.default" ||
		msftsim.ResourceDefender+"/.default" != g.Scope(microsoft.APIDefender) {
		t.Errorf("global Defender: %q scope %q", g.Defender, g.Scope(microsoft.APIDefender))
	}
	if g := d[microsoft.CloudGCCHigh]; g.Defender != "https://api-gov.securitycenter.microsoft.us" {
		t.Errorf("GCC High Defender: %q", g.Defender)
	}
	// US Government GCC (moderate): global sign-in, Graph and ARM;
	// Defender for Endpoint's GCC host (learn.microsoft.com/defender-endpoint/gov#api).
	if g := d[microsoft.CloudGCC]; g.Authority != "https://login.microsoftonline.com/" || g.Graph != "https://graph.microsoft.com/v1.0" ||
		g.Scope(microsoft.APIGraph) != "https://graph.microsoft.com/.default" || g.ARM != "https://management.azure.com" ||
		g.Defender != "https://api-gcc.securitycenter.microsoft.us" || g.Scope(microsoft.APIDefender) != "https://api-gcc.securitycenter.microsoft.us/.default" {
		t.Errorf("GCC: %+v", g)
	}
	if _, err := microsoft.New(microsoft.Config{Clouds: d}); err != nil {
		t.Fatalf("New with the five clouds: %v", err)
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "endpoints.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadEndpointsFileCloudEntries(t *testing.T) {
	p := writeFile(t, `{
	  "*": {"authority": "https://sim.test:8443/", "audiences": {"logAnalytics": "https://la.sim"}},
	  "global": {"graph": "https://graph.sim/v1.0"},
	  "us-gov-gcc-high": {"arm": "https://arm.gov.sim"},
	  "private": {"graph": "https://graph.private/v1.0"}
	}`)
	c, err := microsoft.LoadEndpointsFile(p)
	if err != nil {
		t.Fatal(err)
	}
	g, h, pr := c[microsoft.CloudGlobal], c[microsoft.CloudGCCHigh], c["private"]
	switch {
	case g.Authority != "https://sim.test:8443/" || h.Authority != "https://sim.test:8443/" || c[microsoft.CloudChina].Authority != "https://sim.test:8443/":
		t.Errorf("* authority not applied: %+v", c)
	case g.Graph != "https://graph.sim/v1.0" || h.Graph != "https://graph.microsoft.us/v1.0":
		t.Errorf("graph: %q %q", g.Graph, h.Graph)
	case h.ARM != "https://arm.gov.sim" || g.ARM != "https://management.azure.com":
		t.Errorf("arm: %q %q", h.ARM, g.ARM)
	case g.Scope(microsoft.APILogAnalytics) != "https://la.sim/.default" || g.Scope(microsoft.APIGraph) != "https://graph.microsoft.com/.default":
		t.Errorf("audiences merge: %v", g.Audiences)
	case h.Scope(microsoft.APIGraph) != "https://graph.microsoft.us/.default":
		t.Errorf("gcc high graph scope %q", h.Scope(microsoft.APIGraph))
	case pr.Graph != "https://graph.private/v1.0" || pr.Authority != "https://sim.test:8443/":
		t.Errorf("new cloud: %+v", pr)
	}
	if d := microsoft.DefaultClouds()[microsoft.CloudGlobal]; d.Authority != "https://login.microsoftonline.com/" {
		t.Errorf("defaults modified: %+v", d)
	}
}

func TestLoadEndpointsFileMsftsimShape(t *testing.T) {
	p := writeFile(t, `{"base":"https://127.0.0.1:9","authority":"https://127.0.0.1:9/","graph":"https://127.0.0.1:9/v1.0",
	  "arm":"https://127.0.0.1:9/arm","logAnalytics":"https://127.0.0.1:9/loganalytics","defender":"https://127.0.0.1:9/defender",
	  "admin":"https://127.0.0.1:9/_sim","host":"127.0.0.1",
	  "audiences":{"graph":"https://graph.microsoft.com","arm":"https://management.azure.com","logAnalytics":"https://api.loganalytics.io",
	    "defender":"https://api.securitycenter.microsoft.com","exchange":"https://outlook.office365.com","cloudApps":"05a65629-4c1b-48c1-a78b-804c4abdd4af"}}`)
	c, err := microsoft.LoadEndpointsFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{microsoft.CloudGlobal, microsoft.CloudGCCHigh, microsoft.CloudDoD, microsoft.CloudChina} {
		ep := c[name]
		if ep.Authority != "https://127.0.0.1:9/" || ep.Graph != "https://127.0.0.1:9/v1.0" || ep.ARM != "https://127.0.0.1:9/arm" ||
			ep.Defender != "https://127.0.0.1:9/defender" || ep.Scope(microsoft.APIGraph) != "https://graph.microsoft.com/.default" ||
			ep.Scope(microsoft.APICloudApps) != "05a65629-4c1b-48c1-a78b-804c4abdd4af/.default" {
			t.Errorf("%s: %+v", name, ep)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := microsoft.LoadEndpointsFile(writeFile(t, `{"*": 3}`)); err == nil {
		t.Error("bad entry accepted")
	}
	if _, err := microsoft.LoadEndpointsFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
	clouds := microsoft.DefaultClouds()
	g := clouds[microsoft.CloudGlobal]
	g.Graph = "http://graph.example/v1.0"
	clouds[microsoft.CloudGlobal] = g
	if _, err := microsoft.New(microsoft.Config{Clouds: clouds}); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("plain http endpoint accepted: %v", err)
	}
	if _, err := microsoft.New(microsoft.Config{ExtraCAFile: filepath.Join(t.TempDir(), "none.pem")}); err == nil {
		t.Error("missing CA file accepted")
	}
	if _, err := microsoft.New(microsoft.Config{ExtraCAFile: writeFile(t, "not pem")}); err == nil {
		t.Error("CA file without PEM accepted")
	}
	c, err := microsoft.New(microsoft.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.NewSession(microsoft.Credentials{Cloud: "mars", TenantID: "t", ClientID: "c", Secret: "s"})
	var me *mserr.Error
	if !errors.As(err, &me) || me.Class != mserr.ClassNotConfigured {
		t.Errorf("unknown cloud: %v", err)
	}
}
