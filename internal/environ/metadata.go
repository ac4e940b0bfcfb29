package environ

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"
)

// DefaultMetadataEndpoint is the link-local instance metadata address that
// AWS, Azure and Google Cloud share.
const DefaultMetadataEndpoint = "http://169.254.169.254"

// DefaultMetadataTimeout bounds the whole metadata query.
const DefaultMetadataTimeout = 500 * time.Millisecond

// MetadataResult is what the instance metadata service said. It is only
// filled when Options.Metadata is set, and only for aws, azure and gcp.
type MetadataResult struct {
	// Endpoint is the base URL asked.
	Endpoint string `json:"endpoint"`
	// InstanceID is the instance (VM) id as the service names it.
	InstanceID string `json:"instance_id,omitempty"`
	// InstanceType is the instance type, VM size or machine type.
	InstanceType string `json:"instance_type,omitempty"`
	// Region is the region (AWS, Azure) or zone (Google Cloud).
	Region string `json:"region,omitempty"`
	// Error says why the query failed; the other fields may be partial.
	Error string `json:"error,omitempty"`
}

var errMetadataUnsupported = errors.New("no metadata query for this cloud")

func queryMetadata(ctx context.Context, cloud, endpoint string, timeout time.Duration, client *http.Client) *MetadataResult {
	if endpoint == "" {
		endpoint = DefaultMetadataEndpoint
	}
	if timeout <= 0 {
		timeout = DefaultMetadataTimeout
	}
	if client == nil {
		client = &http.Client{}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := &MetadataResult{Endpoint: endpoint}
	get := func(method, p string, hdr map[string]string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(endpoint, "/")+p, nil)
		if err != nil {
			return "", fmt.Errorf("metadata: %w", err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", fmt.Errorf("metadata %s: %w", p, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return "", fmt.Errorf("metadata %s: read: %w", p, err)
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("metadata %s: %s", p, resp.Status)
		}
		return strings.TrimSpace(string(b)), nil
	}
	var err error
	switch cloud {
	case CloudAWS:
		// IMDSv2: a session token first.
		var tok string
		tok, err = get(http.MethodPut, "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60"})
		if err == nil {
			h := map[string]string{"X-aws-ec2-metadata-token": tok}
			if res.InstanceID, err = get(http.MethodGet, "/latest/meta-data/instance-id", h); err == nil {
				if res.InstanceType, err = get(http.MethodGet, "/latest/meta-data/instance-type", h); err == nil {
					res.Region, err = get(http.MethodGet, "/latest/meta-data/placement/region", h)
				}
			}
		}
	case CloudAzure:
		var body string
		body, err = get(http.MethodGet, "/metadata/instance/compute?api-version=2021-02-01", map[string]string{"Metadata": "true"})
		if err == nil {
			var c struct {
				VMID     string `json:"vmId"`
				VMSize   string `json:"vmSize"`
				Location string `json:"location"`
			}
			if err = json.Unmarshal([]byte(body), &c); err != nil {
				err = fmt.Errorf("metadata: decode compute: %w", err)
			}
			res.InstanceID, res.InstanceType, res.Region = c.VMID, c.VMSize, c.Location
		}
	case CloudGCP:
		h := map[string]string{"Metadata-Flavor": "Google"}
		if res.InstanceID, err = get(http.MethodGet, "/computeMetadata/v1/instance/id", h); err == nil {
			var mt, zone string
			if mt, err = get(http.MethodGet, "/computeMetadata/v1/instance/machine-type", h); err == nil {
				res.InstanceType = path.Base(mt)
				zone, err = get(http.MethodGet, "/computeMetadata/v1/instance/zone", h)
				res.Region = path.Base(zone)
			}
		}
	default:
		err = fmt.Errorf("metadata: cloud %q: %w", cloud, errMetadataUnsupported)
	}
	if err != nil {
		res.Error = err.Error()
	}
	return res
}
