#include <boost/json.hpp>
#include <charconv>

#include "plexus/auth/bearer.hpp"
#include "plexus/auth/verifier.hpp"
#include "plexus/config/config.hpp"
#include "plexus/core/clock.hpp"
#include "plexus/core/duration.hpp"
#include "plexus/core/yaml_json.hpp"
#include "plexus/net/signal.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::config {

namespace json = boost::json;
using net::HttpError;
using net::Request;
using net::Response;
using net::Task;

namespace {

constexpr auth::TokenKinds kAccepted = auth::kJwt | auth::kOpaque;
constexpr std::size_t kMaxDocumentBytes = 1024 * 1024;

std::string time_text(std::int64_t ms) {
    return core::rfc3339(core::SystemTime(std::chrono::milliseconds(ms)), true);
}

std::int64_t int_param(const Request& req, std::string_view name, std::int64_t fallback) {
    auto text = req.query_param(name);
    if (!text) return fallback;
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec != std::errc{} || end != text->data() + text->size() || v < 0)
        throw HttpError(400, "Bad Request", std::string(name) + " must be a non-negative integer");
    return v;
}

json::object body_object(const Request& req) {
    boost::system::error_code ec;
    auto v = json::parse(req.body, ec);
    if (ec || !v.is_object()) throw HttpError(400, "Bad Request", "the body must be a JSON object");
    return std::move(v.get_object());
}

std::string string_field(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (!v || v->is_null()) return {};
    if (!v->is_string()) throw HttpError(400, "Bad Request", std::string(key) + " must be a string");
    return std::string(v->get_string());
}

std::int64_t int_field(const json::object& o, std::string_view key, std::int64_t fallback) {
    const auto* v = o.if_contains(key);
    if (!v || v->is_null()) return fallback;
    if (!v->is_int64() || v->get_int64() < 0)
        throw HttpError(400, "Bad Request", std::string(key) + " must be a non-negative integer");
    return v->get_int64();
}

// The edit a PUT, PATCH or canary body describes.
Edit edit_of(const json::object& body, bool whole) {
    Edit e;
    e.message = string_field(body, "message");
    e.expected = int_field(body, "expected", -1);
    if (const auto* content = body.if_contains("content")) {
        if (!content->is_object()) throw HttpError(400, "Bad Request", "content must be a JSON object");
        e.content = content->get_object();
    } else if (const auto* yaml = body.if_contains("yaml")) {
        if (!yaml->is_string()) throw HttpError(400, "Bad Request", "yaml must be a string");
        json::value doc;
        try {
            doc = core::yaml_to_json(yaml->get_string(), "yaml");
        } catch (const core::SettingsError& err) {
            throw HttpError(400, "Bad Request", err.what());
        }
        if (doc.is_null()) doc = json::object();
        if (!doc.is_object()) throw HttpError(400, "Bad Request", "yaml must hold a map of keys");
        e.content = std::move(doc.get_object());
    }
    if (const auto* set = body.if_contains("set")) {
        if (!set->is_object()) throw HttpError(400, "Bad Request", "set must be a JSON object of key: value");
        for (const auto& kv : set->get_object()) e.set.emplace_back(std::string(kv.key()), kv.value());
    }
    if (whole && !e.content)
        throw HttpError(400, "Bad Request", "the body needs content (a JSON object) or yaml");
    if (!whole && !e.content && e.set.empty())
        throw HttpError(400, "Bad Request", "the body needs set (key: value), content or yaml");
    return e;
}

json::object record_json(const Record& r, bool with_content) {
    json::object o{{"application", r.key.app},    {"profile", r.key.profile}, {"version", r.version},
                   {"kind", kind_name(r.kind)},   {"author", r.author},       {"message", r.message},
                   {"time", time_text(r.time_ms)}};
    if (r.source) o["source"] = r.source;
    if (r.kind == Kind::canary) {
        json::array names;
        for (const auto& n : r.targets.instances) names.emplace_back(n);
        o["instances"] = std::move(names);
        o["percent"] = r.targets.percent;
    }
    if (with_content) o["content"] = r.content ? json::value(*r.content) : json::value(nullptr);
    return o;
}

std::vector<std::string> profiles_of(std::string_view text) {
    std::string why;
    auto p = parse_profiles(text, why);
    if (p.empty()) throw HttpError(400, "Bad Request", why);
    return p;
}

void check_app(std::string_view app) {
    if (app == kSharedApplication) return;
    if (auto why = app_name_problem(app); !why.empty()) throw HttpError(400, "Bad Request", why);
}

}  // namespace

struct Api::Impl {
    ConfigService& service;
    std::shared_ptr<auth::Verifier> verifier;
    std::chrono::milliseconds max_wait;
    std::atomic<bool> stopping{false};
    telemetry::CounterFamily& operations;
    // Looked up once: reads, watches and reports take no lock of the metrics registry.
    telemetry::Counter &reads, &reports;
    telemetry::Gauge& watchers;

    Impl(ConfigService& s, std::shared_ptr<auth::Verifier> v, telemetry::Registry& m,
         std::chrono::milliseconds w)
        : service(s),
          verifier(std::move(v)),
          max_wait(w),
          operations(m.counter("plexus_config_operations_total", "Config server operations by kind", {"op"})),
          reads(operations.labels({"read"})),
          reports(operations.labels({"report"})),
          watchers(m.gauge("plexus_config_watchers", "Blocking config watches currently waiting").labels()) {}

    using Handler = Task<void> (Impl::*)(const Caller&, Request&, Response&);

    // Every route: the caller authenticated (see authenticate()), then the handler.
    static Task<void> serve(std::shared_ptr<Impl> self, Handler fn, Request& req, Response& res) {
        auto caller = co_await self->authenticate(req, res);
        if (!caller) co_return;
        co_await ((*self).*fn)(*caller, req, res);
    }

    // Who calls; nullopt after answering 401 (or 503 when the identity provider cannot be asked).
    Task<std::optional<Caller>> authenticate(Request& req, Response& res) {
        if (!verifier) co_return Caller{"anonymous", "", true};
        auto credential = auth::presented(req.headers, kAccepted);
        if (credential.empty()) {
            auth::answer_unauthorized(res, nullptr, kAccepted, req.path());
            co_return std::nullopt;
        }
        auto c = verifier->check(credential, kAccepted);
        if (c.status == auth::Check::pending)
            c = co_await verifier->check_async(std::string(credential), kAccepted);
        if (c.status != auth::Check::ok) {
            auth::answer_unauthorized(res, &c, kAccepted, req.path());
            co_return std::nullopt;
        }
        const auto& p = *c.token->principal;
        co_return Caller{p.subject.empty() ? p.client_id : p.subject, p.scope, false};
    }

    static void need_read(const Caller& c, std::string_view app) {
        if (!c.may_read(app))
            throw HttpError(403, "Forbidden",
                            "reading " + std::string(app) + " needs scope config:read:" + std::string(app));
    }

    static DocKey key_of(const Request& req) {
        DocKey k{std::string(req.param("app")), std::string(req.param("profile"))};
        check_app(k.app);
        return k;
    }

    // ---- reading

    Task<void> spring(const Caller& caller, Request& req, Response& res) {
        std::string app(req.param("app")), label(req.param("label"));
        if (app == "v1") throw HttpError(404, "Not Found", "no such path");  // the server's own API
        check_app(app);
        need_read(caller, app);
        auto profiles = profiles_of(req.param("profiles"));
        bool secrets = caller.may_read_secrets(app);
        View v = label.empty()
                     ? service.view(app, profiles, "", secrets)
                     : co_await net::offload([&] { return service.view_at(app, profiles, label, secrets); });
        json::array sources;
        for (const auto& [key, content] : v.sources) {
            json::object flat;
            for (auto& p : flatten(content)) {
                bool empty_container = (p.value.is_object() && p.value.get_object().empty()) ||
                                       (p.value.is_array() && p.value.get_array().empty());
                if (!empty_container && !p.value.is_null()) flat[p.key] = std::move(p.value);
            }
            sources.push_back(json::object{{"name", "plexus:" + key.name()}, {"source", std::move(flat)}});
        }
        json::array names;
        for (const auto& p : profiles) names.emplace_back(p);
        json::object body{{"name", app},
                          {"profiles", std::move(names)},
                          {"label", label.empty() ? json::value(nullptr) : json::value(label)},
                          {"version", std::to_string(v.version)},
                          {"state", nullptr},
                          {"propertySources", std::move(sources)}};
        reads.inc();
        res.json(200, json::serialize(body));
        res.headers.set("Cache-Control", "no-store");
    }

    Task<void> config(const Caller& caller, Request& req, Response& res) {
        std::string app(req.param("app"));
        check_app(app);
        need_read(caller, app);
        std::string profiles_text(req.param("profiles"));
        auto profiles = profiles_of(profiles_text);
        auto instance = req.query_param("instance").value_or("");
        auto format = req.query_param("format").value_or("json");
        if (format != "json" && format != "yaml")
            throw HttpError(400, "Bad Request", "format must be json or yaml");
        auto label = req.query_param("label").value_or("");
        if (!label.empty() && req.query_param("version"))
            throw HttpError(400, "Bad Request",
                            "a label names a past state, which does not change: no watch");
        if (req.query_param("version")) {
            auto known = int_param(req, "version", 0);
            auto wait = std::chrono::milliseconds(30'000);
            if (auto w = req.query_param("wait")) {
                auto d = core::parse_duration(*w);
                if (!d) throw HttpError(400, "Bad Request", "wait must be a duration such as 500ms or 30s");
                wait = std::min(*d, max_wait);
            }
            service.seen(app, instance, profiles_text, known);
            auto deadline = std::chrono::steady_clock::now() + wait;
            struct Waiting {  // counted while the watch waits, also when its frame is destroyed
                telemetry::Gauge& g;
                explicit Waiting(telemetry::Gauge& gauge) : g(gauge) { g.inc(); }
                ~Waiting() { g.dec(); }
            } waiting(watchers);
            while (true) {
                auto seen = service.changed().epoch();
                if (stopping.load() || service.version_of(app, profiles, instance) != known) break;
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
                if (left.count() <= 0) break;
                co_await service.changed().wait(left, seen);
            }
        }
        bool secrets = caller.may_read_secrets(app);
        View v = label.empty()
                     ? service.view(app, profiles, instance, secrets)
                     : co_await net::offload([&] { return service.view_at(app, profiles, label, secrets); });
        if (label.empty()) service.seen(app, instance, profiles_text, v.version);
        reads.inc();
        if (format == "yaml") {
            res.status = 200;
            res.headers.set("Content-Type", "application/yaml; charset=utf-8");
            res.body = core::json_to_yaml(v.config);
        } else {
            json::array names;
            for (const auto& p : profiles) names.emplace_back(p);
            res.json(200, json::serialize(json::object{{"application", app},
                                                       {"profiles", std::move(names)},
                                                       {"version", v.version},
                                                       {"canary", v.canary},
                                                       {"config", std::move(v.config)}}));
        }
        res.headers.set("X-Plexus-Version", std::to_string(v.version));
        res.headers.set("Cache-Control", "no-store");
    }

    Task<void> documents(const Caller& caller, Request& req, Response& res) {
        json::array visible;
        for (auto& d : service.documents())
            if (caller.may_read(d.get_object().at("application").get_string()))
                visible.push_back(std::move(d));
        res.json(200, json::serialize(
                          json::object{{"revision", service.revision()}, {"documents", std::move(visible)}}));
        co_return;
    }

    Task<void> document(const Caller& caller, Request& req, Response& res) {
        auto key = key_of(req);
        need_read(caller, key.app);
        auto version = int_param(req, "version", 0);
        auto r = co_await net::offload([&] { return service.document(key, version); });
        // The stored form keeps secrets encrypted, which only those who may write need (to
        // write the document back); everyone else sees them masked.
        if (r.content && !caller.may_write(key.app)) SecretBox::mask_all(*r.content);
        res.json(200, json::serialize(record_json(r, true)));
        res.headers.set("X-Plexus-Version", std::to_string(r.version));
    }

    Task<void> history(const Caller& caller, Request& req, Response& res) {
        auto key = key_of(req);
        need_read(caller, key.app);
        auto limit = std::clamp<std::int64_t>(int_param(req, "limit", 50), 1, 500);
        auto before = int_param(req, "before", 0);
        auto records = co_await net::offload(
            [&] { return service.history(key, before, static_cast<std::size_t>(limit)); });
        json::array items;
        for (const auto& r : records) items.push_back(record_json(r, false));
        json::object body{{"application", key.app}, {"profile", key.profile}, {"versions", std::move(items)}};
        if (static_cast<std::int64_t>(records.size()) == limit) body["next_before"] = records.back().version;
        res.json(200, json::serialize(body));
    }

    Task<void> diff(const Caller& caller, Request& req, Response& res) {
        auto key = key_of(req);
        need_read(caller, key.app);
        auto from = int_param(req, "from", 0), to = int_param(req, "to", 0);
        auto changes = co_await net::offload([&] { return service.diff(key, from, to); });
        json::array items;
        static constexpr const char* kOps[] = {"added", "removed", "changed"};
        for (auto& c : changes) {
            json::object o{{"key", c.key}, {"op", kOps[c.op]}};
            if (c.op != Change::added) o["from"] = std::move(c.from);
            if (c.op != Change::removed) o["to"] = std::move(c.to);
            items.push_back(std::move(o));
        }
        res.json(200,
                 json::serialize(json::object{
                     {"application", key.app}, {"profile", key.profile}, {"changes", std::move(items)}}));
    }

    // ---- writing

    template <class Fn>
    Task<void> change(const Caller& caller, Request& req, Response& res, const char* op, int status, Fn fn) {
        auto key = key_of(req);
        auto r = co_await net::offload([&] { return fn(caller, key); });
        operations.labels({op}).inc();
        res.json(status, json::serialize(record_json(r, false)));
        res.headers.set("X-Plexus-Version", std::to_string(r.version));
    }

    Task<void> put(const Caller& caller, Request& req, Response& res) {
        co_await change(caller, req, res, "write", 200, [&](const Caller& c, const DocKey& k) {
            return service.write(c, k, edit_of(body_object(req), true));
        });
    }
    Task<void> patch(const Caller& caller, Request& req, Response& res) {
        co_await change(caller, req, res, "write", 200, [&](const Caller& c, const DocKey& k) {
            return service.write(c, k, edit_of(body_object(req), false));
        });
    }
    Task<void> remove(const Caller& caller, Request& req, Response& res) {
        co_await change(caller, req, res, "delete", 200, [&](const Caller& c, const DocKey& k) {
            auto expected = req.query_param("expected") ? int_param(req, "expected", 0) : -1;
            return service.remove(c, k, req.query_param("message").value_or(""), expected);
        });
    }
    Task<void> rollback(const Caller& caller, Request& req, Response& res) {
        co_await change(caller, req, res, "rollback", 200, [&](const Caller& c, const DocKey& k) {
            auto body = body_object(req);
            auto version = int_field(body, "version", 0);
            if (version == 0)
                throw HttpError(400, "Bad Request", "version (the one to go back to) is required");
            return service.rollback(c, k, version, string_field(body, "message"));
        });
    }
    Task<void> canary(const Caller& caller, Request& req, Response& res) {
        co_await change(caller, req, res, "canary", 201, [&](const Caller& c, const DocKey& k) {
            auto body = body_object(req);
            Targets t;
            if (const auto* names = body.if_contains("instances")) {
                if (!names->is_array())
                    throw HttpError(400, "Bad Request", "instances must be a list of instance ids");
                for (const auto& n : names->get_array()) {
                    if (!n.is_string() || n.get_string().empty())
                        throw HttpError(400, "Bad Request", "instances must be a list of instance ids");
                    t.instances.emplace_back(n.get_string());
                }
            }
            t.percent = static_cast<int>(std::min<std::int64_t>(int_field(body, "percent", 0), 101));
            return service.start_canary(c, k, edit_of(body, false), std::move(t));
        });
    }
    Task<void> promote(const Caller& caller, Request& req, Response& res) {
        co_await change(caller, req, res, "promote", 200, [&](const Caller& c, const DocKey& k) {
            return service.promote(
                c, k, req.body.empty() ? std::string() : string_field(body_object(req), "message"));
        });
    }
    Task<void> abort_canary(const Caller& caller, Request& req, Response& res) {
        co_await change(caller, req, res, "abort", 200, [&](const Caller& c, const DocKey& k) {
            return service.abort_canary(c, k, req.query_param("message").value_or(""));
        });
    }

    // ---- labels, schemas, instances, encryption

    Task<void> labels(const Caller& caller, Request& req, Response& res) {
        res.json(200, json::serialize(json::object{{"labels", service.labels()}}));
        co_return;
    }
    Task<void> put_label(const Caller& caller, Request& req, Response& res) {
        auto body = req.body.empty() ? json::object() : body_object(req);
        std::string name(req.param("name"));
        auto revision = int_field(body, "revision", 0);
        auto message = string_field(body, "message");
        co_await net::offload([&] { service.put_label(caller, name, revision, message); });
        res.status = 204;
    }
    Task<void> delete_label(const Caller& caller, Request& req, Response& res) {
        std::string name(req.param("name"));
        if (!co_await net::offload([&] { return service.delete_label(caller, name); }))
            throw HttpError(404, "Not Found", "no label '" + name + "'");
        res.status = 204;
    }
    Task<void> get_schema(const Caller& caller, Request& req, Response& res) {
        std::string app(req.param("app"));
        check_app(app);
        need_read(caller, app);
        auto s = service.schema(app);
        if (!s) throw HttpError(404, "Not Found", app + " has published no schema");
        res.json(200, json::serialize(*s));
        co_return;
    }
    Task<void> put_schema(const Caller& caller, Request& req, Response& res) {
        std::string app(req.param("app"));
        check_app(app);
        boost::system::error_code ec;
        auto schema = json::parse(req.body, ec);
        if (ec) throw HttpError(400, "Bad Request", "the body must be a JSON Schema");
        std::vector<std::string> problems;
        co_await net::offload([&] { service.put_schema(caller, app, std::move(schema), &problems); });
        json::array p;
        for (auto& s : problems) p.emplace_back(s);
        res.json(200, json::serialize(json::object{{"application", app}, {"problems", std::move(p)}}));
    }
    Task<void> report(const Caller& caller, Request& req, Response& res) {
        std::string app(req.param("app"));
        check_app(app);
        need_read(caller, app);
        auto body = body_object(req);
        InstanceReport r;
        r.instance = std::string(req.param("id"));
        r.profiles = string_field(body, "profiles");
        r.offered = int_field(body, "offered", 0);
        r.running = int_field(body, "running", 0);
        r.error = string_field(body, "error");
        const auto* applied = body.if_contains("applied");
        if (!applied || !applied->is_bool())
            throw HttpError(400, "Bad Request", "applied must be true or false");
        r.applied = applied->get_bool();
        if (r.error.size() > 2000) r.error.resize(2000);
        service.report(app, std::move(r));
        reports.inc();
        res.status = 204;
        co_return;
    }
    Task<void> instances(const Caller& caller, Request& req, Response& res) {
        std::string app(req.param("app"));
        check_app(app);
        need_read(caller, app);
        json::array items;
        for (const auto& r : service.instances(app)) {
            json::object o{{"instance", r.instance},
                           {"profiles", r.profiles},
                           {"offered", r.offered},
                           {"running", r.running},
                           {"applied", r.applied}};
            if (!r.error.empty()) o["error"] = r.error;
            if (r.time_ms) o["reported"] = time_text(r.time_ms);
            items.push_back(std::move(o));
        }
        res.json(200, json::serialize(json::object{{"application", app}, {"instances", std::move(items)}}));
        co_return;
    }
    Task<void> encrypt(const Caller& caller, Request& req, Response& res) {
        std::string app(req.param("app"));
        check_app(app);
        if (!caller.may_write(app))
            throw HttpError(403, "Forbidden", "encrypting needs scope config:write:" + app);
        json::object doc{{"v", std::string(kCipherPrefix) + req.body}};
        std::string why;
        if (!service.secrets().seal(doc, app, why)) throw HttpError(400, "Bad Request", why);
        res.text(200, std::string(doc["v"].get_string()));
        co_return;
    }
};

Api::Api(ConfigService& service, std::shared_ptr<auth::Verifier> verifier, telemetry::Registry& metrics,
         std::chrono::milliseconds max_wait)
    : impl_(std::make_shared<Impl>(service, std::move(verifier), metrics, max_wait)) {}

Api::~Api() = default;

void Api::stop_watches() {
    impl_->stopping.store(true);
    impl_->service.changed().notify_all();
}

void Api::add_routes(net::Router& router) {
    auto i = impl_;
    auto route = [&](const char* method, const std::string& path, Impl::Handler fn, std::size_t limit = 0) {
        router.add(
            method, path, [i, fn](Request& q, Response& r) { return Impl::serve(i, fn, q, r); }, limit);
    };
    route("GET", "/{app}/{profiles}", &Impl::spring);
    route("GET", "/{app}/{profiles}/{label}", &Impl::spring);
    route("GET", "/v1/config/{app}/{profiles}", &Impl::config);
    route("GET", "/v1/documents", &Impl::documents);
    for (std::string doc : {"/v1/documents/{app}", "/v1/documents/{app}/profiles/{profile}"}) {
        route("GET", doc, &Impl::document);
        route("PUT", doc, &Impl::put, kMaxDocumentBytes);
        route("PATCH", doc, &Impl::patch, kMaxDocumentBytes);
        route("DELETE", doc, &Impl::remove);
        route("GET", doc + "/history", &Impl::history);
        route("GET", doc + "/diff", &Impl::diff);
        route("POST", doc + "/rollback", &Impl::rollback);
        route("POST", doc + "/canary", &Impl::canary, kMaxDocumentBytes);
        route("DELETE", doc + "/canary", &Impl::abort_canary);
        route("POST", doc + "/promote", &Impl::promote);
    }
    route("GET", "/v1/labels", &Impl::labels);
    route("PUT", "/v1/labels/{name}", &Impl::put_label);
    route("DELETE", "/v1/labels/{name}", &Impl::delete_label);
    route("GET", "/v1/schemas/{app}", &Impl::get_schema);
    route("PUT", "/v1/schemas/{app}", &Impl::put_schema, kMaxDocumentBytes);
    route("PUT", "/v1/instances/{app}/{id}", &Impl::report);
    route("GET", "/v1/instances/{app}", &Impl::instances);
    route("POST", "/v1/encrypt/{app}", &Impl::encrypt, 64 * 1024);
}

}  // namespace plexus::config
