#include "plexus/gateway/filter.hpp"

#include <stdexcept>

#include "plexus/core/settings.hpp"
#include "plexus/gateway/routes.hpp"

namespace plexus::gateway {

net::Task<FilterResult> Filter::on_request_head_async(Exchange&) const { co_return FilterResult::next; }

void FilterState::begin_load() {
    std::lock_guard lock(mutex_);
    next_.clear();
}

void FilterState::end_load(bool installed) {
    std::lock_guard lock(mutex_);
    if (installed) current_.swap(next_);
    next_.clear();
}

std::size_t FilterState::size() const {
    std::lock_guard lock(mutex_);
    return current_.size();
}

void fail_setting(core::SettingsReader& reader, std::string_view problem) {
    auto colon = problem.find(": ");
    if (colon == std::string_view::npos) reader.fail("", problem);
    reader.fail(problem.substr(0, colon), problem.substr(colon + 2));
}

const FilterFactory* find_filter_factory(std::string_view name) noexcept {
    for (const auto* f : filter_factories()) {
        if (f->name() == name) return f;
    }
    return nullptr;
}

bool FilterChain::request_body(Exchange& x, std::size_t& entered) const {
    for (std::size_t i = 0; i < filters.size(); ++i) {
        const Filter& f = *filters[i];
        if ((f.phases() & kRequestBody) && f.on_request_body(x) == FilterResult::answered) {
            entered = i + 1;
            return true;
        }
    }
    return false;
}

void FilterChain::respond(Exchange& x, std::size_t entered) const {
    if (!has(kResponseHead) && !has(kResponseBody)) return;
    for (std::size_t i = entered; i-- > 0;) {
        if (filters[i]->phases() & kResponseHead) filters[i]->on_response_head(x);
    }
    for (std::size_t i = entered; i-- > 0;) {
        if (filters[i]->phases() & kResponseBody) filters[i]->on_response_body(x);
    }
}

void FilterChain::complete(const Exchange& x) const noexcept {
    if (!has(kComplete)) return;
    for (const auto& f : filters) {
        if (f->phases() & kComplete) f->on_complete(x);
    }
}

FilterChain compile_filters(std::span<const FilterSpec> specs, FilterContext& ctx) {
    if (specs.size() > kMaxFilters) {
        throw std::invalid_argument("filters: " + std::to_string(specs.size()) + " filters, at most " +
                                    std::to_string(kMaxFilters) + " per route (default filters included)");
    }
    FilterChain chain;
    chain.filters.reserve(specs.size());
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const auto& spec = specs[i];
        auto where = "filters[" + std::to_string(i) + "] (" + spec.name + ")";
        const auto* factory = spec.factory ? spec.factory : find_filter_factory(spec.name);
        if (!factory) throw std::invalid_argument(where + ": no filter is called '" + spec.name + "'");
        if (!spec.config) throw std::invalid_argument(where + ": has no settings");
        std::shared_ptr<const Filter> filter;
        ctx.slot = i;
        try {
            filter = factory->create(*spec.config, ctx);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(where + ": " + e.what());
        }
        chain.phases |= filter->phases();
        chain.filters.push_back(std::move(filter));
    }
    return chain;
}

}  // namespace plexus::gateway
