#include "plexus/settings/config_client.hpp"

#include <boost/json.hpp>
#include <stdexcept>
#include <variant>

#include "plexus/auth/token_source.hpp"
#include "plexus/telemetry/log.hpp"

namespace plexus::settings {

namespace json = boost::json;

namespace {
// `apply(f)` on the blocking pool (it may read files, parse and check a whole configuration, or
// run a program's callbacks: not on an io thread that serves requests); what it throws is its
// refusal.
net::Task<std::string> applied(const std::function<std::string(const Fetched&)>& apply, const Fetched& f) {
    co_return co_await net::offload([&]() -> std::string {
        try {
            return apply(f);
        } catch (const std::exception& e) {
            return e.what();
        }
    });
}

std::string detail_of(const net::Response& res) {
    boost::system::error_code ec;
    auto doc = json::parse(res.body, ec);
    if (!ec && doc.is_object())
        if (const auto* d = doc.get_object().if_contains("detail"); d && d->is_string())
            return std::string(d->get_string());
    return res.body.substr(0, 200);
}

}  // namespace

ConfigServer config_server(std::string url, std::string app, std::string profiles, std::string instance,
                           const std::string& token_uri, const std::string& credentials_file) {
    ConfigServer where;
    where.url = std::move(url);
    where.app = std::move(app);
    where.profiles = std::move(profiles);
    where.instance = std::move(instance);
    if (!token_uri.empty() && !credentials_file.empty())
        where.token = client_token(token_uri, credentials_file);
    return where;
}

std::function<net::Task<std::string>()> client_token(const std::string& token_uri,
                                                     const std::string& credentials_file) {
    auto source =
        std::make_shared<auth::TokenSource>(token_uri, credentials_file, std::vector<std::string>{});
    return [source]() -> net::Task<std::string> {
        auto t = co_await source->token();
        if (!t.error.empty()) telemetry::warn("no token for the config server", {{"error", t.error}});
        co_return t.token;
    };
}

ConfigClient::ConfigClient(ConfigServer server) : server_(std::move(server)) {
    auto ep = net::parse_endpoint(server_.url);
    if (!ep)
        throw std::invalid_argument("the config server must be http://host:port, got '" + server_.url + "'");
    if (server_.app.empty()) throw std::invalid_argument("the config server needs the application's name");
    if (server_.profiles.empty()) server_.profiles = "default";
    endpoint_ = *ep;
}

net::Task<Result<net::Response>> ConfigClient::call(std::string method, std::string target, std::string body,
                                                    std::chrono::milliseconds timeout) const {
    auto req = net::make_request(std::move(method), std::move(target), std::move(body));
    if (!req.body.empty()) req.headers.set("Content-Type", "application/json");
    if (server_.token) {
        auto token = co_await server_.token();
        if (!token.empty()) req.headers.set("Authorization", "Bearer " + token);
    }
    net::Response res;
    if (auto ec = co_await net::send(endpoint_, req, res, timeout)) co_return ec;
    co_return res;
}

net::Task<std::variant<Fetched, Failure>> ConfigClient::get(std::string target,
                                                            std::chrono::milliseconds timeout) const {
    auto r = co_await call("GET", std::move(target), {}, timeout);
    if (!r)
        co_return Failure{"cannot reach the config server at " + server_.url + ": " + r.error().message(), 0};
    if (r->status != 200)
        co_return Failure{"the config server answered " + std::to_string(r->status) + ": " + detail_of(*r),
                          r->status};
    boost::system::error_code ec;
    auto doc = json::parse(r->body, ec);
    const json::object* o = !ec && doc.is_object() ? &doc.get_object() : nullptr;
    const auto* version = o ? o->if_contains("version") : nullptr;
    const auto* config = o ? o->if_contains("config") : nullptr;
    if (!version || !version->is_int64() || !config || !config->is_object())
        co_return Failure{"the config server's answer is not a configuration", r->status};
    co_return Fetched{version->get_int64(), config->get_object()};
}

net::Task<std::variant<Fetched, Failure>> ConfigClient::fetch() const {
    co_return co_await get("/v1/config/" + server_.app + "/" + server_.profiles +
                               "?instance=" + net::percent_encode(server_.instance),
                           server_.timeout);
}

net::Task<std::variant<Fetched, Failure>> ConfigClient::next(std::int64_t known) const {
    co_return co_await get("/v1/config/" + server_.app + "/" + server_.profiles + "?instance=" +
                               net::percent_encode(server_.instance) + "&version=" + std::to_string(known) +
                               "&wait=" + std::to_string(server_.wait.count()) + "ms",
                           server_.wait + server_.timeout);
}

net::Task<void> ConfigClient::report(std::int64_t offered, std::int64_t running, bool applied,
                                     std::string error) const {
    json::object body{
        {"profiles", server_.profiles}, {"offered", offered}, {"running", running}, {"applied", applied}};
    if (!error.empty()) body["error"] = std::move(error);
    auto r =
        co_await call("PUT", "/v1/instances/" + server_.app + "/" + net::percent_encode(server_.instance),
                      json::serialize(body), server_.timeout);
    if (!r || r->status != 204)
        telemetry::warn(
            "cannot report the configuration version to the config server",
            {{"version", offered},
             {"error", !r ? r.error().message() : std::to_string(r->status) + " " + detail_of(*r)}});
}

net::Task<std::variant<std::vector<std::string>, Failure>> ConfigClient::publish_schema(
    json::value schema) const {
    auto r = co_await call("PUT", "/v1/schemas/" + server_.app, json::serialize(schema), server_.timeout);
    if (!r)
        co_return Failure{"cannot reach the config server at " + server_.url + ": " + r.error().message(), 0};
    if (r->status != 200)
        co_return Failure{
            "the config server refused the schema (" + std::to_string(r->status) + "): " + detail_of(*r),
            r->status};
    std::vector<std::string> problems;
    boost::system::error_code ec;
    auto doc = json::parse(r->body, ec);
    if (!ec && doc.is_object())
        if (const auto* p = doc.get_object().if_contains("problems"); p && p->is_array())
            for (const auto& item : p->get_array())
                if (item.is_string()) problems.emplace_back(item.get_string());
    co_return problems;
}

net::Task<void> ConfigClient::follow(std::shared_ptr<const ConfigClient> client, std::int64_t from,
                                     std::function<std::string(const Fetched&)> apply,
                                     std::shared_ptr<std::atomic<bool>> stop) {
    std::int64_t known = from;  // what the server last offered (applied or refused: not asked again)
    std::int64_t running = from;
    auto backoff = std::chrono::milliseconds(100);
    bool failing = false;
    while (!stop->load()) {
        auto r = co_await client->next(known);
        if (stop->load()) break;
        if (auto* f = std::get_if<Failure>(&r)) {
            if (!failing) telemetry::warn("config watch failing; retrying", {{"error", f->why}});
            failing = true;
            co_await net::sleep_for(backoff);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
            continue;
        }
        if (failing) telemetry::info("config watch restored");
        failing = false;
        backoff = std::chrono::milliseconds(100);
        auto& fetched = std::get<Fetched>(r);
        if (fetched.version == known) continue;  // the wait ended without a change
        known = fetched.version;
        auto why = co_await applied(apply, fetched);
        if (why.empty()) {
            running = fetched.version;
            telemetry::info("configuration applied", {{"version", fetched.version}});
        } else {
            telemetry::warn("configuration refused",
                            {{"version", fetched.version}, {"running", running}, {"error", why}});
        }
        co_await client->report(fetched.version, running, why.empty(), why);
    }
}

std::string ConfigClient::source(std::int64_t version) const {
    return "config server " + server_.url + " " + server_.app + "/" + server_.profiles + " version " +
           std::to_string(version);
}

net::Task<std::string> ConfigClient::start(std::shared_ptr<const ConfigClient> client,
                                           std::function<std::string(const Fetched&, bool)> apply,
                                           std::optional<json::value> schema,
                                           std::shared_ptr<std::atomic<bool>> stop, net::Executor ex,
                                           std::chrono::milliseconds give_up) {
    Fetched now;
    auto until = std::chrono::steady_clock::now() + give_up;
    auto backoff = std::chrono::milliseconds(100);
    while (true) {
        auto r = co_await client->fetch();
        if (auto* f = std::get_if<Fetched>(&r)) {
            now = std::move(*f);
            break;
        }
        const auto& failure = std::get<Failure>(r);
        // A refusal (401, 403, 404) does not pass by waiting; an unreachable server may.
        if (failure.status != 0 && failure.status != 503) co_return failure.why;
        if (stop->load() || std::chrono::steady_clock::now() + backoff > until) co_return failure.why;
        telemetry::warn("the config server cannot be reached yet; retrying", {{"error", failure.why}});
        co_await net::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
    auto why = co_await applied([&apply](const Fetched& f) { return apply(f, true); }, now);
    co_await client->report(now.version, why.empty() ? now.version : 0, why.empty(), why);
    if (!why.empty()) co_return why;
    telemetry::info("configuration loaded",
                    {{"version", now.version}, {"config_server", client->server().url}});
    if (schema) {
        auto published = co_await client->publish_schema(std::move(*schema));
        if (auto* f = std::get_if<Failure>(&published)) {
            telemetry::warn(
                "cannot publish the settings schema; the config server will not check changes for it",
                {{"error", f->why}});
        } else {
            for (const auto& p : std::get<std::vector<std::string>>(published))
                telemetry::warn("the configuration does not fit the settings schema", {{"problem", p}});
        }
    }
    net::spawn(
        ex,
        follow(
            client, now.version, [apply](const Fetched& f) { return apply(f, false); }, std::move(stop)),
        "config watch");
    co_return std::string();
}

}  // namespace plexus::settings
