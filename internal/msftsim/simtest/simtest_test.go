package simtest_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/simtest"
)

func TestEnvWiring(t *testing.T) {
	e := simtest.New(t)
	// The provisioner can create an app in the customer tenant ...
	g := e.Graph(e.SecretCredential(e.Provisioner))
	app := models.NewApplication()
	app.SetDisplayName(ptr("Dropzone AI"))
	if _, err := g.Applications().Post(t.Context(), app, nil); err != nil {
		t.Fatalf("provisioner create app: %v", err)
	}
	// ... and a customer-made app can read users and get an ARM token.
	c := e.CustomerApp("User.Read.All")
	if _, err := e.Graph(e.SecretCredential(c)).Users().Get(t.Context(), nil); err != nil {
		t.Fatalf("users: %v", err)
	}
	if _, err := e.SecretCredential(c).GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{msftsim.ResourceARM + "/.default"}}); err != nil {
		t.Fatalf("ARM token: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
