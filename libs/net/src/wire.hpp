#pragma once
// HTTP/1.1 wire format: head scanning and parsing, body framing, chunked decoding and
// serialisation. Shared by the server and the client; no I/O here, so it is tested directly.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/net/http.hpp"

namespace plexus::net::wire {

/// The eight bytes at `p` as one word (any alignment).
inline std::uint64_t load_word(const char* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
}

/// Whether `word_ok(i)` holds for every eight-byte word of an `n`-byte string (n >= 8): words at
/// 0, 8, 16... and a last one at n - 8 that overlaps the one before. The loop of the checks that
/// work a word at a time.
template <class WordOk>
bool all_words(std::size_t n, WordOk&& word_ok) {
    for (std::size_t i = 0; i + 8 < n; i += 8) {
        if (!word_ok(i)) return false;
    }
    return word_ok(n - 8);
}

/// A growable byte buffer with a consumed prefix; reused for the life of a connection.
class ReadBuffer {
  public:
    std::string_view view() const noexcept { return {data_.data() + start_, end_ - start_}; }
    std::size_t size() const noexcept { return end_ - start_; }
    bool empty() const noexcept { return start_ == end_; }
    /// Room for at least `n` more bytes at the end.
    char* prepare(std::size_t n);
    std::size_t capacity_left() const noexcept { return data_.size() - end_; }
    void commit(std::size_t n) noexcept { end_ += n; }
    void consume(std::size_t n) noexcept {
        start_ += n;
        if (start_ == end_) start_ = end_ = 0;
    }
    void clear() noexcept { start_ = end_ = 0; }

  private:
    std::vector<char> data_;
    std::size_t start_ = 0, end_ = 0;
};

/// Finds the end of a message head, checking line endings as it goes. Incremental: call again
/// with the grown buffer; it resumes where it stopped.
class HeadScanner {
  public:
    enum class Status { incomplete, complete, bad_line_ending, too_large };
    /// `data` starts at the head's first byte. On `complete`, head_size() is the length
    /// including the final empty line.
    Status scan(std::string_view data, std::size_t max_bytes) noexcept;
    std::size_t head_size() const noexcept { return head_size_; }
    void reset() noexcept { pos_ = 0, line_start_ = 0, head_size_ = 0; }

  private:
    std::size_t pos_ = 0;
    std::size_t line_start_ = 0;
    std::size_t head_size_ = 0;
};

/// Outcome of parsing a head: 0 on success, else the status to answer (400, 431, 501, 505).
struct HeadError {
    int status = 0;
    const char* detail = "";
    explicit operator bool() const noexcept { return status != 0; }
};

/// How a message body is delimited.
struct Framing {
    enum Kind { none, sized, chunked, until_close } kind = none;
    std::uint64_t length = 0;
};

/// Parses a request head (request line + fields, ending in the empty line) into `req` and
/// decides the body framing with the strict rules of RFC 9112 section 6.
HeadError parse_request_head(std::string_view head, std::size_t max_headers, Request& req, Framing& framing);

/// Parses a response head; `request_method` decides whether a body may follow.
HeadError parse_response_head(std::string_view head, std::string_view request_method, Response& res,
                              Framing& framing, bool& keep_alive);

/// Incremental chunked-body decoder (RFC 9112 section 7.1). Trailer fields are read and dropped.
class ChunkedDecoder {
  public:
    enum class Status { incomplete, done, bad_chunk, too_large };
    /// Consumes bytes from `in`, appending data to `body`; `consumed` is how many bytes were used.
    Status feed(std::string_view in, std::string& body, std::size_t max_body, std::size_t& consumed);
    void reset() noexcept {
        state_ = State::size, remaining_ = 0, line_len_ = 0, trailer_bytes_ = 0;
        line_.clear();
    }

  private:
    enum class State { size, data, data_crlf, trailer } state_ = State::size;
    std::uint64_t remaining_ = 0;
    std::size_t line_len_ = 0;
    std::size_t trailer_bytes_ = 0;
    std::string line_;
};

/// Appends "HTTP/1.1 <status> <reason>\r\n", the response's fields except framing and
/// connection fields, Content-Length (unless status forbids a body), Date, and Connection: close
/// when `close`. Then the empty line. The body is written separately.
/// For a HEAD request (`head_request`) with an empty body, a Content-Length the response carries
/// (a proxied upstream's) is kept: it is the length the GET would have had.
void serialize_response_head(const Response& res, bool close, std::string_view date, std::string& out,
                             bool head_request = false);

/// Appends the request line, Host (from `host` unless present), the request's fields except
/// framing and connection fields, Content-Length when there is a body or the method carries one,
/// and the empty line.
void serialize_request_head(const Request& req, std::string_view host, std::string& out);

/// The current time as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), cached per second and
/// per thread.
std::string_view http_date();

}  // namespace plexus::net::wire
