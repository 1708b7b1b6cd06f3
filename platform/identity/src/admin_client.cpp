#include "plexus/identity/admin_client.hpp"

#include <boost/json.hpp>
#include <iomanip>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "plexus/net/blocking.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/runtime.hpp"

namespace plexus::identity {

namespace json = boost::json;
using namespace std::chrono_literals;

struct AdminClient::Impl {
    net::Endpoint endpoint;
    std::string prefix;  // the issuer URL's path, "" or "/auth"
    std::string client_id, client_secret;
    std::string token;
    net::Runtime runtime{1};
    std::thread io{[this] { runtime.run(); }};

    ~Impl() {
        runtime.stop();
        io.join();
    }

    std::optional<net::Response> send(std::string method, std::string target, std::string body,
                                      std::vector<std::pair<std::string, std::string>> headers,
                                      std::string& why) {
        auto req = net::make_request(std::move(method), prefix + target, std::move(body));
        for (auto& [k, v] : headers) req.headers.set(k, v);
        auto task = [](net::Endpoint ep, net::Request r) -> net::Task<Result<net::Response>> {
            net::Response res;
            if (auto ec = co_await net::send(ep, r, res, 5s)) co_return ec;
            co_return res;
        }(endpoint, std::move(req));
        auto r = net::run_blocking(runtime.executor(0), std::move(task), 6s);
        if (!r) {
            why = "the identity server at " + endpoint.to_string() + " did not answer";
            return std::nullopt;
        }
        if (!*r) {
            why = "cannot reach the identity server at " + endpoint.to_string() + ": " + r->error().message();
            return std::nullopt;
        }
        return std::move(**r);
    }

    // An admin token (client credentials), fetched once.
    bool login(std::string& why) {
        if (!token.empty()) return true;
        auto r = send("POST", "/token",
                      "grant_type=client_credentials&scope=plexus%3Aadmin&client_id=" + client_id +
                          "&client_secret=" + client_secret,
                      {{"Content-Type", "application/x-www-form-urlencoded"}}, why);
        if (!r) return false;
        boost::system::error_code ec;
        auto doc = json::parse(r->body, ec);
        if (r->status != 200 || ec || !doc.is_object() || !doc.as_object().contains("access_token")) {
            why = "the identity server refused the admin credentials (" + std::to_string(r->status) +
                  "): " + r->body;
            return false;
        }
        token = std::string(doc.at("access_token").as_string());
        return true;
    }

    // An admin API call; the parsed answer, or nullopt with `why`.
    std::optional<json::value> admin(std::string method, std::string target, std::string body, int expect,
                                     std::string& why) {
        if (!login(why)) return std::nullopt;
        std::vector<std::pair<std::string, std::string>> headers{{"Authorization", "Bearer " + token}};
        if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
        auto r = send(std::move(method), std::move(target), std::move(body), std::move(headers), why);
        if (!r) return std::nullopt;
        if (r->status != expect) {
            // A problem+json answer says why in its detail.
            boost::system::error_code ec;
            auto problem = json::parse(r->body, ec);
            const json::value* detail =
                !ec && problem.is_object() ? problem.as_object().if_contains("detail") : nullptr;
            why = std::to_string(r->status) + ": " +
                  (detail && detail->is_string() ? std::string(detail->as_string()) : r->body);
            return std::nullopt;
        }
        if (r->body.empty()) return json::value();
        boost::system::error_code ec;
        auto doc = json::parse(r->body, ec);
        if (ec) {
            why = "the answer is not JSON: " + r->body;
            return std::nullopt;
        }
        return doc;
    }

    static int fail(const std::string& why) {
        std::cerr << "plexus identity: " << why << "\n";
        return 1;
    }
};

AdminClient::AdminClient(std::string base_url, std::string client_id, std::string client_secret)
    : impl_(std::make_unique<Impl>()) {
    auto url = net::parse_http_url(base_url);
    if (!url) throw std::invalid_argument("the identity URL must be http://host:port[/path]");
    impl_->endpoint = url->endpoint;
    impl_->prefix = url->path;
    while (!impl_->prefix.empty() && impl_->prefix.back() == '/') impl_->prefix.pop_back();
    impl_->client_id = std::move(client_id);
    impl_->client_secret = std::move(client_secret);
}

AdminClient::~AdminClient() = default;

int AdminClient::list_clients(std::ostream& out, bool as_json) {
    std::string why;
    auto doc = impl_->admin("GET", "/admin/clients", {}, 200, why);
    if (!doc) return Impl::fail(why);
    if (as_json) {
        out << json::serialize(*doc) << "\n";
        return 0;
    }
    out << std::left << std::setw(26) << "CLIENT_ID" << std::setw(24) << "NAME" << std::setw(8) << "TOKENS"
        << "SCOPES\n";
    for (const auto& v : doc->at("clients").as_array()) {
        const auto& c = v.as_object();
        std::string scopes;
        for (const auto& s : c.at("scopes").as_array())
            scopes += (scopes.empty() ? "" : " ") + std::string(s.as_string());
        out << std::setw(26) << std::string(c.at("client_id").as_string()) << std::setw(24)
            << std::string(c.at("name").as_string()) << std::setw(8)
            << std::string(c.at("token_kind").as_string()) << scopes << "\n";
    }
    return 0;
}

int AdminClient::create_client(const std::string& name, const std::vector<std::string>& scopes, bool opaque,
                               std::ostream& out, bool as_json) {
    json::array list;
    for (const auto& s : scopes) list.emplace_back(s);
    json::object body{{"name", name}, {"scopes", std::move(list)}, {"token_kind", opaque ? "opaque" : "jwt"}};
    std::string why;
    auto doc = impl_->admin("POST", "/admin/clients", json::serialize(body), 201, why);
    if (!doc) return Impl::fail(why);
    if (as_json) {
        out << json::serialize(*doc) << "\n";
        return 0;
    }
    out << "client_id:     " << std::string(doc->at("client_id").as_string()) << "\n"
        << "client_secret: " << std::string(doc->at("client_secret").as_string())
        << "   (shown once: keep it now)\n";
    return 0;
}

int AdminClient::delete_client(const std::string& client_id, std::ostream& out) {
    std::string why;
    if (!impl_->admin("DELETE", "/admin/clients/" + client_id, {}, 204, why)) return Impl::fail(why);
    out << "deleted " << client_id << "\n";
    return 0;
}

int AdminClient::rotate_keys(std::ostream& out, bool as_json) {
    std::string why;
    auto doc = impl_->admin("POST", "/admin/keys/rotate", {}, 200, why);
    if (!doc) return Impl::fail(why);
    if (as_json)
        out << json::serialize(*doc) << "\n";
    else
        out << "signing with " << std::string(doc->at("kid").as_string())
            << "; the previous key stays published until its tokens expire\n";
    return 0;
}

}  // namespace plexus::identity
