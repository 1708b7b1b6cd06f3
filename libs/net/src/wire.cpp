#include "wire.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace plexus::net::wire {

namespace {

// RFC 9110 tchar: the characters of a token (method, field name).
constexpr std::array<bool, 256> kTchar = [] {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
    for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~")) t[c] = true;
    return t;
}();

bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (unsigned char c : s) {
        if (!kTchar[c]) return false;
    }
    return true;
}

// A field value may hold visible characters, obs-text, SP and HTAB; never other controls.
bool is_field_value_byte(unsigned char c) noexcept { return (c >= 0x20 || c == '\t') && c != 0x7f; }

bool is_field_value(std::string_view s) noexcept {
#if defined(__SSE2__)
    // Sixteen bytes at a time (a bearer token is hundreds): a block whose bytes are all at least
    // 0x20 and none 0x7f is fine as it is; only a block that has another (a tab, usually) is
    // checked byte by byte. The last block overlaps the one before.
    if (s.size() >= 16) {
        const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
        auto good = [&](std::size_t i) {  // a bit per byte of the block at i: 1 if fine
            const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
            const __m128i printable = _mm_cmpeq_epi8(_mm_max_epu8(x, space), x);  // x >= 0x20
            return _mm_movemask_epi8(_mm_andnot_si128(_mm_cmpeq_epi8(x, del), printable));
        };
        auto block_ok = [&](std::size_t i) {
            if (good(i) == 0xffff) return true;
            for (std::size_t k = i; k < i + 16; ++k) {
                if (!is_field_value_byte(static_cast<unsigned char>(s[k]))) return false;
            }
            return true;
        };
        std::size_t i = 0;
        for (; i + 64 < s.size(); i += 64) {  // four blocks, one test
            if ((good(i) & good(i + 16) & good(i + 32) & good(i + 48)) == 0xffff) continue;
            if (!block_ok(i) || !block_ok(i + 16) || !block_ok(i + 32) || !block_ok(i + 48)) return false;
        }
        for (; i + 16 < s.size(); i += 16) {
            if (!block_ok(i)) return false;
        }
        return block_ok(s.size() - 16);
    }
#endif
    // Eight bytes at a time: a word with no byte below 0x20 and none equal to 0x7f is fine as it
    // is (bytes from 0x80 up are obs-text, allowed); only words that have one (a tab, usually)
    // are checked byte by byte.
    constexpr std::uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
    const std::size_t n = s.size();
    if (n < 8) {
        for (unsigned char c : s) {
            if (!is_field_value_byte(c)) return false;
        }
        return true;
    }
    return all_words(n, [&](std::size_t i) {
        const std::uint64_t x = load_word(s.data() + i);
        const std::uint64_t del = x ^ (kOnes * 0x7f);
        if ((((x - kOnes * 0x20) & ~x) | ((del - kOnes) & ~del)) & kHighs) {
            for (std::size_t k = i; k < i + 8; ++k) {
                if (!is_field_value_byte(static_cast<unsigned char>(s[k]))) return false;
            }
        }
        return true;
    });
}

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool parse_u64(std::string_view s, std::uint64_t& out) noexcept {
    if (s.empty() || s.size() > 18) return false;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
    }
    std::from_chars(s.data(), s.data() + s.size(), out);
    return true;
}

// Splits `head` into lines (the scanner already checked CRLF endings); calls fn(line) for each
// field line after the start line. Returns false on obs-fold or a malformed field.
template <class Fn>
HeadError parse_fields(std::string_view rest, std::size_t max_headers, Headers& headers, Fn&& on_field) {
    std::size_t count = 0;
    while (true) {
        const auto* cr = static_cast<const char*>(std::memchr(rest.data(), '\r', rest.size()));
        if (!cr || cr + 1 == rest.data() + rest.size() || cr[1] != '\n')
            return {400, "unterminated header block"};
        const std::string_view line(rest.data(), static_cast<std::size_t>(cr - rest.data()));
        rest.remove_prefix(line.size() + 2);
        if (line.empty()) return {};
        if (line.front() == ' ' || line.front() == '\t')
            return {400, "obsolete line folding is not accepted"};
        // The name is the run of token characters; the colon must follow it at once.
        std::size_t colon = 0;
        while (colon < line.size() && kTchar[static_cast<unsigned char>(line[colon])]) ++colon;
        if (colon == line.size() || line[colon] != ':') {
            if (line.find(':') == std::string_view::npos) return {400, "header field without a colon"};
            return {400, "invalid header field name"};
        }
        if (colon == 0) return {400, "invalid header field name"};
        auto name = line.substr(0, colon);
        auto value = trim_ows(line.substr(colon + 1));
        if (!is_field_value(value)) return {400, "invalid character in header field value"};
        if (++count > max_headers) return {431, "too many header fields"};
        const auto& field = headers.add(name, value);
        if (auto err = on_field(field.id(), value)) return err;
    }
}

// Collects Content-Length / Transfer-Encoding as fields go by and decides the framing.
struct FramingFields {
    bool has_length = false;
    std::uint64_t length = 0;
    bool has_te = false;
    bool te_chunked_last = false;
    bool connection_close = false;
    bool connection_keep_alive = false;

    HeadError on_field(FieldId id, std::string_view value) {
        if (id == FieldId::content_length) {
            // "5, 5" is allowed as long as every element agrees.
            while (true) {
                auto comma = value.find(',');
                auto item = trim_ows(value.substr(0, comma));
                std::uint64_t n = 0;
                if (!parse_u64(item, n)) return {400, "invalid Content-Length"};
                if (has_length && n != length) return {400, "conflicting Content-Length values"};
                has_length = true;
                length = n;
                if (comma == std::string_view::npos) break;
                value.remove_prefix(comma + 1);
            }
        } else if (id == FieldId::transfer_encoding) {
            // Repeated fields form one list ("chunked, chunked"), which is not plain "chunked".
            if (has_te) unsupported_te = true;
            has_te = true;
            auto last = value.substr(value.rfind(',') == std::string_view::npos ? 0 : value.rfind(',') + 1);
            te_chunked_last = iequals(trim_ows(last), "chunked");
            if (!te_chunked_last || value.find(',') != std::string_view::npos) {
                // Only plain "chunked" is implemented.
                unsupported_te = true;
            }
        } else if (id == FieldId::host) {
            // RFC 9112 3.2: which of two hosts a request is for is anyone's guess.
            if (has_host) return {400, "more than one Host header"};
            has_host = true;
        } else if (id == FieldId::connection) {
            std::string_view v = value;
            while (!v.empty()) {
                auto comma = v.find(',');
                auto opt = trim_ows(v.substr(0, comma));
                if (iequals(opt, "close")) connection_close = true;
                if (iequals(opt, "keep-alive")) connection_keep_alive = true;
                if (comma == std::string_view::npos) break;
                v.remove_prefix(comma + 1);
            }
        }
        return {};
    }
    bool unsupported_te = false;
    bool has_host = false;
};

}  // namespace

char* ReadBuffer::prepare(std::size_t n) {
    if (data_.size() - end_ < n) {
        if (start_ > 0) {
            std::memmove(data_.data(), data_.data() + start_, end_ - start_);
            end_ -= start_;
            start_ = 0;
        }
        if (data_.size() - end_ < n) data_.resize(std::max(data_.size() * 2, end_ + n));
    }
    return data_.data() + end_;
}

HeadScanner::Status HeadScanner::scan(std::string_view data, std::size_t max_bytes) noexcept {
    // Line by line with memchr: every CR must be followed by LF and every LF preceded by CR.
    // Heads may start with empty lines between pipelined messages (RFC 9112 2.2): not accepted
    // here; a leading CRLF is simply an empty start line, reported by the parser.
    const std::size_t size = data.size();
    while (pos_ < size) {
        const char* from = data.data() + pos_;
        const auto* cr = static_cast<const char*>(std::memchr(from, '\r', size - pos_));
        const std::size_t upto = cr ? static_cast<std::size_t>(cr - from) : size - pos_;
        if (std::memchr(from, '\n', upto)) return Status::bad_line_ending;
        if (!cr) {
            pos_ = size;
            break;
        }
        const std::size_t at = pos_ + upto;
        if (at + 1 >= size) {
            pos_ = at;  // need the byte after the CR
            break;
        }
        if (data[at + 1] != '\n') return Status::bad_line_ending;
        if (at == line_start_ && at != 0) {
            head_size_ = at + 2;
            pos_ = head_size_;
            return head_size_ > max_bytes ? Status::too_large : Status::complete;
        }
        pos_ = at + 2;
        line_start_ = pos_;
        if (pos_ > max_bytes) return Status::too_large;
    }
    if (pos_ > max_bytes) return Status::too_large;
    return Status::incomplete;
}

HeadError parse_request_head(std::string_view head, std::size_t max_headers, Request& req, Framing& framing) {
    auto eol = head.find("\r\n");
    auto line = head.substr(0, eol);
    auto sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return {400, "malformed request line"};
    auto sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return {400, "malformed request line"};
    auto method = line.substr(0, sp1);
    auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    auto version = line.substr(sp2 + 1);
    if (!is_token(method)) return {400, "invalid method"};
    if (target.empty()) return {400, "empty request target"};
    for (unsigned char c : target) {
        if (c <= 0x20 || c == 0x7f) return {400, "invalid character in request target"};
    }
    if (target.front() != '/' && !(target == "*" && method == "OPTIONS")) {
        return {400, "request target must be in origin form"};
    }
    if (version.size() != 8 || version.substr(0, 7) != "HTTP/1.") {
        if (version.substr(0, 5) == "HTTP/") return {505, "only HTTP/1.0 and HTTP/1.1 are supported"};
        return {400, "malformed HTTP version"};
    }
    if (version[7] != '0' && version[7] != '1') return {505, "only HTTP/1.0 and HTTP/1.1 are supported"};
    req.method.assign(method);
    req.target.assign(target);
    req.version_minor = version[7] - '0';

    FramingFields ff;
    if (auto err = parse_fields(head.substr(eol + 2), max_headers, req.headers,
                                [&](FieldId id, std::string_view v) { return ff.on_field(id, v); })) {
        return err;
    }
    if (req.version_minor == 1 && !ff.has_host) return {400, "missing Host header"};
    if (ff.has_te && ff.has_length) return {400, "both Content-Length and Transfer-Encoding"};
    if (ff.has_te) {
        if (req.version_minor == 0) return {400, "Transfer-Encoding in an HTTP/1.0 request"};
        if (ff.unsupported_te) return {501, "only the chunked transfer coding is supported"};
        framing = {Framing::chunked, 0};
    } else if (ff.has_length) {
        framing = {ff.length ? Framing::sized : Framing::none, ff.length};
    } else {
        framing = {Framing::none, 0};
    }
    req.keep_alive = req.version_minor == 1 ? !ff.connection_close : ff.connection_keep_alive;
    return {};
}

HeadError parse_response_head(std::string_view head, std::string_view request_method, Response& res,
                              Framing& framing, bool& keep_alive) {
    auto eol = head.find("\r\n");
    auto line = head.substr(0, eol);
    // HTTP/1.x SSS[ reason]
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') {
        return {502, "malformed status line"};
    }
    int minor = line[7] - '0';
    int status = 0;
    auto code = line.substr(9, 3);
    auto [p, ec] = std::from_chars(code.data(), code.data() + 3, status);
    if (ec != std::errc{} || p != code.data() + 3 || status < 100 || status > 999) {
        return {502, "malformed status code"};
    }
    if (line.size() > 12 && line[12] != ' ') return {502, "malformed status line"};
    res.status = status;
    FramingFields ff;
    if (auto err = parse_fields(head.substr(eol + 2), 1000, res.headers,
                                [&](FieldId id, std::string_view v) { return ff.on_field(id, v); })) {
        return {502, err.detail};
    }
    keep_alive = minor == 1 ? !ff.connection_close : ff.connection_keep_alive;
    if (request_method == "HEAD" || status == 204 || status == 304 || status < 200) {
        framing = {Framing::none, 0};
        return {};
    }
    if (ff.has_te && ff.has_length) return {502, "both Content-Length and Transfer-Encoding"};
    if (ff.has_te) {
        if (ff.unsupported_te) return {502, "unsupported transfer coding"};
        framing = {Framing::chunked, 0};
    } else if (ff.has_length) {
        framing = {ff.length ? Framing::sized : Framing::none, ff.length};
    } else {
        framing = {Framing::until_close, 0};
        keep_alive = false;
    }
    return {};
}

namespace {
// The longest chunk-size line (size, extensions, CR) accepted.
constexpr std::size_t kMaxChunkLine = 1024;
}  // namespace

ChunkedDecoder::Status ChunkedDecoder::feed(std::string_view in, std::string& body, std::size_t max_body,
                                            std::size_t& consumed) {
    std::size_t i = 0;
    while (i < in.size()) {
        switch (state_) {
            case State::size: {
                // chunk-size [ chunk-ext ] CRLF, read up to the LF
                auto lf = in.find('\n', i);
                if (lf == std::string_view::npos) {
                    line_.append(in.substr(i));
                    i = in.size();
                    if (line_.size() > kMaxChunkLine) return Status::bad_chunk;
                    break;
                }
                line_.append(in.substr(i, lf - i));
                i = lf + 1;
                // Checked here too: a line that arrives in one read is held to the same limit.
                if (line_.size() > kMaxChunkLine) return Status::bad_chunk;
                if (line_.empty() || line_.back() != '\r') return Status::bad_chunk;
                line_.pop_back();
                std::string_view l(line_);
                auto semi = l.find(';');
                auto digits = l.substr(0, semi);
                while (!digits.empty() && (digits.back() == ' ' || digits.back() == '\t'))
                    digits.remove_suffix(1);
                if (digits.empty() || digits.size() > 15) return Status::bad_chunk;
                std::uint64_t n = 0;
                for (char c : digits) {
                    int d;
                    if (c >= '0' && c <= '9')
                        d = c - '0';
                    else if (c >= 'a' && c <= 'f')
                        d = c - 'a' + 10;
                    else if (c >= 'A' && c <= 'F')
                        d = c - 'A' + 10;
                    else
                        return Status::bad_chunk;
                    n = n * 16 + static_cast<std::uint64_t>(d);
                }
                if (semi != std::string_view::npos) {
                    for (unsigned char c : l.substr(semi)) {
                        if (c < 0x20 && c != '\t') return Status::bad_chunk;
                    }
                }
                line_.clear();
                if (n == 0) {
                    state_ = State::trailer;
                } else {
                    if (body.size() + n > max_body) return Status::too_large;
                    remaining_ = n;
                    state_ = State::data;
                }
                break;
            }
            case State::data: {
                auto take = std::min<std::uint64_t>(remaining_, in.size() - i);
                body.append(in.data() + i, take);
                i += take;
                remaining_ -= take;
                if (remaining_ == 0) state_ = State::data_crlf;
                break;
            }
            case State::data_crlf: {
                line_.push_back(in[i++]);
                if (line_.size() == 2) {
                    if (line_ != "\r\n") return Status::bad_chunk;
                    line_.clear();
                    state_ = State::size;
                }
                break;
            }
            case State::trailer: {
                auto lf = in.find('\n', i);
                if (lf == std::string_view::npos) {
                    line_.append(in.substr(i));
                    trailer_bytes_ += in.size() - i;
                    i = in.size();
                    if (trailer_bytes_ > 16 * 1024) return Status::bad_chunk;
                    break;
                }
                line_.append(in.substr(i, lf - i));
                trailer_bytes_ += lf - i + 1;
                i = lf + 1;
                if (line_.empty() || line_.back() != '\r') return Status::bad_chunk;
                if (trailer_bytes_ > 16 * 1024) return Status::bad_chunk;
                bool end = line_.size() == 1;
                line_.clear();
                if (end) {
                    consumed = i;
                    return Status::done;
                }
                break;
            }
        }
    }
    consumed = i;
    return Status::incomplete;
}

namespace {
bool is_framing_field(FieldId id) noexcept {
    return id == FieldId::content_length || id == FieldId::transfer_encoding || id == FieldId::connection;
}
}  // namespace

namespace {
// Writes a head into `out` after its current end: sized once (the caller gives an upper bound),
// then filled by memcpy, since a head is rebuilt for every message the gateway forwards.
class HeadWriter {
  public:
    HeadWriter(std::string& out, std::size_t bound) : out_(out), at_(out.size()) { out.resize(at_ + bound); }
    ~HeadWriter() { out_.resize(at_); }
    HeadWriter(const HeadWriter&) = delete;
    HeadWriter& operator=(const HeadWriter&) = delete;
    void put(std::string_view s) noexcept {
        std::memcpy(out_.data() + at_, s.data(), s.size());
        at_ += s.size();
    }
    void put(char c) noexcept { out_[at_++] = c; }
    void put_field(std::string_view name, std::string_view value) noexcept {
        put(name);
        put(": ");
        put(value);
        put("\r\n");
    }
    void put_number(std::uint64_t n) noexcept {
        auto [end, ec] = std::to_chars(out_.data() + at_, out_.data() + out_.size(), n);
        at_ = static_cast<std::size_t>(end - out_.data());
    }

  private:
    std::string& out_;
    std::size_t at_;
};

// Bytes of the fields that are copied as they are ("Name: value\r\n" each).
std::size_t copied_fields_size(const Headers& headers) noexcept {
    std::size_t n = 0;
    for (const auto& h : headers) {
        if (!is_framing_field(h.id())) n += h.name().size() + h.value.size() + 4;
    }
    return n;
}

constexpr std::size_t kNumberBound = 20;  // digits of a 64-bit number
}  // namespace

void serialize_response_head(const Response& res, bool close, std::string_view date, std::string& out,
                             bool head_request) {
    const auto reason = reason_phrase(res.status);
    const bool has_body = res.status >= 200 && res.status != 204 && res.status != 304;
    const auto proxied_length = head_request && res.body.empty() && has_body
                                    ? res.headers.get(FieldId::content_length)
                                    : std::nullopt;
    HeadWriter w(out, 9 + 4 + reason.size() + 2 + copied_fields_size(res.headers) + 16 + kNumberBound +
                          (proxied_length ? proxied_length->size() : 0) + 8 + date.size() + 19 + 2);
    w.put("HTTP/1.1 ");
    w.put(static_cast<char>('0' + res.status / 100 % 10));
    w.put(static_cast<char>('0' + res.status / 10 % 10));
    w.put(static_cast<char>('0' + res.status % 10));
    w.put(' ');
    w.put(reason);
    w.put("\r\n");
    bool has_date = false;
    for (const auto& h : res.headers) {
        if (is_framing_field(h.id())) continue;
        if (h.id() == FieldId::date) has_date = true;
        w.put_field(h.name(), h.value);
    }
    if (head_request && res.body.empty() && has_body) {
        w.put("Content-Length: ");
        w.put(proxied_length ? *proxied_length : std::string_view("0"));
        w.put("\r\n");
    } else if (has_body) {
        w.put("Content-Length: ");
        w.put_number(res.body.size());
        w.put("\r\n");
    }
    if (!has_date) w.put_field("Date", date);
    if (close) w.put("Connection: close\r\n");
    w.put("\r\n");
}

void serialize_request_head(const Request& req, std::string_view host, std::string& out) {
    const bool has_host = req.headers.get(FieldId::host).has_value();
    HeadWriter w(out, req.method.size() + 1 + req.target.size() + 11 + copied_fields_size(req.headers) +
                          (has_host ? 0 : 8 + host.size()) + 18 + kNumberBound + 2);
    w.put(req.method);
    w.put(' ');
    w.put(req.target);
    w.put(" HTTP/1.1\r\n");
    for (const auto& h : req.headers) {
        if (!is_framing_field(h.id())) w.put_field(h.name(), h.value);
    }
    if (!has_host) w.put_field("Host", host);
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
        w.put("Content-Length: ");
        w.put_number(req.body.size());
        w.put("\r\n");
    }
    w.put("\r\n");
}

std::string_view http_date() {
    thread_local std::time_t cached_second = 0;
    thread_local char cached[40];
    thread_local std::size_t cached_len = 0;
    std::time_t now = std::time(nullptr);
    if (now != cached_second) {
        std::tm tm{};
        gmtime_r(&now, &tm);
        cached_len = std::strftime(cached, sizeof cached, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_second = now;
    }
    return {cached, cached_len};
}

}  // namespace plexus::net::wire

namespace plexus::net {

bool is_token(std::string_view s) noexcept { return wire::is_token(s); }

bool is_field_value(std::string_view s) noexcept { return wire::is_field_value(s); }

}  // namespace plexus::net
