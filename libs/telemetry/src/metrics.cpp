#include "plexus/telemetry/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <stdexcept>

#include "text_format.hpp"

namespace plexus::telemetry {
namespace {

bool is_name_start(char c, bool colon) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

bool is_valid_name(std::string_view name, bool colon) {
    if (name.empty() || !is_name_start(name[0], colon)) return false;
    return std::all_of(name.begin() + 1, name.end(),
                       [&](char c) { return is_name_start(c, colon) || (c >= '0' && c <= '9'); });
}

bool ends_with_any(std::string_view name, std::initializer_list<std::string_view> suffixes) {
    return std::any_of(suffixes.begin(), suffixes.end(),
                       [&](std::string_view s) { return name.ends_with(s); });
}

std::string_view type_name(MetricType type) {
    switch (type) {
        case MetricType::counter:
            return "counter";
        case MetricType::gauge:
            return "gauge";
        case MetricType::histogram:
            return "histogram";
    }
    return "untyped";
}

[[noreturn]] void reject(std::string_view name, std::string_view reason) {
    throw std::invalid_argument("metric '" + std::string(name) + "': " + std::string(reason));
}

void validate(std::string_view name, std::string_view help, MetricType type,
              const std::vector<std::string>& label_names) {
    if (!is_valid_name(name, true)) reject(name, "name must match [a-zA-Z_:][a-zA-Z0-9_:]*");
    if (help.empty()) reject(name, "help text must not be empty");
    if (type == MetricType::counter && !name.ends_with("_total"))
        reject(name, "counter names must end in _total");
    if (type != MetricType::counter && name.ends_with("_total")) {
        reject(name, "only counter names may end in _total");
    }
    if (type == MetricType::gauge && ends_with_any(name, {"_bucket", "_sum", "_count"})) {
        reject(name, "gauge names must not end in _bucket, _sum or _count");
    }
    std::set<std::string_view> seen;
    for (const auto& label : label_names) {
        if (!is_valid_name(label, false)) {
            reject(name, "label name '" + label + "' must match [a-zA-Z_][a-zA-Z0-9_]*");
        }
        if (label.starts_with("__")) reject(name, "label name '" + label + "' is reserved (starts with __)");
        if (type == MetricType::histogram && label == "le")
            reject(name, "label name 'le' is reserved in histograms");
        if (!seen.insert(label).second) reject(name, "label name '" + label + "' is repeated");
    }
}

std::vector<double> validate_buckets(std::string_view name, std::vector<double> buckets) {
    if (!buckets.empty() && std::isinf(buckets.back()) && buckets.back() > 0) buckets.pop_back();
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        if (!std::isfinite(buckets[i])) reject(name, "bucket bounds must be finite (+Inf is implicit)");
        if (i > 0 && !(buckets[i - 1] < buckets[i]))
            reject(name, "bucket bounds must be strictly increasing");
    }
    return buckets;
}

// The names of the samples a family writes, to catch collisions between families.
std::vector<std::string> sample_names(std::string_view name, MetricType type) {
    std::string n(name);
    if (type == MetricType::histogram) return {n, n + "_bucket", n + "_sum", n + "_count"};
    return {n};
}

void append_escaped_help(std::string& out, std::string_view help) {
    for (char c : help) {
        if (c == '\\') {
            out.append("\\\\");
        } else if (c == '\n') {
            out.append("\\n");
        } else {
            out.push_back(c);
        }
    }
}

void append_escaped_label_value(std::string& out, std::string_view value) {
    for (char c : value) {
        if (c == '\\') {
            out.append("\\\\");
        } else if (c == '"') {
            out.append("\\\"");
        } else if (c == '\n') {
            out.append("\\n");
        } else {
            out.push_back(c);
        }
    }
}

std::string repaired_utf8(std::string_view text) {
    std::string out;
    detail::append_utf8_repaired(out, text);
    return out;
}

// Orders stored label values against looked-up views without building strings.
struct LabelValuesLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
        return std::lexicographical_compare(
            a.begin(), a.end(), b.begin(), b.end(),
            [](const auto& x, const auto& y) { return std::string_view(x) < std::string_view(y); });
    }
};

}  // namespace

// ---- Histogram ----

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds), counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::observe(double value) noexcept {
    // Bounds are few (about a dozen), so a linear scan beats a binary search's branch misses.
    std::size_t i = 0;
    const std::size_t n = bounds_.size();
    if (std::isnan(value)) {
        i = n;
    } else {
        while (i < n && value > bounds_[i]) ++i;
    }
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
}

std::uint64_t Histogram::count() const noexcept { return cumulative_count(bounds_.size()); }

std::uint64_t Histogram::cumulative_count(std::size_t i) const noexcept {
    std::uint64_t total = 0;
    const std::size_t last = std::min(i, bounds_.size());
    for (std::size_t k = 0; k <= last; ++k) total += counts_[k].load(std::memory_order_relaxed);
    return total;
}

// ---- FamilyBase ----

namespace detail {

struct FamilyBase::Children {
    mutable std::shared_mutex mutex;
    std::map<std::vector<std::string>, std::unique_ptr<MetricChild>, LabelValuesLess> by_values;
};

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(repaired_utf8(help)),
      type_(type),
      label_names_(std::move(label_names)),
      children_(std::make_unique<Children>()) {}

FamilyBase::~FamilyBase() = default;

void FamilyBase::init_unlabelled() {
    if (label_names_.empty()) unlabelled_ = &child({});
}

MetricChild& FamilyBase::child(std::span<const std::string_view> values) {
    if (values.empty() && unlabelled_ != nullptr) return *unlabelled_;
    if (values.size() != label_names_.size()) {
        throw std::invalid_argument("metric '" + name_ + "': expected " +
                                    std::to_string(label_names_.size()) + " label values, got " +
                                    std::to_string(values.size()));
    }
    // Keys hold repaired UTF-8, so distinct ill-formed values that repair alike share a child
    // instead of rendering duplicate series.
    std::vector<std::string> repaired;
    const bool valid =
        std::all_of(values.begin(), values.end(), [](std::string_view v) { return is_valid_utf8(v); });
    if (!valid) {
        for (auto v : values) repaired.push_back(repaired_utf8(v));
    }
    const auto find = [&]() {
        return valid ? children_->by_values.find(values) : children_->by_values.find(repaired);
    };
    {
        std::shared_lock lock(children_->mutex);
        if (auto it = find(); it != children_->by_values.end()) return *it->second;
    }
    std::unique_lock lock(children_->mutex);
    if (auto it = find(); it != children_->by_values.end()) return *it->second;
    std::vector<std::string> key =
        valid ? std::vector<std::string>(values.begin(), values.end()) : std::move(repaired);
    auto [it, inserted] = children_->by_values.emplace(std::move(key), make_child());
    return *it->second;
}

void FamilyBase::render(std::string& out) const {
    std::shared_lock lock(children_->mutex);
    if (children_->by_values.empty()) return;
    out.append("# HELP ").append(name_).push_back(' ');
    append_escaped_help(out, help_);
    out.append("\n# TYPE ").append(name_).push_back(' ');
    out.append(type_name(type_)).push_back('\n');
    std::string labels;
    for (const auto& [values, child] : children_->by_values) {
        labels.clear();
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (i > 0) labels.push_back(',');
            labels.append(label_names_[i]).append("=\"");
            append_escaped_label_value(labels, values[i]);
            labels.push_back('"');
        }
        render_child(out, labels, *child);
    }
}

}  // namespace detail

// ---- Families ----

namespace {

void append_sample_head(std::string& out, std::string_view name, std::string_view suffix,
                        std::string_view labels) {
    out.append(name).append(suffix);
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out.push_back(' ');
}

}  // namespace

std::unique_ptr<detail::MetricChild> CounterFamily::make_child() const { return std::make_unique<Counter>(); }

void CounterFamily::render_child(std::string& out, std::string_view labels,
                                 const detail::MetricChild& c) const {
    append_sample_head(out, name(), "", labels);
    detail::append_uint(out, static_cast<const Counter&>(c).value());
    out.push_back('\n');
}

std::unique_ptr<detail::MetricChild> GaugeFamily::make_child() const { return std::make_unique<Gauge>(); }

void GaugeFamily::render_child(std::string& out, std::string_view labels,
                               const detail::MetricChild& c) const {
    append_sample_head(out, name(), "", labels);
    detail::append_prometheus_double(out, static_cast<const Gauge&>(c).value());
    out.push_back('\n');
}

HistogramFamily::HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                                 std::vector<double> buckets)
    : FamilyBase(std::move(name), std::move(help), MetricType::histogram, std::move(label_names)),
      buckets_(std::move(buckets)) {}

std::unique_ptr<detail::MetricChild> HistogramFamily::make_child() const {
    return std::make_unique<Histogram>(buckets_);
}

void HistogramFamily::render_child(std::string& out, std::string_view labels,
                                   const detail::MetricChild& c) const {
    const auto& h = static_cast<const Histogram&>(c);
    // One pass over the per-bucket counts, so the buckets are cumulative and _count equals the
    // +Inf bucket even while observations arrive.
    std::string le_labels(labels);
    if (!le_labels.empty()) le_labels.push_back(',');
    const std::size_t le_at = le_labels.size();
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= buckets_.size(); ++i) {
        cumulative += h.counts_[i].load(std::memory_order_relaxed);
        le_labels.resize(le_at);
        le_labels.append("le=\"");
        if (i < buckets_.size()) {
            detail::append_prometheus_double(le_labels, buckets_[i]);
        } else {
            le_labels.append("+Inf");
        }
        le_labels.push_back('"');
        append_sample_head(out, name(), "_bucket", le_labels);
        detail::append_uint(out, cumulative);
        out.push_back('\n');
    }
    append_sample_head(out, name(), "_sum", labels);
    detail::append_prometheus_double(out, h.sum());
    out.push_back('\n');
    append_sample_head(out, name(), "_count", labels);
    detail::append_uint(out, cumulative);
    out.push_back('\n');
}

// ---- Registry ----

struct Registry::Impl {
    mutable std::mutex mutex;
    std::map<std::string, std::unique_ptr<detail::FamilyBase>, std::less<>> families;
    std::set<std::string, std::less<>> samples;

    // The existing family if `name` is registered with the same definition; nullptr if the name
    // is free; throws if it is taken by a different definition or collides with another family.
    detail::FamilyBase* find(std::string_view name, std::string_view help, MetricType type,
                             const std::vector<std::string>& label_names,
                             const std::vector<double>* buckets) {
        if (auto it = families.find(name); it != families.end()) {
            auto& f = *it->second;
            bool same = f.type() == type && f.help() == repaired_utf8(help) && f.label_names() == label_names;
            if (same && buckets != nullptr) same = static_cast<HistogramFamily&>(f).buckets() == *buckets;
            if (!same) reject(name, "already registered with a different type, help, labels or buckets");
            return &f;
        }
        for (const auto& s : sample_names(name, type)) {
            if (samples.contains(s)) reject(name, "sample name '" + s + "' collides with another metric");
        }
        return nullptr;
    }

    template <class F>
    F& add(std::unique_ptr<F> family) {
        for (auto& s : sample_names(family->name(), family->type())) samples.insert(std::move(s));
        F& ref = *family;
        ref.init_unlabelled();
        families.emplace(ref.name(), std::move(family));
        return ref;
    }
};

Registry::Registry() : impl_(std::make_unique<Impl>()) {}
Registry::~Registry() = default;

CounterFamily& Registry::counter(std::string_view name, std::string_view help,
                                 std::vector<std::string> label_names) {
    validate(name, help, MetricType::counter, label_names);
    std::lock_guard lock(impl_->mutex);
    if (auto* f = impl_->find(name, help, MetricType::counter, label_names, nullptr)) {
        return static_cast<CounterFamily&>(*f);
    }
    return impl_->add(std::unique_ptr<CounterFamily>(new CounterFamily(
        std::string(name), std::string(help), MetricType::counter, std::move(label_names))));
}

GaugeFamily& Registry::gauge(std::string_view name, std::string_view help,
                             std::vector<std::string> label_names) {
    validate(name, help, MetricType::gauge, label_names);
    std::lock_guard lock(impl_->mutex);
    if (auto* f = impl_->find(name, help, MetricType::gauge, label_names, nullptr)) {
        return static_cast<GaugeFamily&>(*f);
    }
    return impl_->add(std::unique_ptr<GaugeFamily>(
        new GaugeFamily(std::string(name), std::string(help), MetricType::gauge, std::move(label_names))));
}

HistogramFamily& Registry::histogram(std::string_view name, std::string_view help,
                                     std::vector<std::string> label_names, std::vector<double> buckets) {
    validate(name, help, MetricType::histogram, label_names);
    buckets = validate_buckets(name, std::move(buckets));
    std::lock_guard lock(impl_->mutex);
    if (auto* f = impl_->find(name, help, MetricType::histogram, label_names, &buckets)) {
        return static_cast<HistogramFamily&>(*f);
    }
    return impl_->add(std::unique_ptr<HistogramFamily>(new HistogramFamily(
        std::string(name), std::string(help), std::move(label_names), std::move(buckets))));
}

std::string Registry::render() const {
    std::string out;
    std::lock_guard lock(impl_->mutex);
    for (const auto& [name, family] : impl_->families) family->render(out);
    return out;
}

Registry& default_registry() {
    static Registry registry;
    return registry;
}

std::vector<double> default_latency_buckets() {
    return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> exponential_buckets(double start, double factor, std::size_t count) {
    if (!(start > 0) || !(factor > 1) || count == 0) {
        throw std::invalid_argument("exponential_buckets: need start > 0, factor > 1, count >= 1");
    }
    std::vector<double> out;
    out.reserve(count);
    for (double b = start; out.size() < count; b *= factor) out.push_back(b);
    return out;
}

std::vector<double> linear_buckets(double start, double width, std::size_t count) {
    if (!(width > 0) || count == 0) throw std::invalid_argument("linear_buckets: need width > 0, count >= 1");
    std::vector<double> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) out.push_back(start + width * static_cast<double>(i));
    return out;
}

}  // namespace plexus::telemetry
