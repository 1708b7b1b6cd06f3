#pragma once
/// The `headers` filter: sets, adds and removes header fields of the request sent upstream and
/// of the response sent to the client (Spring Cloud Gateway's AddRequestHeader /
/// SetResponseHeader / RemoveRequestHeader, Kong's request- and response-transformer headers).
///
///     filters:
///       - name: headers
///         request:
///           set: {X-Api-Version: "2"}          # replaces every field of that name
///           add: {X-Tag: gateway}              # appends one more field
///           remove: [X-Debug]                  # drops every field of that name
///         response:
///           set: {Strict-Transport-Security: max-age=63072000, X-Content-Type-Options: nosniff}
///           remove: [Server]
///
/// Order within a side: remove, then set, then add. Request changes apply in the request head
/// phase (before the body is read), response changes in the response head phase, whoever made
/// the answer (the upstream, the gateway, a filter). Names must be tokens and values valid
/// field values; the framing and connection fields (Content-Length, Transfer-Encoding,
/// Connection, Host...) cannot be changed, as the gateway and the server own them.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "plexus/gateway/filter.hpp"

namespace plexus::gateway::filters {

/// Changes to one side's header fields.
struct HeaderEdits {
    std::vector<std::pair<std::string, std::string>> set;
    std::vector<std::pair<std::string, std::string>> add;
    std::vector<std::string> remove;

    bool empty() const noexcept { return set.empty() && add.empty() && remove.empty(); }
    /// Applies the edits to `headers`: remove, set, add.
    void apply(net::Headers& headers) const;
};

/// The filter's settings.
struct HeadersConfig final : FilterConfig {
    HeaderEdits request;
    HeaderEdits response;
    void to_json(boost::json::object& out) const override;
};

/// The factory registered as "headers".
const FilterFactory& headers_factory() noexcept;

}  // namespace plexus::gateway::filters
