package kubeapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// credentials are the files and PEM blocks kube-apiserver and the admin
// client are given.
type credentials struct {
	clientCAFile  string // --client-ca-file
	saKeyFile     string // --service-account-signing-key-file
	saPublicFile  string // --service-account-key-file
	adminCert     []byte // PEM, signed by the client CA
	adminKey      []byte // PEM
	adminCertFile string
	adminKeyFile  string
}

// newCredentials writes a client CA, an admin client certificate (user
// AdminUser, group system:masters) and a service-account signing key pair
// into dir.
func newCredentials(dir string) (*credentials, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("client CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "drmfilter-test-client-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("client CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("client CA certificate: %w", err)
	}

	adminKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("admin key: %w", err)
	}
	adminTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: AdminUser, Organization: []string{"system:masters"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	adminDER, err := x509.CreateCertificate(rand.Reader, adminTmpl, caCert, &adminKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("admin certificate: %w", err)
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}

	c := &credentials{
		clientCAFile:  filepath.Join(dir, "client-ca.crt"),
		saKeyFile:     filepath.Join(dir, "service-account.key"),
		saPublicFile:  filepath.Join(dir, "service-account.pub"),
		adminCertFile: filepath.Join(dir, "admin.crt"),
		adminKeyFile:  filepath.Join(dir, "admin.key"),
		adminCert:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: adminDER}),
	}
	if c.adminKey, err = keyPEM(adminKey); err != nil {
		return nil, fmt.Errorf("admin key: %w", err)
	}
	saPriv, err := keyPEM(saKey)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("service-account public key: %w", err)
	}

	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{c.clientCAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644},
		{c.adminCertFile, c.adminCert, 0o644},
		{c.adminKeyFile, c.adminKey, 0o600},
		{c.saKeyFile, saPriv, 0o600},
		{c.saPublicFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}), 0o644},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return nil, fmt.Errorf("write credentials: %w", err)
		}
	}
	return c, nil
}

// keyPEM encodes an EC private key as PEM (SEC 1, "EC PRIVATE KEY").
func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}
