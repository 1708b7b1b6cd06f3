#include "plexus/identity/admin_client.hpp"

#include <boost/json.hpp>
#include <iomanip>
#include <iostream>
#include <stdexcept>

#include "plexus/identity/cli_http.hpp"

namespace plexus::identity {

namespace json = boost::json;

namespace {

std::string text_of(const json::value& v) {
    if (v.is_string()) return std::string(v.as_string());
    if (v.is_array()) {
        std::string out;
        for (const auto& e : v.as_array()) out += (out.empty() ? "" : " ") + text_of(e);
        return out;
    }
    return json::serialize(v);
}

// Prints `rows` (objects) as a table of `columns` (field, heading, width; the last one unpadded).
void table(std::ostream& out, const json::array& rows,
           std::initializer_list<std::tuple<std::string_view, std::string_view, int>> columns) {
    auto line = [&](auto&& cell) {
        std::size_t i = 0;
        for (const auto& [field, heading, width] : columns) {
            auto value = cell(field, heading);
            if (++i < columns.size())
                out << std::left << std::setw(width) << value << ' ';
            else
                out << value;
        }
        out << "\n";
    };
    line([](std::string_view, std::string_view heading) { return std::string(heading); });
    for (const auto& r : rows) {
        line([&](std::string_view field, std::string_view) {
            const auto* v = r.as_object().if_contains(field);
            return v ? text_of(*v) : std::string();
        });
    }
}

}  // namespace

struct AdminClient::Impl {
    ServerUrl url;
    AdminAuth auth;
    CliHttp http;

    // An admin token: the one given, or one for the admin client's credentials, fetched once.
    bool login(std::string& why) {
        if (!auth.bearer.empty()) return true;
        auto token = client_token(http, url, auth.client_id, auth.client_secret, "plexus:admin", why);
        if (!token) {
            why = "the identity server refused the admin credentials: " + why;
            return false;
        }
        auth.bearer = std::move(*token);
        return true;
    }

    // An admin API call; the parsed answer, or nullopt with `why`.
    std::optional<json::value> admin(std::string method, std::string target, std::string body, int expect,
                                     std::string& why) {
        if (!login(why)) return std::nullopt;
        HeaderList headers{{"Authorization", "Bearer " + auth.bearer}};
        if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
        auto r =
            http.send(url, std::move(method), std::move(target), std::move(body), std::move(headers), why);
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

    // A user_id for `user` (a user_id already, or a username looked up).
    std::optional<std::string> user_id(const std::string& user, std::string& why) {
        if (user.starts_with("u-")) return user;
        auto doc = admin("GET", "/admin/users", {}, 200, why);
        if (!doc) return std::nullopt;
        for (const auto& u : doc->at("users").as_array()) {
            if (u.at("username").as_string() == user) return std::string(u.at("user_id").as_string());
        }
        why = "no user " + user;
        return std::nullopt;
    }

    static int fail(const std::string& why) {
        std::cerr << "plexus identity: " << why << "\n";
        return 1;
    }

    // Prints `doc` as JSON, or `fn(doc)` as text.
    template <class F>
    static int print(std::ostream& out, bool as_json, const json::value& doc, F&& fn) {
        if (as_json)
            out << json::serialize(doc) << "\n";
        else
            fn(doc.as_object());
        return 0;
    }
};

AdminClient::AdminClient(std::string base_url, AdminAuth auth) : impl_(std::make_unique<Impl>()) {
    auto url = ServerUrl::parse(base_url, auth.ca_file);
    if (!url) throw std::invalid_argument("the identity URL must be http[s]://host:port[/path]");
    impl_->url = std::move(*url);
    impl_->auth = std::move(auth);
}

AdminClient::~AdminClient() = default;

int AdminClient::list_clients(std::ostream& out, bool as_json) {
    std::string why;
    auto doc = impl_->admin("GET", "/admin/clients", {}, 200, why);
    if (!doc) return Impl::fail(why);
    return Impl::print(out, as_json, *doc, [&](const json::object& o) {
        table(out, o.at("clients").as_array(),
              {{"client_id", "CLIENT_ID", 25},
               {"name", "NAME", 23},
               {"token_kind", "TOKENS", 7},
               {"scopes", "SCOPES", 0}});
    });
}

int AdminClient::create_client(const std::string& name, const std::vector<std::string>& scopes, bool opaque,
                               const std::vector<std::string>& redirect_uris, bool public_client,
                               std::ostream& out, bool as_json) {
    json::object body{{"name", name},
                      {"scopes", json::value_from(scopes)},
                      {"token_kind", opaque ? "opaque" : "jwt"},
                      {"redirect_uris", json::value_from(redirect_uris)},
                      {"confidential", !public_client}};
    std::string why;
    auto doc = impl_->admin("POST", "/admin/clients", json::serialize(body), 201, why);
    if (!doc) return Impl::fail(why);
    return Impl::print(out, as_json, *doc, [&](const json::object& c) {
        out << "client_id:     " << text_of(c.at("client_id")) << "\n";
        if (const auto* secret = c.if_contains("client_secret"))
            out << "client_secret: " << text_of(*secret) << "   (shown once: keep it now)\n";
    });
}

int AdminClient::delete_client(const std::string& client_id, std::ostream& out) {
    std::string why;
    if (!impl_->admin("DELETE", "/admin/clients/" + client_id, {}, 204, why)) return Impl::fail(why);
    out << "deleted " << client_id << "\n";
    return 0;
}

int AdminClient::list_users(std::ostream& out, bool as_json) {
    std::string why;
    auto doc = impl_->admin("GET", "/admin/users", {}, 200, why);
    if (!doc) return Impl::fail(why);
    return Impl::print(out, as_json, *doc, [&](const json::object& o) {
        table(out, o.at("users").as_array(),
              {{"user_id", "USER_ID", 18},
               {"username", "USERNAME", 16},
               {"roles", "ROLES", 16},
               {"scopes", "SCOPES", 0}});
    });
}

int AdminClient::create_user(const std::string& username, const std::vector<std::string>& roles,
                             const std::vector<std::string>& scopes, const std::string& password,
                             std::ostream& out, bool as_json) {
    json::object body{
        {"username", username}, {"roles", json::value_from(roles)}, {"scopes", json::value_from(scopes)}};
    if (!password.empty()) body["password"] = password;
    std::string why;
    auto doc = impl_->admin("POST", "/admin/users", json::serialize(body), 201, why);
    if (!doc) return Impl::fail(why);
    return Impl::print(out, as_json, *doc, [&](const json::object& u) {
        out << "user_id:  " << text_of(u.at("user_id")) << "\n";
        if (const auto* pw = u.if_contains("password"))
            out << "password: " << text_of(*pw) << "   (shown once: pass it on now)\n";
    });
}

int AdminClient::delete_user(const std::string& user, std::ostream& out) {
    std::string why;
    auto id = impl_->user_id(user, why);
    if (!id || !impl_->admin("DELETE", "/admin/users/" + *id, {}, 204, why)) return Impl::fail(why);
    out << "deleted " << user << "; their sessions are revoked\n";
    return 0;
}

int AdminClient::set_password(const std::string& user, const std::string& password, std::ostream& out,
                              bool as_json) {
    std::string why;
    auto id = impl_->user_id(user, why);
    json::object body;
    if (!password.empty()) body["password"] = password;
    auto doc = id ? impl_->admin("POST", "/admin/users/" + *id + "/password", json::serialize(body), 200, why)
                  : std::nullopt;
    if (!doc) return Impl::fail(why);
    return Impl::print(out, as_json, *doc, [&](const json::object& u) {
        out << "password changed; " << user << "'s sessions are revoked\n";
        if (const auto* pw = u.if_contains("password"))
            out << "password: " << text_of(*pw) << "   (shown once: pass it on now)\n";
    });
}

int AdminClient::list_api_keys(std::ostream& out, bool as_json) {
    std::string why;
    auto doc = impl_->admin("GET", "/admin/api-keys", {}, 200, why);
    if (!doc) return Impl::fail(why);
    return Impl::print(out, as_json, *doc, [&](const json::object& o) {
        table(out, o.at("api_keys").as_array(),
              {{"key_id", "KEY_ID", 16},
               {"name", "NAME", 20},
               {"subject", "SUBJECT", 16},
               {"expires_at", "EXPIRES_AT", 11},
               {"scopes", "SCOPES", 0}});
    });
}

int AdminClient::create_api_key(const std::string& name, const std::string& subject,
                                const std::vector<std::string>& scopes, std::chrono::seconds expires_in,
                                std::ostream& out, bool as_json) {
    json::object body{
        {"name", name}, {"scopes", json::value_from(scopes)}, {"expires_in_s", expires_in.count()}};
    if (!subject.empty()) body["subject"] = subject;
    std::string why;
    auto doc = impl_->admin("POST", "/admin/api-keys", json::serialize(body), 201, why);
    if (!doc) return Impl::fail(why);
    return Impl::print(out, as_json, *doc, [&](const json::object& k) {
        out << "api_key: " << text_of(k.at("api_key")) << "   (shown once: keep it now)\n";
    });
}

int AdminClient::delete_api_key(const std::string& key_id, std::ostream& out) {
    std::string why;
    if (!impl_->admin("DELETE", "/admin/api-keys/" + key_id, {}, 204, why)) return Impl::fail(why);
    out << "deleted " << key_id << "\n";
    return 0;
}

int AdminClient::rotate_api_key(const std::string& key_id, std::chrono::seconds grace, std::ostream& out,
                                bool as_json) {
    std::string why;
    auto doc = impl_->admin("POST", "/admin/api-keys/" + key_id + "/rotate",
                            json::serialize(json::object{{"grace_s", grace.count()}}), 201, why);
    if (!doc) return Impl::fail(why);
    return Impl::print(out, as_json, *doc, [&](const json::object& k) {
        out << "api_key: " << text_of(k.at("api_key")) << "   (shown once: keep it now)\n"
            << key_id << " keeps working for " << grace.count() << " s\n";
    });
}

int AdminClient::rotate_keys(std::ostream& out, bool as_json) {
    std::string why;
    auto doc = impl_->admin("POST", "/admin/keys/rotate", {}, 200, why);
    if (!doc) return Impl::fail(why);
    return Impl::print(out, as_json, *doc, [&](const json::object& k) {
        out << "signing with " << text_of(k.at("kid"))
            << "; the previous key stays published until its tokens expire\n";
    });
}

}  // namespace plexus::identity
