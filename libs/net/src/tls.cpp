#include "plexus/net/tls.hpp"

#include <openssl/pem.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "openssl.hpp"
#include "plexus/core/clock.hpp"
#include "plexus/core/file_stamp.hpp"
#include "plexus/core/snapshot.hpp"

namespace plexus::net {

namespace ossl {

std::string take_errors(std::string_view fallback) {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        const char* reason = ERR_reason_error_string(e);
        if (!out.empty()) out += "; ";
        if (reason) {
            out += reason;
        } else {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof buf);
            out += buf;
        }
    }
    return out.empty() ? std::string(fallback) : out;
}

std::string read_pem_file(const std::string& path, std::size_t limit) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw TlsError(path + ": cannot be read (" + std::strerror(errno) + ")");
    std::string text;
    char buf[16 * 1024];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > limit)
            throw TlsError(path + ": larger than " + std::to_string(limit / 1024) + " KiB; not a PEM file");
    }
    if (in.bad()) throw TlsError(path + ": cannot be read (" + std::strerror(errno) + ")");
    return text;
}

std::vector<X509Ptr> parse_certificates(const std::string& pem, std::string& why) {
    ERR_clear_error();
    std::vector<X509Ptr> out;
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) {
        why = take_errors();
        return out;
    }
    while (true) {
        X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        if (!cert) break;
        out.push_back(std::move(cert));
    }
    // The loop ends at the end of the text ("no start line") or at a block it cannot read.
    unsigned long last = ERR_peek_last_error();
    if (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE && !out.empty()) {
        ERR_clear_error();
        return out;
    }
    why = out.empty()
              ? "no PEM certificate in the file (" + take_errors() + ")"
              : "certificate " + std::to_string(out.size() + 1) + " cannot be read (" + take_errors() + ")";
    out.clear();
    return out;
}

namespace {
// An encrypted key would otherwise make OpenSSL ask for a passphrase on the terminal.
int no_passphrase(char*, int, int, void*) { return -1; }
}  // namespace

Pkey parse_private_key(const std::string& pem, std::string& why) {
    ERR_clear_error();
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    Pkey key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
    if (!key) {
        why =
            "no usable PEM private key in the file (" + take_errors() + "; encrypted keys are not supported)";
    }
    return key;
}

bool to_time_t(const ASN1_TIME* t, std::time_t& out) {
    std::tm tm{};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return false;
    out = timegm(&tm);
    return true;
}

namespace {
std::string name_text(const X509_NAME* name) {
    Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}
}  // namespace

CertificateInfo describe(X509* cert) {
    CertificateInfo info;
    info.subject = name_text(X509_get_subject_name(cert));
    info.issuer = name_text(X509_get_issuer_name(cert));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(cert, EVP_sha256(), md, &len) == 1) {
        static constexpr char kHex[] = "0123456789abcdef";
        for (unsigned int i = 0; i < len; ++i) {
            info.sha256 += kHex[md[i] >> 4];
            info.sha256 += kHex[md[i] & 15];
        }
    }
    std::time_t t = 0;
    if (to_time_t(X509_get0_notAfter(cert), t)) {
        info.expires = std::chrono::system_clock::from_time_t(t);
        info.not_after = core::rfc3339(info.expires);
    }
    return info;
}

}  // namespace ossl

namespace {

// TLS 1.2: forward secrecy (ECDHE) and AEAD only, in the server's order of preference.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384:X448:P-521";
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, outlen, kAlpnHttp11, sizeof kAlpnHttp11, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

// One loaded pair and the context built from it; immutable once published.
struct Credentials {
    ossl::SslCtx ctx;
    CertificateInfo info;
};

std::shared_ptr<const Credentials> load_credentials(const std::string& cert_file,
                                                    const std::string& key_file) {
    auto cert_pem = ossl::read_pem_file(cert_file);
    auto key_pem = ossl::read_pem_file(key_file);
    std::string why;
    auto certs = ossl::parse_certificates(cert_pem, why);
    if (certs.empty()) throw TlsError(cert_file + ": " + why);
    auto key = ossl::parse_private_key(key_pem, why);
    if (!key) throw TlsError(key_file + ": " + why);

    ERR_clear_error();
    ossl::SslCtx ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) throw TlsError("cannot create a TLS context: " + ossl::take_errors());
    SSL_CTX* c = ctx.get();
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
    SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
                               SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1 || SSL_CTX_set1_groups_list(c, kGroups) != 1)
        throw TlsError("cannot set the TLS cipher policy: " + ossl::take_errors());
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
    static constexpr unsigned char kSessionContext[] = "plexus";
    SSL_CTX_set_session_id_context(c, kSessionContext, sizeof kSessionContext - 1);
    SSL_CTX_set_alpn_select_cb(c, select_alpn, nullptr);

    if (SSL_CTX_use_certificate(c, certs.front().get()) != 1)
        throw TlsError(cert_file + ": the certificate cannot be used (" + ossl::take_errors() + ")");
    for (std::size_t i = 1; i < certs.size(); ++i) {
        if (SSL_CTX_add1_chain_cert(c, certs[i].get()) != 1)
            throw TlsError(cert_file + ": certificate " + std::to_string(i + 1) + " cannot be used (" +
                           ossl::take_errors() + ")");
    }
    if (X509_check_private_key(certs.front().get(), key.get()) != 1) {
        ERR_clear_error();
        throw TlsError(key_file + ": the key does not match the certificate in " + cert_file);
    }
    if (SSL_CTX_use_PrivateKey(c, key.get()) != 1)
        throw TlsError(key_file + ": the key cannot be used (" + ossl::take_errors() + ")");
    auto creds = std::make_shared<Credentials>();
    creds->info = ossl::describe(certs.front().get());
    creds->info.chain = certs.size() - 1;
    creds->ctx = std::move(ctx);
    return creds;
}

using core::FileStamp;
using core::stamp_of;

}  // namespace

struct ServerTls::Impl {
    std::string cert_file, key_file;
    core::SnapshotCell<Credentials> current;
    std::mutex reload_mutex;
    FileStamp cert_stamp, key_stamp;  // guarded by reload_mutex

    void stamp() {
        cert_stamp = stamp_of(cert_file);
        key_stamp = stamp_of(key_file);
    }
};

ServerTls::ServerTls(std::string cert_file, std::string key_file) : impl_(std::make_unique<Impl>()) {
    impl_->cert_file = std::move(cert_file);
    impl_->key_file = std::move(key_file);
    impl_->stamp();
    impl_->current.store(load_credentials(impl_->cert_file, impl_->key_file));
}

ServerTls::~ServerTls() = default;

const std::string& ServerTls::cert_file() const noexcept { return impl_->cert_file; }
const std::string& ServerTls::key_file() const noexcept { return impl_->key_file; }

TlsReload ServerTls::reload() {
    std::lock_guard lock(impl_->reload_mutex);
    // Stamped before reading: a change made during the read is seen by the next check.
    impl_->stamp();
    TlsReload r;
    try {
        auto next = load_credentials(impl_->cert_file, impl_->key_file);
        r.certificate = next->info;
        impl_->current.store(std::move(next));
        r.ok = true;
    } catch (const TlsError& e) {
        r.error = e.what();
        r.certificate = impl_->current.load()->info;
    }
    return r;
}

std::optional<TlsReload> ServerTls::reload_if_changed() {
    {
        std::lock_guard lock(impl_->reload_mutex);
        if (stamp_of(impl_->cert_file) == impl_->cert_stamp && stamp_of(impl_->key_file) == impl_->key_stamp)
            return std::nullopt;
    }
    return reload();
}

CertificateInfo ServerTls::certificate() const { return impl_->current.load()->info; }

ssl_st* detail::new_server_session(const ServerTls& tls) {
    auto creds = tls.impl_->current.load();
    // The connection holds a reference to the context (SSL_new takes one), so a reload may drop
    // the snapshot while the connection lives on.
    return SSL_new(creds->ctx.get());
}

}  // namespace plexus::net
