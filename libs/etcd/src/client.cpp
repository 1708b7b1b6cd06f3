#include "plexus/etcd/client.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <stdexcept>

#include "call.hpp"
#include "codec.hpp"

namespace plexus::etcd {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

Result<std::vector<net::Endpoint>> parse_members(std::string_view list) {
    std::vector<net::Endpoint> out;
    while (!list.empty()) {
        auto comma = list.find(',');
        auto item = list.substr(0, comma);
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (item.empty()) continue;
        auto ep = net::parse_endpoint(item);
        if (!ep)
            return make_error(errc::rejected, "not a member URL (http://host:port): " + std::string(item));
        out.push_back(std::move(*ep));
    }
    if (out.empty()) return make_error(errc::rejected, "no etcd members given");
    return out;
}

namespace detail {

std::string member_name(const net::Endpoint& ep) { return "member " + ep.to_string(); }

net::Request gateway_request(std::string_view path, std::string body) {
    auto req = net::make_request("POST", std::string(path), std::move(body), "application/json");
    // gRPC metadata through the gateway: refuse at once (and cancel watches) without a leader.
    req.headers.add("Grpc-Metadata-Hasleader", "true");
    return req;
}

namespace {

// How a transport failure is judged: nothing was sent when the connection could not be made; after
// that, a read may go elsewhere and a write has an unknown outcome.
Verdict judge_transport(const ErrorCode& ec, bool read, std::string& what) {
    what = ec.message();
    if (ec == net::errc::connect_failed || ec == net::errc::bad_address || ec == net::errc::pool_exhausted)
        return {errc::unavailable, true};
    if (ec == net::errc::timeout) {
        what = "no answer in time";
        return read ? Verdict{errc::timeout, true} : Verdict{errc::outcome_unknown, false};
    }
    if (ec == net::errc::connection_closed) {
        what = "connection closed before the answer";
        return read ? Verdict{errc::unavailable, true} : Verdict{errc::outcome_unknown, false};
    }
    return read ? Verdict{errc::bad_response, true} : Verdict{errc::outcome_unknown, false};
}

}  // namespace

net::Task<Result<json::value>> call(std::shared_ptr<Client::State> state, std::chrono::milliseconds timeout,
                                    std::string path, std::string body, CallKind kind,
                                    std::optional<std::size_t> only_member) {
    const auto& settings = state->settings;
    const auto& members = settings.members;
    const bool read = kind == CallKind::read;
    const auto request = gateway_request(path, std::move(body));
    const auto deadline = Clock::now() + timeout;
    MemberRounds rounds(*state, only_member);
    ErrorCode last = make_error(errc::timeout, "no member was asked before the call's timeout");
    net::Response response;

    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left <= std::chrono::milliseconds::zero()) co_return last;
        auto attempt = read ? std::min(left, settings.read_attempt_timeout) : left;
        const auto index = rounds.index();
        const auto& member = members[index];
        auto ec = co_await net::send(member, request, response, attempt);

        Verdict verdict;
        std::string what;
        if (ec) {
            verdict = judge_transport(ec, read, what);
        } else {
            GatewayError refused;
            if (response.status != 200) {
                refused = error_of_answer(response.status, response.body);
            } else {
                boost::system::error_code jec;
                auto value = json::parse(response.body, jec);
                if (jec) {
                    co_return make_error(errc::bad_response,
                                         member_name(member) + ": " + path + ": answer is not JSON");
                }
                // A stream's error (a keepalive's) comes with status 200.
                auto error = decode_error(value);
                if (!error) {
                    state->preferred.store(index, std::memory_order_relaxed);
                    co_return value;
                }
                refused = std::move(*error);
            }
            verdict = judge(refused, read);
            what = describe(refused);
        }
        last = make_error(verdict.error, member_name(member) + ": " + what);
        if (!verdict.try_next || only_member) co_return last;

        if (auto pause = rounds.failed(*state); pause.count() > 0) {
            left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left <= pause) co_return last;
            co_await net::sleep_for(pause);
        }
    }
}

}  // namespace detail

Client::Client(Settings settings) : timeout_(settings.timeout) {
    if (settings.members.empty()) throw std::invalid_argument("etcd client: no members given");
    state_ = std::make_shared<State>(std::move(settings));
}

namespace {
Settings settings_for(std::string_view members) {
    auto parsed = parse_members(members);
    if (!parsed) throw std::invalid_argument("etcd client: " + parsed.error().message());
    Settings s;
    s.members = std::move(*parsed);
    return s;
}
}  // namespace

Client::Client(std::string_view members) : Client(settings_for(members)) {}

Client::Client(std::shared_ptr<State> state, std::chrono::milliseconds timeout)
    : state_(std::move(state)), timeout_(timeout) {}

Client Client::with_timeout(std::chrono::milliseconds timeout) const { return Client(state_, timeout); }

const std::vector<net::Endpoint>& Client::members() const noexcept { return state_->settings.members; }

std::size_t Client::preferred_member() const noexcept {
    return state_->preferred.load(std::memory_order_relaxed) % state_->settings.members.size();
}

namespace {

using detail::CallKind;

template <class T, class Decode>
net::Task<Result<T>> unary(std::shared_ptr<Client::State> state, std::chrono::milliseconds timeout,
                           std::string path, std::string body, CallKind kind, Decode decode,
                           std::optional<std::size_t> only_member = std::nullopt) {
    auto value =
        co_await detail::call(std::move(state), timeout, std::move(path), std::move(body), kind, only_member);
    if (!value) co_return value.error();
    co_return decode(*value);
}

net::Task<Result<std::optional<KeyValue>>> get_one(net::Task<Result<RangeResponse>> range) {
    auto r = co_await std::move(range);
    if (!r) co_return r.error();
    if (r->kvs.empty()) co_return std::optional<KeyValue>{};
    co_return std::optional<KeyValue>(std::move(r->kvs.front()));
}

net::Task<ErrorCode> discard_value(net::Task<Result<json::value>> call) {
    auto r = co_await std::move(call);
    co_return r ? ErrorCode{} : r.error();
}

}  // namespace

net::Task<Result<RangeResponse>> Client::range(RangeRequest request) const {
    return unary<RangeResponse>(state_, timeout_, "/v3/kv/range", detail::range_body(request), CallKind::read,
                                detail::decode_range);
}

net::Task<Result<std::optional<KeyValue>>> Client::get(std::string key) const {
    RangeRequest r;
    r.key = std::move(key);
    return get_one(range(std::move(r)));
}

net::Task<Result<PutResponse>> Client::put(PutRequest request) const {
    return unary<PutResponse>(state_, timeout_, "/v3/kv/put", detail::put_body(request), CallKind::write,
                              detail::decode_put);
}

net::Task<Result<PutResponse>> Client::put(std::string key, std::string value, std::int64_t lease) const {
    return put(PutRequest{std::move(key), std::move(value), lease, false});
}

net::Task<Result<DeleteResponse>> Client::delete_range(DeleteRequest request) const {
    return unary<DeleteResponse>(state_, timeout_, "/v3/kv/deleterange", detail::delete_body(request),
                                 CallKind::write, detail::decode_delete);
}

net::Task<Result<TxnResponse>> Client::txn(TxnRequest request) const {
    auto kind = detail::read_only(request) ? CallKind::read : CallKind::write;
    return unary<TxnResponse>(state_, timeout_, "/v3/kv/txn", detail::txn_body(request), kind,
                              detail::decode_txn);
}

net::Task<Result<Lease>> Client::lease_grant(std::chrono::seconds ttl) const {
    return unary<Lease>(state_, timeout_, "/v3/lease/grant", detail::lease_grant_body(ttl), CallKind::write,
                        detail::decode_lease_grant);
}

net::Task<Result<Lease>> Client::lease_keep_alive_once(std::int64_t id) const {
    // Refreshing a lease twice does no harm, so it may go to the next member like a read.
    return unary<Lease>(state_, timeout_, "/v3/lease/keepalive", detail::lease_id_body(id), CallKind::read,
                        detail::decode_keep_alive);
}

net::Task<ErrorCode> Client::lease_revoke(std::int64_t id) const {
    return discard_value(
        detail::call(state_, timeout_, "/v3/lease/revoke", detail::lease_id_body(id), CallKind::write));
}

net::Task<Result<MemberStatus>> Client::status(std::size_t member) const {
    if (member >= state_->settings.members.size())
        throw std::out_of_range("etcd client: no member " + std::to_string(member));
    return unary<MemberStatus>(state_, timeout_, "/v3/maintenance/status", "{}", CallKind::read,
                               detail::decode_status, member);
}

net::Task<WatchEnd> Client::watch(WatchRequest request, WatchHandler on_batch,
                                  WatchInterruptionHandler on_interrupted) const {
    return detail::run_watch(state_, std::move(request), std::move(on_batch), std::move(on_interrupted));
}

}  // namespace plexus::etcd
