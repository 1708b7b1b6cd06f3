#pragma once
/// What the gateway changes in the headers of the messages it forwards. Pure functions over
/// net::Headers / net::Request, modifying them in place (no copies of the message); tested
/// directly. Not thread-safe for the same message, like the messages themselves.

#include <string_view>

#include "plexus/net/http.hpp"
#include "plexus/resilience/deadline.hpp"
#include "plexus/serving/request_scope.hpp"

namespace plexus::gateway {

/// Header names the gateway sets or reads.
using resilience::kDeadlineHeader;
using serving::kRequestIdHeader;
using serving::kTraceparentHeader;
/// The client's request target, sent upstream when the gateway rewrote it.
inline constexpr std::string_view kOriginalPathHeader = "X-Plexus-Original-Path";

/// Removes the hop-by-hop fields of one connection: Connection and every field it names,
/// Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade and every `Proxy-*` field. Used in both
/// directions (request to the upstream, upstream response to the client). No allocation.
void strip_hop_by_hop(net::Headers& headers);

/// See serving::ensure_request_id (every entry point keeps or sets the request id alike).
using serving::ensure_request_id;

/// How the gateway treats forwarding headers sent by the client.
struct ForwardingPolicy {
    /// Keep the client's X-Forwarded-For (appending the peer) and its X-Forwarded-Proto and
    /// X-Forwarded-Host; only for a gateway behind a trusted proxy. Otherwise they are replaced.
    bool trust_forwarded_for = false;
};

/// Prepares an incoming request's headers for the upstream, in place:
///  - hop-by-hop fields are removed (`strip_hop_by_hop`), and `Expect` (the server answered it);
///  - X-Forwarded-For becomes the peer address (`req.remote_address`), or with trust, the
///    client's list followed by ", <peer>";
///  - X-Forwarded-Proto becomes "https" for a request that came over TLS, else "http", and the client's Host
///  moves to X-Forwarded-Host (unless
///    trusted values are present); Host is removed, so the upstream sees its own address;
///  - a client-sent X-Plexus-Original-Path is removed (only the gateway sets it), and so are
///    X-Plexus-Subject, -Client, -Scopes, -Roles and -Auth (only the auth filter sets them).
/// Neither the target, traceparent nor X-Request-Id (the request scope keeps or sets it) is
/// touched here. No allocation beyond the headers' growth.
void prepare_upstream_request(net::Request& req, const ForwardingPolicy& policy);

/// Prepares an upstream response for the client, in place: removes hop-by-hop fields.
void prepare_downstream_response(net::Response& res);

}  // namespace plexus::gateway
