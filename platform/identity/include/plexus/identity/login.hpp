#pragma once
/// `plexus login`, `plexus token` and `plexus logout`: a person signs in to an identity server
/// from the command line as native apps do (RFC 8252): the authorization code grant with PKCE
/// S256, the browser sent back to a one-shot listener on 127.0.0.1. The tokens are cached in
/// `$XDG_CONFIG_HOME/plexus/credentials.json` (else `~/.config/plexus/...`; the directory 0700,
/// the file 0600), one entry per issuer; `plexus token` prints a valid access token, refreshing
/// (and rotating) it when it is about to expire.
///
///     $ plexus login
///     Open this URL in a browser to sign in:
///       http://127.0.0.1:8080/auth/authorize?response_type=code&client_id=plexus-cli&...
///     Logged in to http://127.0.0.1:8080/auth as admin (scope: openid profile offline_access plexus:admin).
///     $ curl -H "Authorization: Bearer $(plexus token)" ...
///
/// Exit codes: 0 done, 1 failed (stderr says why).

#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>

namespace plexus::identity {

struct LoginOptions {
    std::string issuer;                    ///< "http[s]://host:port[/prefix]"
    std::string ca_file;                   ///< for an https issuer: the CA to trust
    std::string client_id = "plexus-cli";  ///< a public client with http://127.0.0.1/callback
    std::string scope;                     ///< empty: all the user holds
    bool open_browser = true;              ///< try xdg-open when there is a display
    std::chrono::seconds timeout{300};     ///< how long to wait for the browser
    std::string cache_file;                ///< empty: credentials_file()
};

/// The token cache: $XDG_CONFIG_HOME/plexus/credentials.json, else $HOME/.config/plexus/credentials.json.
std::string credentials_file();

/// Runs the login; prints the URL to open on `err` and the result on `out`.
int login(const LoginOptions& options, std::ostream& out, std::ostream& err);

/// A valid access token for `options.issuer` from the cache, refreshed first when it expires
/// within 30 s (the rotated refresh token is cached); nullopt with `why` (no login, or it ended).
std::optional<std::string> cached_access_token(const LoginOptions& options, std::string& why);

/// Revokes the cached login's refresh token (and with it its access tokens) and forgets it.
int logout(const LoginOptions& options, std::ostream& out, std::ostream& err);

}  // namespace plexus::identity
