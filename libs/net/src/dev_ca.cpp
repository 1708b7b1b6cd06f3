#include "plexus/core/files.hpp"
#include "plexus/net/dev_ca.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "openssl.hpp"

namespace plexus::net {

namespace {

using ossl::Pkey;
using ossl::X509Ptr;
using Bignum = ossl::Owned<BIGNUM, BN_free>;
using Name = ossl::Owned<X509_NAME, X509_NAME_free>;
using Extension = ossl::Owned<X509_EXTENSION, X509_EXTENSION_free>;

bool is_ip(const std::string& host) {
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool is_dns_name(const std::string& host) {
    if (host.empty() || host.size() > 253 || host.front() == '.' || host.front() == '-') return false;
    return std::all_of(host.begin(), host.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '.';
    });
}

std::time_t seconds(std::chrono::system_clock::time_point t) {
    return std::chrono::system_clock::to_time_t(t);
}

// Writes `data` to `path` atomically (a gateway watching the file never sees half of it).
void write_file(const std::string& path, const std::string& data, mode_t mode) {
    try {
        core::write_file_atomically(path, data, mode);
    } catch (const std::runtime_error& e) {
        throw TlsError(e.what());
    }
}

std::string pem_of(X509* cert) {
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) throw TlsError("cannot encode a certificate");
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

std::string pem_of(EVP_PKEY* key) {
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        throw TlsError("cannot encode a private key");
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

// A certificate and its key from two files; false when either is missing, unreadable or they do
// not match.
bool load_pair(const std::string& cert_file, const std::string& key_file, X509Ptr& cert, Pkey& key) {
    try {
        std::string why;
        auto certs = ossl::parse_certificates(ossl::read_pem_file(cert_file), why);
        if (certs.empty()) return false;
        key = ossl::parse_private_key(ossl::read_pem_file(key_file), why);
        if (!key) return false;
        cert = std::move(certs.front());
    } catch (const TlsError&) {
        return false;
    }
    bool match = X509_check_private_key(cert.get(), key.get()) == 1;
    ERR_clear_error();
    return match;
}

// Valid from now until at least `renew_before` from now.
bool fresh(X509* cert, const DevCaOptions& o) {
    std::time_t now = seconds(o.now);
    std::time_t until = seconds(o.now + o.renew_before);
    return X509_cmp_time(X509_get0_notBefore(cert), &now) < 0 &&
           X509_cmp_time(X509_get0_notAfter(cert), &until) > 0;
}

Pkey new_key() {
    Pkey key(EVP_EC_gen("P-256"));
    if (!key) throw TlsError("cannot generate an ECDSA P-256 key: " + ossl::take_errors());
    return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    Extension ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
        throw TlsError("cannot add the certificate extension " + std::string(OBJ_nid2sn(nid)) + " = " +
                       value + ": " + ossl::take_errors());
}

// A certificate for `key` named `common_name`, signed by `issuer_key` (`issuer` null: itself).
X509Ptr new_certificate(EVP_PKEY* key, const std::string& common_name, X509* issuer, EVP_PKEY* issuer_key,
                        std::chrono::hours validity, const DevCaOptions& o) {
    X509Ptr cert(X509_new());
    Bignum serial(BN_new());
    Name name(X509_NAME_new());
    if (!cert || !serial || !name) throw TlsError("out of memory making a certificate");
    X509* c = cert.get();
    // 127 random bits: unique, and positive as RFC 5280 4.1.2.2 wants.
    bool ok = X509_set_version(c, X509_VERSION_3) == 1 &&
              BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
              BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(c)) != nullptr &&
              // An hour back, for a client whose clock is a little behind.
              ASN1_TIME_set(X509_getm_notBefore(c), seconds(o.now - std::chrono::hours(1))) != nullptr &&
              ASN1_TIME_set(X509_getm_notAfter(c), seconds(o.now + validity)) != nullptr &&
              X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                                         reinterpret_cast<const unsigned char*>("Plexus development"), -1, -1,
                                         0) == 1 &&
              X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                         reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                                         0) == 1 &&
              X509_set_subject_name(c, name.get()) == 1 &&
              X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name.get()) == 1 &&
              X509_set_pubkey(c, key) == 1;
    if (!ok) throw TlsError("cannot make a certificate: " + ossl::take_errors());
    X509* signer = issuer ? issuer : c;
    add_extension(c, signer, NID_subject_key_identifier, "hash");
    if (issuer) {
        add_extension(c, signer, NID_authority_key_identifier, "keyid:always");
        add_extension(c, signer, NID_basic_constraints, "critical,CA:FALSE");
        add_extension(c, signer, NID_key_usage, "critical,digitalSignature");
        add_extension(c, signer, NID_ext_key_usage, "serverAuth");
    } else {
        add_extension(c, signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
        add_extension(c, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    return cert;
}

void sign(X509* cert, EVP_PKEY* key) {
    if (X509_sign(cert, key, EVP_sha256()) <= 0)
        throw TlsError("cannot sign a certificate: " + ossl::take_errors());
}

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> raw(bytes);
    if (RAND_bytes(raw.data(), static_cast<int>(bytes)) != 1) throw TlsError("the random generator failed");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (auto b : raw) out += kHex[b >> 4], out += kHex[b & 15];
    return out;
}

}  // namespace

DevCa ensure_dev_ca(const std::string& dir, const DevCaOptions& o) {
    if (o.hosts.empty()) throw TlsError("a development certificate needs at least one host name");
    std::string alt_names;
    for (const auto& host : o.hosts) {
        if (!alt_names.empty()) alt_names += ',';
        if (is_ip(host))
            alt_names += "IP:" + host;
        else if (is_dns_name(host))
            alt_names += "DNS:" + host;
        else
            throw TlsError("'" + host + "' is neither a DNS name nor an IP address");
    }
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw TlsError(dir + ": cannot be created (" + ec.message() + ")");

    DevCa out{dir + "/ca.pem", dir + "/ca-key.pem", dir + "/server.pem", dir + "/server-key.pem"};
    ERR_clear_error();

    X509Ptr ca;
    Pkey ca_key;
    if (!load_pair(out.ca_cert, out.ca_key, ca, ca_key) || X509_check_ca(ca.get()) == 0 ||
        !fresh(ca.get(), o)) {
        ca_key = new_key();
        ca = new_certificate(ca_key.get(), "Plexus development CA " + random_hex(4), nullptr, nullptr,
                             o.ca_validity, o);
        sign(ca.get(), ca_key.get());
        write_file(out.ca_key, pem_of(ca_key.get()), 0600);
        write_file(out.ca_cert, pem_of(ca.get()), 0644);
        out.created_ca = true;
    }

    X509Ptr cert;
    Pkey key;
    bool reuse = !out.created_ca && load_pair(out.cert, out.key, cert, key) &&
                 X509_check_issued(ca.get(), cert.get()) == X509_V_OK &&
                 X509_verify(cert.get(), X509_get0_pubkey(ca.get())) == 1 && fresh(cert.get(), o);
    for (std::size_t i = 0; reuse && i < o.hosts.size(); ++i) {
        const auto& host = o.hosts[i];
        reuse = is_ip(host) ? X509_check_ip_asc(cert.get(), host.c_str(), 0) == 1
                            : X509_check_host(cert.get(), host.c_str(), host.size(), 0, nullptr) == 1;
    }
    ERR_clear_error();
    if (!reuse) {
        key = new_key();
        cert = new_certificate(key.get(), o.hosts.front(), ca.get(), ca_key.get(), o.server_validity, o);
        add_extension(cert.get(), ca.get(), NID_subject_alt_name, alt_names);
        sign(cert.get(), ca_key.get());
        write_file(out.key, pem_of(key.get()), 0600);
        write_file(out.cert, pem_of(cert.get()), 0644);
        out.created_cert = true;
    }
    return out;
}

}  // namespace plexus::net
