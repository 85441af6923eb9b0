package testcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// commandTimeout bounds one Do: the agent bounds a switchover command at
// 10 s and Patroni's POST /switchover waits up to 20 s for a new leader;
// a shorter bound comes from ctx.
const commandTimeout = 30 * time.Second

var commandClient = &http.Client{Timeout: commandTimeout}

// Do sends a REST request to the node's API and returns the status code
// and body. body is sent as is when it is a []byte or a string, as JSON
// otherwise; nil sends no body. header holds extra header pairs (name,
// value, name, value…). Bound it with ctx; it gives up after 30 s anyway.
func (n *Node) Do(ctx context.Context, method, path string, body any, header ...string) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s on %s: encode body: %w", method, path, n.Name, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, n.APIURL+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s on %s: %w", method, path, n.Name, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(header)%2 != 0 {
		return 0, nil, fmt.Errorf("%s %s on %s: odd number of header arguments", method, path, n.Name)
	}
	for i := 0; i < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := commandClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s on %s: %w", method, path, n.Name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s on %s: read body: %w", method, path, n.Name, err)
	}
	return resp.StatusCode, data, nil
}
