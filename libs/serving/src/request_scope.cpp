#include "plexus/serving/request_scope.hpp"

#include <algorithm>
#include <exception>
#include <iterator>
#include <span>

#include "plexus/resilience/deadline.hpp"

namespace plexus::serving {

namespace {

using net::FieldId;

std::string span_name(std::string_view method, std::string_view route) {
    std::string name;
    name.reserve(method.size() + 1 + route.size());
    name += method;
    name += ' ';
    name += route;
    return name;
}

std::optional<telemetry::TraceContext> parent_of(const net::Request& req) {
    auto header = req.headers.get(kTraceparentHeader);
    return header ? telemetry::TraceContext::parse_traceparent(*header) : std::nullopt;
}

}  // namespace

bool has_scope(std::string_view scopes, std::string_view s) noexcept {
    std::string_view rest = scopes;
    while (!rest.empty()) {
        auto sp = rest.find(' ');
        if (rest.substr(0, sp) == s) return true;
        if (sp == std::string_view::npos) break;
        rest.remove_prefix(sp + 1);
    }
    return false;
}

RouteMeters RouteMeters::of(telemetry::CounterFamily& requests,
                            std::initializer_list<std::string_view> labels,
                            telemetry::HistogramFamily& duration,
                            std::initializer_list<std::string_view> duration_labels) {
    RouteMeters m;
    std::vector<std::string_view> values(labels);
    values.push_back({});
    for (std::size_t i = 0; i < 5; ++i) {
        values.back() = kStatusClasses[i];
        m.requests[i] = &requests.labels(std::span<const std::string_view>(values));
    }
    m.duration = &duration.labels(duration_labels);
    return m;
}

std::string_view ensure_request_id(net::Headers& headers) {
    const net::Header* first = nullptr;
    bool repeated = false;
    for (const auto& h : headers) {
        if (h.id() != FieldId::x_request_id) continue;
        if (first) {
            repeated = true;
            break;
        }
        first = &h;
    }
    if (first && core::is_sane_request_id(first->value)) {
        if (repeated) {
            headers.erase_if(
                [first](const net::Header& h) { return h.id() == FieldId::x_request_id && &h != first; });
        }
        // The first field does not move: only later ones were removed.
        return first->value;
    }
    char id[32];
    core::write_hex16(id, core::random_u64());
    core::write_hex16(id + 16, core::random_u64());
    headers.set(kRequestIdHeader, std::string_view(id, sizeof id));
    return *headers.get(FieldId::x_request_id);
}

RequestScope::RequestScope(net::Request& req, std::string_view route, Clock::time_point start)
    : start_(start),
      route_(route),
      span_(span_name(req.method, route), telemetry::SpanKind::server, parent_of(req)) {
    // Copied out: later header changes may move the field's bytes.
    auto id = ensure_request_id(req.headers);
    request_id_size_ = id.size();
    std::copy(id.begin(), id.end(), request_id_.begin());
    if (auto value = req.headers.get(resilience::kDeadlineHeader)) {
        budget_ = resilience::parse_budget(*value);
        deadline_malformed_ = !budget_;
    }
}

Clock::time_point RequestScope::deadline(std::chrono::milliseconds own) const noexcept {
    return resilience::deadline_for(start_, own, budget_);
}

Clock::time_point RequestScope::caller_deadline() const noexcept {
    return budget_ ? start_ + *budget_ : Clock::time_point::max();
}

void RequestScope::deadline_problem(net::Response& res, std::string_view path) const {
    if (deadline_malformed_) {
        res.problem(400, "Bad Request",
                    "X-Plexus-Deadline-Ms must be a whole number of milliseconds from 0 to 2147483648", path);
    } else {
        res.problem(504, "Gateway Timeout", "the request's deadline (X-Plexus-Deadline-Ms) has passed", path);
    }
}

const telemetry::LogContext& RequestScope::log_context() {
    if (!log_context_) {
        const auto& c = span_.context();
        core::write_hex16(trace_hex_.data(), c.trace_id.hi);
        core::write_hex16(trace_hex_.data() + 16, c.trace_id.lo);
        core::write_hex16(span_hex_.data(), c.span_id.value);
        log_context_.emplace(telemetry::LogContext{
            {trace_hex_.data(), trace_hex_.size()}, {span_hex_.data(), span_hex_.size()}, request_id()});
    }
    return *log_context_;
}

void RequestScope::answer_exception(net::Response& res, std::string_view path) {
    res.clear();
    try {
        throw;
    } catch (const net::HttpError& e) {
        res.problem(e.status(), e.title(), e.what(), path);
    } catch (const std::exception& e) {
        telemetry::error("handler failed", {{"route", route_}, {"error", e.what()}}, &log_context());
        res.problem(500, "Internal Server Error", "the request could not be handled", path);
    } catch (...) {
        telemetry::error("handler failed", {{"route", route_}, {"error", "unknown exception"}},
                         &log_context());
        res.problem(500, "Internal Server Error", "the request could not be handled", path);
    }
}

void RequestScope::finish(const net::Request& req, net::Response& res, const RouteMeters& meters,
                          const AccessDetails& details) {
    res.headers.set(kRequestIdHeader, request_id());
    auto elapsed = Clock::now() - start_;
    if (meters.duration) {
        meters.requests[status_class(res.status)]->inc();
        meters.duration->observe(elapsed);
    }
    if (span_.recording()) span_.set_attribute("http.status_code", std::to_string(res.status));
    if (res.status >= 500) span_.set_status(telemetry::SpanStatus::error);
    span_.end();

    if (!telemetry::log_enabled(telemetry::Level::info)) return;
    std::string_view path = details.path.empty() ? req.path() : details.path;
    std::string_view subject = principal_ ? std::string_view(principal_->subject) : std::string_view();
    std::string_view client = principal_ ? std::string_view(principal_->client_id) : std::string_view();
    const telemetry::Field fields[] = {
        {"method", req.method},
        {"path", path},
        {"status", res.status},
        {"duration_ms", std::chrono::duration<double, std::milli>(elapsed).count()},
        {"route", route_},
        {"upstream", details.upstream},
        {"bytes_in", req.body.size()},
        {"bytes_out", res.body.size()},
        {"remote", req.remote_address},
        {"subject", subject},
        {"client_id", client},
    };
    // Who asked is only named once authentication found out.
    std::span<const telemetry::Field> logged(fields, principal_ ? std::size(fields) : std::size(fields) - 2);
    telemetry::log(telemetry::Level::info, "access", logged, &log_context());
}

}  // namespace plexus::serving
