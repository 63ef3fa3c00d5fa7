package msftsim_test

import (
	"testing"

	"github.com/microsoftgraph/msgraph-sdk-go/applications"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// TestGraphDeletedItems: deleting an application (as an OwnedBy owner)
// soft-deletes it and its service principal into deleted items; its appId
// refuses tokens (AADSTS700016); it keeps its uniqueName until purged; only
// its owner (an OwnedBy caller) may purge it; a purge is 204, then 404.
func TestGraphDeletedItems(t *testing.T) {
	e := newEnv(t)
	owned := []string{"Application.ReadWrite.OwnedBy", "Application.Read.All", "AppRoleAssignment.ReadWrite.All"}
	p, _ := e.provisioner(owned)
	other, _ := e.provisioner(owned)
	g, og := e.graph(e.credFor(p)), e.graph(e.credFor(other))
	ctx := t.Context()

	app, err := uniqueNamePatch(g, t, "dzconnect-deleted", true)
	if err != nil {
		t.Fatal(err)
	}
	objID, appID := *app.GetId(), *app.GetAppId()
	sp := models.NewServicePrincipal()
	sp.SetAppId(&appID)
	created, err := g.ServicePrincipals().Post(ctx, sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	spID := *created.GetId()
	pw := models.NewPasswordCredential()
	pw.SetDisplayName(ptr("dzconnect"))
	body := applications.NewItemAddPasswordPostRequestBody()
	body.SetPasswordCredential(pw)
	secret, err := g.Applications().ByApplicationId(objID).AddPassword().Post(ctx, body, nil)
	if err != nil {
		t.Fatal(err)
	}
	cred := e.secretCred(e.tenant, appID, *secret.GetSecretText())
	if _, err := e.token(cred, msftsim.ResourceGraph); err != nil {
		t.Fatalf("token before delete: %v", err)
	}

	// Another OwnedBy caller may not delete it; the owner may.
	err = og.Applications().ByApplicationId(objID).Delete(ctx, nil)
	_ = odata(t, err, 403, "Authorization_RequestDenied")
	if err := g.Applications().ByApplicationId(objID).Delete(ctx, nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = e.token(e.secretCred(e.tenant, appID, *secret.GetSecretText()), msftsim.ResourceGraph)
	aadsts(t, err, 700016)

	// In deleted items, with deletedDateTime; the SP too.
	apps, err := g.Directory().DeletedItems().GraphApplication().Get(ctx, nil)
	if err != nil || len(apps.GetValue()) != 1 || *apps.GetValue()[0].GetId() != objID || apps.GetValue()[0].GetDeletedDateTime() == nil ||
		*apps.GetValue()[0].GetUniqueName() != "dzconnect-deleted" {
		t.Fatalf("deleted applications: %v", err)
	}
	sps, err := g.Directory().DeletedItems().GraphServicePrincipal().Get(ctx, nil)
	if err != nil || len(sps.GetValue()) != 1 || *sps.GetValue()[0].GetId() != spID {
		t.Fatalf("deleted service principals: %v", err)
	}
	item, err := g.Directory().DeletedItems().ByDirectoryObjectId(objID).Get(ctx, nil)
	if err != nil || *item.GetId() != objID || item.GetOdataType() == nil || *item.GetOdataType() != "#microsoft.graph.application" {
		t.Fatalf("deleted item: %v", err)
	}

	// The uniqueName is held while it is in deleted items.
	_, err = uniqueNamePatch(g, t, "dzconnect-deleted", true)
	_ = odata(t, err, 400, "Request_BadRequest")

	// Purge: only the owner; 204, then 404; the name is free again.
	err = og.Directory().DeletedItems().ByDirectoryObjectId(objID).Delete(ctx, nil)
	_ = odata(t, err, 403, "Authorization_RequestDenied")
	for _, id := range []string{spID, objID} {
		if err := g.Directory().DeletedItems().ByDirectoryObjectId(id).Delete(ctx, nil); err != nil {
			t.Fatalf("purge %s: %v", id, err)
		}
	}
	err = g.Directory().DeletedItems().ByDirectoryObjectId(objID).Delete(ctx, nil)
	_ = odata(t, err, 404, "Request_ResourceNotFound")
	if items, err := e.admin.DeletedItems(e.tenant); err != nil || len(items) != 0 {
		t.Fatalf("deleted items after purge: %+v, %v", items, err)
	}
	if _, err := uniqueNamePatch(g, t, "dzconnect-deleted", true); err != nil {
		t.Fatalf("uniqueName after purge: %v", err)
	}
}

// TestGraphDeletedReleasesUniqueName: with the release option a
// soft-deleted application's uniqueName is free at once.
func TestGraphDeletedReleasesUniqueName(t *testing.T) {
	e := newEnv(t)
	e.admin.SetSoftDeleteReleasesUniqueName(true)
	p, _ := e.provisioner(provisionerRoles)
	g := e.graph(e.credFor(p))
	app, err := uniqueNamePatch(g, t, "dzconnect-released", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Applications().ByApplicationId(*app.GetId()).Delete(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := uniqueNamePatch(g, t, "dzconnect-released", true); err != nil {
		t.Fatalf("uniqueName after delete with release: %v", err)
	}
}
