package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// Failsafe is what Patroni's failsafe endpoints need from the agent
// (patroni-compat.md §2.4; docs/architecture.md "Failsafe mode").
type Failsafe interface {
	// AcceptFailsafe answers a leader's POST /failsafe (body: Patroni's
	// JSON {name, conn_url, api_url}): 200 "Accepted" after recording the
	// call, else Patroni's code and text. It must not block.
	AcceptFailsafe(ctx context.Context, body []byte) (code int, text string)
	// FailsafeTopology is the failsafe key (member name → api_url);
	// ErrNotFound (wrapped) when there is none.
	FailsafeTopology(ctx context.Context) (map[string]string, error)
}

// failsafeRoutes adds POST and GET /failsafe.
func (s *Server) failsafeRoutes(r chi.Router) {
	r.Post("/failsafe", s.postFailsafe)
	r.Get("/failsafe", closeOnBody(s.getFailsafe))
}

// postFailsafe: a leader in failsafe mode asks whether it may go on. The
// write guard (checkAccess) applies, as to every POST.
func (s *Server) postFailsafe(w http.ResponseWriter, r *http.Request) {
	if s.failsafe == nil {
		notAvailable(w, r, "failsafe not available")
		return
	}
	var body json.RawMessage
	if err := DecodeJSON(r, &body); err != nil {
		writeRequestError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.backendTimeout)
	defer cancel()
	code, text := s.failsafe.AcceptFailsafe(ctx, body)
	writeText(w, code, text)
}

// getFailsafe serves the failsafe key as JSON; 502 when there is none
// (Patroni's answer when failsafe_mode is not on).
func (s *Server) getFailsafe(w http.ResponseWriter, r *http.Request) {
	if s.failsafe == nil {
		notAvailable(w, r, "failsafe not available")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.backendTimeout)
	defer cancel()
	m, err := s.failsafe.FailsafeTopology(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		WriteError(w, http.StatusBadGateway, err.Error())
	case err != nil:
		s.backendFailed(w, "failsafe", err)
	default:
		writeJSON(w, http.StatusOK, m)
	}
}
