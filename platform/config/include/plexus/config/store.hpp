#pragma once
/// Where the config server keeps its documents: every version of every document, labels and
/// schemas. The server keeps what it serves in memory and asks the store only to write (durably,
/// before anything is acknowledged), at startup, and for history. One interface, a backend per
/// engine: SQLite (the embedded default, open_sqlite_store) and etcd.
///
/// Versions are revisions of the whole store: each record gets the next number, so a version
/// names one document's state and, read as a point in time, the state of every document (what a
/// label pins). Not thread-safe: the server serialises its calls.
///
/// Several servers may share one store (etcd): each keeps its own snapshot, writes through the
/// store (append() lets exactly one of two writers basing a change on the same version win) and
/// learns of what the others wrote by following it (Store::follow).

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/config/document.hpp"
#include "plexus/core/result.hpp"

namespace plexus::config {

/// Errors of the config library.
enum class errc {
    conflict = 1,  ///< the document changed since the version the writer based its change on
    storage,       ///< the store failed (its message says how)
    malformed,     ///< a stored record cannot be read
};
const boost::system::error_category& config_category() noexcept;
inline ErrorCode make_error_code(errc e) noexcept { return {static_cast<int>(e), config_category()}; }

/// What made a version.
enum class Kind {
    set,       ///< content written
    rollback,  ///< an earlier version's content written again (`source`)
    remove,    ///< the document deleted
    canary,    ///< content offered to some instances first (`targets`)
    promote,   ///< the canary `source` made the content for everyone
    abort,     ///< the canary `source` taken back
};
std::string_view kind_name(Kind k) noexcept;
std::optional<Kind> kind_named(std::string_view name) noexcept;
/// set, rollback, remove and promote decide what every instance gets.
inline bool is_stable(Kind k) noexcept { return k != Kind::canary && k != Kind::abort; }

/// Which instances a canary reaches: those named, and `percent` of the others (chosen by a
/// hash of the instance id, so an instance stays in or out for the canary's whole life).
struct Targets {
    std::vector<std::string> instances;
    int percent = 0;
};
/// A canary's targets as the stores keep them: {"instances":[...],"percent":N}.
boost::json::object targets_json(const Targets& t);
/// The targets a stored object names (a field missing or of another type is left empty).
Targets targets_of(const boost::json::object& o);

/// One version of one document.
struct Record {
    std::int64_t version = 0;
    DocKey key;
    Kind kind = Kind::set;
    std::optional<boost::json::object>
        content;  ///< the stored form (secrets encrypted); none for remove, abort
    std::string author;
    std::string message;
    std::int64_t time_ms = 0;  ///< milliseconds since the epoch
    std::int64_t source = 0;   ///< rollback: the version restored; promote, abort: the canary
    Targets targets;           ///< canary
};

struct Label {
    std::string name;
    std::int64_t revision = 0;
    std::string author;
    std::string message;
    std::int64_t time_ms = 0;
};

struct Schema {
    std::string app;
    boost::json::value schema;
    std::string author;
    std::int64_t time_ms = 0;
};

/// What the server needs to serve after a start.
struct Loaded {
    std::int64_t revision = 0;   ///< the last version written
    std::vector<Record> stable;  ///< per document, its latest stable record (set, rollback, remove, promote)
    std::vector<Record> canary;  ///< per document whose latest record is a canary: that record
    /// per document, the version of its latest record of any kind (what append() compares)
    std::vector<std::pair<DocKey, std::int64_t>> latest;
    std::vector<Label> labels;
    std::vector<Schema> schemas;
};

/// What a follower of a store is told about changes (Store::follow). The callbacks run one at a
/// time, in the order of the changes, on a thread of the store's own that does nothing else: they
/// may block and may call the store (with the same serialisation as any other caller).
struct Follower {
    /// A record was appended, by another server or by this one: the follower applies it unless
    /// it already holds that version (records of one document come in version order, and a
    /// server that wrote a record may see it again here, before or after append() returned).
    std::function<void(const Record&)> on_record;
    /// Labels or schemas changed (written or deleted by any server): the follower reads them
    /// again with load(). False when it could not; it is then told again a little later.
    std::function<bool()> on_metadata;
    /// The store lost track of the changes (its history was compacted before it read it, or its
    /// feed was canceled): the follower replaces everything it holds with what load() reads.
    /// False when it could not; it is then told again a little later. Records told after it are
    /// newer than that load().
    std::function<bool()> on_reload;
};

class Store {
  public:
    virtual ~Store() = default;
    /// What the store holds now.
    virtual Result<Loaded> load() = 0;
    /// Only the labels and schemas of load() (what a follower reads again after on_metadata()),
    /// the rest left empty. By default all of load().
    virtual Result<Loaded> load_metadata() { return load(); }
    /// Appends `record` (its `version` is ignored) as the next revision, provided the latest
    /// record of its document is still `expected` (0: it has none); the new version, or
    /// errc::conflict.
    virtual Result<std::int64_t> append(const Record& record, std::int64_t expected) = 0;
    /// The document's records below `before` (0: all), newest first, at most `limit`.
    virtual Result<std::vector<Record>> history(const DocKey& key, std::int64_t before,
                                                std::size_t limit) = 0;
    /// One record of the document, if it has that version.
    virtual Result<std::optional<Record>> find(const DocKey& key, std::int64_t version) = 0;
    /// The document's latest stable record at or before `revision`.
    virtual Result<std::optional<Record>> stable_at(const DocKey& key, std::int64_t revision) = 0;
    virtual Result<void> put_label(const Label& label) = 0;
    /// Whether there was such a label.
    virtual Result<bool> delete_label(const std::string& name) = 0;
    virtual Result<void> put_schema(const Schema& schema) = 0;

    /// Tells `follower` about every change written to the store after the last load(), by this
    /// server and by others, until stop_following() or destruction. Call it once, after load().
    /// A store only this process writes (SQLite) tells nothing: the default does nothing.
    virtual void follow(Follower follower) {}
    /// Stops telling the follower: when it returns, no callback runs and none will. Call it before
    /// destroying what the callbacks use. Must not be called from a callback. Idempotent.
    virtual void stop_following() {}
};

/// A store in the SQLite database at `path` (":memory:" for a private in-memory one), created
/// and migrated as needed; its commits are fsynced. Errors name the file.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

}  // namespace plexus::config

template <>
struct boost::system::is_error_code_enum<plexus::config::errc> : std::true_type {};
