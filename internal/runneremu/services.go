package runneremu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// TLS is a test CA and a server certificate it signed for one DNS name.
type TLS struct {
	CAPEM, CertPEM, KeyPEM []byte
	Pool                   *x509.CertPool
}

// NewTLS makes a CA and a server certificate for dnsName, valid for a day.
func NewTLS(dnsName string) (TLS, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return TLS{}, fmt.Errorf("generating a CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "phialo-image-action test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return TLS{}, fmt.Errorf("creating the CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return TLS{}, fmt.Errorf("parsing the CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return TLS{}, fmt.Errorf("generating a server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return TLS{}, fmt.Errorf("creating the certificate of %q: %w", dnsName, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return TLS{}, fmt.Errorf("encoding the key: %w", err)
	}
	t := TLS{
		CAPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		Pool:    x509.NewCertPool(),
	}
	t.Pool.AddCert(ca)
	return t, nil
}

// RegistryService is a registry service container (the registry:2 image)
// that serves HTTPS on port 5000 with t's certificate, written to
// certDir, and publishes the port on 127.0.0.1 for the host's reads.
func RegistryService(alias string, t TLS, certDir string) (Service, error) {
	for f, data := range map[string][]byte{"server.pem": t.CertPEM, "server.key": t.KeyPEM} {
		if err := os.WriteFile(filepath.Join(certDir, f), data, 0o644); err != nil {
			return Service{}, fmt.Errorf("writing %s: %w", f, err)
		}
	}
	return Service{Alias: alias, Image: "registry:2", Options: []string{
		"-v", certDir + ":/certs:ro", "-p", "127.0.0.1::5000",
		"-e", "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/server.pem", "-e", "REGISTRY_HTTP_TLS_KEY=/certs/server.key",
	}}, nil
}

// GatewayImage builds the gateway (package ./gateway of this module, found
// from dir, the module's root) into an image from scratch and returns its
// name.
func (r *Runner) GatewayImage(ctx context.Context, moduleRoot, work string) (string, error) {
	dir := filepath.Join(work, "gateway")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "gateway"), "./internal/runneremu/gateway")
	build.Dir = moduleRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the gateway: %w\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY gateway /gateway\nENTRYPOINT [\"/gateway\"]\n"), 0o644); err != nil {
		return "", fmt.Errorf("writing the gateway's Dockerfile: %w", err)
	}
	image := "phialo-e2e/gateway:" + r.Label
	if _, err := r.docker(ctx, "build", "-q", "-t", image, dir); err != nil {
		return "", err
	}
	return image, nil
}

// GatewayService is the gateway service: http://<alias> on the job's
// network reaches the unix socket sockDir/api.sock on the host.
func GatewayService(alias, image, sockDir string) Service {
	return Service{Alias: alias, Image: image, Options: []string{"-v", sockDir + ":/sock"}}
}

// Port is the host port (on 127.0.0.1) a service container publishes for
// its port.
func (j *Job) Port(ctx context.Context, alias, port string) (string, error) {
	out, err := j.docker(ctx, "port", j.ServiceContainer(alias), port+"/tcp")
	if err != nil {
		return "", err
	}
	_, p, ok := strings.Cut(strings.Split(strings.TrimSpace(out), "\n")[0], ":")
	if !ok {
		return "", fmt.Errorf("docker port %s %s: %q", alias, port, out)
	}
	return p, nil
}

// LocalAPI is a small stand-in of GitHub's REST API for a local run, so
// nothing calls api.github.com: it describes the repository from the
// event payload, has no commit dates (the action then uses the build
// date), accepts code scanning uploads, and logs every request.
func LocalAPI(event []byte, log io.Writer) http.Handler {
	var payload struct {
		Repository json.RawMessage `json:"repository"`
	}
	_ = json.Unmarshal(event, &payload)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(log, "local GitHub API: %s %s\n", r.Method, r.URL.Path)
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		switch {
		case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "repos" && len(payload.Repository) > 0:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(payload.Repository)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/code-scanning/sarifs"):
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, `{"id":"local","url":"http://localhost/local"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"message":"Not Found (local stand-in of GitHub's API)"}`)
		}
	})
	return mux
}
