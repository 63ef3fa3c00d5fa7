package microsoft

import (
	"context"

	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// PurgeDeletedItem permanently deletes a soft-deleted application or
// service principal from the tenant's deleted items:
//
//	DELETE /directory/deletedItems/{id}
//
// 204; afterwards it cannot be restored. Application.ReadWrite.OwnedBy
// suffices for the caller's own applications and their service
// principals (Graph "Permanently delete an item"). Idempotent: an item
// already gone (or never deleted) is success.
func (d *Directory) PurgeDeletedItem(ctx context.Context, objectID string) error {
	const op = "DELETE /directory/deletedItems/{id}"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return err
	}
	if err := g.Directory().DeletedItems().ByDirectoryObjectId(objectID).Delete(ctx, nil); err != nil &&
		!IsClass(gerr(op, err), mserr.ClassNotFound) {
		return gerr(op, err)
	}
	return nil
}

// SetApplicationNotes replaces the application's notes:
//
//	PATCH /applications/{objectId}  {"notes": "..."}
//
// Idempotent: the same PATCH twice leaves the same notes.
func (d *Directory) SetApplicationNotes(ctx context.Context, objectID, notes string) error {
	const op = "PATCH /applications/{id}"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return err
	}
	body := models.NewApplication()
	body.SetNotes(&notes)
	if _, err := g.Applications().ByApplicationId(objectID).Patch(ctx, body, nil); err != nil {
		return gerr(op, err)
	}
	return nil
}
