// What the server makes of the bytes a client sends: heads found by wire::HeadScanner (after the
// empty lines the server skips), wire::parse_request_head (request line, fields, Host rules,
// Content-Length / Transfer-Encoding), and the body read as the head frames it (sized or through
// wire::ChunkedDecoder), request after request while the connection stays open. The loop is
// Server::Impl::session without the socket, deadlines and handler.
//
// Each input is served twice: all bytes in one read, and in reads of 1 to 16 bytes (sizes taken
// from the input itself). Both must give the same requests and both must end the same way. Every
// accepted request must also survive the way out of the gateway: serialize_request_head and
// serialize_response_head, read back by the parsers, give the same method, target, fields and
// framing. The word-at-a-time helpers (iequals, field_id, is_field_value) are checked against
// byte-at-a-time versions.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/net/http.hpp"
#include "wire.hpp"

namespace {

using namespace plexus::net;

// Smaller than ServerSettings' defaults (16 KiB, 100, 1 MiB) so that inputs of a few KiB reach
// every limit; the code paths are the same.
constexpr std::size_t kMaxHeaderBytes = 4096;
constexpr std::size_t kMaxHeaders = 32;
constexpr std::size_t kMaxBody = 8192;

[[noreturn]] void broken(const char* what, int line) {
    std::fprintf(stderr, "fuzz_http_request:%d: invariant broken: %s\n", line, what);
    std::abort();
}
#define CHECK(cond)                           \
    do {                                      \
        if (!(cond)) broken(#cond, __LINE__); \
    } while (0)

// ---- byte-at-a-time references for the word-at-a-time helpers

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool plain_iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

bool plain_field_value(std::string_view s) {
    for (unsigned char c : s) {
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    }
    return true;
}

FieldId plain_field_id(std::string_view name) {
    static constexpr std::pair<std::string_view, FieldId> kNames[] = {
        {"host", FieldId::host},
        {"connection", FieldId::connection},
        {"content-length", FieldId::content_length},
        {"transfer-encoding", FieldId::transfer_encoding},
        {"content-type", FieldId::content_type},
        {"date", FieldId::date},
        {"expect", FieldId::expect},
        {"keep-alive", FieldId::keep_alive},
        {"proxy-connection", FieldId::proxy_connection},
        {"te", FieldId::te},
        {"trailer", FieldId::trailer},
        {"upgrade", FieldId::upgrade},
        {"proxy-authenticate", FieldId::proxy_authenticate},
        {"proxy-authorization", FieldId::proxy_authorization},
        {"x-request-id", FieldId::x_request_id},
        {"x-forwarded-for", FieldId::x_forwarded_for},
        {"x-forwarded-proto", FieldId::x_forwarded_proto},
        {"x-forwarded-host", FieldId::x_forwarded_host},
        {"traceparent", FieldId::traceparent},
        {"x-plexus-deadline-ms", FieldId::x_plexus_deadline_ms},
        {"x-plexus-original-path", FieldId::x_plexus_original_path},
        {"authorization", FieldId::authorization},
        {"x-api-key", FieldId::x_api_key},
        {"x-plexus-subject", FieldId::x_plexus_subject},
        {"x-plexus-client", FieldId::x_plexus_client},
        {"x-plexus-scopes", FieldId::x_plexus_scopes},
        {"x-plexus-roles", FieldId::x_plexus_roles},
    };
    for (const auto& [n, id] : kNames) {
        if (plain_iequals(name, n)) return id;
    }
    return FieldId::other;
}

void check_helpers(std::string_view data) {
    const auto half = data.size() / 2;
    const auto a = data.substr(0, half), b = data.substr(half, half);
    CHECK(iequals(a, b) == plain_iequals(a, b));
    std::string upper(a);
    for (auto& c : upper) c = c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c;
    CHECK(iequals(a, upper));
    CHECK(is_field_value(data) == plain_field_value(data));
    CHECK(is_field_value(a) == plain_field_value(a));
    for (std::size_t n : {2, 4, 9, 10, 13, 14, 15, 16, 17, 22}) {
        const auto name = data.substr(0, n);
        CHECK(field_id(name) == plain_field_id(name));
    }
}

// ---- the way back out: the gateway forwards a request upstream and relays a response

bool is_framing(FieldId id) {
    return id == FieldId::content_length || id == FieldId::transfer_encoding || id == FieldId::connection;
}

std::vector<const Header*> copied_fields(const Headers& headers) {
    std::vector<const Header*> out;
    for (const auto& h : headers) {
        if (!is_framing(h.id())) out.push_back(&h);
    }
    return out;
}

void check_same_fields(const std::vector<const Header*>& sent, const Headers& got) {
    CHECK(got.size() >= sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
        CHECK(got.begin()[i].name() == sent[i]->name());
        CHECK(got.begin()[i].value == sent[i]->value);
    }
}

void check_round_trip(const Request& req) {
    const auto fields = copied_fields(req.headers);

    std::string out;
    wire::serialize_request_head(req, "upstream.test:8080", out);
    wire::HeadScanner scanner;
    CHECK(scanner.scan(out, out.size()) == wire::HeadScanner::Status::complete);
    CHECK(scanner.head_size() == out.size());
    Request up;
    wire::Framing framing;
    auto err = wire::parse_request_head(out, std::numeric_limits<std::size_t>::max(), up, framing);
    CHECK(!err);
    CHECK(up.method == req.method);
    CHECK(up.target == req.target);
    CHECK(up.keep_alive);
    check_same_fields(fields, up.headers);
    CHECK(framing.kind == (req.body.empty() ? wire::Framing::none : wire::Framing::sized));
    CHECK(framing.length == req.body.size());

    Response res;
    for (const auto* h : fields) res.headers.add(h->name(), h->value);
    res.body = req.body;
    out.clear();
    wire::serialize_response_head(res, !req.keep_alive, wire::http_date(), out);
    scanner.reset();
    CHECK(scanner.scan(out, out.size()) == wire::HeadScanner::Status::complete);
    CHECK(scanner.head_size() == out.size());
    Response down;
    bool keep_alive = false;
    err = wire::parse_response_head(out, "GET", down, framing, keep_alive);
    CHECK(!err);
    CHECK(down.status == 200);
    CHECK(keep_alive == req.keep_alive);
    check_same_fields(fields, down.headers);
    CHECK(framing.kind == (req.body.empty() ? wire::Framing::none : wire::Framing::sized));
    CHECK(framing.length == req.body.size());
}

// ---- the server's read loop

// Hands out the input in reads: all of it at once, or pieces of 1 to 16 bytes whose sizes come
// from `sizes` in turn.
class Peer {
  public:
    Peer(std::string_view data, std::string_view sizes) : data_(data), sizes_(sizes) {}
    // Appends the next read to `buf`; false once the input is used up (the peer closed).
    bool read(wire::ReadBuffer& buf) {
        if (pos_ == data_.size()) return false;
        std::size_t n = data_.size() - pos_;
        if (!sizes_.empty()) {
            n = std::min<std::size_t>(n,
                                      1 + static_cast<unsigned char>(sizes_[turn_++ % sizes_.size()]) % 16);
        }
        std::memcpy(buf.prepare(n), data_.data() + pos_, n);
        buf.commit(n);
        pos_ += n;
        return true;
    }

  private:
    std::string_view data_, sizes_;
    std::size_t pos_ = 0, turn_ = 0;
};

struct Outcome {
    std::vector<std::string> requests;  // each accepted request, flattened
    bool rejected = false;              // the server answered an error and closed
};

std::string flatten(const Request& req) {
    std::string s = req.method + ' ' + req.target + ' ' + std::to_string(req.version_minor) +
                    (req.keep_alive ? " keep\n" : " close\n");
    for (const auto& h : req.headers) s.append(h.name()).append(": ").append(h.value).append("\n");
    return s + '\n' + req.body;
}

void check_request(const Request& req, const wire::Framing& framing) {
    CHECK(is_token(req.method));
    CHECK(!req.target.empty());
    CHECK(req.target.front() == '/' || req.target == "*");
    CHECK(req.version_minor == 0 || req.version_minor == 1);
    CHECK(req.headers.size() <= kMaxHeaders);
    int hosts = 0;
    for (const auto& h : req.headers) {
        CHECK(is_token(h.name()));
        CHECK(is_field_value(h.value));
        CHECK(h.value.empty() || (h.value.front() != ' ' && h.value.back() != ' '));
        CHECK(h.id() == plain_field_id(h.name()));
        hosts += h.id() == FieldId::host;
    }
    CHECK(hosts <= 1);
    if (req.version_minor == 1) CHECK(hosts == 1);
    CHECK(req.headers.get(FieldId::host) == req.headers.get("HOST"));
    const bool te = req.headers.get(FieldId::transfer_encoding).has_value();
    const bool cl = req.headers.get(FieldId::content_length).has_value();
    CHECK(!(te && cl));
    if (framing.kind == wire::Framing::chunked) CHECK(te && req.version_minor == 1);
    if (framing.kind == wire::Framing::sized) CHECK(cl && framing.length > 0);
    CHECK(framing.kind != wire::Framing::until_close);

    // What the router and handlers do with the target next.
    const auto path = req.path();
    const auto query = req.query();
    CHECK(path.size() + (query.empty() ? 0 : query.size() + 1) <= req.target.size());
    (void)req.query_param("q");
    (void)percent_decode(path);
}

Outcome serve(Peer& peer) {
    Outcome out;
    wire::ReadBuffer buf;
    wire::HeadScanner scanner;
    wire::ChunkedDecoder chunked;
    Request req;
    while (true) {
        scanner.reset();
        while (true) {
            while (buf.size() >= 2 && buf.view().substr(0, 2) == "\r\n") buf.consume(2);
            if (!buf.empty()) {
                auto st = scanner.scan(buf.view(), kMaxHeaderBytes);
                if (st == wire::HeadScanner::Status::complete) break;
                if (st != wire::HeadScanner::Status::incomplete) {
                    out.rejected = true;
                    return out;
                }
            }
            if (!peer.read(buf)) return out;
        }
        CHECK(scanner.head_size() <= buf.size());
        CHECK(scanner.head_size() <= kMaxHeaderBytes);

        req.clear();
        wire::Framing framing;
        auto err =
            wire::parse_request_head(buf.view().substr(0, scanner.head_size()), kMaxHeaders, req, framing);
        buf.consume(scanner.head_size());
        if (err) {
            CHECK(err.status == 400 || err.status == 431 || err.status == 501 || err.status == 505);
            out.rejected = true;
            return out;
        }
        check_request(req, framing);

        if (framing.kind == wire::Framing::sized) {
            if (framing.length > kMaxBody) {
                out.rejected = true;
                return out;
            }
            while (req.body.size() < framing.length) {
                if (buf.empty() && !peer.read(buf)) return out;
                auto take = std::min<std::size_t>(framing.length - req.body.size(), buf.size());
                req.body.append(buf.view().substr(0, take));
                buf.consume(take);
            }
        } else if (framing.kind == wire::Framing::chunked) {
            chunked.reset();
            while (true) {
                std::size_t used = 0;
                auto st = chunked.feed(buf.view(), req.body, kMaxBody, used);
                CHECK(used <= buf.size());
                buf.consume(used);
                if (st == wire::ChunkedDecoder::Status::done) break;
                if (st != wire::ChunkedDecoder::Status::incomplete) {
                    out.rejected = true;
                    return out;
                }
                CHECK(buf.empty());
                if (!peer.read(buf)) return out;
            }
        }
        CHECK(req.body.size() <= kMaxBody);
        check_round_trip(req);
        out.requests.push_back(flatten(req));
        if (!req.keep_alive) return out;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    const std::string_view data(reinterpret_cast<const char*>(bytes), size);
    check_helpers(data);

    Peer whole(data, {});
    const auto a = serve(whole);
    // Read sizes from the input's last bytes, so that the same head or body arrives cut in
    // different places as the fuzzer mutates it.
    Peer pieces(data, data.substr(data.size() - std::min<std::size_t>(data.size(), 32)));
    const auto b = serve(pieces);
    CHECK(a.requests == b.requests);
    CHECK(a.rejected == b.rejected);
    return 0;
}
