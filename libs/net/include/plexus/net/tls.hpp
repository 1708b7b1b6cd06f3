#pragma once
/// TLS for the HTTP server (HTTPS) and a one-shot HTTPS client, on OpenSSL 3.
///
/// A ServerTls holds a certificate chain and its private key read from PEM files and the
/// OpenSSL context built from them; hand it to net::Server through ServerSettings::tls. The
/// policy is fixed, not configurable: TLS 1.2 and 1.3 only; for TLS 1.2 only ECDHE key exchange
/// with AEAD ciphers (AES-GCM, ChaCha20-Poly1305), the server's preference order first; OpenSSL's
/// default TLS 1.3 suites; no compression, no renegotiation; session resumption (cache and
/// tickets) on; ALPN `http/1.1` (a client that offers ALPN without it is refused, RFC 7301 3.2).
///
/// Reloading. reload() re-reads both files and, when they form a valid pair, makes new handshakes
/// use it; connections already established keep the pair they started with. A pair that fails to
/// load leaves the current one serving. reload_if_changed() does so only when either file's
/// modification time or size changed, for a caller that polls (the gateway daemon, every second).
///
/// Only this header and the net library's own sources know about OpenSSL; it declares no
/// OpenSSL or Asio SSL type but the opaque `ssl_st`.

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "plexus/core/result.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/http.hpp"
#include "plexus/net/task.hpp"

struct ssl_st;

namespace plexus::net {

/// A certificate or key that cannot be used. The message names the file and what is wrong with
/// it, e.g. "/etc/gw/cert.pem: no PEM certificate in the file (no start line)".
class TlsError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// What a loaded certificate says, for logs and checks.
struct CertificateInfo {
    std::string subject;    ///< RFC 2253, e.g. "CN=localhost,O=Plexus development"
    std::string issuer;     ///< RFC 2253
    std::string sha256;     ///< fingerprint of the leaf certificate's DER, lowercase hex
    std::string not_after;  ///< RFC 3339 UTC, e.g. "2026-05-01T12:00:00Z"
    std::chrono::system_clock::time_point expires{};
    std::size_t chain = 0;  ///< intermediate certificates sent after the leaf
};

/// The outcome of ServerTls::reload().
struct TlsReload {
    bool ok = false;
    /// Why the files were rejected (the current pair keeps serving); empty when ok.
    std::string error;
    /// The certificate serving now: the new one, or the one kept.
    CertificateInfo certificate;
};

class ServerTls;

namespace detail {
/// A new OpenSSL connection object from the pair serving now; the caller owns it. For
/// net::Server. Returns null when OpenSSL cannot allocate one.
ssl_st* new_server_session(const ServerTls& tls);
}  // namespace detail

/// A server's certificate chain and key, reloadable while connections use them.
/// Thread-safe: handshakes on any thread read the current pair without a lock; reloads are
/// serialised.
class ServerTls {
  public:
    /// Reads `cert_file` (PEM: the leaf certificate, then any intermediates) and `key_file` (PEM,
    /// unencrypted; PKCS#8 or traditional). Throws TlsError naming the file: missing or unreadable,
    /// no certificate or key in it, a key that does not match the certificate or that OpenSSL
    /// refuses as too weak.
    ServerTls(std::string cert_file, std::string key_file);
    ~ServerTls();
    ServerTls(const ServerTls&) = delete;
    ServerTls& operator=(const ServerTls&) = delete;

    const std::string& cert_file() const noexcept;
    const std::string& key_file() const noexcept;

    /// Re-reads both files; see the file comment. Blocking file I/O (small files): call it off
    /// the io threads (net::offload).
    TlsReload reload();
    /// reload() when the modification time or size of either file changed since the last load or
    /// attempt; nullopt when neither did.
    std::optional<TlsReload> reload_if_changed();

    /// The certificate new handshakes present.
    CertificateInfo certificate() const;

  private:
    friend ssl_st* detail::new_server_session(const ServerTls& tls);
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// Sends one request over a new TLS connection to `endpoint` and returns the response. The
/// server's certificate must chain to a CA in `ca_file` (PEM) and name `endpoint.host` (an IP
/// address or a DNS name, also sent as SNI). TLS 1.2 or 1.3, ALPN `http/1.1`. `timeout` covers
/// connect, handshake, request and response. Errors: errc::bad_address, connect_failed,
/// tls_failed (handshake refused, untrusted or misnamed certificate, unreadable `ca_file`),
/// timeout, connection_closed, protocol_error, response_too_large. Not pooled: for probes and
/// tools, not the request path.
Task<Result<Response>> fetch_https(Endpoint endpoint, std::string ca_file, std::string method,
                                   std::string target,
                                   std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});
/// `fetch_https` of a whole request (its headers and body are sent as they are).
Task<Result<Response>> fetch_https(Endpoint endpoint, std::string ca_file, Request req,
                                   std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});

}  // namespace plexus::net
