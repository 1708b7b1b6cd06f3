#pragma once
// A blocking TLS client for tests, on the OpenSSL API directly (independent of the net library's
// TLS code): any protocol version or cipher a test wants to offer, verification against a CA
// file, the peer's certificate, one HTTP exchange. Every read and write is bounded by kWait.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <string_view>

#include "plexus/net/testing.hpp"

namespace plexus::net::testing {

struct TlsClientOptions {
    int min_version = TLS1_2_VERSION;  ///< TLS1_VERSION to offer old protocols
    int max_version = 0;               ///< 0: the newest OpenSSL has
    std::string ciphers;               ///< TLS 1.2 and older (OpenSSL's list syntax); empty: default
    std::string ca_file;               ///< verify the server against it (and `host`); empty: no check
    std::string host = "127.0.0.1";    ///< the name the certificate must have (IP or DNS; DNS is SNI)
    std::string alpn = "http/1.1";     ///< offered protocol; empty: no ALPN
    int security_level = -1;           ///< OpenSSL security level; 0 allows what old clients offer
    std::chrono::milliseconds timeout = kWait;
};

class TlsClient {
  public:
    TlsClient(std::uint16_t port, TlsClientOptions options = {}) : options_(std::move(options)) {
        ctx_ = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(ctx_, options_.min_version);
        SSL_CTX_set_max_proto_version(ctx_, options_.max_version);
        if (options_.security_level >= 0) SSL_CTX_set_security_level(ctx_, options_.security_level);
        if (!options_.ciphers.empty()) SSL_CTX_set_cipher_list(ctx_, options_.ciphers.c_str());
        if (!options_.ca_file.empty()) {
            SSL_CTX_load_verify_locations(ctx_, options_.ca_file.c_str(), nullptr);
            SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
        }
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        timeval tv{static_cast<time_t>(options_.timeout.count() / 1000),
                   static_cast<suseconds_t>(options_.timeout.count() % 1000 * 1000)};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        auto addr = loopback(port);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        ssl_ = SSL_new(ctx_);
        SSL_set_fd(ssl_, fd_);
        if (!options_.ca_file.empty()) {
            unsigned char ip[16];
            bool is_ip = ::inet_pton(AF_INET, options_.host.c_str(), ip) == 1 ||
                         ::inet_pton(AF_INET6, options_.host.c_str(), ip) == 1;
            auto* param = SSL_get0_param(ssl_);
            if (is_ip)
                X509_VERIFY_PARAM_set1_ip_asc(param, options_.host.c_str());
            else
                X509_VERIFY_PARAM_set1_host(param, options_.host.c_str(), 0);
        }
        if (!options_.host.empty() && options_.host.find_first_not_of("0123456789.:") != std::string::npos)
            SSL_set_tlsext_host_name(ssl_, options_.host.c_str());
        if (!options_.alpn.empty()) {
            std::string wire(1, static_cast<char>(options_.alpn.size()));
            wire += options_.alpn;
            SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned>(wire.size()));
        }
    }
    ~TlsClient() {
        // A session closed without close_notify cannot be resumed.
        if (SSL_is_init_finished(ssl_) && !closed_) SSL_shutdown(ssl_);
        SSL_free(ssl_);
        SSL_CTX_free(ctx_);
        ::close(fd_);
    }
    TlsClient(const TlsClient&) = delete;
    TlsClient& operator=(const TlsClient&) = delete;

    /// Runs the handshake; false with error() saying why when it fails.
    bool handshake() {
        if (!connected_) {
            error_ = "connect failed";
            return false;
        }
        ERR_clear_error();
        if (SSL_connect(ssl_) == 1) return true;
        error_ = errors();
        if (auto v = SSL_get_verify_result(ssl_); v != X509_V_OK)
            error_ += std::string(" (verify: ") + X509_verify_cert_error_string(v) + ")";
        return false;
    }

    const std::string& error() const { return error_; }
    std::string version() const { return SSL_get_version(ssl_); }
    std::string cipher() const { return SSL_get_cipher_name(ssl_); }
    std::string alpn() const {
        const unsigned char* p = nullptr;
        unsigned n = 0;
        SSL_get0_alpn_selected(ssl_, &p, &n);
        return std::string(reinterpret_cast<const char*>(p), n);
    }
    bool resumed() const { return SSL_session_reused(ssl_) == 1; }
    /// The SHA-256 fingerprint of the server's certificate, lowercase hex; empty without one.
    std::string peer_sha256() const {
        X509* cert = SSL_get0_peer_certificate(ssl_);
        if (!cert) return {};
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        X509_digest(cert, EVP_sha256(), md, &len);
        static constexpr char kHex[] = "0123456789abcdef";
        std::string out;
        for (unsigned i = 0; i < len; ++i) out += kHex[md[i] >> 4], out += kHex[md[i] & 15];
        return out;
    }
    SSL* native() const { return ssl_; }

    bool send(std::string_view data) {
        while (!data.empty()) {
            int n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
            if (n <= 0) return false;
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    /// Reads one response: its head and Content-Length bytes of body (or up to the close). Empty
    /// when the connection closed or failed first.
    std::string read_response() {
        while (true) {
            auto end = buffer_.find("\r\n\r\n");
            if (end != std::string::npos) {
                auto head = buffer_.substr(0, end + 4);
                std::size_t length = 0;
                bool sized = false;
                std::string lower = head;
                for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                if (auto pos = lower.find("\r\ncontent-length:"); pos != std::string::npos) {
                    length = std::stoul(lower.substr(pos + 17));
                    sized = true;
                }
                if (sized && buffer_.size() >= head.size() + length) {
                    auto out = buffer_.substr(0, head.size() + length);
                    buffer_.erase(0, out.size());
                    return out;
                }
                if (!sized && closed_) return std::exchange(buffer_, {});
            }
            if (closed_) return {};
            read_more();
        }
    }

    /// Reads until the peer closes (or fails, or the timeout); true on a clean TLS close_notify.
    bool read_to_close() {
        while (!closed_) read_more();
        return clean_close_;
    }
    const std::string& buffered() const { return buffer_; }

    /// GET `target` on this connection and its response.
    std::string get(const std::string& target) {
        if (!send("GET " + target + " HTTP/1.1\r\nHost: " + options_.host + "\r\n\r\n")) return {};
        return read_response();
    }

  private:
    void read_more() {
        char buf[16 * 1024];
        int n = SSL_read(ssl_, buf, sizeof buf);
        if (n > 0) {
            buffer_.append(buf, static_cast<std::size_t>(n));
            return;
        }
        clean_close_ = SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN;
        closed_ = true;
    }

    static std::string errors() {
        std::string out;
        while (unsigned long e = ERR_get_error()) {
            if (!out.empty()) out += "; ";
            const char* reason = ERR_reason_error_string(e);
            out += reason ? reason : "unknown";
        }
        return out.empty() ? "handshake failed" : out;
    }

    TlsClientOptions options_;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    int fd_ = -1;
    bool connected_ = false;
    bool closed_ = false;
    bool clean_close_ = false;
    std::string buffer_;
    std::string error_;
};

/// The status code of a raw response ("HTTP/1.1 200 OK..." → 200); 0 when there is none.
inline int status_of(const std::string& response) {
    if (response.size() < 12 || response.compare(0, 5, "HTTP/") != 0) return 0;
    return std::atoi(response.c_str() + 9);
}

}  // namespace plexus::net::testing
