#pragma once
// The etcd v3 JSON gateway's wire format (grpc-gateway over etcd's protobuf messages): request
// bodies out, responses in. What it takes care of:
//   - keys and values (`bytes` fields) are base64;
//   - 64-bit integers come as JSON strings ("revision":"42"); numbers are accepted too;
//   - fields at their default value are left out (a false `succeeded`, a PUT event's `type`, an
//     empty value, a zero revision);
//   - unary errors are {"error":"...","message":"...","code":N}; an error inside a stream (watch,
//     keepalive) is {"error":{"grpc_code":N,"http_code":H,"message":"..."}}; stream messages are
//     {"result":{...}}, one JSON document per line, except that the error which ends a stream has no
//     line break after it.
// No I/O here, so it is tested directly.

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "plexus/core/result.hpp"
#include "plexus/etcd/error.hpp"
#include "plexus/etcd/types.hpp"

namespace plexus::etcd::detail {

// Request bodies (JSON text).
std::string range_body(const RangeRequest& r);
std::string put_body(const PutRequest& r);
std::string delete_body(const DeleteRequest& r);
std::string txn_body(const TxnRequest& r);
std::string lease_grant_body(std::chrono::seconds ttl);
std::string lease_id_body(std::int64_t id);
/// A watch create_request from `start_revision` (0: from now).
std::string watch_body(const WatchRequest& r, std::int64_t start_revision, bool progress_notify);

/// Whether a transaction only reads (so repeating it on another member is harmless).
bool read_only(const TxnRequest& r) noexcept;

// Successful answers. Anything malformed is errc::bad_response saying what.
Result<RangeResponse> decode_range(const boost::json::value& v);
Result<PutResponse> decode_put(const boost::json::value& v);
Result<DeleteResponse> decode_delete(const boost::json::value& v);
Result<TxnResponse> decode_txn(const boost::json::value& v);
Result<Lease> decode_lease_grant(const boost::json::value& v);
/// A keepalive answer: {"result":{...}}; a missing or zero TTL is errc::lease_not_found.
Result<Lease> decode_keep_alive(const boost::json::value& v);
Result<MemberStatus> decode_status(const boost::json::value& v);

/// What etcd said when it refused or failed a call.
struct GatewayError {
    int code = 2;         ///< the gRPC status code (2, "unknown", when the answer gave none)
    std::string message;  ///< etcd's message, "etcdserver: no leader"
};
/// "etcdserver: no leader (grpc code 14)", for error details.
inline std::string describe(const GatewayError& e) {
    return e.message + " (grpc code " + std::to_string(e.code) + ")";
}
/// The error in a unary error answer or a stream's error message; nullopt when `v` is neither.
std::optional<GatewayError> decode_error(const boost::json::value& v);
/// The error an HTTP answer that is not 200 carries: its JSON error, or the status and text.
GatewayError error_of_answer(int http_status, std::string_view body);

/// gRPC status codes that matter here.
inline constexpr int kGrpcCanceled = 1, kGrpcUnknown = 2, kGrpcInvalidArgument = 3, kGrpcDeadlineExceeded = 4,
                     kGrpcNotFound = 5, kGrpcResourceExhausted = 8, kGrpcOutOfRange = 11,
                     kGrpcUnavailable = 14;

/// How a failed attempt is handled.
struct Verdict {
    errc error;
    /// Try the next member: the request certainly did not take effect (or only reads).
    bool try_next = false;
};
/// The verdict on an etcd error for a call that reads (`read`) or writes.
Verdict judge(const GatewayError& e, bool read) noexcept;

/// One message of a watch stream.
struct WatchMessage {
    enum class Kind { created, events, progress, canceled, error };
    Kind kind = Kind::progress;
    ResponseHeader header;
    std::vector<Event> events;
    std::int64_t compact_revision = 0;
    std::string cancel_reason;
    GatewayError error;  ///< for Kind::error
};
/// Decodes one line of a watch stream.
Result<WatchMessage> decode_watch_message(std::string_view line);

/// Splits a byte stream into lines ('\n'-terminated; a trailing '\r' and blank lines dropped).
class LineSplitter {
  public:
    /// Appends `data` and calls `on_line(std::string_view)` for each complete line until it
    /// returns false; returns false then.
    template <class OnLine>
    bool feed(std::string_view data, OnLine&& on_line) {
        pending_.append(data);
        std::size_t start = 0;
        bool go_on = true;
        while (go_on) {
            auto lf = pending_.find('\n', start);
            if (lf == std::string::npos) break;
            std::string_view line(pending_.data() + start, lf - start);
            start = lf + 1;
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
            go_on = on_line(line);
        }
        pending_.erase(0, start);
        return go_on;
    }
    std::size_t pending() const noexcept { return pending_.size(); }
    /// What is left after the last line break, for a stream that ended without one (the gateway
    /// ends a stream with an error message that has no line break); "" when that is blank.
    std::string take_rest() {
        std::string rest = std::move(pending_);
        pending_.clear();
        if (rest.find_first_not_of(" \t\r\n") == std::string::npos) rest.clear();
        return rest;
    }
    void clear() noexcept { pending_.clear(); }

  private:
    std::string pending_;
};

}  // namespace plexus::etcd::detail
