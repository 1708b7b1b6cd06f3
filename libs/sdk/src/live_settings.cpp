#include "live_settings.hpp"

#include <fstream>
#include <sstream>
#include <variant>

#include "plexus/core/files.hpp"
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
    std::string why;
    auto text = core::read_text_file(path, &why);
    if (!text) throw core::SettingsError(why);
    auto reader = core::SettingsReader::from_text(*text, path);
    read(reader);  // every problem named by file, line and key
    auto doc = core::yaml_to_json(*text, path);
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
    std::vector<json::value> sections(slots_.size());
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        std::vector<std::function<void(const void*, const void*)>> callbacks;
        before[i] = slots_[i]->value.load();
        if (const auto* v = merged.if_contains(slots_[i]->section)) sections[i] = *v;
        // A section the change leaves as it was keeps its values, and its callbacks are not told.
        if (!initial && i < applied_.size() && sections[i] == applied_[i]) {
            next[i] = before[i];
            continue;
        }
        if (!initial) {
            std::lock_guard lock(slots_[i]->mutex);
            callbacks = slots_[i]->callbacks;
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
    for (std::size_t i = 0; i < slots_.size(); ++i)
        if (next[i] != before[i]) slots_[i]->value.store(next[i]);
    applied_ = std::move(sections);
    if (commit) commit();
    return {};
}

json::object LiveSettings::schema() const {
    auto d = core::SettingsReader::describer();
    for (const auto& slot : slots_) d.section(slot->section, [&](core::SettingsReader& s) { slot->load(s); });
    if (own_) own_(d);
    return d.schema();
}

net::Task<std::string> start_live_settings(std::shared_ptr<const settings::ConfigClient> client,
                                           std::shared_ptr<LiveSettings> live,
                                           std::shared_ptr<std::atomic<bool>> stop, net::Executor ex) {
    co_return co_await settings::ConfigClient::start(
        client,
        [client, live](const settings::Fetched& f, bool initial) {
            return live->apply(f.config, client->source(f.version), initial);
        },
        boost::json::value(live->schema()), std::move(stop), ex);
}

std::shared_ptr<settings::ConfigClient> config_client(const std::string& url, const std::string& profiles,
                                                      const std::string& app, const std::string& instance,
                                                      const AccessFlags& access) {
    auto token_uri = access.identity.empty() ? std::string() : access.identity + "/token";
    return std::make_shared<settings::ConfigClient>(
        settings::config_server(url, app, profiles, instance, token_uri, access.credentials));
}

}  // namespace plexus::detail
