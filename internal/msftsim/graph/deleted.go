package graph

import (
	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
)

// Deleted items (soft-deleted applications and service principals):
//
//	GET    /directory/deletedItems/microsoft.graph.application       list (Application.Read.All, least)
//	GET    /directory/deletedItems/microsoft.graph.servicePrincipal  list
//	GET    /directory/deletedItems/{id}                               one, with "@odata.type" and deletedDateTime
//	DELETE /directory/deletedItems/{id}                               204; Application.ReadWrite.OwnedBy suffices for own apps
//
// Shapes from Microsoft Graph "List deletedItems", "Get deleted item" and
// "Permanently delete an item" (docs/msftsim.md).

func (s *Server) deletedJSON(o directory.DeletedObject, domain string) map[string]any {
	var m map[string]any
	if o.Type == "application" {
		m = s.appJSON(o.App, domain)
	} else {
		m = s.spJSON(o.SP)
	}
	m["deletedDateTime"] = graphTime(o.Deleted)
	return m
}

func (s *Server) listDeleted(typ string) func(*call) {
	return func(c *call) {
		items, err := s.Dir.ListDeleted(c.tenant, typ)
		if err != nil {
			c.failErr(err)
			return
		}
		dom := c.domain()
		c.pageOf("directory/deletedItems/microsoft.graph."+typ, len(items), func(i int) map[string]any {
			return s.deletedJSON(items[i], dom)
		})
	}
}

func (s *Server) getDeleted(c *call) {
	o, err := s.Dir.GetDeleted(c.tenant, c.segs[2])
	if err != nil {
		c.failErr(err)
		return
	}
	m := s.deletedJSON(o, c.domain())
	m["@odata.type"] = "#microsoft.graph." + o.Type
	c.entity(200, "directory/deletedItems/$entity", m)
}

func (s *Server) purgeDeleted(c *call) {
	if err := s.Dir.PurgeDeleted(c.tenant, c.segs[2], c.caller()); err != nil {
		c.failErr(err)
		return
	}
	c.noContent()
}
