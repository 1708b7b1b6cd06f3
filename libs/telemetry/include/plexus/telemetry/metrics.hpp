#pragma once
/// Metrics: counters, gauges and histograms in a registry that renders the Prometheus text
/// exposition format 0.0.4 (`text/plain; version=0.0.4`).
///
///     auto& requests = telemetry::default_registry().counter(
///         "http_server_requests_total", "HTTP requests handled.", {"method", "code"});
///     auto& ok_gets = requests.labels({"GET", "2xx"});   // look up once, keep the reference
///     ok_gets.inc();                                     // lock-free from any thread
///
/// Names follow Prometheus rules and are checked when a family is registered, which throws
/// `std::invalid_argument` for:
///  - a metric name not matching `[a-zA-Z_:][a-zA-Z0-9_:]*`, or a label name not matching
///    `[a-zA-Z_][a-zA-Z0-9_]*`, starting with `__`, repeated, or `le` on a histogram;
///  - an empty help text, a counter whose name does not end in `_total`, any other metric whose
///    name does, or a gauge whose name ends in `_bucket`, `_sum` or `_count` (promtool rejects
///    all of these);
///  - a name some other family already uses with a different type, help, labels or buckets, or
///    whose samples (`x_bucket`, `x_sum`, `x_count` of a histogram `x`) would collide with it.
/// Registering the same name with the same definition returns the existing family, so two parts
/// of a program can each declare the metric they update.
/// Conventions promtool also lints but that are not enforced: snake_case names without `:`
/// (colons are for recording rules), base units (`_seconds`, `_bytes`, not `_ms`), and no type
/// word in the name (`_gauge`).
///
/// Label values may be any text; ill-formed UTF-8 is replaced by U+FFFD.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace plexus::telemetry {

/// The kind of a metric family, as written on its `# TYPE` line.
enum class MetricType : std::uint8_t { counter, gauge, histogram };

namespace detail {
/// The base of every labelled child; lets the family own children of any kind.
class MetricChild {
  public:
    virtual ~MetricChild() = default;
};
}  // namespace detail

/// A monotonically increasing count of events. Lock-free; safe from any thread.
class alignas(64) Counter final : public detail::MetricChild {
  public:
    /// Adds `n` (default 1). Lock-free.
    void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    /// The current count. Lock-free.
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down (queue depth, open connections, temperature). Lock-free; safe
/// from any thread.
class alignas(64) Gauge final : public detail::MetricChild {
  public:
    /// Replaces the value. Lock-free.
    void set(double value) noexcept { value_.store(value, std::memory_order_relaxed); }
    /// Adds `delta` (default 1). Lock-free.
    void inc(double delta = 1.0) noexcept { value_.fetch_add(delta, std::memory_order_relaxed); }
    /// Subtracts `delta` (default 1). Lock-free.
    void dec(double delta = 1.0) noexcept { value_.fetch_sub(delta, std::memory_order_relaxed); }
    /// The current value. Lock-free.
    double value() const noexcept { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<double> value_{0.0};
};

/// A distribution of observations (latencies in seconds, sizes in bytes) in cumulative buckets,
/// with their sum and count. Lock-free; safe from any thread.
class alignas(64) Histogram final : public detail::MetricChild {
  public:
    /// Used by the family; `bounds` (finite, strictly increasing) must outlive the histogram.
    explicit Histogram(std::span<const double> bounds);

    /// Records one observation: it counts in the first bucket whose upper bound is >= `value`
    /// (the implicit `+Inf` bucket if none is; NaN too). Lock-free.
    void observe(double value) noexcept;
    /// Records a duration in seconds.
    template <class Rep, class Period>
    void observe(std::chrono::duration<Rep, Period> elapsed) noexcept {
        observe(std::chrono::duration<double>(elapsed).count());
    }

    /// The number of observations. Lock-free; with concurrent updates, a moment's snapshot.
    std::uint64_t count() const noexcept;
    /// The sum of the observations. Lock-free.
    double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }
    /// The finite bucket upper bounds, increasing (the `+Inf` bucket is implicit).
    std::span<const double> bounds() const noexcept { return bounds_; }
    /// The cumulative count of observations <= bounds()[i], or of all for i == bounds().size().
    std::uint64_t cumulative_count(std::size_t i) const noexcept;

  private:
    friend class HistogramFamily;
    std::span<const double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, not cumulative; +Inf last
    std::atomic<double> sum_{0.0};
};

namespace detail {

/// What a family and its children have in common: the definition, the children by label
/// values, and rendering. Children are created once per label combination and never removed, so
/// references to them stay valid for the family's lifetime.
class FamilyBase {
  public:
    virtual ~FamilyBase();
    FamilyBase(const FamilyBase&) = delete;
    FamilyBase& operator=(const FamilyBase&) = delete;

    /// The metric name.
    const std::string& name() const noexcept { return name_; }
    /// The help text as registered (after UTF-8 repair).
    const std::string& help() const noexcept { return help_; }
    /// The metric type.
    MetricType type() const noexcept { return type_; }
    /// The label names, in the order label values are given.
    const std::vector<std::string>& label_names() const noexcept { return label_names_; }
    /// Appends `# HELP`, `# TYPE` and every child's samples, children sorted by label values.
    /// Nothing is written for a labelled family with no children yet. Thread-safe.
    void render(std::string& out) const;

  protected:
    FamilyBase(std::string name, std::string help, MetricType type, std::vector<std::string> label_names);
    /// The child for `values`, created on first use (under a lock; later look-ups take a shared
    /// lock, and a family without labels takes none). Throws std::invalid_argument if the
    /// number of values differs from the number of label names.
    MetricChild& child(std::span<const std::string_view> values);
    /// Creates a new child of the family's kind.
    virtual std::unique_ptr<MetricChild> make_child() const = 0;
    /// Appends one child's samples; `labels` is `name="value",…` (escaped, possibly empty).
    virtual void render_child(std::string& out, std::string_view labels, const MetricChild& child) const = 0;
    /// Creates the child of a family without labels, so it is rendered (as zero) from the start.
    void init_unlabelled();

  private:
    struct Children;
    std::string name_;
    std::string help_;
    MetricType type_;
    std::vector<std::string> label_names_;
    std::unique_ptr<Children> children_;
    MetricChild* unlabelled_ = nullptr;
};

}  // namespace detail

/// All counters of one name, one per combination of label values.
class CounterFamily final : public detail::FamilyBase {
  public:
    /// The counter for these label values (in label-name order), created on first use; the
    /// reference stays valid as long as the registry. Keep it rather than looking it up per
    /// event. Thread-safe. Throws std::invalid_argument on a wrong number of values.
    Counter& labels(std::initializer_list<std::string_view> values = {}) {
        return static_cast<Counter&>(child(std::span<const std::string_view>(values.begin(), values.size())));
    }
    /// As above, with values built at run time.
    Counter& labels(std::span<const std::string_view> values) { return static_cast<Counter&>(child(values)); }

  private:
    friend class Registry;
    using FamilyBase::FamilyBase;
    std::unique_ptr<detail::MetricChild> make_child() const override;
    void render_child(std::string& out, std::string_view labels, const detail::MetricChild& c) const override;
};

/// All gauges of one name, one per combination of label values.
class GaugeFamily final : public detail::FamilyBase {
  public:
    /// The gauge for these label values; see CounterFamily::labels.
    Gauge& labels(std::initializer_list<std::string_view> values = {}) {
        return static_cast<Gauge&>(child(std::span<const std::string_view>(values.begin(), values.size())));
    }
    /// As above, with values built at run time.
    Gauge& labels(std::span<const std::string_view> values) { return static_cast<Gauge&>(child(values)); }

  private:
    friend class Registry;
    using FamilyBase::FamilyBase;
    std::unique_ptr<detail::MetricChild> make_child() const override;
    void render_child(std::string& out, std::string_view labels, const detail::MetricChild& c) const override;
};

/// All histograms of one name, one per combination of label values, sharing bucket bounds.
class HistogramFamily final : public detail::FamilyBase {
  public:
    /// The histogram for these label values; see CounterFamily::labels.
    Histogram& labels(std::initializer_list<std::string_view> values = {}) {
        return static_cast<Histogram&>(
            child(std::span<const std::string_view>(values.begin(), values.size())));
    }
    /// As above, with values built at run time.
    Histogram& labels(std::span<const std::string_view> values) {
        return static_cast<Histogram&>(child(values));
    }
    /// The finite bucket upper bounds, increasing.
    const std::vector<double>& buckets() const noexcept { return buckets_; }

  private:
    friend class Registry;
    HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                    std::vector<double> buckets);
    std::unique_ptr<detail::MetricChild> make_child() const override;
    void render_child(std::string& out, std::string_view labels, const detail::MetricChild& c) const override;
    std::vector<double> buckets_;
};

/// Owns metric families and renders them. Families live as long as the registry and are never
/// unregistered. Thread-safe: registration and rendering may run concurrently with each other and
/// with updates.
class Registry {
  public:
    Registry();
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    /// Registers (or finds, if identically defined) a counter family; the name must end in
    /// `_total`. Throws std::invalid_argument as described at the top of this header.
    CounterFamily& counter(std::string_view name, std::string_view help,
                           std::vector<std::string> label_names = {});

    /// Registers (or finds) a gauge family. Throws std::invalid_argument as described above.
    GaugeFamily& gauge(std::string_view name, std::string_view help,
                       std::vector<std::string> label_names = {});

    /// Registers (or finds) a histogram family with these finite, strictly increasing bucket upper
    /// bounds (a trailing +Inf is accepted and dropped; `+Inf` is always added when rendering).
    /// Throws std::invalid_argument for bad names or bounds, as described above.
    HistogramFamily& histogram(std::string_view name, std::string_view help,
                               std::vector<std::string> label_names, std::vector<double> buckets);

    /// The whole registry in Prometheus text format 0.0.4: families sorted by name, each with
    /// `# HELP` and `# TYPE`, children sorted by label values, histogram buckets in increasing
    /// `le` order ending with `le="+Inf"`, then `_sum` and `_count` (equal to the `+Inf` bucket).
    std::string render() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// The process-wide registry that the SDK's `/metrics` endpoint renders. Thread-safe.
Registry& default_registry();

/// Latency buckets in seconds from 0.5 ms to 10 s:
/// 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10.
std::vector<double> default_latency_buckets();

/// `count` bounds `start`, `start*factor`, … Throws std::invalid_argument unless start > 0,
/// factor > 1 and count >= 1.
std::vector<double> exponential_buckets(double start, double factor, std::size_t count);

/// `count` bounds `start`, `start+width`, … Throws std::invalid_argument unless width > 0 and
/// count >= 1.
std::vector<double> linear_buckets(double start, double width, std::size_t count);

/// The `Content-Type` of `Registry::render()` output.
inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace plexus::telemetry
