#include "live_settings.hpp"

#include <fstream>
#include <sstream>
#include <variant>

#include "plexus/core/json_merge.hpp"
#include "plexus/core/yaml_json.hpp"
#include "plexus/telemetry/log.hpp"

namespace plexus::detail {

namespace json = boost::json;

LiveSettings::LiveSettings(std::vector<std::shared_ptr<SettingsSlot>> slots, OwnSections own)
    : slots_(std::move(slots)), own_(std::move(own)) {}

std::pair<std::vector<std::shared_ptr<const void>>, std::function<void()>> LiveSettings::read(
    core::SettingsReader& r) const {
    std::vector<std::shared_ptr<const void>> values(slots_.size());
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        const auto& slot = *slots_[i];
        bool present = r.section(slot.section, [&](core::SettingsReader& s) { values[i] = slot.load(s); });
        if (!present) {  // absent: the defaults, with the loader's own checks (required keys)
            auto empty = core::SettingsReader::from_json(json::object(), slot.section);
            values[i] = slot.load(empty);
            empty.done();
        }
    }
    auto commit = own_ ? own_(r) : std::function<void()>();
    r.done();
    return {std::move(values), std::move(commit)};
}

void LiveSettings::load_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw core::SettingsError(path + ": cannot be read");
    std::stringstream text;
    text << in.rdbuf();
    auto reader = core::SettingsReader::from_text(text.str(), path);
    read(reader);  // every problem named by file, line and key
    auto doc = core::yaml_to_json(text.str(), path);
    file_ = doc.is_object() ? std::move(doc.get_object()) : json::object();
}

std::string LiveSettings::apply(const json::object& server, const std::string& source, bool initial) {
    json::object merged = file_;
    core::merge_into(merged, server);
    std::vector<std::shared_ptr<const void>> next;
    std::function<void()> commit;
    try {
        auto reader = core::SettingsReader::from_json(merged, source);
        std::tie(next, commit) = read(reader);
    } catch (const core::SettingsError& e) {
        return e.what();
    }
    // Every callback sees the change before anything is in force; one that throws refuses it,
    // and those that already ran see it undone.
    std::vector<std::pair<std::size_t, std::function<void(const void*, const void*)>>> ran;
    std::vector<std::shared_ptr<const void>> before(slots_.size());
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        std::vector<std::function<void(const void*, const void*)>> callbacks;
        {
            std::lock_guard lock(slots_[i]->mutex);
            before[i] = slots_[i]->value;
            if (!initial) callbacks = slots_[i]->callbacks;
        }
        for (auto& cb : callbacks) {
            try {
                cb(before[i].get(), next[i].get());
            } catch (const std::exception& e) {
                for (auto it = ran.rbegin(); it != ran.rend(); ++it) {
                    try {
                        it->second(next[it->first].get(), before[it->first].get());
                    } catch (const std::exception& undo) {
                        telemetry::warn("a settings callback failed to undo a refused change",
                                        {{"section", slots_[it->first]->section}, {"error", undo.what()}});
                    }
                }
                return slots_[i]->section + ": refused by the service: " + e.what();
            }
            ran.emplace_back(i, cb);
        }
    }
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        std::lock_guard lock(slots_[i]->mutex);
        slots_[i]->value = next[i];
    }
    if (commit) commit();
    return {};
}

json::object LiveSettings::schema() const {
    auto d = core::SettingsReader::describer();
    for (const auto& slot : slots_) d.section(slot->section, [&](core::SettingsReader& s) { slot->load(s); });
    if (own_) own_(d);
    return d.schema();
}

namespace {
std::string source_of(const settings::ConfigClient& c, std::int64_t version) {
    const auto& s = c.server();
    return "config server " + s.url + " " + s.app + "/" + s.profiles + " version " + std::to_string(version);
}
}  // namespace

net::Task<std::string> start_live_settings(std::shared_ptr<const settings::ConfigClient> client,
                                           std::shared_ptr<LiveSettings> live,
                                           std::shared_ptr<std::atomic<bool>> stop, net::Executor ex) {
    settings::Fetched now;
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto backoff = std::chrono::milliseconds(100);
    while (true) {
        auto r = co_await client->fetch();
        if (auto* f = std::get_if<settings::Fetched>(&r)) {
            now = std::move(*f);
            break;
        }
        const auto& failure = std::get<settings::Failure>(r);
        // A refusal (401, 403, 404) will not pass by waiting; an unreachable server may.
        if (failure.status != 0 && failure.status != 503) co_return failure.why;
        if (stop->load() || std::chrono::steady_clock::now() + backoff > give_up) co_return failure.why;
        telemetry::warn("the config server cannot be reached yet; retrying", {{"error", failure.why}});
        co_await net::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
    auto why = live->apply(now.config, source_of(*client, now.version), true);
    co_await client->report(now.version, why.empty() ? now.version : 0, why.empty(), why);
    if (!why.empty()) co_return why;
    telemetry::info("configuration loaded",
                    {{"version", now.version}, {"config_server", client->server().url}});
    auto published = co_await client->publish_schema(live->schema());
    if (auto* f = std::get_if<settings::Failure>(&published)) {
        telemetry::warn("cannot publish the settings schema; the config server will not check changes for it",
                        {{"error", f->why}});
    } else {
        for (const auto& p : std::get<std::vector<std::string>>(published))
            telemetry::warn("the configuration does not fit the settings schema", {{"problem", p}});
    }
    net::spawn(ex,
               settings::ConfigClient::follow(
                   client, now.version,
                   [client, live](const settings::Fetched& f) {
                       return live->apply(f.config, source_of(*client, f.version));
                   },
                   stop),
               "config watch");
    co_return std::string();
}

}  // namespace plexus::detail
