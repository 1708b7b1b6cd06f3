// The admin API: clients, users, API keys and signing keys. Every call needs a Bearer token
// with scope plexus:admin (a client's, or an admin user's from `plexus login`), and every call,
// allowed or not, is written to the audit log.

#include <functional>

#include "plexus/telemetry/log.hpp"
#include "server_impl.hpp"

namespace plexus::identity {

namespace {

// Reads the fields of a JSON request body, naming the first one that is unknown or of the wrong
// type in `problem`.
class Fields {
  public:
    explicit Fields(const std::string& body, std::initializer_list<std::string_view> known) {
        boost::system::error_code ec;
        doc_ = json::parse(body.empty() ? std::string("{}") : body, ec);
        if (ec || !doc_.is_object()) {
            problem = "the body must be a JSON object";
            return;
        }
        for (const auto& [k, v] : doc_.as_object()) {
            if (std::find(known.begin(), known.end(), std::string_view(k)) == known.end()) {
                problem = std::string(k) + ": unknown field";
                return;
            }
        }
    }
    std::string text(std::string_view key, std::string fallback = {}) {
        const auto* v = find(key);
        if (!v) return fallback;
        if (!v->is_string()) return wrong(key, "a string"), fallback;
        return std::string(v->as_string());
    }
    std::vector<std::string> list(std::string_view key) {
        std::vector<std::string> out;
        const auto* v = find(key);
        if (!v) return out;
        if (!v->is_array()) return wrong(key, "an array of strings"), out;
        for (const auto& e : v->as_array()) {
            if (!e.is_string()) return wrong(key, "an array of strings"), out;
            out.emplace_back(e.as_string());
        }
        return out;
    }
    std::int64_t integer(std::string_view key, std::int64_t fallback = 0) {
        const auto* v = find(key);
        if (!v) return fallback;
        if (!v->is_int64()) return wrong(key, "an integer"), fallback;
        return v->to_number<std::int64_t>();
    }
    bool flag(std::string_view key, bool fallback) {
        const auto* v = find(key);
        if (!v) return fallback;
        if (!v->is_bool()) return wrong(key, "true or false"), fallback;
        return v->as_bool();
    }

    std::string problem;

  private:
    const json::value* find(std::string_view key) const {
        return problem.empty() && doc_.is_object() ? doc_.as_object().if_contains(key) : nullptr;
    }
    void wrong(std::string_view key, std::string_view what) {
        if (problem.empty()) problem = std::string(key) + ": must be " + std::string(what);
    }
    json::value doc_;
};

json::object client_json(const ClientInfo& c) {
    return {{"client_id", c.client_id},
            {"name", c.name},
            {"scopes", json::value_from(c.scopes)},
            {"token_kind", c.token_kind},
            {"access_ttl_s", c.access_ttl.count()},
            {"redirect_uris", json::value_from(c.redirect_uris)},
            {"confidential", c.confidential}};
}

json::object user_json(const UserInfo& u) {
    return {{"user_id", u.user_id},
            {"username", u.username},
            {"roles", json::value_from(u.roles)},
            {"scopes", json::value_from(u.scopes)}};
}

json::object api_key_json(const ApiKeyInfo& k) {
    return {{"key_id", k.key_id},         {"name", k.name},
            {"subject", k.subject},       {"scopes", json::value_from(k.scopes)},
            {"created_at", k.created_at}, {"expires_at", k.expires_at}};
}

// The answer to a create: the thing, with its secret shown once.
void created(Response& res, json::object body) {
    res.json(201, json::serialize(body));
    res.headers.set("Cache-Control", "no-store");
}

}  // namespace

void Server::Impl::add_admin_routes(net::Router& router, const std::shared_ptr<Impl>& self) {
    // An admin call: `fn` runs once the token is checked; it names what it acted on in `target`.
    using Handler = std::function<Task<void>(Request&, Response&, std::string & target)>;
    auto route = [&](std::string method, std::string pattern, Handler fn) {
        auto action = method + " " + pattern;
        router.add(
            method, pattern,
            [self, action, fn](Request& req, Response& res) -> Task<void> {
                auto& impl = *self;
                TokenFacts actor;
                std::string target(req.param("id"));
                auto auth = req.headers.get("Authorization").value_or("");
                if (auth.size() < 8 || !net::iequals(auth.substr(0, 7), "Bearer ")) {
                    bearer_error(res, 401, "", "the admin API needs a Bearer token with scope plexus:admin",
                                 req.path(), "");
                } else if (actor = co_await impl.inspect(std::string(auth.substr(7)));
                           !actor.active || actor.kind == "refresh") {
                    bearer_error(res, 401, "invalid_token", "the token is not active", req.path(), "");
                } else if (!has_scope(split_scopes(actor.scope), kAdminScope)) {
                    bearer_error(res, 403, "insufficient_scope", "the token lacks scope plexus:admin",
                                 req.path(), kAdminScope);
                } else {
                    try {
                        co_await fn(req, res, target);
                    } catch (const std::invalid_argument& e) {
                        res.problem(400, "Bad Request", e.what(), req.path());
                    } catch (const std::exception& e) {
                        // Still audited: a failed admin action is an admin action.
                        telemetry::error("admin call failed", {{"action", action}, {"error", e.what()}});
                        res.problem(500, "Internal Server Error", "the identity server could not do it",
                                    req.path());
                    }
                }
                impl.audit.record(actor.subject, actor.client_id, action, target, res.status,
                                  impl.client_address(req));
            },
            16 * 1024);
    };
    auto impl = self;

    route("GET", "/admin/clients", [impl](Request&, Response& res, std::string&) -> Task<void> {
        json::array list;
        for (const auto& [id, c] : *impl->snapshot_clients()) list.push_back(client_json(c.info));
        res.json(200, json::serialize(json::object{{"clients", std::move(list)}}));
        co_return;
    });
    route("POST", "/admin/clients", [impl](Request& req, Response& res, std::string& target) -> Task<void> {
        Fields f(req.body, {"client_id", "name", "scopes", "token_kind", "access_ttl_s", "redirect_uris",
                            "confidential"});
        ClientInfo info;
        info.client_id = f.text("client_id");
        info.name = f.text("name");
        info.scopes = f.list("scopes");
        info.token_kind = f.text("token_kind", "jwt");
        info.access_ttl = std::chrono::seconds(f.integer("access_ttl_s"));
        info.redirect_uris = f.list("redirect_uris");
        info.confidential = f.flag("confidential", true);
        if (!f.problem.empty()) co_return res.problem(400, "Bad Request", f.problem, req.path());
        auto [client, secret] = co_await net::offload([impl, info] { return impl->create_client(info); });
        target = client.client_id;
        auto body = client_json(client);
        if (!secret.empty()) body["client_secret"] = secret;
        created(res, std::move(body));
    });
    route("DELETE", "/admin/clients/{id}", [impl](Request& req, Response& res, std::string&) -> Task<void> {
        std::string id(req.param("id"));
        if (id == kAdminClient)
            co_return res.problem(409, "Conflict", "the first admin client cannot be deleted", req.path());
        bool gone = co_await net::offload([impl, id] { return impl->delete_client(id); });
        if (!gone) co_return res.problem(404, "Not Found", "no client " + id, req.path());
        res.status = 204;
    });

    route("GET", "/admin/users", [impl](Request&, Response& res, std::string&) -> Task<void> {
        auto users = co_await net::offload([impl] { return impl->list_users(); });
        json::array list;
        for (const auto& u : users) list.push_back(user_json(u));
        res.json(200, json::serialize(json::object{{"users", std::move(list)}}));
    });
    route("POST", "/admin/users", [impl](Request& req, Response& res, std::string& target) -> Task<void> {
        Fields f(req.body, {"username", "password", "roles", "scopes"});
        UserInfo info;
        info.username = f.text("username");
        auto password = f.text("password");
        info.roles = f.list("roles");
        info.scopes = f.list("scopes");
        if (!f.problem.empty()) co_return res.problem(400, "Bad Request", f.problem, req.path());
        bool generated = password.empty();
        auto [user, pw] =
            co_await net::offload([impl, info, password] { return impl->create_user(info, password); });
        target = user.user_id;
        auto body = user_json(user);
        if (generated) body["password"] = pw;  // shown once
        created(res, std::move(body));
    });
    route("DELETE", "/admin/users/{id}", [impl](Request& req, Response& res, std::string&) -> Task<void> {
        std::string id(req.param("id"));
        bool gone = co_await net::offload([impl, id] { return impl->delete_user(id); });
        if (!gone) co_return res.problem(404, "Not Found", "no user " + id, req.path());
        res.status = 204;
    });
    route("POST", "/admin/users/{id}/password",
          [impl](Request& req, Response& res, std::string&) -> Task<void> {
              Fields f(req.body, {"password"});
              auto password = f.text("password");
              if (!f.problem.empty()) co_return res.problem(400, "Bad Request", f.problem, req.path());
              std::string id(req.param("id"));
              auto pw =
                  co_await net::offload([impl, id, password] { return impl->set_password(id, password); });
              if (!pw) co_return res.problem(404, "Not Found", "no user " + id, req.path());
              json::object body{{"user_id", id}};
              if (password.empty()) body["password"] = *pw;  // shown once
              res.json(200, json::serialize(body));
              res.headers.set("Cache-Control", "no-store");
          });

    route("GET", "/admin/api-keys", [impl](Request&, Response& res, std::string&) -> Task<void> {
        auto keys = co_await net::offload([impl] { return impl->list_api_keys(); });
        json::array list;
        for (const auto& k : keys) list.push_back(api_key_json(k));
        res.json(200, json::serialize(json::object{{"api_keys", std::move(list)}}));
    });
    route("POST", "/admin/api-keys", [impl](Request& req, Response& res, std::string& target) -> Task<void> {
        Fields f(req.body, {"name", "subject", "scopes", "expires_in_s"});
        ApiKeyInfo info;
        info.name = f.text("name");
        info.subject = f.text("subject");
        info.scopes = f.list("scopes");
        auto expires_in = f.integer("expires_in_s");
        if (!f.problem.empty()) co_return res.problem(400, "Bad Request", f.problem, req.path());
        if (expires_in < 0 || expires_in > 10LL * 365 * 86400)
            co_return res.problem(400, "Bad Request", "expires_in_s: from 0 (never) to ten years",
                                  req.path());
        if (expires_in > 0) info.expires_at = impl->now() + expires_in;
        auto [key, secret] = co_await net::offload([impl, info] { return impl->create_api_key(info); });
        target = key.key_id;
        auto body = api_key_json(key);
        body["api_key"] = secret;  // shown once
        created(res, std::move(body));
    });
    route("DELETE", "/admin/api-keys/{id}", [impl](Request& req, Response& res, std::string&) -> Task<void> {
        std::string id(req.param("id"));
        bool gone = co_await net::offload([impl, id] { return impl->delete_api_key(id); });
        if (!gone) co_return res.problem(404, "Not Found", "no API key " + id, req.path());
        res.status = 204;
    });
    route("POST", "/admin/api-keys/{id}/rotate",
          [impl](Request& req, Response& res, std::string& target) -> Task<void> {
              Fields f(req.body, {"grace_s"});
              auto grace = f.integer("grace_s", 86400);
              if (!f.problem.empty()) co_return res.problem(400, "Bad Request", f.problem, req.path());
              if (grace < 0 || grace > 30LL * 86400)
                  co_return res.problem(400, "Bad Request", "grace_s: from 0 to 30 days", req.path());
              std::string id(req.param("id"));
              auto rotated = co_await net::offload(
                  [impl, id, grace] { return impl->rotate_api_key(id, std::chrono::seconds(grace)); });
              if (!rotated) co_return res.problem(404, "Not Found", "no API key " + id, req.path());
              target = id + " -> " + rotated->first.key_id;
              auto body = api_key_json(rotated->first);
              body["api_key"] = rotated->second;  // shown once
              created(res, std::move(body));
          });

    route("POST", "/admin/keys/rotate", [impl](Request&, Response& res, std::string& target) -> Task<void> {
        auto kid = co_await net::offload([impl] { return impl->rotate(); });
        target = kid;
        res.json(200, json::serialize(json::object{{"kid", kid}}));
    });
}

}  // namespace plexus::identity
