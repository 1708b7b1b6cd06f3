#include "identity_commands.hpp"

#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "plexus/core/duration.hpp"
#include "plexus/core/files.hpp"
#include "plexus/identity/admin_client.hpp"
#include "plexus/identity/login.hpp"
#include "plexus/supervisor/up.hpp"

namespace {

constexpr const char* kDefaultIssuer = "http://127.0.0.1:8080/auth";

boost::json::object read_json_file(const std::string& path) {
    return plexus::core::read_json_object(path).value_or(boost::json::object());
}

std::string field(const boost::json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// A duration option ("90d", "24h", "0"), in seconds; nullopt (after saying why) when malformed.
std::optional<std::chrono::seconds> seconds_of(const std::string& text, const char* option) {
    auto d = plexus::core::parse_duration(text);
    if (!d && text.size() > 1 && text.size() <= 6 && text.back() == 'd') {  // days, for key lifetimes
        if (auto hours = plexus::core::parse_duration(text.substr(0, text.size() - 1) + "h")) d = *hours * 24;
    }
    if (!d || d->count() < 0) {
        std::fprintf(stderr, "plexus: %s must be a duration such as 90d, 24h or 0, got '%s'\n", option,
                     text.c_str());
        return std::nullopt;
    }
    return std::chrono::duration_cast<std::chrono::seconds>(*d);
}

// A password from standard input (one line), so it is never on a command line.
std::string read_password() {
    if (::isatty(0)) std::fprintf(stderr, "password: ");
    std::string line;
    std::getline(std::cin, line);
    return line;
}

}  // namespace

struct IdentityCommands::Options {
    const std::string& manifest;
    // where and as whom
    std::string data_dir, credentials, url, ca_file;
    bool json = false;
    // login
    plexus::identity::LoginOptions login;
    std::string login_timeout = "5m";
    bool no_browser = false;
    // arguments of the admin commands
    std::string name, id, subject, expires_in = "0", grace = "24h";
    std::vector<std::string> scopes, roles, redirect_uris;
    bool opaque = false, public_client = false, password_stdin = false;

    CLI::App *login_cmd, *token_cmd, *logout_cmd;
    CLI::App *clients_list, *clients_create, *clients_delete;
    CLI::App *users_list, *users_create, *users_delete, *users_password;
    CLI::App *keys_list, *keys_create, *keys_delete, *keys_rotate_one;
    CLI::App* signing_rotate;

    explicit Options(const std::string& m) : manifest(m) {}

    void where(CLI::App* c) {
        c->add_option("--data-dir", data_dir, "data directory of the deployment (default: the manifest's)");
        c->add_option("--issuer,--url", url,
                      "identity server (issuer) URL (default: the deployment's, else " +
                          std::string(kDefaultIssuer) + ")");
        c->add_option("--cacert", ca_file, "CA to trust for an https issuer (default <data-dir>/tls/ca.pem)");
    }
    void admin(CLI::App* c) {
        where(c);
        c->add_option("--credentials", credentials,
                      "admin client credentials file (default: your plexus login if there is one, else "
                      "<data-dir>/identity/admin-credentials.json)");
        c->add_flag("--json", json, "print JSON");
    }

    // The deployment's data directory, its issuer and CA, unless given.
    void resolve() {
        if (data_dir.empty()) data_dir = plexus::supervisor::default_data_dir(manifest);
        auto bootstrap = read_json_file(data_dir + "/identity/admin-credentials.json");
        if (url.empty()) url = field(bootstrap, "issuer");
        if (url.empty()) url = kDefaultIssuer;
        while (!url.empty() && url.back() == '/') url.pop_back();
        if (ca_file.empty() && url.starts_with("https://") &&
            std::filesystem::exists(data_dir + "/tls/ca.pem"))
            ca_file = data_dir + "/tls/ca.pem";
        login.issuer = url;
        login.ca_file = ca_file;
    }

    // How admin calls authenticate: the given credentials file, else the person's login, else the
    // deployment's first admin client.
    std::optional<plexus::identity::AdminAuth> admin_auth() {
        plexus::identity::AdminAuth auth;
        auth.ca_file = ca_file;
        if (credentials.empty()) {
            std::string why;
            if (auto token = plexus::identity::cached_access_token(login, why)) {
                auth.bearer = *token;
                return auth;
            }
            credentials = data_dir + "/identity/admin-credentials.json";
        }
        auto c = read_json_file(credentials);
        auth.client_id = field(c, "client_id");
        auth.client_secret = field(c, "client_secret");
        if (auth.client_secret.empty()) {
            std::fprintf(stderr,
                         "plexus identity: cannot read admin credentials from %s (or run plexus login as an "
                         "admin)\n",
                         credentials.c_str());
            return std::nullopt;
        }
        return auth;
    }
};

IdentityCommands::IdentityCommands(CLI::App& app, CLI::App& identity, const std::string& manifest)
    : o_(std::make_unique<Options>(manifest)) {
    auto& o = *o_;
    o.login_cmd = app.add_subcommand("login", "sign in to the identity server in a browser (PKCE, RFC 8252)");
    o.where(o.login_cmd);
    o.login_cmd->add_option("--scope", o.login.scope, "scopes to ask for (default: all you hold)");
    o.login_cmd->add_option("--client-id", o.login.client_id, "the public client to sign in through");
    o.login_cmd->add_flag("--no-browser", o.no_browser, "only print the URL to open");
    o.login_cmd->add_option("--timeout", o.login_timeout, "how long to wait for the browser (e.g. 5m)");
    o.token_cmd = app.add_subcommand("token", "print an access token of your login (refreshed when needed)");
    o.where(o.token_cmd);
    o.logout_cmd = app.add_subcommand("logout", "revoke your login's tokens and forget them");
    o.where(o.logout_cmd);

    auto* clients = identity.add_subcommand("clients", "list, create or delete OAuth clients");
    clients->require_subcommand(1);
    o.clients_list = clients->add_subcommand("list", "list the clients");
    o.admin(o.clients_list);
    o.clients_create = clients->add_subcommand("create", "create a client; its secret is shown once");
    o.clients_create->add_option("name", o.name, "what the client is")->required();
    o.clients_create->add_option("--scope", o.scopes, "a scope it may ask for (repeatable)");
    o.clients_create->add_flag("--opaque", o.opaque, "opaque access tokens instead of JWTs");
    o.clients_create->add_option("--redirect-uri", o.redirect_uris,
                                 "where the authorization code grant may send users back (repeatable)");
    o.clients_create->add_flag("--public", o.public_client, "no secret (an app or CLI; PKCE only)");
    o.admin(o.clients_create);
    o.clients_delete = clients->add_subcommand("delete", "delete a client (its tokens die with it)");
    o.clients_delete->add_option("client_id", o.id, "the client")->required();
    o.admin(o.clients_delete);

    auto* users = identity.add_subcommand("users", "list, create or delete users; set passwords");
    users->require_subcommand(1);
    o.users_list = users->add_subcommand("list", "list the users");
    o.admin(o.users_list);
    o.users_create = users->add_subcommand("create", "create a user (a password is generated unless given)");
    o.users_create->add_option("username", o.name, "the login name")->required();
    o.users_create->add_option("--role", o.roles, "a role (repeatable)");
    o.users_create->add_option("--scope", o.scopes, "a scope their tokens may carry (repeatable)");
    o.users_create->add_flag("--password-stdin", o.password_stdin, "read the password from standard input");
    o.admin(o.users_create);
    o.users_delete = users->add_subcommand("delete", "delete a user and end their sessions");
    o.users_delete->add_option("user", o.id, "username or user_id")->required();
    o.admin(o.users_delete);
    o.users_password = users->add_subcommand("set-password", "set a new password (generated unless given)");
    o.users_password->add_option("user", o.id, "username or user_id")->required();
    o.users_password->add_flag("--password-stdin", o.password_stdin, "read the password from standard input");
    o.admin(o.users_password);

    auto* keys = identity.add_subcommand("api-keys", "list, create, rotate or delete API keys");
    keys->require_subcommand(1);
    o.keys_list = keys->add_subcommand("list", "list the API keys");
    o.admin(o.keys_list);
    o.keys_create = keys->add_subcommand("create", "create an API key; it is shown once");
    o.keys_create->add_option("name", o.name, "what it is for")->required();
    o.keys_create->add_option("--subject", o.subject, "whom calls with it act as (default: the name)");
    o.keys_create->add_option("--scope", o.scopes, "a scope it carries (repeatable)");
    o.keys_create->add_option("--expires-in", o.expires_in, "lifetime, e.g. 90d (default 0: never)");
    o.admin(o.keys_create);
    o.keys_delete = keys->add_subcommand("delete", "delete an API key (gateways refuse it at once)");
    o.keys_delete->add_option("key_id", o.id, "the key's id (the part before the dot)")->required();
    o.admin(o.keys_delete);
    o.keys_rotate_one =
        keys->add_subcommand("rotate", "a new key in place of one; the old one works for --grace");
    o.keys_rotate_one->add_option("key_id", o.id, "the key's id")->required();
    o.keys_rotate_one->add_option("--grace", o.grace, "how long the old key keeps working (default 24h)");
    o.admin(o.keys_rotate_one);

    auto* signing = identity.add_subcommand("keys", "signing keys");
    signing->require_subcommand(1);
    o.signing_rotate = signing->add_subcommand("rotate", "sign with a new key from now on");
    o.admin(o.signing_rotate);
}

IdentityCommands::~IdentityCommands() = default;

std::optional<int> IdentityCommands::run() {
    auto& o = *o_;
    auto chosen = [](CLI::App* c) { return c->parsed(); };
    if (chosen(o.login_cmd) || chosen(o.token_cmd) || chosen(o.logout_cmd)) {
        o.resolve();
        if (chosen(o.logout_cmd)) return plexus::identity::logout(o.login, std::cout, std::cerr);
        if (chosen(o.token_cmd)) {
            std::string why;
            auto token = plexus::identity::cached_access_token(o.login, why);
            if (!token) {
                std::fprintf(stderr, "plexus token: %s\n", why.c_str());
                return 1;
            }
            std::cout << *token << "\n";
            return 0;
        }
        auto timeout = seconds_of(o.login_timeout, "--timeout");
        if (!timeout) return 2;
        o.login.timeout = *timeout;
        o.login.open_browser = !o.no_browser;
        return plexus::identity::login(o.login, std::cout, std::cerr);
    }
    for (auto* c :
         {o.clients_list, o.clients_create, o.clients_delete, o.users_list, o.users_create, o.users_delete,
          o.users_password, o.keys_list, o.keys_create, o.keys_delete, o.keys_rotate_one, o.signing_rotate}) {
        if (!chosen(c)) continue;
        o.resolve();
        auto expires = seconds_of(o.expires_in, "--expires-in");
        auto grace = seconds_of(o.grace, "--grace");
        if (!expires || !grace) return 2;
        std::string password = o.password_stdin ? read_password() : std::string();
        auto auth = o.admin_auth();
        if (!auth) return 1;
        try {
            plexus::identity::AdminClient admin(o.url, *auth);
            auto& out = std::cout;
            if (c == o.clients_list) return admin.list_clients(out, o.json);
            if (c == o.clients_create)
                return admin.create_client(o.name, o.scopes, o.opaque, o.redirect_uris, o.public_client, out,
                                           o.json);
            if (c == o.clients_delete) return admin.delete_client(o.id, out);
            if (c == o.users_list) return admin.list_users(out, o.json);
            if (c == o.users_create)
                return admin.create_user(o.name, o.roles, o.scopes, password, out, o.json);
            if (c == o.users_delete) return admin.delete_user(o.id, out);
            if (c == o.users_password) return admin.set_password(o.id, password, out, o.json);
            if (c == o.keys_list) return admin.list_api_keys(out, o.json);
            if (c == o.keys_create)
                return admin.create_api_key(o.name, o.subject, o.scopes, *expires, out, o.json);
            if (c == o.keys_delete) return admin.delete_api_key(o.id, out);
            if (c == o.keys_rotate_one) return admin.rotate_api_key(o.id, *grace, out, o.json);
            return admin.rotate_keys(out, o.json);
        } catch (const std::invalid_argument& e) {
            std::fprintf(stderr, "plexus identity: %s\n", e.what());
            return 2;
        }
    }
    return std::nullopt;
}
