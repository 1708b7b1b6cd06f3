#include "plexus/identity/cli_http.hpp"

#include <boost/json.hpp>

#include "plexus/net/blocking.hpp"
#include "plexus/net/tls.hpp"

namespace plexus::identity {

namespace json = boost::json;
using namespace std::chrono_literals;

std::optional<ServerUrl> ServerUrl::parse(std::string_view url, std::string ca_file) {
    ServerUrl out;
    std::string plain(url);
    if (url.starts_with("https://")) {
        out.https = true;
        plain = "http://" + std::string(url.substr(8));
    }
    auto parsed = net::parse_http_url(plain);
    if (!parsed) return std::nullopt;
    out.endpoint = parsed->endpoint;
    out.prefix = parsed->path;
    while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
    out.ca_file = std::move(ca_file);
    return out;
}

CliHttp::CliHttp() : io_([this] { runtime_.run(); }) {}

CliHttp::~CliHttp() {
    runtime_.stop();
    io_.join();
}

std::optional<net::Response> CliHttp::send(const ServerUrl& url, std::string method, std::string path,
                                           std::string body, HeaderList headers, std::string& why) {
    auto req = net::make_request(std::move(method), url.prefix + path, std::move(body));
    for (auto& [k, v] : headers) req.headers.set(k, v);
    auto task = [](ServerUrl url, net::Request r) -> net::Task<Result<net::Response>> {
        if (url.https) co_return co_await net::fetch_https(url.endpoint, url.ca_file, std::move(r), 10s);
        net::Response res;
        if (auto ec = co_await net::send(url.endpoint, r, res, 10s)) co_return ec;
        co_return res;
    }(url, std::move(req));
    auto r = net::run_blocking(runtime_.executor(0), std::move(task), 11s);
    auto where = std::string(url.https ? "https://" : "http://") + url.endpoint.to_string();
    if (!r) {
        why = where + " did not answer";
        return std::nullopt;
    }
    if (!*r) {
        why = "cannot reach " + where + ": " + r->error().message();
        if (url.https && url.ca_file.empty()) why += " (give the CA with --cacert)";
        return std::nullopt;
    }
    return std::move(**r);
}

std::optional<json::object> CliHttp::post_form(const ServerUrl& url, std::string path,
                                               const HeaderList& fields, std::string& why) {
    std::string body;
    for (const auto& [k, v] : fields) body += (body.empty() ? "" : "&") + k + "=" + net::percent_encode(v);
    auto r = send(url, "POST", std::move(path), std::move(body),
                  {{"Content-Type", "application/x-www-form-urlencoded"}}, why);
    if (!r) return std::nullopt;
    boost::system::error_code ec;
    auto doc = json::parse(r->body, ec);
    if (ec || !doc.is_object()) {
        why = "the answer (" + std::to_string(r->status) + ") is not JSON: " + r->body.substr(0, 200);
        return std::nullopt;
    }
    if (r->status != 200) {
        const auto* d = doc.as_object().if_contains("error_description");
        const auto* e = doc.as_object().if_contains("error");
        why = (e && e->is_string() ? std::string(e->as_string()) : std::to_string(r->status)) +
              (d && d->is_string() ? ": " + std::string(d->as_string()) : std::string());
        return std::nullopt;
    }
    return std::move(doc.as_object());
}

std::optional<std::string> client_token(CliHttp& http, const ServerUrl& issuer, const std::string& client_id,
                                        const std::string& client_secret, const std::string& scope,
                                        std::string& why) {
    auto doc = http.post_form(issuer, "/token",
                              {{"grant_type", "client_credentials"},
                               {"scope", scope},
                               {"client_id", client_id},
                               {"client_secret", client_secret}},
                              why);
    const auto* token = doc ? doc->if_contains("access_token") : nullptr;
    if (!token || !token->is_string()) {
        if (doc) why = "the answer has no access_token";
        return std::nullopt;
    }
    return std::string(token->get_string());
}

}  // namespace plexus::identity
