#pragma once
/// Plexus's own HTTP/1.1 message types, shared by the server, the client, the router and the
/// gateway. They own their bytes; the server reuses one Request and one Response per connection
/// (`clear()` keeps capacity), so steady-state traffic allocates nothing for them.

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace plexus::net {

class BodySource;

/// ASCII case-insensitive comparison, as header names need.
bool iequals(std::string_view a, std::string_view b) noexcept;

/// Whether `s` is an RFC 9110 token (a method, a field name): one or more tchar.
bool is_token(std::string_view s) noexcept;

/// Whether `s` may be a field value: visible characters, obs-text, SP and HTAB, no other control.
bool is_field_value(std::string_view s) noexcept;

/// The field names Plexus itself reads or writes. A field's id is worked out once, when it is
/// stored, so that lookups of these names and the proxy's hop-by-hop rules compare one byte
/// instead of strings. `other` is every other name.
enum class FieldId : std::uint8_t {
    other,
    host,
    connection,
    content_length,
    transfer_encoding,
    content_type,
    date,
    expect,
    keep_alive,
    proxy_connection,
    te,
    trailer,
    upgrade,
    proxy_authenticate,
    proxy_authorization,
    x_request_id,
    x_forwarded_for,
    x_forwarded_proto,
    x_forwarded_host,
    traceparent,
    x_plexus_deadline_ms,
    x_plexus_original_path,
    authorization,
    x_api_key,
    x_plexus_subject,
    x_plexus_client,
    x_plexus_scopes,
    x_plexus_roles,
};

/// The id of the field name `name` (ASCII case-insensitive); FieldId::other for any name not
/// listed. Thread-safe.
FieldId field_id(std::string_view name) noexcept;

/// One header field. The name is fixed when the field is stored (Headers::add, set, rename);
/// the value may be changed in place.
class Header {
  public:
    std::string_view name() const noexcept { return name_; }
    /// The name's FieldId.
    FieldId id() const noexcept { return id_; }
    std::string value;

  private:
    friend class Headers;
    std::string name_;
    FieldId id_ = FieldId::other;
    bool dropped_ = false;  // marked by erase_if's first pass
};

/// An ordered list of header fields with case-insensitive lookup. Not thread-safe.
class Headers {
  public:
    /// The first value of `name`, if present.
    std::optional<std::string_view> get(std::string_view name) const noexcept;
    /// The first value of the well-known field `id` (not FieldId::other), if present.
    std::optional<std::string_view> get(FieldId id) const noexcept;
    bool contains(std::string_view name) const noexcept { return get(name).has_value(); }
    /// Appends a field (repeats allowed) and returns it; the reference is valid until the
    /// headers next change.
    const Header& add(std::string_view name, std::string_view value);
    /// Replaces every field named `name` with one field, where the first of them was.
    void set(std::string_view name, std::string_view value);
    /// Removes every field named `name`; returns how many were removed.
    std::size_t remove(std::string_view name);
    /// Gives the field `h` (one of these headers) a new name.
    void rename(Header& h, std::string_view name);
    /// Removes every field for which `drop(const Header&)` is true; returns how many. `drop` is
    /// asked about every field before any moves, so it may look at other fields (views into
    /// their values stay valid throughout). Keeps the order of the others.
    template <class Pred>
    std::size_t erase_if(Pred&& drop) {
        std::size_t marked = 0;
        for (std::size_t i = 0; i < size_; ++i) {
            if (drop(static_cast<const Header&>(items_[i]))) items_[i].dropped_ = true, ++marked;
        }
        if (marked) compact();
        return marked;
    }
    void clear() noexcept { size_ = 0; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    const Header* begin() const noexcept { return items_.data(); }
    const Header* end() const noexcept { return items_.data() + size_; }
    Header* begin() noexcept { return items_.data(); }
    Header* end() noexcept { return items_.data() + size_; }

  private:
    // add() with the name's id already known.
    const Header& add(FieldId id, std::string_view name, std::string_view value);
    // The index of the first field matching (id, name) at or after `from`, or size_.
    std::size_t find(FieldId id, std::string_view name, std::size_t from = 0) const noexcept;
    // Removes the fields marked `dropped_`, keeping the order of the rest.
    void compact() noexcept;
    // Removes every field matching (id, name) at or after `from`; returns how many.
    std::size_t drop_from(FieldId id, std::string_view name, std::size_t from) noexcept;

    std::vector<Header> items_;  // items_[size_..] are spare, kept for their capacity
    std::size_t size_ = 0;
};

/// Path parameters captured by a route pattern, in pattern order.
using PathParams = std::vector<std::pair<std::string, std::string>>;

/// An HTTP request. `target` is the origin-form request target ("/a/b?x=1").
struct Request {
    std::string method;
    std::string target;
    int version_minor = 1;
    Headers headers;
    std::string body;

    // Filled by the server.
    std::string remote_address;  ///< peer IP address
    bool secure = false;         ///< it came over TLS (https)
    bool keep_alive = true;      ///< whether the client allows reusing the connection
    PathParams params;           ///< captured by the router
    /// When the caller stops waiting (from its X-Plexus-Deadline-Ms budget, set by the SDK);
    /// time_point::max() when it did not say. Outbound calls made for this request end by then.
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
    /// Set while the body is still unread on the connection: only for a server that defers
    /// bodies (ServerSettings::defer_body) and a request that has one. Read it with read_body().
    BodySource* body_source = nullptr;

    /// The path part of the target (before '?').
    std::string_view path() const noexcept;
    /// The raw query part of the target (after '?'), empty if none.
    std::string_view query() const noexcept;
    /// The percent-decoded value of query parameter `name`, if present.
    std::optional<std::string> query_param(std::string_view name) const;
    /// A captured path parameter; empty if the route has none by that name.
    std::string_view param(std::string_view name) const noexcept;
    void clear() noexcept;
};

/// An HTTP response. The server sets Content-Length, Connection and Date itself.
struct Response {
    int status = 200;
    Headers headers;
    std::string body;

    void clear() noexcept;
    /// Sets status, `Content-Type: application/json` and the body.
    void json(int status_code, std::string json_body);
    /// Sets status, `Content-Type: text/plain; charset=utf-8` and the body.
    void text(int status_code, std::string text_body);
    /// An RFC 7807 problem: `application/problem+json` with type, title, status, detail (and
    /// `instance` when given).
    void problem(int status_code, std::string_view title, std::string_view detail,
                 std::string_view instance = {});
};

/// A request with method, target, body and (when given) Content-Type.
Request make_request(std::string method, std::string target, std::string body = {},
                     std::string_view content_type = {});

/// The reason phrase of a status code ("Not Found"); "Unknown" for unlisted codes.
std::string_view reason_phrase(int status) noexcept;

/// Thrown by handlers for an expected client or server error; the server turns it into an
/// `application/problem+json` response in one place.
class HttpError : public std::runtime_error {
  public:
    HttpError(int status, std::string title, std::string detail)
        : std::runtime_error(detail), status_(status), title_(std::move(title)) {}
    int status() const noexcept { return status_; }
    const std::string& title() const noexcept { return title_; }

  private:
    int status_;
    std::string title_;
};

/// Percent-decodes `in` ('+' stays '+'); nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view in);

/// Percent-encodes every byte of `in` except RFC 3986's unreserved characters
/// (A-Z a-z 0-9 - . _ ~), for a query parameter or form value.
std::string percent_encode(std::string_view in);

/// The fields of an `application/x-www-form-urlencoded` body, in order, decoded ('+' is a
/// space); nullopt on a malformed escape. Repeated names are kept (the caller decides).
std::optional<std::vector<std::pair<std::string, std::string>>> parse_form(std::string_view body);

/// Whether `method` is idempotent per RFC 9110 (GET, HEAD, PUT, DELETE, OPTIONS, TRACE).
bool is_idempotent(std::string_view method) noexcept;

/// Whether `name` is a hop-by-hop header field that a proxy must not forward (RFC 9110 7.6.1):
/// Connection, Keep-Alive, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE,
/// Trailer, Transfer-Encoding, Upgrade (case-insensitive). Fields named in a Connection header
/// are hop-by-hop too; checking those is the caller's job. Thread-safe.
bool is_hop_by_hop(std::string_view name) noexcept;
/// Whether the well-known field `id` is hop-by-hop (the list above). Thread-safe.
bool is_hop_by_hop(FieldId id) noexcept;

}  // namespace plexus::net
