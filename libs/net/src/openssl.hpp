#pragma once
// OpenSSL helpers of the net library's TLS code: owning handles, error text, PEM file reading and
// certificate descriptions.

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>
#include <utility>
#include <vector>

#include "plexus/net/tls.hpp"

namespace plexus::net::ossl {

/// Owns an OpenSSL object and frees it with `Free`.
template <class T, void (*Free)(T*)>
class Owned {
  public:
    Owned() = default;
    explicit Owned(T* p) noexcept : p_(p) {}
    ~Owned() {
        if (p_) Free(p_);
    }
    Owned(Owned&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    Owned& operator=(Owned&& o) noexcept {
        if (this != &o) {
            if (p_) Free(p_);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    Owned(const Owned&) = delete;
    Owned& operator=(const Owned&) = delete;

    T* get() const noexcept { return p_; }
    T* release() noexcept { return std::exchange(p_, nullptr); }
    explicit operator bool() const noexcept { return p_ != nullptr; }

  private:
    T* p_ = nullptr;
};

inline void free_x509_stack(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }

using Bio = Owned<BIO, BIO_free_all>;
using X509Ptr = Owned<X509, X509_free>;
using X509Stack = Owned<STACK_OF(X509), free_x509_stack>;
using Pkey = Owned<EVP_PKEY, EVP_PKEY_free>;
using SslCtx = Owned<SSL_CTX, SSL_CTX_free>;
using Ssl = Owned<SSL, SSL_free>;

/// The reasons in OpenSSL's error queue of this thread, oldest first ("no start line; ..."), and
/// clears it. `fallback` when the queue is empty.
std::string take_errors(std::string_view fallback = "unknown OpenSSL error");

/// The whole content of `path`, at most `limit` bytes. Throws TlsError("<path>: <why>").
std::string read_pem_file(const std::string& path, std::size_t limit = 1024 * 1024);

/// The certificates of a PEM text, leaf first; empty when there is none (`why` then says why).
std::vector<X509Ptr> parse_certificates(const std::string& pem, std::string& why);

/// The private key of a PEM text (unencrypted); null when there is none (`why` then says why).
Pkey parse_private_key(const std::string& pem, std::string& why);

/// Subject, issuer, fingerprint and expiry of `cert`; `chain` is left 0.
CertificateInfo describe(X509* cert);

/// `t` as seconds since the epoch; false when it cannot be read.
bool to_time_t(const ASN1_TIME* t, std::time_t& out);

}  // namespace plexus::net::ossl
