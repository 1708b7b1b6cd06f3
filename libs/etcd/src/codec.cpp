#include "codec.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <utility>

#include "plexus/core/base64.hpp"

namespace plexus::etcd {

std::string prefix_end(std::string_view prefix) {
    std::string end(prefix);
    while (!end.empty()) {
        auto& last = reinterpret_cast<unsigned char&>(end.back());
        if (last < 0xff) {
            ++last;
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');
}

namespace detail {

namespace json = boost::json;

namespace {

json::string b64(std::string_view bytes) { return json::string(core::base64_encode(bytes)); }
json::string i64(std::int64_t n) { return json::string(std::to_string(n)); }

ErrorCode bad(std::string_view what) { return make_error(errc::bad_response, what); }

// Reads the fields of one JSON object, remembering the first problem. Fields left at their
// default value are absent on the wire, so an absent field reads as 0, false or "".
class Fields {
  public:
    Fields(const json::object& o, std::string_view what) : o_(o), what_(what) {}

    template <class Int>
    Int integer(std::string_view name) {
        const auto* v = o_.if_contains(name);
        if (!v) return 0;
        if (const auto* s = v->if_string()) {
            Int n = 0;
            auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), n);
            if (ec == std::errc{} && end == s->data() + s->size()) return n;
        } else if (const auto* i = v->if_int64()) {
            if (std::in_range<Int>(*i)) return static_cast<Int>(*i);
        } else if (const auto* u = v->if_uint64()) {
            if (std::in_range<Int>(*u)) return static_cast<Int>(*u);
        }
        fail(name, "is not a 64-bit integer");
        return 0;
    }
    std::int64_t i64(std::string_view name) { return integer<std::int64_t>(name); }
    std::uint64_t u64(std::string_view name) { return integer<std::uint64_t>(name); }

    bool flag(std::string_view name) {
        const auto* v = o_.if_contains(name);
        if (!v) return false;
        if (const auto* b = v->if_bool()) return *b;
        fail(name, "is not a boolean");
        return false;
    }
    std::string text(std::string_view name) {
        const auto* v = o_.if_contains(name);
        if (!v) return {};
        if (const auto* s = v->if_string()) return std::string(*s);
        fail(name, "is not a string");
        return {};
    }
    std::string bytes(std::string_view name) {
        const auto* v = o_.if_contains(name);
        if (!v) return {};
        if (const auto* s = v->if_string()) {
            if (auto decoded = core::base64_decode(*s)) return std::move(*decoded);
        }
        fail(name, "is not base64");
        return {};
    }
    const json::object* object(std::string_view name) {
        const auto* v = o_.if_contains(name);
        if (!v) return nullptr;
        if (const auto* o = v->if_object()) return o;
        fail(name, "is not an object");
        return nullptr;
    }
    const json::array* array(std::string_view name) {
        const auto* v = o_.if_contains(name);
        if (!v) return nullptr;
        if (const auto* a = v->if_array()) return a;
        fail(name, "is not an array");
        return nullptr;
    }
    void fail(std::string_view name, std::string_view problem) {
        if (error_.empty())
            error_ = std::string(what_) + ": field " + std::string(name) + " " + std::string(problem);
    }
    void fail(const ErrorCode& ec) {
        if (error_.empty()) error_ = std::string(what_) + ": " + std::string(error_detail(ec));
    }
    bool ok() const noexcept { return error_.empty(); }
    ErrorCode error() const { return bad(error_); }

  private:
    const json::object& o_;
    std::string_view what_;
    std::string error_;
};

ResponseHeader header_of(Fields& f) {
    ResponseHeader h;
    if (auto* o = f.object("header")) {
        Fields hf(*o, "header");
        h.cluster_id = hf.u64("cluster_id");
        h.member_id = hf.u64("member_id");
        h.revision = hf.i64("revision");
        h.raft_term = hf.u64("raft_term");
        if (!hf.ok()) f.fail(hf.error());
    }
    return h;
}

KeyValue kv_of(const json::object& o, Fields& parent, std::string_view what) {
    KeyValue kv;
    Fields f(o, what);
    kv.key = f.bytes("key");
    kv.value = f.bytes("value");
    kv.create_revision = f.i64("create_revision");
    kv.mod_revision = f.i64("mod_revision");
    kv.version = f.i64("version");
    kv.lease = f.i64("lease");
    if (!f.ok()) parent.fail(f.error());
    return kv;
}

KeyValue kv_of(const json::value& v, Fields& parent, std::string_view what) {
    if (const auto* o = v.if_object()) return kv_of(*o, parent, what);
    parent.fail(what, "is not an object");
    return {};
}

std::vector<KeyValue> kvs_of(Fields& f, std::string_view name) {
    std::vector<KeyValue> out;
    if (const auto* a = f.array(name)) {
        out.reserve(a->size());
        for (const auto& item : *a) out.push_back(kv_of(item, f, name));
    }
    return out;
}

const json::object* object_of(const json::value& v) { return v.if_object(); }

RangeResponse range_of(Fields& f) {
    RangeResponse r;
    r.header = header_of(f);
    r.kvs = kvs_of(f, "kvs");
    r.more = f.flag("more");
    r.count = f.i64("count");
    return r;
}

PutResponse put_of(Fields& f) {
    PutResponse r;
    r.header = header_of(f);
    if (const auto* p = f.object("prev_kv")) r.prev_kv = kv_of(*p, f, "prev_kv");
    return r;
}

DeleteResponse delete_of(Fields& f) {
    DeleteResponse r;
    r.header = header_of(f);
    r.deleted = f.i64("deleted");
    r.prev_kvs = kvs_of(f, "prev_kvs");
    return r;
}

json::object range_object(const RangeRequest& r) {
    json::object o;
    o["key"] = b64(r.key);
    if (!r.range_end.empty()) o["range_end"] = b64(r.range_end);
    if (r.limit > 0) o["limit"] = i64(r.limit);
    if (r.revision > 0) o["revision"] = i64(r.revision);
    if (r.keys_only) o["keys_only"] = true;
    if (r.count_only) o["count_only"] = true;
    if (r.serializable) o["serializable"] = true;
    return o;
}

json::object put_object(const PutRequest& r) {
    json::object o;
    o["key"] = b64(r.key);
    o["value"] = b64(r.value);
    if (r.lease != 0) o["lease"] = i64(r.lease);
    if (r.prev_kv) o["prev_kv"] = true;
    return o;
}

json::object delete_object(const DeleteRequest& r) {
    json::object o;
    o["key"] = b64(r.key);
    if (!r.range_end.empty()) o["range_end"] = b64(r.range_end);
    if (r.prev_kv) o["prev_kv"] = true;
    return o;
}

json::object compare_object(const Compare& c) {
    json::object o;
    o["key"] = b64(c.key);
    if (!c.range_end.empty()) o["range_end"] = b64(c.range_end);
    switch (c.op) {
        case Compare::Op::equal:
            o["result"] = "EQUAL";
            break;
        case Compare::Op::not_equal:
            o["result"] = "NOT_EQUAL";
            break;
        case Compare::Op::greater:
            o["result"] = "GREATER";
            break;
        case Compare::Op::less:
            o["result"] = "LESS";
            break;
    }
    switch (c.target) {
        case Compare::Target::value:
            o["target"] = "VALUE";
            o["value"] = b64(c.value);
            break;
        case Compare::Target::version:
            o["target"] = "VERSION";
            o["version"] = i64(c.number);
            break;
        case Compare::Target::create_revision:
            o["target"] = "CREATE";
            o["create_revision"] = i64(c.number);
            break;
        case Compare::Target::mod_revision:
            o["target"] = "MOD";
            o["mod_revision"] = i64(c.number);
            break;
        case Compare::Target::lease:
            o["target"] = "LEASE";
            o["lease"] = i64(c.number);
            break;
    }
    return o;
}

json::array ops_array(const std::vector<TxnOp>& ops) {
    json::array a;
    a.reserve(ops.size());
    for (const auto& op : ops) {
        json::object o;
        if (const auto* p = std::get_if<PutRequest>(&op)) {
            o["request_put"] = put_object(*p);
        } else if (const auto* d = std::get_if<DeleteRequest>(&op)) {
            o["request_delete_range"] = delete_object(*d);
        } else {
            o["request_range"] = range_object(std::get<RangeRequest>(op));
        }
        a.push_back(std::move(o));
    }
    return a;
}

// Parses JSON text into an object, or says what is wrong.
Result<json::value> parse_json(std::string_view text, std::string_view what) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec) return bad(std::string(what) + ": not JSON");
    return v;
}

bool contains(std::string_view haystack, std::string_view needle) noexcept {
    return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

std::string range_body(const RangeRequest& r) { return json::serialize(range_object(r)); }
std::string put_body(const PutRequest& r) { return json::serialize(put_object(r)); }
std::string delete_body(const DeleteRequest& r) { return json::serialize(delete_object(r)); }

std::string txn_body(const TxnRequest& r) {
    json::object o;
    json::array compare;
    for (const auto& c : r.compare) compare.push_back(compare_object(c));
    if (!compare.empty()) o["compare"] = std::move(compare);
    if (!r.success.empty()) o["success"] = ops_array(r.success);
    if (!r.failure.empty()) o["failure"] = ops_array(r.failure);
    return json::serialize(o);
}

std::string lease_grant_body(std::chrono::seconds ttl) {
    json::object o;
    o["TTL"] = i64(ttl.count());
    return json::serialize(o);
}

std::string lease_id_body(std::int64_t id) {
    json::object o;
    o["ID"] = i64(id);
    return json::serialize(o);
}

std::string watch_body(const WatchRequest& r, std::int64_t start_revision, bool progress_notify) {
    json::object c;
    c["key"] = b64(r.key);
    if (!r.range_end.empty()) c["range_end"] = b64(r.range_end);
    if (start_revision > 0) c["start_revision"] = i64(start_revision);
    if (r.prev_kv) c["prev_kv"] = true;
    if (progress_notify) c["progress_notify"] = true;
    json::object o;
    o["create_request"] = std::move(c);
    return json::serialize(o);
}

bool read_only(const TxnRequest& r) noexcept {
    auto reads = [](const std::vector<TxnOp>& ops) {
        for (const auto& op : ops) {
            if (!std::holds_alternative<RangeRequest>(op)) return false;
        }
        return true;
    };
    return reads(r.success) && reads(r.failure);
}

Result<RangeResponse> decode_range(const json::value& v) {
    const auto* o = object_of(v);
    if (!o) return bad("range response: not an object");
    Fields f(*o, "range response");
    auto r = range_of(f);
    if (!f.ok()) return f.error();
    return r;
}

Result<PutResponse> decode_put(const json::value& v) {
    const auto* o = object_of(v);
    if (!o) return bad("put response: not an object");
    Fields f(*o, "put response");
    auto r = put_of(f);
    if (!f.ok()) return f.error();
    return r;
}

Result<DeleteResponse> decode_delete(const json::value& v) {
    const auto* o = object_of(v);
    if (!o) return bad("delete response: not an object");
    Fields f(*o, "delete response");
    auto r = delete_of(f);
    if (!f.ok()) return f.error();
    return r;
}

Result<TxnResponse> decode_txn(const json::value& v) {
    const auto* o = object_of(v);
    if (!o) return bad("txn response: not an object");
    Fields f(*o, "txn response");
    TxnResponse r;
    r.header = header_of(f);
    r.succeeded = f.flag("succeeded");
    if (const auto* a = f.array("responses")) {
        for (const auto& item : *a) {
            const auto* op = item.if_object();
            if (!op) {
                f.fail("responses", "holds something that is not an object");
                break;
            }
            Fields of(*op, "txn response op");
            if (const auto* p = of.object("response_put")) {
                Fields pf(*p, "response_put");
                r.responses.emplace_back(put_of(pf));
                if (!pf.ok()) f.fail(pf.error());
            } else if (const auto* d = of.object("response_delete_range")) {
                Fields df(*d, "response_delete_range");
                r.responses.emplace_back(delete_of(df));
                if (!df.ok()) f.fail(df.error());
            } else if (const auto* g = of.object("response_range")) {
                Fields gf(*g, "response_range");
                r.responses.emplace_back(range_of(gf));
                if (!gf.ok()) f.fail(gf.error());
            } else {
                f.fail("responses", "holds an op of no known kind");
            }
            if (!of.ok()) f.fail(of.error());
        }
    }
    if (!f.ok()) return f.error();
    return r;
}

Result<Lease> decode_lease_grant(const json::value& v) {
    const auto* o = object_of(v);
    if (!o) return bad("lease grant response: not an object");
    Fields f(*o, "lease grant response");
    Lease l;
    l.header = header_of(f);
    l.id = f.i64("ID");
    l.ttl = std::chrono::seconds(f.i64("TTL"));
    auto refused = f.text("error");
    if (!f.ok()) return f.error();
    if (!refused.empty()) return make_error(errc::rejected, "lease grant: " + refused);
    if (l.id == 0) return bad("lease grant response: no lease id");
    return l;
}

Result<Lease> decode_keep_alive(const json::value& v) {
    const auto* o = object_of(v);
    if (!o) return bad("lease keepalive response: not an object");
    Fields top(*o, "lease keepalive response");
    const auto* result = top.object("result");
    if (!top.ok()) return top.error();
    if (!result) return bad("lease keepalive response: no result");
    Fields f(*result, "lease keepalive result");
    Lease l;
    l.header = header_of(f);
    l.id = f.i64("ID");
    l.ttl = std::chrono::seconds(f.i64("TTL"));
    if (!f.ok()) return f.error();
    // etcd answers a keepalive of an unknown lease with its id and no TTL.
    if (l.ttl.count() <= 0) return make_error(errc::lease_not_found, "lease keepalive: TTL 0");
    return l;
}

Result<MemberStatus> decode_status(const json::value& v) {
    const auto* o = object_of(v);
    if (!o) return bad("status response: not an object");
    Fields f(*o, "status response");
    MemberStatus s;
    s.header = header_of(f);
    s.version = f.text("version");
    s.leader = f.u64("leader");
    s.db_size = f.i64("dbSize");
    s.raft_index = f.u64("raftIndex");
    s.raft_term = f.u64("raftTerm");
    if (!f.ok()) return f.error();
    return s;
}

std::optional<GatewayError> decode_error(const json::value& v) {
    const auto* o = v.if_object();
    if (!o) return std::nullopt;
    const auto* e = o->if_contains("error");
    if (!e) return std::nullopt;
    GatewayError out;
    auto code_of = [](const json::value* c) {
        if (c && c->is_int64()) return static_cast<int>(c->as_int64());
        if (c && c->is_uint64()) return static_cast<int>(c->as_uint64());
        return kGrpcUnknown;
    };
    if (const auto* s = e->if_string()) {
        // Unary: {"error":"...","message":"...","code":N}
        if (s->empty()) return std::nullopt;
        out.code = code_of(o->if_contains("code"));
        const auto* m = o->if_contains("message");
        out.message = m && m->is_string() ? std::string(m->as_string()) : std::string(*s);
        return out;
    }
    if (const auto* inner = e->if_object()) {
        // In a stream: {"error":{"grpc_code":N,"http_code":H,"message":"...","http_status":"..."}}
        out.code = code_of(inner->if_contains("grpc_code"));
        const auto* m = inner->if_contains("message");
        out.message = m && m->is_string() ? std::string(m->as_string()) : std::string("(no message)");
        return out;
    }
    return std::nullopt;
}

GatewayError error_of_answer(int http_status, std::string_view body) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (!ec) {
        if (auto e = decode_error(v)) return *e;
    }
    GatewayError out;
    // Not etcd's own answer (a proxy, a wrong path): a 5xx is treated as etcd's "unavailable".
    out.code = http_status >= 500 ? kGrpcUnavailable : kGrpcUnknown;
    auto text = body.substr(0, 200);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.remove_suffix(1);
    out.message = "HTTP " + std::to_string(http_status) + (text.empty() ? "" : ": ") + std::string(text);
    return out;
}

Verdict judge(const GatewayError& e, bool read) noexcept {
    const auto& m = e.message;
    // Refused before anything was proposed: safe to send elsewhere, even a write.
    if (contains(m, "no leader") || contains(m, "not capable") || contains(m, "raft proposal dropped") ||
        contains(m, "too many requests"))
        return {errc::unavailable, true};
    // The gateway's own deadline (etcd gave up waiting for consensus) comes as code 2.
    int code = e.code;
    if (contains(m, "context deadline exceeded")) code = kGrpcDeadlineExceeded;
    if (contains(m, "context canceled")) code = kGrpcCanceled;
    switch (code) {
        case kGrpcUnavailable:
            // "request timed out", "leader changed", "server stopped": a write may still commit.
            return read ? Verdict{errc::unavailable, true} : Verdict{errc::outcome_unknown, false};
        case kGrpcDeadlineExceeded:
        case kGrpcCanceled:
            return read ? Verdict{errc::timeout, true} : Verdict{errc::outcome_unknown, false};
        case kGrpcOutOfRange:
            if (contains(m, "compacted")) return {errc::compacted, false};
            if (contains(m, "future revision")) return {errc::future_revision, false};
            return {errc::rejected, false};
        case kGrpcNotFound:
            if (contains(m, "lease not found")) return {errc::lease_not_found, false};
            return {errc::rejected, false};
        default:
            return {errc::rejected, false};
    }
}

Result<WatchMessage> decode_watch_message(std::string_view line) {
    auto parsed = parse_json(line, "watch message");
    if (!parsed) return parsed.error();
    const auto& v = *parsed;
    WatchMessage msg;
    if (auto e = decode_error(v)) {
        msg.kind = WatchMessage::Kind::error;
        msg.error = std::move(*e);
        return msg;
    }
    const auto* o = v.if_object();
    if (!o) return bad("watch message: not an object");
    Fields top(*o, "watch message");
    const auto* result = top.object("result");
    if (!top.ok()) return top.error();
    if (!result) return bad("watch message: neither result nor error");
    Fields f(*result, "watch response");
    msg.header = header_of(f);
    bool created = f.flag("created");
    bool canceled = f.flag("canceled");
    msg.compact_revision = f.i64("compact_revision");
    msg.cancel_reason = f.text("cancel_reason");
    if (const auto* events = f.array("events")) {
        msg.events.reserve(events->size());
        for (const auto& item : *events) {
            const auto* eo = item.if_object();
            if (!eo) {
                f.fail("events", "holds something that is not an object");
                break;
            }
            Fields ef(*eo, "watch event");
            Event ev;
            auto type = ef.text("type");
            if (type == "DELETE") {
                ev.type = Event::Type::del;
            } else if (type.empty() || type == "PUT") {
                ev.type = Event::Type::put;
            } else {
                ef.fail("type", "is neither PUT nor DELETE");
            }
            if (const auto* kv = ef.object("kv")) {
                ev.kv = kv_of(*kv, ef, "kv");
            } else {
                ef.fail("kv", "is missing");
            }
            if (const auto* prev = ef.object("prev_kv")) ev.prev_kv = kv_of(*prev, ef, "prev_kv");
            if (!ef.ok()) f.fail(ef.error());
            msg.events.push_back(std::move(ev));
        }
    }
    if (!f.ok()) return f.error();
    if (canceled || msg.compact_revision > 0) {
        msg.kind = WatchMessage::Kind::canceled;
    } else if (created) {
        msg.kind = WatchMessage::Kind::created;
    } else if (!msg.events.empty()) {
        msg.kind = WatchMessage::Kind::events;
    } else {
        msg.kind = WatchMessage::Kind::progress;
    }
    return msg;
}

}  // namespace detail
}  // namespace plexus::etcd
