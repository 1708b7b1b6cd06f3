#include "wire.hpp"

#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>

namespace plexus::net::wire {

namespace {

bool is_tchar(unsigned char c) noexcept {
    if (c >= 'a' && c <= 'z') return true;
    if (c >= 'A' && c <= 'Z') return true;
    if (c >= '0' && c <= '9') return true;
    switch (c) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '.':
        case '^':
        case '_':
        case '`':
        case '|':
        case '~':
            return true;
        default:
            return false;
    }
}

bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (unsigned char c : s) {
        if (!is_tchar(c)) return false;
    }
    return true;
}

// A field value may hold visible characters, obs-text, SP and HTAB; never other controls.
bool is_field_value(std::string_view s) noexcept {
    for (unsigned char c : s) {
        if (c < 0x20 && c != '\t') return false;
        if (c == 0x7f) return false;
    }
    return true;
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
        auto eol = rest.find("\r\n");
        if (eol == std::string_view::npos) return {400, "unterminated header block"};
        auto line = rest.substr(0, eol);
        rest.remove_prefix(eol + 2);
        if (line.empty()) return {};
        if (line.front() == ' ' || line.front() == '\t')
            return {400, "obsolete line folding is not accepted"};
        auto colon = line.find(':');
        if (colon == std::string_view::npos) return {400, "header field without a colon"};
        auto name = line.substr(0, colon);
        if (!is_token(name)) return {400, "invalid header field name"};
        auto value = trim_ows(line.substr(colon + 1));
        if (!is_field_value(value)) return {400, "invalid character in header field value"};
        if (++count > max_headers) return {431, "too many header fields"};
        headers.add(name, value);
        if (auto err = on_field(name, value)) return err;
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

    HeadError on_field(std::string_view name, std::string_view value) {
        if (iequals(name, "content-length")) {
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
        } else if (iequals(name, "transfer-encoding")) {
            // Repeated fields form one list ("chunked, chunked"), which is not plain "chunked".
            if (has_te) unsupported_te = true;
            has_te = true;
            auto last = value.substr(value.rfind(',') == std::string_view::npos ? 0 : value.rfind(',') + 1);
            te_chunked_last = iequals(trim_ows(last), "chunked");
            if (!te_chunked_last || value.find(',') != std::string_view::npos) {
                // Only plain "chunked" is implemented.
                unsupported_te = true;
            }
        } else if (iequals(name, "connection")) {
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
    // Heads may start with empty lines between pipelined messages (RFC 9112 2.2): not accepted
    // here; a leading CRLF is simply an empty start line, reported by the parser.
    while (pos_ < data.size()) {
        char c = data[pos_];
        if (c == '\r') {
            if (pos_ + 1 >= data.size()) break;  // need the next byte
            if (data[pos_ + 1] != '\n') return Status::bad_line_ending;
            if (pos_ == line_start_ && pos_ != 0) {
                head_size_ = pos_ + 2;
                pos_ += 2;
                return Status::complete;
            }
            pos_ += 2;
            line_start_ = pos_;
            continue;
        }
        if (c == '\n') return Status::bad_line_ending;
        ++pos_;
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
                                [&](std::string_view n, std::string_view v) { return ff.on_field(n, v); })) {
        return err;
    }
    if (req.version_minor == 1 && !req.headers.contains("host")) return {400, "missing Host header"};
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
                                [&](std::string_view n, std::string_view v) { return ff.on_field(n, v); })) {
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
                    if (line_.size() > 1024) return Status::bad_chunk;
                    break;
                }
                line_.append(in.substr(i, lf - i));
                i = lf + 1;
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
bool is_framing_field(std::string_view name) noexcept {
    return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
           iequals(name, "connection");
}
}  // namespace

void serialize_response_head(const Response& res, bool close, std::string_view date, std::string& out,
                             bool head_request) {
    out += "HTTP/1.1 ";
    char code[4] = {static_cast<char>('0' + res.status / 100 % 10),
                    static_cast<char>('0' + res.status / 10 % 10), static_cast<char>('0' + res.status % 10),
                    ' '};
    out.append(code, 4);
    out += reason_phrase(res.status);
    out += "\r\n";
    bool has_date = false;
    for (const auto& h : res.headers) {
        if (is_framing_field(h.name)) continue;
        if (!has_date && iequals(h.name, "date")) has_date = true;
        out += h.name;
        out += ": ";
        out += h.value;
        out += "\r\n";
    }
    if (head_request && res.body.empty() && res.status >= 200 && res.status != 204 && res.status != 304) {
        if (auto length = res.headers.get("content-length")) {
            out += "Content-Length: ";
            out += *length;
            out += "\r\n";
        } else {
            out += "Content-Length: 0\r\n";
        }
    } else if (res.status >= 200 && res.status != 204 && res.status != 304) {
        out += "Content-Length: ";
        char buf[24];
        auto [p, ec] = std::to_chars(buf, buf + sizeof buf, res.body.size());
        out.append(buf, p);
        out += "\r\n";
    }
    if (!has_date) {
        out += "Date: ";
        out += date;
        out += "\r\n";
    }
    if (close) out += "Connection: close\r\n";
    out += "\r\n";
}

void serialize_request_head(const Request& req, std::string_view host, std::string& out) {
    out += req.method;
    out += ' ';
    out += req.target;
    out += " HTTP/1.1\r\n";
    bool has_host = false;
    for (const auto& h : req.headers) {
        if (is_framing_field(h.name)) continue;
        if (!has_host && iequals(h.name, "host")) has_host = true;
        out += h.name;
        out += ": ";
        out += h.value;
        out += "\r\n";
    }
    if (!has_host) {
        out += "Host: ";
        out += host;
        out += "\r\n";
    }
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
        out += "Content-Length: ";
        char buf[24];
        auto [p, ec] = std::to_chars(buf, buf + sizeof buf, req.body.size());
        out.append(buf, p);
        out += "\r\n";
    }
    out += "\r\n";
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

bool is_hop_by_hop(std::string_view name) noexcept {
    return iequals(name, "connection") || iequals(name, "keep-alive") || iequals(name, "proxy-connection") ||
           iequals(name, "te") || iequals(name, "trailer") || iequals(name, "transfer-encoding") ||
           iequals(name, "upgrade") || iequals(name, "proxy-authenticate") ||
           iequals(name, "proxy-authorization");
}

}  // namespace plexus::net::wire
