package corral

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"time"
)

// The plugin's side of go-plugin's AutoMTLS, made by the SDK rather than by go-plugin: go-plugin
// 1.0.1 makes an ECDSA P-521 key and certificate at every start, which Go computes without assembly
// (some 15 ms of CPU per start, and again for every TLS handshake it signs). The SDK makes a P-256
// one (the host's own curve, in assembly), and builds the TLS config exactly as AutoMTLS does: the
// host's certificate from PLUGIN_CLIENT_CERT is the only client certificate accepted, and one is
// required; the host pins the plugin's certificate from the handshake line.

const (
	hostCertificateEnv = "PLUGIN_CLIENT_CERT"
	// The certificate lives as long as the plugin process: its expiry never matters.
	certificateValidity = 10 * 365 * 24 * time.Hour
	// Valid from this long before it was made, for a host whose clock is behind.
	certificateClockSkew = 30 * time.Second
	// The field of go-plugin's handshake line (core|app|network|address|protocol|cert) with the cert.
	handshakeCertificateField = 5
)

// autoMTLS is the plugin's TLS config under AutoMTLS and its certificate (DER), sent in the
// handshake line.
type autoMTLS struct {
	config      *tls.Config
	certificate []byte
}

// newAutoMTLS is the plugin's AutoMTLS for the host certificate hostPEM (PLUGIN_CLIENT_CERT).
func newAutoMTLS(hostPEM string) (*autoMTLS, error) {
	host := x509.NewCertPool()
	if !host.AppendCertsFromPEM([]byte(hostPEM)) {
		return nil, fmt.Errorf("%s holds no PEM certificate", hostCertificateEnv)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make the AutoMTLS key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("make the AutoMTLS certificate's serial number: %v", err)
	}
	now := time.Now()
	// As go-plugin's AutoMTLS makes it: self-signed for localhost, a CA (the host pins it as its
	// only root), for the server and the client side (the broker dials the host with it).
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"Corral"}},
		DNSNames:              []string{"localhost"},
		NotBefore:             now.Add(-certificateClockSkew),
		NotAfter:              now.Add(certificateValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("make the AutoMTLS certificate: %v", err)
	}
	return &autoMTLS{
		config: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    host,
			// go-plugin's broker dials the host with this config too: it trusts the host's
			// certificate as a server, which names localhost (go-plugin dials the address "unused").
			// Before go-plugin 1.4.4 (hashicorp/go-plugin#109) AutoMTLS left these out, and every
			// host call failed its TLS handshake.
			RootCAs:    host,
			ServerName: "localhost",
			MinVersion: tls.VersionTLS12,
		},
		certificate: der,
	}, nil
}

// sendCertificateInHandshake puts the certificate in go-plugin's handshake line. go-plugin fills
// that field only with a certificate it made itself, and leaves it empty with a TLSProvider; it
// prints the line to os.Stdout and then swaps os.Stdout for a pipe of its own. So until then
// os.Stdout is a pipe read here: its first line goes to the real stdout with the certificate in,
// anything after it as it is.
func (m *autoMTLS) sendCertificateInHandshake() error {
	stdout := os.Stdout
	read, write, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("make the handshake pipe: %v", err)
	}
	os.Stdout = write
	go func() {
		lines := bufio.NewReader(read)
		line, err := lines.ReadString('\n')
		if err == nil {
			line = withCertificate(line, m.certificate)
		}
		stdout.WriteString(line)
		io.Copy(stdout, lines)
	}()
	return nil
}

// withCertificate is the handshake line with the certificate (base64 without padding, as go-plugin
// writes it) in its empty certificate field; any other line as it is.
func withCertificate(line string, certificate []byte) string {
	fields := strings.Split(strings.TrimSuffix(line, "\n"), "|")
	if len(fields) <= handshakeCertificateField || fields[handshakeCertificateField] != "" {
		return line
	}
	fields[handshakeCertificateField] = base64.RawStdEncoding.EncodeToString(certificate)
	return strings.Join(fields, "|") + "\n"
}
