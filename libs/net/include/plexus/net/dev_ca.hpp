#pragma once
/// A development certificate authority for HTTPS on one machine (`plexus up --tls`): a CA
/// certificate and key kept in a directory, and a server certificate it signs for the loopback
/// names, so that a client trusting the CA file (`curl --cacert ca.pem`) verifies the server.
///
/// Files in the directory (keys are written with mode 0600, every file atomically):
///   ca.pem            the CA certificate: ECDSA P-256, 10 years, CA:TRUE pathlen:0, keyCertSign
///   ca-key.pem        its private key (PKCS#8)
///   server.pem        the server certificate: ECDSA P-256, 397 days, subjectAltName for every
///                     name of DevCaOptions::hosts, serverAuth, signed by the CA
///   server-key.pem    its private key (PKCS#8)
///
/// ensure_dev_ca() reuses what is there. It makes a new CA when the CA files are missing,
/// unreadable, do not match or the CA has less than `renew_before` left (clients must then trust
/// the new ca.pem), and a new server certificate when there is a new CA, or the certificate is
/// missing, unreadable, not signed by the CA, does not cover every host, or has less than
/// `renew_before` left. All made with the OpenSSL 3 API.

#include <chrono>
#include <string>
#include <vector>

namespace plexus::net {

struct DevCaOptions {
    /// DNS names and IP addresses (v4 or v6) the server certificate is for; the first is its CN.
    std::vector<std::string> hosts = {"localhost", "127.0.0.1", "::1"};
    std::chrono::hours ca_validity{24 * 3650};
    std::chrono::hours server_validity{24 * 397};
    /// A certificate with less time than this left is replaced.
    std::chrono::hours renew_before{24 * 30};
    /// The current time (a test can move it on).
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

/// Where the files are, and what ensure_dev_ca() did.
struct DevCa {
    std::string ca_cert;
    std::string ca_key;
    std::string cert;
    std::string key;
    bool created_ca = false;    ///< a new CA was made (clients must trust the new ca.pem)
    bool created_cert = false;  ///< a new server certificate was made
};

/// Makes sure `dir` holds a valid CA and server certificate (see the file comment), creating the
/// directory if needed. Throws net::TlsError (net/tls.hpp) naming the file or directory that
/// cannot be written, or a host that is neither a DNS name nor an IP address. Not safe to run
/// twice at once on one directory.
DevCa ensure_dev_ca(const std::string& dir, const DevCaOptions& options = {});

}  // namespace plexus::net
