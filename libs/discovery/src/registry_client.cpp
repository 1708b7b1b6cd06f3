#include "plexus/discovery/registry_client.hpp"

#include <algorithm>
#include <boost/json.hpp>

#include "plexus/core/duration.hpp"
#include "plexus/telemetry/log.hpp"

namespace plexus::discovery {

namespace json = boost::json;

namespace {
class DiscoveryCategory final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "plexus.discovery"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::rejected:
                return "registration rejected by the registry";
            case errc::unknown_instance:
                return "instance unknown to the registry";
            case errc::unavailable:
                return "registry unavailable";
            case errc::bad_response:
                return "malformed registry response";
        }
        return "unknown discovery error";
    }
};

ErrorCode status_error(int status) {
    if (status == 404) return errc::unknown_instance;
    if (status >= 400 && status < 500) return errc::rejected;
    return errc::unavailable;
}

std::string path_of(const std::string& service, const std::string& id, std::string_view suffix = {}) {
    std::string p = "/v1/services/" + service + "/instances/" + id;
    p += suffix;
    return p;
}
}  // namespace

const boost::system::error_category& discovery_category() noexcept {
    static const DiscoveryCategory category;
    return category;
}

namespace {
json::object check_object(const HealthCheck& c) {
    return {{"http", c.http},
            {"interval_ms", c.interval.count()},
            {"timeout_ms", c.timeout.count()},
            {"healthy_threshold", c.healthy_threshold},
            {"unhealthy_threshold", c.unhealthy_threshold}};
}

// The check's fields, each named in the problem when it has the wrong type.
std::string read_check(const json::value& v, HealthCheck& c) {
    if (!v.is_object())
        return "check must be an object with http, interval_ms, timeout_ms, "
               "healthy_threshold and unhealthy_threshold";
    const auto& o = v.as_object();
    auto* http = o.if_contains("http");
    if (!http || !http->is_string()) return "check.http is required: the path to GET, such as /health/ready";
    c.http = json::value_to<std::string>(*http);
    auto integer = [&](const char* name, std::int64_t& out) -> std::string {
        auto* f = o.if_contains(name);
        if (!f) return {};
        if (!f->is_int64() && !f->is_uint64()) return std::string("check.") + name + " must be an integer";
        boost::system::error_code ec;
        out = f->to_number<std::int64_t>(ec);
        if (ec) return std::string("check.") + name + " is out of range";
        return {};
    };
    std::int64_t interval = c.interval.count(), timeout = c.timeout.count();
    std::int64_t healthy = c.healthy_threshold, unhealthy = c.unhealthy_threshold;
    for (auto why : {integer("interval_ms", interval), integer("timeout_ms", timeout),
                     integer("healthy_threshold", healthy), integer("unhealthy_threshold", unhealthy)}) {
        if (!why.empty()) return why;
    }
    // Out-of-range thresholds are clamped into "still out of range" rather than wrapped, so the
    // registry's validation names them.
    auto narrow = [](std::int64_t n) { return static_cast<int>(std::clamp<std::int64_t>(n, -1, 1000)); };
    c.interval = std::chrono::milliseconds(interval);
    c.timeout = std::chrono::milliseconds(timeout);
    c.healthy_threshold = narrow(healthy);
    c.unhealthy_threshold = narrow(unhealthy);
    return {};
}
}  // namespace

std::string health_check_to_json(const HealthCheck& check) { return json::serialize(check_object(check)); }

Result<HealthCheck> health_check_from_json(std::string_view text, std::string* problem) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    HealthCheck c;
    std::string why = ec ? "check must be a JSON object" : read_check(v, c);
    if (!why.empty()) {
        if (problem) *problem = std::move(why);
        return errc::rejected;
    }
    return c;
}

std::string instance_to_json(const InstanceInfo& in) {
    json::object o;
    o["service"] = in.service;
    o["id"] = in.id;
    o["address"] = in.address;
    o["port"] = in.port;
    json::array tags;
    for (const auto& t : in.tags) tags.emplace_back(t);
    o["tags"] = std::move(tags);
    json::object md;
    for (const auto& [k, v] : in.metadata) md[k] = v;
    o["metadata"] = std::move(md);
    o["ttl_ms"] = in.ttl.count();
    o["draining"] = in.draining;
    o["status"] = in.status;
    if (in.check) o["check"] = check_object(*in.check);
    return json::serialize(o);
}

namespace {
// The fields a registration carries (everything but service and id). Returns a problem for a
// person, or empty when they are well-formed.
std::string read_fields(const json::object& o, InstanceInfo& in) {
    try {
        if (auto* a = o.if_contains("address")) in.address = json::value_to<std::string>(*a);
        auto* p = o.if_contains("port");
        if (!p) return "port is required";
        auto port = p->to_number<std::int64_t>();
        if (port < 1 || port > 65535) return "port must be between 1 and 65535";  // never wrapped
        in.port = static_cast<std::uint16_t>(port);
        if (auto* t = o.if_contains("tags")) in.tags = json::value_to<std::vector<std::string>>(*t);
        if (auto* m = o.if_contains("metadata")) {
            in.metadata = json::value_to<std::map<std::string, std::string>>(*m);
        }
        if (auto* t = o.if_contains("ttl_ms"))
            in.ttl = std::chrono::milliseconds(t->to_number<std::int64_t>());
        if (auto* d = o.if_contains("draining")) in.draining = d->as_bool();
        if (auto* s = o.if_contains("status")) in.status = json::value_to<std::string>(*s);
    } catch (const std::exception&) {
        return "address and status must be strings, port and ttl_ms integers, draining a boolean, tags a "
               "list of strings and metadata a map of strings";
    }
    if (auto* c = o.if_contains("check"); c && !c->is_null()) {
        HealthCheck check;
        if (auto why = read_check(*c, check); !why.empty()) return why;
        in.check = std::move(check);
    }
    return {};
}
}  // namespace

namespace {
Result<InstanceInfo> instance_from_value(const json::value& v) {
    if (!v.is_object()) return errc::bad_response;
    const auto& o = v.as_object();
    InstanceInfo in;
    try {
        in.service = json::value_to<std::string>(o.at("service"));
        in.id = json::value_to<std::string>(o.at("id"));
    } catch (const std::exception&) {
        return errc::bad_response;
    }
    // The registry only lists complete instances: an answer without an address is malformed.
    if (!o.contains("address") || !read_fields(o, in).empty()) return errc::bad_response;
    return in;
}

// Appends the instances of the JSON array `items` to `out`; false if one is malformed.
bool instances_from(const json::value& items, std::vector<InstanceInfo>& out) {
    if (!items.is_array()) return false;
    out.reserve(out.size() + items.as_array().size());
    for (const auto& item : items.as_array()) {
        auto in = instance_from_value(item);
        if (!in) return false;
        out.push_back(std::move(*in));
    }
    return true;
}

std::string watch_target(const std::string& service, std::uint64_t index, std::chrono::milliseconds wait,
                         bool all) {
    std::string target = "/v1/services/" + service + "?index=" + std::to_string(index);
    if (index > 0) target += "&wait=" + core::format_duration(wait);
    if (all) target += "&all=true";
    return target;
}
}  // namespace

Result<InstanceInfo> instance_from_json(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec) return errc::bad_response;
    return instance_from_value(v);
}

Result<InstanceInfo> registration_from_json(std::string_view body, std::string service, std::string id,
                                            std::string* problem) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object()) {
        if (problem) *problem = "body must be a JSON object";
        return errc::rejected;
    }
    InstanceInfo in;
    in.service = std::move(service);
    in.id = std::move(id);
    if (auto why = read_fields(v.as_object(), in); !why.empty()) {
        if (problem) *problem = std::move(why);
        return errc::rejected;
    }
    return in;
}

net::Task<ErrorCode> RegistryClient::register_instance(InstanceInfo instance) const {
    auto r = co_await net::fetch(registry_, "PUT", path_of(instance.service, instance.id),
                                 instance_to_json(instance), "application/json", timeout_);
    if (!r) co_return errc::unavailable;
    if (r->status >= 300) co_return status_error(r->status == 404 ? 400 : r->status);
    co_return ErrorCode{};
}

net::Task<ErrorCode> RegistryClient::heartbeat(std::string service, std::string id) const {
    auto r = co_await net::fetch(registry_, "PUT", path_of(service, id, "/heartbeat"), {}, {}, timeout_);
    if (!r) co_return errc::unavailable;
    if (r->status >= 300) co_return status_error(r->status);
    co_return ErrorCode{};
}

net::Task<ErrorCode> RegistryClient::deregister(std::string service, std::string id) const {
    auto r = co_await net::fetch(registry_, "DELETE", path_of(service, id), {}, {}, timeout_);
    if (!r) co_return errc::unavailable;
    if (r->status >= 300 && r->status != 404) co_return status_error(r->status);
    co_return ErrorCode{};
}

net::Task<ErrorCode> RegistryClient::set_draining(std::string service, std::string id) const {
    auto r = co_await net::fetch(registry_, "PUT", path_of(service, id, "/draining"), {}, {}, timeout_);
    if (!r) co_return errc::unavailable;
    if (r->status >= 300) co_return status_error(r->status);
    co_return ErrorCode{};
}

net::Task<Result<ServiceSnapshot>> RegistryClient::watch(std::string service, std::uint64_t index,
                                                         std::chrono::milliseconds wait, bool all) const {
    auto r = co_await net::fetch(registry_, "GET", watch_target(service, index, wait, all), {}, {},
                                 timeout_ + (index > 0 ? wait : wait.zero()));
    if (!r) co_return errc::unavailable;
    if (r->status != 200) co_return status_error(r->status);
    boost::system::error_code ec;
    auto v = json::parse(r->body, ec);
    if (ec || !v.is_object()) co_return errc::bad_response;
    ServiceSnapshot snap;
    try {
        const auto& o = v.as_object();
        snap.index = static_cast<std::uint64_t>(o.at("index").to_number<std::int64_t>());
        if (!instances_from(o.at("instances"), snap.instances)) co_return errc::bad_response;
    } catch (const std::exception&) {
        co_return errc::bad_response;
    }
    co_return snap;
}

net::Task<Result<ServiceChanges>> RegistryClient::watch_changes(std::string service, std::uint64_t since,
                                                                std::chrono::milliseconds wait,
                                                                bool all) const {
    auto target = watch_target(service, since, wait, all);
    if (since > 0) target += "&delta=true";
    auto r =
        co_await net::fetch(registry_, "GET", target, {}, {}, timeout_ + (since > 0 ? wait : wait.zero()));
    if (!r) co_return errc::unavailable;
    if (r->status != 200) co_return status_error(r->status);
    boost::system::error_code ec;
    auto v = json::parse(r->body, ec);
    if (ec || !v.is_object()) co_return errc::bad_response;
    ServiceChanges changes;
    try {
        const auto& o = v.as_object();
        changes.index = static_cast<std::uint64_t>(o.at("index").to_number<std::int64_t>());
        // A registry that does not know delta=true (or could not use it) sends the whole list.
        changes.full = !o.contains("since");
        if (changes.full) {
            if (!instances_from(o.at("instances"), changes.instances)) co_return errc::bad_response;
        } else {
            if (o.at("since").to_number<std::uint64_t>() != since) co_return errc::bad_response;
            if (!instances_from(o.at("changed"), changes.instances)) co_return errc::bad_response;
            for (const auto& id : o.at("removed").as_array())
                changes.removed.push_back(json::value_to<std::string>(id));
        }
    } catch (const std::exception&) {
        co_return errc::bad_response;
    }
    co_return changes;
}

net::Task<void> keep_registered(RegistryClient client, InstanceInfo self, std::chrono::milliseconds heartbeat,
                                std::shared_ptr<std::atomic<bool>> stop) {
    bool registered = false;
    auto backoff = std::chrono::milliseconds(200);
    while (!stop->load()) {
        if (!registered) {
            auto ec = co_await client.register_instance(self);
            if (stop->load()) break;
            if (ec) {
                telemetry::warn("registration failed, retrying",
                                {{"registry", client.endpoint().to_string()}, {"error", ec.message()}});
                co_await net::sleep_for(backoff);
                backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
                continue;
            }
            registered = true;
            backoff = std::chrono::milliseconds(200);
            telemetry::info("registered", {{"registry", client.endpoint().to_string()}, {"port", self.port}});
        }
        co_await net::sleep_for(heartbeat);
        if (stop->load()) break;
        auto ec = co_await client.heartbeat(self.service, self.id);
        if (ec == errc::unknown_instance) {
            telemetry::warn("registry forgot this instance; registering again");
            registered = false;
        } else if (ec) {
            telemetry::warn("heartbeat failed", {{"error", ec.message()}});
        }
    }
}

}  // namespace plexus::discovery
