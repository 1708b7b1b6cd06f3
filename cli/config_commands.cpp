#include "config_commands.hpp"

#include <unistd.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "layered_settings.hpp"
#include "plexus/config/config.hpp"
#include "plexus/core/files.hpp"
#include "plexus/core/yaml_json.hpp"
#include "plexus/identity/cli_http.hpp"
#include "plexus/identity/login.hpp"
#include "plexus/net/http.hpp"
#include "plexus/supervisor/up.hpp"
#include "plexus/telemetry/log.hpp"

namespace json = boost::json;
using plexus::identity::CliHttp;
using plexus::identity::ServerUrl;

namespace {

std::string text_of(const json::value& v) {
    if (v.is_string()) return std::string(v.get_string());
    return json::serialize(v);
}

std::string field(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && !v->is_null() ? text_of(*v) : std::string();
}

std::string slurp(const std::string& path) {
    std::string why;
    auto text = plexus::core::read_text_file(path, &why);
    if (!text) throw std::runtime_error(why);
    return std::move(*text);
}

}  // namespace

struct ConfigCommands::Options {
    const std::string& manifest;
    std::string& log_level;
    plexus::config::Settings serve;
    // Only --config: the config server cannot read its own settings from a config server, so
    // `serve_sources.server` stays empty.
    SettingsSources serve_sources;
    std::optional<LayeredSettings<plexus::config::Settings>> serve_layers;
    // where and as whom
    std::string data_dir, url, credentials, issuer;
    bool json = false;
    // arguments
    std::string app, profile, instance, label, file, message, name;
    std::vector<std::string> assignments, canary_instances;
    std::int64_t from = 0, to = 0, revision = 0, limit = 20;
    int percent = 0;
    bool yaml = false;

    CLI::App *serve_cmd, *get_cmd, *set_cmd, *edit_cmd, *history_cmd, *diff_cmd, *rollback_cmd, *canary_cmd,
        *promote_cmd, *abort_cmd, *instances_cmd, *list_cmd, *labels_cmd, *label_cmd, *encrypt_cmd;

    Options(const std::string& m, std::string& level) : manifest(m), log_level(level) {}

    CliHttp http;
    ServerUrl server;
    std::string bearer;

    void where(CLI::App* c) {
        c->add_option("--url", url, "config server URL (default: the running deployment's)");
        c->add_option("--data-dir", data_dir, "data directory of the deployment (default: the manifest's)");
        c->add_option("--credentials", credentials,
                      "admin client credentials file (default: your plexus login if there is one, else "
                      "<data-dir>/identity/admin-credentials.json)");
        c->add_flag("--json", json, "print JSON");
    }
    void document(CLI::App* c) {
        c->add_option("app", app, "application")->required();
        c->add_option("profile", profile, "profile (none: the application's base document)");
        where(c);
    }

    // Finds the server and a token; false after saying why.
    bool connect() {
        if (data_dir.empty()) data_dir = plexus::supervisor::default_data_dir(manifest);
        if (url.empty()) {
            auto port = plexus::supervisor::deployed_port(data_dir, "config");
            if (!port) {
                std::fprintf(stderr, "plexus config: no config server runs from %s (give --url)\n",
                             data_dir.c_str());
                return false;
            }
            url = "http://127.0.0.1:" + std::to_string(*port);
        }
        auto parsed = ServerUrl::parse(url);
        if (!parsed) {
            std::fprintf(stderr, "plexus config: --url must be http://host:port, got '%s'\n", url.c_str());
            return false;
        }
        server = *parsed;
        auto bootstrap = plexus::core::read_json_object(data_dir + "/identity/admin-credentials.json")
                             .value_or(json::object());
        if (issuer.empty()) issuer = field(bootstrap, "issuer");
        std::string why;
        if (credentials.empty() && !issuer.empty()) {
            plexus::identity::LoginOptions login;
            login.issuer = issuer;
            if (issuer.starts_with("https://")) login.ca_file = data_dir + "/tls/ca.pem";
            if (auto token = plexus::identity::cached_access_token(login, why)) {
                bearer = *token;
                return true;
            }
        }
        auto c = credentials.empty() ? bootstrap
                                     : plexus::core::read_json_object(credentials).value_or(json::object());
        if (field(c, "client_secret").empty() || issuer.empty()) return true;  // a server without identity
        auto issuer_url =
            ServerUrl::parse(issuer, issuer.starts_with("https://") ? data_dir + "/tls/ca.pem" : "");
        auto token = issuer_url
                         ? plexus::identity::client_token(http, *issuer_url, field(c, "client_id"),
                                                          field(c, "client_secret"), "plexus:admin", why)
                         : std::nullopt;
        if (!token) {
            std::fprintf(stderr, "plexus config: cannot get an admin token from %s: %s\n", issuer.c_str(),
                         why.c_str());
            return false;
        }
        bearer = *token;
        return true;
    }

    // One call; the answer's JSON (null for an empty body), or nullopt after printing the problem.
    // `status`, when given, gets the HTTP status (0: no answer).
    std::optional<json::value> call(std::string method, std::string path, std::string body = {},
                                    std::string* raw = nullptr, int* status = nullptr) {
        plexus::identity::HeaderList headers;
        if (!bearer.empty()) headers.emplace_back("Authorization", "Bearer " + bearer);
        if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
        std::string why;
        auto r =
            http.send(server, std::move(method), std::move(path), std::move(body), std::move(headers), why);
        if (status) *status = r ? r->status : 0;
        if (!r) {
            std::fprintf(stderr, "plexus config: %s\n", why.c_str());
            return std::nullopt;
        }
        boost::system::error_code ec;
        auto doc = r->body.empty() ? json::value() : json::parse(r->body, ec);
        if (r->status >= 300) {
            std::string detail = !ec && doc.is_object() ? field(doc.get_object(), "detail") : r->body;
            std::fprintf(stderr, "plexus config: %d %s: %s\n", r->status,
                         std::string(plexus::net::reason_phrase(r->status)).c_str(), detail.c_str());
            return std::nullopt;
        }
        if (raw) *raw = r->body;
        if (ec) return json::value();
        return doc;
    }

    std::string doc_path() const {
        return "/v1/documents/" + app + (profile.empty() ? "" : "/profiles/" + profile);
    }
    std::string doc_name() const { return profile.empty() ? app : app + "-" + profile; }

    // The edit of KEY=VALUE arguments (a value read as YAML: 8080 a number, true a boolean,
    // [a, b] a list, text that is not YAML a string; `{cipher}...` a secret; an empty value
    // removes the key).
    std::optional<json::object> assignments_body() {
        json::object set;
        for (const auto& a : assignments) {
            auto eq = a.find('=');
            if (eq == std::string::npos || eq == 0) {
                std::fprintf(stderr, "plexus config: '%s' is not KEY=VALUE\n", a.c_str());
                return std::nullopt;
            }
            auto value = a.substr(eq + 1);
            auto& slot = set[a.substr(0, eq)];
            if (value.starts_with("{cipher}")) {
                slot = value;  // a secret: encrypted by the server
                continue;
            }
            try {
                slot = plexus::core::yaml_to_json(value, a.substr(0, eq));
            } catch (const std::exception&) {
                slot = value;  // not YAML ("a: b", "x, y"): the text itself
            }
        }
        return json::object{{"set", std::move(set)}};
    }

    std::optional<json::object> edit_body() {
        json::object body;
        if (!file.empty()) {
            try {
                body["yaml"] = slurp(file);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "plexus config: %s\n", e.what());
                return std::nullopt;
            }
        } else if (assignments.empty()) {
            std::fprintf(stderr, "plexus config: give KEY=VALUE arguments or -f FILE\n");
            return std::nullopt;
        } else if (auto b = assignments_body()) {
            body = std::move(*b);
        } else {
            return std::nullopt;
        }
        if (!message.empty()) body["message"] = message;
        return body;
    }

    int changed(const std::optional<json::value>& r) {
        if (!r) return 1;
        if (json) {
            std::cout << json::serialize(*r) << "\n";
            return 0;
        }
        const auto& o = r->get_object();
        std::cout << doc_name() << ": version " << field(o, "version") << " (" << field(o, "kind") << ")\n";
        return 0;
    }

    int get() {
        std::string profiles = profile.empty() ? "default" : profile;
        std::string path = "/v1/config/" + app + "/" + profiles + "?format=" + (json ? "json" : "yaml");
        if (!instance.empty()) path += "&instance=" + plexus::net::percent_encode(instance);
        if (!label.empty()) path += "&label=" + plexus::net::percent_encode(label);
        std::string raw;
        if (!call("GET", path, {}, &raw)) return 1;
        std::cout << raw << (raw.ends_with('\n') ? "" : "\n");
        return 0;
    }

    int set() {
        auto body = edit_body();
        if (!body) return 1;
        return changed(call(file.empty() ? "PATCH" : "PUT", doc_path(), json::serialize(*body)));
    }

    int edit() {
        std::string raw;
        int status = 0;
        auto current = call("GET", doc_path(), {}, &raw, &status);
        json::object content;
        std::int64_t expected = 0;
        if (current) {
            const auto& o = current->get_object();
            if (const auto* c = o.if_contains("content"); c && c->is_object()) content = c->get_object();
            expected = o.at("version").to_number<std::int64_t>();
        } else if (status == 404) {
            std::fprintf(stderr, "plexus config: starting %s afresh\n", doc_name().c_str());
        } else {
            return 1;  // the server could not be read: the problem is printed
        }
        auto path = std::filesystem::temp_directory_path() /
                    ("plexus-config-" + doc_name() + "-" + std::to_string(::getpid()) + ".yaml");
        std::string before =
            content.empty() ? "# " + doc_name() + ": YAML settings\n" : plexus::core::json_to_yaml(content);
        plexus::core::write_file_atomically(path.string(), before, 0600);
        const char* editor = std::getenv("VISUAL");
        if (!editor || !*editor) editor = std::getenv("EDITOR");
        std::string command = std::string(editor && *editor ? editor : "vi") + " '" + path.string() + "'";
        int rc = std::system(command.c_str());
        std::string after = slurp(path.string());
        if (rc != 0 || after == before) {
            std::filesystem::remove(path);
            if (rc != 0) std::fprintf(stderr, "plexus config: the editor failed; nothing changed\n");
            if (rc == 0) std::printf("%s: no change\n", doc_name().c_str());
            return rc != 0 ? 1 : 0;
        }
        json::object body{{"yaml", after}, {"expected", expected}};
        if (!message.empty()) body["message"] = message;
        auto code = changed(call("PUT", doc_path(), json::serialize(body)));
        // A refused change (stale, or against the schema) keeps the edits for another try.
        if (code == 0)
            std::filesystem::remove(path);
        else
            std::fprintf(stderr, "plexus config: your edits are kept in %s\n", path.c_str());
        return code;
    }

    int history() {
        auto r = call("GET", doc_path() + "/history?limit=" + std::to_string(limit));
        if (!r) return 1;
        if (json) return std::cout << json::serialize(*r) << "\n", 0;
        std::cout << std::left << std::setw(9) << "VERSION" << std::setw(10) << "KIND" << std::setw(16)
                  << "AUTHOR" << std::setw(26) << "TIME" << "MESSAGE\n";
        for (const auto& v : r->at("versions").get_array()) {
            const auto& o = v.get_object();
            auto kind = field(o, "kind");
            if (o.contains("source")) kind += " " + field(o, "source");
            std::cout << std::setw(9) << field(o, "version") << std::setw(10) << kind << std::setw(16)
                      << field(o, "author") << std::setw(26) << field(o, "time") << field(o, "message")
                      << "\n";
        }
        return 0;
    }

    int diff() {
        std::string path = doc_path() + "/diff?from=" + std::to_string(from) + "&to=" + std::to_string(to);
        auto r = call("GET", path);
        if (!r) return 1;
        if (json) return std::cout << json::serialize(*r) << "\n", 0;
        const auto& changes = r->at("changes").get_array();
        if (changes.empty()) std::cout << "no change\n";
        for (const auto& c : changes) {
            const auto& o = c.get_object();
            auto op = field(o, "op");
            if (op == "added")
                std::cout << "+ " << field(o, "key") << ": " << text_of(o.at("to")) << "\n";
            else if (op == "removed")
                std::cout << "- " << field(o, "key") << ": " << text_of(o.at("from")) << "\n";
            else
                std::cout << "~ " << field(o, "key") << ": " << text_of(o.at("from")) << " -> "
                          << text_of(o.at("to")) << "\n";
        }
        return 0;
    }

    int rollback() {
        std::int64_t version = to;
        if (version == 0) {  // undo the latest change: back to the version before it
            auto r = call("GET", doc_path() + "/history?limit=50");
            if (!r) return 1;
            const auto& versions = r->at("versions").get_array();
            for (std::size_t i = 1; i < versions.size() && version == 0; ++i) {
                auto kind = field(versions[i].get_object(), "kind");
                if (kind != "canary" && kind != "abort")
                    version = versions[i].at("version").to_number<std::int64_t>();
            }
            if (version == 0) {
                std::fprintf(stderr, "plexus config: %s has no earlier version to go back to\n",
                             doc_name().c_str());
                return 1;
            }
        }
        json::object body{{"version", version}};
        if (!message.empty()) body["message"] = message;
        return changed(call("POST", doc_path() + "/rollback", json::serialize(body)));
    }

    int canary() {
        auto body = edit_body();
        if (!body) return 1;
        json::array names;
        for (const auto& i : canary_instances) names.emplace_back(i);
        (*body)["instances"] = std::move(names);
        (*body)["percent"] = percent;
        return changed(call("POST", doc_path() + "/canary", json::serialize(*body)));
    }

    int instances() {
        auto r = call("GET", "/v1/instances/" + app);
        if (!r) return 1;
        if (json) return std::cout << json::serialize(*r) << "\n", 0;
        std::cout << std::left << std::setw(28) << "INSTANCE" << std::setw(12) << "PROFILES" << std::setw(9)
                  << "OFFERED" << std::setw(9) << "RUNNING" << "STATE\n";
        for (const auto& v : r->at("instances").get_array()) {
            const auto& o = v.get_object();
            std::string state = o.at("applied").as_bool()   ? "applied"
                                : field(o, "error").empty() ? "-"
                                                            : "refused: " + field(o, "error");
            std::cout << std::setw(28) << field(o, "instance") << std::setw(12) << field(o, "profiles")
                      << std::setw(9) << field(o, "offered") << std::setw(9) << field(o, "running") << state
                      << "\n";
        }
        return 0;
    }

    int list() {
        auto r = call("GET", "/v1/documents");
        if (!r) return 1;
        if (json) return std::cout << json::serialize(*r) << "\n", 0;
        std::cout << std::left << std::setw(28) << "DOCUMENT" << std::setw(9) << "VERSION" << std::setw(16)
                  << "AUTHOR" << std::setw(26) << "TIME" << "CANARY\n";
        for (const auto& v : r->at("documents").get_array()) {
            const auto& o = v.get_object();
            std::string canary;
            if (const auto* c = o.if_contains("canary"))
                canary = "version " + field(c->get_object(), "version") + " to " +
                         field(c->get_object(), "instances") + " + " + field(c->get_object(), "percent") +
                         "%";
            std::string name =
                field(o, "name") + (o.contains("deleted") && o.at("deleted").as_bool() ? " (deleted)" : "");
            std::cout << std::setw(28) << name << std::setw(9) << field(o, "version") << std::setw(16)
                      << field(o, "author") << std::setw(26) << field(o, "time") << canary << "\n";
        }
        return 0;
    }
};

ConfigCommands::ConfigCommands(CLI::App& config, const std::string& manifest, std::string& log_level)
    : o_(std::make_unique<Options>(manifest, log_level)) {
    auto& o = *o_;
    config.require_subcommand(1);
    auto& s = o.serve;
    o.serve_cmd = config.add_subcommand("serve", "run the config server daemon");
    auto* c = o.serve_cmd;
    c->add_option("--listen", s.listen, "address to listen on (host:port)");
    c->add_option("--store", s.store, "where documents are kept: sqlite (under --data-dir) or etcd")
        ->check(CLI::IsMember({"sqlite", "etcd"}));
    c->add_option("--etcd", s.etcd, "with --store etcd: the cluster's client URLs, URL[,URL...]");
    c->add_option("--etcd-prefix", s.etcd_prefix,
                  "with --store etcd: the key prefix (default /plexus/config/); servers sharing it serve "
                  "every change any of them takes");
    c->add_option("--data-dir", s.data_dir, "directory of the configuration database (--store sqlite)");
    c->add_option("--registry", s.registry, "registry URL to register with, http://host:port");
    c->add_option(
        "--key-file", s.key_file,
        "the secrets key (64 hex digits; default $PLEXUS_CONFIG_KEY; none: {cipher} values are refused)");
    c->add_flag("--generate-key", s.generate_key,
                "create --key-file with a new random key if it does not exist");
    c->add_option("--seed", s.seed_dir,
                  "on an empty store, load DIR/<app>.yaml and DIR/<app>/<profile>.yaml");
    c->add_option("--issuer", s.issuer, "issuer of the access tokens callers present");
    c->add_option("--jwks-uri", s.jwks_uri, "where that issuer's keys are, http://host:port/path");
    c->add_option("--audience", s.audience, "aud the access tokens must name (default plexus)");
    c->add_option("--revocations-uri", s.revocations_uri,
                  "the issuer's revocation watch, http://host:port/path");
    c->add_option("--introspection-uri", s.introspection_uri,
                  "the issuer's introspection endpoint (opaque tokens)");
    c->add_option("--client-credentials", s.credentials_file,
                  "JSON file with this server's client_id and client_secret");
    c->add_flag("--anonymous", s.anonymous,
                "no identity provider: every caller may do everything (loopback only)");
    c->add_option("--threads", s.threads, "io threads")->check(CLI::Range(std::size_t{1}, std::size_t{64}));
    c->add_option("--log-level", log_level, "debug, info, warn or error");
    o.serve_layers.emplace(*c, "config", s, plexus::config::read_settings, &o.serve_sources);

    o.get_cmd = config.add_subcommand("get", "print an application's configuration as its instances get it");
    o.document(o.get_cmd);
    o.get_cmd->add_option("--instance", o.instance, "as this instance gets it (its canaries included)");
    o.get_cmd->add_option("--label", o.label, "as it stood at a label or revision");

    o.set_cmd =
        config.add_subcommand("set", "change a document: KEY=VALUE... (an empty value removes) or -f FILE");
    o.document(o.set_cmd);
    o.set_cmd->add_option("-f,--file", o.file, "YAML file with the whole document");
    o.set_cmd->add_option("-m,--message", o.message, "why (kept in the history)");
    o.set_cmd->add_option("--set", o.assignments, "KEY=VALUE (repeatable); also as trailing arguments");
    o.set_cmd->allow_extras();

    o.edit_cmd = config.add_subcommand("edit", "edit a document in $EDITOR");
    o.document(o.edit_cmd);
    o.edit_cmd->add_option("-m,--message", o.message, "why (kept in the history)");

    o.history_cmd = config.add_subcommand("history", "a document's versions, newest first");
    o.document(o.history_cmd);
    o.history_cmd->add_option("--limit", o.limit, "how many")->check(CLI::Range(1, 500));

    o.diff_cmd = config.add_subcommand("diff", "what changed between two versions of a document");
    o.document(o.diff_cmd);
    o.diff_cmd->add_option("--from", o.from, "older version (default: the one before --to)");
    o.diff_cmd->add_option("--to", o.to, "newer version (default: the current one)");

    o.rollback_cmd =
        config.add_subcommand("rollback", "write an earlier version again (default: undo the last change)");
    o.document(o.rollback_cmd);
    o.rollback_cmd->add_option("--to", o.to, "the version to go back to");
    o.rollback_cmd->add_option("-m,--message", o.message, "why (kept in the history)");

    o.canary_cmd = config.add_subcommand("canary", "offer a change to some instances first");
    o.document(o.canary_cmd);
    o.canary_cmd->add_option("-f,--file", o.file, "YAML file with the whole document");
    o.canary_cmd->add_option("--instance", o.canary_instances, "an instance that gets it (repeatable)");
    o.canary_cmd->add_option("--percent", o.percent, "share of the other instances that get it")
        ->check(CLI::Range(0, 100));
    o.canary_cmd->add_option("-m,--message", o.message, "why (kept in the history)");
    o.canary_cmd->allow_extras();

    o.promote_cmd = config.add_subcommand("promote", "give a document's pending canary to every instance");
    o.document(o.promote_cmd);
    o.abort_cmd = config.add_subcommand("abort", "take a document's pending canary back");
    o.document(o.abort_cmd);

    o.instances_cmd =
        config.add_subcommand("instances", "which version each instance of an application runs");
    o.instances_cmd->add_option("app", o.app, "application")->required();
    o.where(o.instances_cmd);
    o.list_cmd = config.add_subcommand("list", "every document and its version");
    o.where(o.list_cmd);
    o.labels_cmd = config.add_subcommand("labels", "the labels (named revisions)");
    o.where(o.labels_cmd);
    o.label_cmd = config.add_subcommand("label", "name a revision (default: the current one)");
    o.label_cmd->add_option("name", o.name, "label")->required();
    o.label_cmd->add_option("--revision", o.revision, "revision to name");
    o.label_cmd->add_option("-m,--message", o.message, "why");
    o.where(o.label_cmd);
    o.encrypt_cmd = config.add_subcommand("encrypt", "encrypt a value for an application's documents");
    o.encrypt_cmd->add_option("app", o.app, "application")->required();
    o.encrypt_cmd->add_option("value", o.name, "the value (default: read from standard input)");
    o.where(o.encrypt_cmd);
}

ConfigCommands::~ConfigCommands() = default;

std::optional<int> ConfigCommands::run() {
    auto& o = *o_;
    if (*o.serve_cmd) {
        if (auto code = o.serve_layers->load()) return *code;
        auto level = plexus::telemetry::parse_level(o.log_level);
        if (!level) {
            std::fprintf(stderr, "plexus config serve: --log-level must be debug, info, warn or error\n");
            return 2;
        }
        plexus::telemetry::init_logging("config", "config-" + std::to_string(::getpid()), *level);
        return plexus::config::run(o.serve);
    }
    CLI::App* chosen = nullptr;
    for (auto* c :
         {o.get_cmd, o.set_cmd, o.edit_cmd, o.history_cmd, o.diff_cmd, o.rollback_cmd, o.canary_cmd,
          o.promote_cmd, o.abort_cmd, o.instances_cmd, o.list_cmd, o.labels_cmd, o.label_cmd, o.encrypt_cmd})
        if (*c) chosen = c;
    if (!chosen) return std::nullopt;
    for (auto* c : {o.set_cmd, o.canary_cmd}) {
        if (c != chosen) continue;
        // `set catalog page=2`: what took the profile's place is the first assignment.
        if (o.profile.find('=') != std::string::npos)
            o.assignments.insert(o.assignments.begin(), std::exchange(o.profile, {}));
        for (auto& extra : c->remaining()) o.assignments.push_back(extra);
    }
    if (!o.connect()) return 1;
    if (chosen == o.get_cmd) return o.get();
    if (chosen == o.set_cmd) return o.set();
    if (chosen == o.edit_cmd) return o.edit();
    if (chosen == o.history_cmd) return o.history();
    if (chosen == o.diff_cmd) return o.diff();
    if (chosen == o.rollback_cmd) return o.rollback();
    if (chosen == o.canary_cmd) return o.canary();
    if (chosen == o.promote_cmd) return o.changed(o.call("POST", o.doc_path() + "/promote"));
    if (chosen == o.abort_cmd) return o.changed(o.call("DELETE", o.doc_path() + "/canary"));
    if (chosen == o.instances_cmd) return o.instances();
    if (chosen == o.list_cmd) return o.list();
    if (chosen == o.labels_cmd) {
        auto r = o.call("GET", "/v1/labels");
        if (!r) return 1;
        if (o.json) return std::cout << json::serialize(*r) << "\n", 0;
        for (const auto& l : r->at("labels").get_array())
            std::cout << field(l.get_object(), "name") << "\trevision " << field(l.get_object(), "revision")
                      << "\t" << field(l.get_object(), "message") << "\n";
        return 0;
    }
    if (chosen == o.label_cmd) {
        json::object body{{"revision", o.revision}, {"message", o.message}};
        if (!o.call("PUT", "/v1/labels/" + plexus::net::percent_encode(o.name), json::serialize(body)))
            return 1;
        std::printf("label %s set\n", o.name.c_str());
        return 0;
    }
    if (chosen == o.encrypt_cmd) {
        std::string value = o.name;
        if (value.empty()) std::getline(std::cin, value);
        plexus::identity::HeaderList headers;
        std::string raw;
        if (!o.bearer.empty()) headers.emplace_back("Authorization", "Bearer " + o.bearer);
        headers.emplace_back("Content-Type", "text/plain");
        std::string why;
        auto r = o.http.send(o.server, "POST", "/v1/encrypt/" + o.app, value, headers, why);
        if (!r || r->status != 200) {
            std::fprintf(stderr, "plexus config: %s\n", r ? r->body.c_str() : why.c_str());
            return 1;
        }
        std::cout << r->body << "\n";
        return 0;
    }
    return std::nullopt;
}
