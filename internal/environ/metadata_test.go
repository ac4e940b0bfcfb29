package environ

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeIMDS answers like the AWS, Azure and Google metadata services, on
// loopback.
func fakeIMDS(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		w.Write([]byte("tok123"))
	})
	awsGet := func(v string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-aws-ec2-metadata-token") != "tok123" {
				http.Error(w, "no token", http.StatusUnauthorized)
				return
			}
			w.Write([]byte(v))
		}
	}
	mux.HandleFunc("GET /latest/meta-data/instance-id", awsGet("i-0a1b2c3d4e5f60718"))
	mux.HandleFunc("GET /latest/meta-data/instance-type", awsGet("m5.large"))
	mux.HandleFunc("GET /latest/meta-data/placement/region", awsGet("eu-west-1"))
	mux.HandleFunc("GET /metadata/instance/compute", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata") != "true" {
			http.Error(w, "Bad request", http.StatusBadRequest)
			return
		}
		w.Write([]byte(`{"location":"westeurope","vmId":"02aab8a4-74ef-476e-8182-f6d2ba4166a6","vmSize":"Standard_D2s_v5"}`))
	})
	gce := func(v string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Metadata-Flavor") != "Google" {
				http.Error(w, "forbidden", http.StatusForbidden)
				return
			}
			w.Write([]byte(v))
		}
	}
	mux.HandleFunc("GET /computeMetadata/v1/instance/id", gce("4520031799277581759"))
	mux.HandleFunc("GET /computeMetadata/v1/instance/machine-type", gce("projects/123456789/machineTypes/e2-medium"))
	mux.HandleFunc("GET /computeMetadata/v1/instance/zone", gce("projects/123456789/zones/europe-west1-b"))
	mux.HandleFunc("/slow/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestMetadataQuery(t *testing.T) {
	srv := fakeIMDS(t)
	for _, tc := range []struct {
		cloud string
		want  MetadataResult
	}{
		{CloudAWS, MetadataResult{InstanceID: "i-0a1b2c3d4e5f60718", InstanceType: "m5.large", Region: "eu-west-1"}},
		{CloudAzure, MetadataResult{InstanceID: "02aab8a4-74ef-476e-8182-f6d2ba4166a6", InstanceType: "Standard_D2s_v5", Region: "westeurope"}},
		{CloudGCP, MetadataResult{InstanceID: "4520031799277581759", InstanceType: "e2-medium", Region: "europe-west1-b"}},
	} {
		got := queryMetadata(context.Background(), tc.cloud, srv.URL, time.Second, srv.Client())
		tc.want.Endpoint = srv.URL
		if *got != tc.want {
			t.Errorf("%s: got %+v\nwant %+v", tc.cloud, *got, tc.want)
		}
	}
	if got := queryMetadata(context.Background(), CloudHetzner, srv.URL, time.Second, nil); !strings.Contains(got.Error, "no metadata query") {
		t.Errorf("hetzner: %+v", got)
	}
}

func TestMetadataTimeout(t *testing.T) {
	srv := fakeIMDS(t)
	start := time.Now()
	got := queryMetadata(context.Background(), CloudAWS, srv.URL+"/slow", 100*time.Millisecond, srv.Client())
	if got.Error == "" {
		t.Fatalf("no error from a slow service: %+v", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v despite a 100ms timeout", d)
	}
}

func TestMetadataOnlyWhenAsked(t *testing.T) {
	srv := fakeIMDS(t)
	root := writeTree(t, map[string]string{"sys/class/dmi/id/sys_vendor": "Amazon EC2\n", "sys/class/dmi/id/product_name": "m5.large\n"})
	rep := Detect(context.Background(), Options{Root: root, CPU: VendorCPU("KVMKVMKVM"), NoMounts: true, MetadataEndpoint: srv.URL})
	if rep.CloudDetail.Metadata != nil {
		t.Fatal("metadata queried without Options.Metadata")
	}
	rep = Detect(context.Background(), Options{Root: root, CPU: VendorCPU("KVMKVMKVM"), NoMounts: true, Metadata: true, MetadataEndpoint: srv.URL, HTTPClient: srv.Client()})
	if m := rep.CloudDetail.Metadata; m == nil || m.InstanceType != "m5.large" || m.Error != "" {
		t.Fatalf("metadata %+v", m)
	}
}
