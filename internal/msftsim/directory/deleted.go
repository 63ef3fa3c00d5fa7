package directory

import (
	"slices"
	"strings"
	"time"
)

// DeletedRetention is how long Entra keeps a soft-deleted application or
// service principal in deleted items before deleting it for good (30
// days, on the sim clock) [Graph: directory resource type].
const DeletedRetention = 30 * 24 * time.Hour

// deletedItem is an application or service principal in the tenant's
// deleted items ("/directory/deletedItems"). Exactly one of App and SP is
// set.
type deletedItem struct {
	App     *Application
	SP      *ServicePrincipal
	Deleted time.Time
}

// live reports whether the item is still in deleted items at now (not yet
// past the retention).
func (i *deletedItem) live(now time.Time) bool { return now.Before(i.Deleted.Add(DeletedRetention)) }

// DeletedObject is a soft-deleted application or service principal as
// GET /directory/deletedItems answers it.
type DeletedObject struct {
	Type    string // "application" or "servicePrincipal"
	App     Application
	SP      ServicePrincipal
	Deleted time.Time
}

// ID is the deleted object's ID.
func (o DeletedObject) ID() string {
	if o.Type == "application" {
		return o.App.ID
	}
	return o.SP.ID
}

func (i *deletedItem) object() DeletedObject {
	if i.App != nil {
		return DeletedObject{Type: "application", App: i.App.snapshot(), Deleted: i.Deleted}
	}
	return DeletedObject{Type: "servicePrincipal", SP: i.SP.snapshot(), Deleted: i.Deleted}
}

// SetSoftDeleteReleasesUniqueName decides whether a soft-deleted
// application still holds its uniqueName (false, the default: a new
// application with the same uniqueName is refused until the deleted one is
// purged or its 30 days pass, as reported by a third party; no Microsoft
// page says either way) or releases it at once (true).
func (d *Directory) SetSoftDeleteReleasesUniqueName(release bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.releaseUniqueName = release
}

// uniqueNameHeldLocked reports whether a live soft-deleted application of
// t holds name.
func (d *Directory) uniqueNameHeldLocked(t *Tenant, name string, now time.Time) bool {
	if d.releaseUniqueName {
		return false
	}
	for _, it := range t.deleted {
		if it.App != nil && it.live(now) && it.App.UniqueName != "" && strings.EqualFold(it.App.UniqueName, name) {
			return true
		}
	}
	return false
}

// softDeleteAppLocked moves a to deleted items; its service principal
// (deleting an app registration deletes its enterprise application) goes
// there too. The appId stops resolving, so token requests with it fail
// with AADSTS700016.
func (d *Directory) softDeleteAppLocked(t *Tenant, a *Application, now time.Time) {
	delete(t.apps, a.ID)
	delete(t.appsByAppID, a.AppID)
	t.deleted[a.ID] = &deletedItem{App: a, Deleted: now}
	if sp := t.spsByAppID[a.AppID]; sp != nil {
		d.softDeleteSPLocked(t, sp, now)
	}
}

// softDeleteSPLocked moves sp to deleted items; its app role assignments
// are removed (a restore would not bring them back in the simulator).
func (d *Directory) softDeleteSPLocked(t *Tenant, sp *ServicePrincipal, now time.Time) {
	d.deleteSPLocked(t, sp)
	t.deleted[sp.ID] = &deletedItem{SP: sp, Deleted: now}
}

// ownsDeleted reports whether caller c may purge it: any caller with
// Application.ReadWrite.All; an OwnedBy caller for an application it owns,
// or the service principal of one (live or deleted).
func (d *Directory) ownsDeleted(t *Tenant, it *deletedItem, c Caller) bool {
	if !c.OwnedByOnly {
		return true
	}
	if it.App != nil {
		return slices.Contains(it.App.OwnerIDs, c.SPID)
	}
	if a := t.appsByAppID[it.SP.AppID]; a != nil {
		return slices.Contains(a.OwnerIDs, c.SPID)
	}
	for _, x := range t.deleted {
		if x.App != nil && strings.EqualFold(x.App.AppID, it.SP.AppID) {
			return slices.Contains(x.App.OwnerIDs, c.SPID)
		}
	}
	return false
}

// ListDeleted lists the tenant's live deleted items of typ ("application"
// or "servicePrincipal"), most recently deleted first.
func (d *Directory) ListDeleted(tenant, typ string) ([]DeletedObject, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return nil, err
	}
	now := d.clock.Now()
	var out []DeletedObject
	for _, it := range t.deleted {
		if it.live(now) && ((typ == "application") == (it.App != nil)) {
			out = append(out, it.object())
		}
	}
	slices.SortFunc(out, func(x, y DeletedObject) int {
		if c := y.Deleted.Compare(x.Deleted); c != 0 {
			return c
		}
		return strings.Compare(x.ID(), y.ID())
	})
	return out, nil
}

// GetDeleted reads one deleted item (404 when absent or past retention).
func (d *Directory) GetDeleted(tenant, id string) (DeletedObject, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return DeletedObject{}, err
	}
	it := t.deleted[strings.ToLower(id)]
	if it == nil || !it.live(d.clock.Now()) {
		return DeletedObject{}, notFound(id)
	}
	return it.object(), nil
}

// PurgeDeleted permanently deletes a deleted item (DELETE
// /directory/deletedItems/{id}): it cannot be restored, and an
// application's uniqueName is free again. An OwnedBy caller may purge only
// what it owns (403 otherwise); 404 when absent.
func (d *Directory) PurgeDeleted(tenant, id string, c Caller) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return err
	}
	key := strings.ToLower(id)
	it := t.deleted[key]
	if it == nil || !it.live(d.clock.Now()) {
		return notFound(id)
	}
	if !d.ownsDeleted(t, it, c) {
		return errf(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
	}
	delete(t.deleted, key)
	return nil
}
