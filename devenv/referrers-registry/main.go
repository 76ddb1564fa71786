// A registry that serves the OCI 1.1 referrers API, for the tests of the copy of referrers
// (signatures, SBOMs, attestations): go-containerregistry's pkg/registry with its referrers
// support on, and, in front of it, what the distribution spec's referrers section asks and that
// registry does not do (spec v1.1, "Listing Referrers" and "Pushing Manifests with Subject"):
//
//   - a manifest PUT whose body has a `subject` is answered with the `OCI-Subject` header (the
//     header a client reads to know the referrers API is there, and no fallback tag is needed);
//   - each descriptor of a referrers list carries the manifest's `artifactType` (its config's media
//     type only when it has none) and its `annotations`;
//   - `?artifactType=` filters the list, and the answer says so in `OCI-Filters-Applied`.
//
// Listens on 127.0.0.1 only; prints "listening on 127.0.0.1:PORT" once it accepts connections.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/registry"
)

// What the spec says a referrers descriptor holds, read from the manifest when it was pushed.
type described struct {
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

type front struct {
	inner http.Handler
	mu    sync.Mutex
	seen  map[string]described // by manifest digest
}

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1 (0: any free one)")
	flag.Parse()
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	f := &front{
		inner: registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))),
		seen:  map[string]described{},
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	log.Fatal(http.Serve(listener, f))
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v2/"), "/")
	n := len(parts)
	switch {
	case r.Method == http.MethodPut && n >= 3 && parts[n-2] == "manifests":
		f.putManifest(w, r)
	case r.Method == http.MethodGet && n >= 3 && parts[n-2] == "referrers":
		f.listReferrers(w, r)
	default:
		f.inner.ServeHTTP(w, r)
	}
}

func (f *front) putManifest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var m struct {
		ArtifactType string            `json:"artifactType"`
		Annotations  map[string]string `json:"annotations"`
		Config       *struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
		Subject *struct {
			Digest string `json:"digest"`
		} `json:"subject"`
	}
	_ = json.Unmarshal(body, &m)
	sum := sha256.Sum256(body)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	d := described{ArtifactType: m.ArtifactType, Annotations: m.Annotations}
	if d.ArtifactType == "" && m.Config != nil {
		d.ArtifactType = m.Config.MediaType
	}
	f.mu.Lock()
	f.seen[digest] = d
	f.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if m.Subject != nil && m.Subject.Digest != "" {
		w.Header().Set("OCI-Subject", m.Subject.Digest)
	}
	f.inner.ServeHTTP(w, r)
}

func (f *front) listReferrers(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	f.inner.ServeHTTP(rec, r)
	if rec.Code == http.StatusNotFound {
		// The spec: a registry that supports the API answers 200 with an empty list, even for a
		// subject it does not hold (the inner registry says 404 for a repository it has not seen).
		rec = httptest.NewRecorder()
		rec.Code = http.StatusOK
		rec.Body.WriteString(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	}
	if rec.Code != http.StatusOK {
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	var index map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &index); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	wanted := r.URL.Query().Get("artifactType")
	list, _ := index["manifests"].([]any)
	kept := []any{}
	f.mu.Lock()
	for _, entry := range list {
		desc, _ := entry.(map[string]any)
		digest, _ := desc["digest"].(string)
		if d, ok := f.seen[digest]; ok {
			delete(desc, "artifactType")
			if d.ArtifactType != "" {
				desc["artifactType"] = d.ArtifactType
			}
			if len(d.Annotations) > 0 {
				desc["annotations"] = d.Annotations
			}
		}
		if wanted == "" || desc["artifactType"] == wanted {
			kept = append(kept, desc)
		}
	}
	f.mu.Unlock()
	index["manifests"] = kept
	out, _ := json.Marshal(index)
	w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
	if wanted != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}
