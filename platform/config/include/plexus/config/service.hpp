#pragma once
/// The config server's logic, without HTTP: what each application and instance gets, every
/// change as a version (write, patch, delete, rollback, canary, promote, abort), labels, schemas,
/// and what each instance reports it runs.
///
/// Reads come from an immutable snapshot in memory (no I/O, any thread). Writes are blocking
/// (the store commits durably before the snapshot moves on): call them off the io threads. They
/// are serialised, validated against the schemas of every application they affect, and refused
/// with net::HttpError (400 invalid, 403 not allowed, 404 unknown, 409 conflict, 500 storage)
/// with nothing changed. After each change `changed()` is notified, which is what watches wait
/// on. Thread-safe.
///
/// Several servers may share one store (etcd): the service follows it (Store::follow), applying
/// the records other servers append, and their labels and schemas, to its snapshot and notifying
/// `changed()`, so a watch on any server answers a change made through any other. Its own commits
/// come back the same way and are recognised by their version; a store that lost track of the
/// changes (history compacted) makes it reload everything. Two servers changing the same document
/// at once: one wins, the other gets 409.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "plexus/config/document.hpp"
#include "plexus/config/secrets.hpp"
#include "plexus/config/store.hpp"
#include "plexus/core/clock.hpp"
#include "plexus/core/snapshot.hpp"
#include "plexus/net/signal.hpp"

namespace plexus::config {

/// Who calls, and what they may do, from their scopes:
///   plexus:admin                          everything
///   config:write  / config:write:APP      write APP's documents (and read them)
///   config:read   / config:read:APP       read APP's configuration, publish its schema, report
///                                         its instances
///   config:secrets / config:secrets:APP   read APP's secrets decrypted (others see them masked)
/// Writing `application`, the layer every application inherits, and labels need plexus:admin or
/// config:write.
struct Caller {
    std::string name;              ///< recorded as the author of what it writes
    std::string scope;             ///< space-separated scopes
    bool anonymous_admin = false;  ///< every permission (a server running without identity)

    bool admin() const;
    bool may_read(std::string_view app) const;
    bool may_write(std::string_view app) const;
    bool may_read_secrets(std::string_view app) const;
};

/// Which documents a write changes how: the whole content, or some properties.
struct Edit {
    std::optional<boost::json::object> content;                   ///< replaces the document
    std::vector<std::pair<std::string, boost::json::value>> set;  ///< "a.b" = value (a null removes)
    std::string message;
    std::int64_t expected = -1;  ///< the document's version the change is based on; -1: any
};

/// What an application's instance gets.
struct View {
    std::string app;
    std::vector<std::string> profiles;
    std::string label;           ///< the label or revision asked for; empty: the current state
    std::int64_t version = 0;    ///< the highest version among the layers it got
    bool canary = false;         ///< a layer is a canary this instance is part of
    boost::json::object config;  ///< the layers merged
    /// The layers that exist, highest first (Spring's propertySources order), with their content.
    std::vector<std::pair<DocKey, boost::json::object>> sources;
};

/// What an instance last said about a version it was offered.
struct InstanceReport {
    std::string instance;
    std::string profiles;
    std::int64_t offered = 0;  ///< the version the report is about
    std::int64_t running = 0;  ///< the version it runs (the offered one if applied)
    bool applied = false;
    std::string error;  ///< why it refused, when it did
    std::int64_t time_ms = 0;
};

class ConfigService {
  public:
    /// Loads what `store` holds and follows it. Throws std::runtime_error when it cannot be read.
    ConfigService(std::unique_ptr<Store> store, SecretBox secrets, core::Clock& clock = core::Clock::real());
    /// Stops following the store first (waits for a change being applied).
    ~ConfigService();

    // ---- reads (memory only; any thread)
    /// The current configuration of `app` with `profiles` as `instance` gets it (canaries it is
    /// part of included). Secrets decrypted with `secrets`, else masked.
    View view(const std::string& app, const std::vector<std::string>& profiles, const std::string& instance,
              bool secrets) const;
    /// Just the version view() would answer (what a watch compares).
    std::int64_t version_of(const std::string& app, const std::vector<std::string>& profiles,
                            const std::string& instance) const;
    /// Every document: app, profile, version, author, time, canary (if one is pending).
    boost::json::array documents() const;
    boost::json::array labels() const;
    std::optional<boost::json::value> schema(const std::string& app) const;
    std::int64_t revision() const;
    const SecretBox& secrets() const noexcept { return secrets_; }
    /// Notified after every change.
    net::Signal& changed() noexcept { return changed_; }

    // ---- blocking reads (the store)
    /// The state at `label` (a label's name, or a revision number): each layer as it stood then,
    /// canaries left out. 404 for an unknown label.
    View view_at(const std::string& app, const std::vector<std::string>& profiles, const std::string& label,
                 bool secrets) const;
    /// One version of a document (0: the latest stable one), its stored form (secrets encrypted).
    Record document(const DocKey& key, std::int64_t version) const;
    /// The document's versions below `before` (0: from the newest), newest first, secrets masked.
    std::vector<Record> history(const DocKey& key, std::int64_t before, std::size_t limit) const;
    /// What changed from version `from` to `to` of a document (either 0: the latest stable one;
    /// `from` 0 and `to` 0: the latest change). Secrets compared by their plaintext and masked.
    std::vector<Change> diff(const DocKey& key, std::int64_t from, std::int64_t to) const;

    // ---- writes (blocking; each a new version, validated, or a refusal with nothing changed)
    Record write(const Caller& caller, const DocKey& key, Edit edit);
    Record remove(const Caller& caller, const DocKey& key, std::string message, std::int64_t expected = -1);
    /// A new version with the content of `version`.
    Record rollback(const Caller& caller, const DocKey& key, std::int64_t version, std::string message);
    /// Offers `edit` (applied to the current content) to `targets` first. 409 while another
    /// canary of the document is pending.
    Record start_canary(const Caller& caller, const DocKey& key, Edit edit, Targets targets);
    /// The pending canary's content for everyone.
    Record promote(const Caller& caller, const DocKey& key, std::string message);
    /// The pending canary taken back: its instances return to the stable content.
    Record abort_canary(const Caller& caller, const DocKey& key, std::string message);
    /// Publishes `app`'s schema (JSON Schema, the subset core::validate knows). 400 when the
    /// schema is malformed; a schema the current configuration fails is kept but answered with
    /// the failures (`problems`), so the publisher learns what will be refused.
    void put_schema(const Caller& caller, const std::string& app, boost::json::value schema,
                    std::vector<std::string>* problems);
    void put_label(const Caller& caller, const std::string& name, std::int64_t revision, std::string message);
    bool delete_label(const Caller& caller, const std::string& name);

    // ---- instances
    void report(const std::string& app, InstanceReport report);
    /// Marks that `instance` asked for (or was sent) `version` now.
    void seen(const std::string& app, const std::string& instance, const std::string& profiles,
              std::int64_t version);
    /// The instances of `app` heard from in the last 10 minutes, by id.
    std::vector<InstanceReport> instances(const std::string& app) const;

    /// Whether `instance` is among those a canary with `targets` and `version` reaches.
    static bool in_canary(const Targets& targets, std::int64_t version, std::string_view instance);

    /// A document as served: its stable record and the canary pending, if any.
    struct DocState {
        std::shared_ptr<const Record> stable;  ///< null: never written
        std::shared_ptr<const Record> canary;  ///< null: none pending
        std::int64_t latest = 0;               ///< its latest record of any kind
    };
    /// Which record of a document a view takes (the stable one, a canary).
    using Pick = std::function<const Record*(const DocState&)>;

  private:
    struct State {
        std::int64_t revision = 0;
        std::map<DocKey, DocState> docs;
        std::map<std::string, Schema, std::less<>> schemas;
        std::map<std::string, Label, std::less<>> labels;
    };
    struct Seen {
        InstanceReport report;
        std::int64_t seen_ms = 0;
    };

    std::shared_ptr<const State> state() const { return state_.load(); }
    static std::shared_ptr<State> state_of(Loaded loaded);
    // What the store tells of changes (Follower), on its thread.
    void follow_record(const Record& r);
    bool reload(bool everything);
    // A write or a canary: `edit` applied to the stable content, as a record of `kind`.
    Record edited(const Caller& caller, const DocKey& key, Edit edit, Kind kind, Targets targets);
    // Promote (its content for everyone) or abort (taken back) the document's pending canary.
    Record end_canary(const Caller& caller, const DocKey& key, Kind kind, std::string message);
    // Puts `r` (written, its version set) in force over `next`, publishes it, wakes the watches.
    void install(std::shared_ptr<State> next, const Record& r, std::string_view how);
    Record commit(const Caller& caller, Record record, const State& current);
    void validate(const State& candidate, const DocKey& changed) const;
    View merged(const State& s, const std::string& app, const std::vector<std::string>& profiles,
                const Pick& pick, bool secrets) const;
    std::int64_t now_ms() const;

    std::unique_ptr<Store> store_;
    SecretBox secrets_;
    core::Clock& clock_;
    mutable std::mutex write_mutex_;  // serialises writes and every use of store_
    core::SnapshotCell<State> state_;
    net::Signal changed_;
    mutable std::mutex seen_mutex_;
    std::map<std::string, std::map<std::string, Seen>, std::less<>> seen_;
};

}  // namespace plexus::config
