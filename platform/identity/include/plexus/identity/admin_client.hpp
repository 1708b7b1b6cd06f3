#pragma once
/// `plexus identity clients|users|api-keys|keys ...`: the identity server's admin API from the
/// command line. It calls with a Bearer token: the one given (an admin user's, from
/// `plexus login`), or one it fetches with an admin client's credentials (client credentials,
/// scope plexus:admin). It prints tables, or JSON with `json`. Exit codes: 0 done, 1 failed
/// (the message says why on stderr).
///
///     identity::AdminClient admin("http://127.0.0.1:8080/auth", {.client_id = "plexus-admin", .client_secret
///     = s}); return admin.list_clients(std::cout, false);

#include <chrono>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

namespace plexus::identity {

/// How the admin client proves it is an admin: a bearer token, or a client's credentials.
struct AdminAuth {
    std::string bearer;
    std::string client_id, client_secret;
    std::string ca_file;  ///< for an https URL: the CA to trust
};

class AdminClient {
  public:
    /// `base_url`: the issuer URL ("http[s]://host:port[/prefix]"). Throws std::invalid_argument
    /// for another form.
    AdminClient(std::string base_url, AdminAuth auth);
    ~AdminClient();
    AdminClient(const AdminClient&) = delete;
    AdminClient& operator=(const AdminClient&) = delete;

    int list_clients(std::ostream& out, bool json);
    /// Creates a client; prints its id and its secret (shown once). With `redirect_uris`, it may
    /// use the authorization code grant; `public_client`: no secret (PKCE only).
    int create_client(const std::string& name, const std::vector<std::string>& scopes, bool opaque,
                      const std::vector<std::string>& redirect_uris, bool public_client, std::ostream& out,
                      bool json);
    int delete_client(const std::string& client_id, std::ostream& out);

    int list_users(std::ostream& out, bool json);
    /// Creates a user; `password` empty: a generated one, printed once.
    int create_user(const std::string& username, const std::vector<std::string>& roles,
                    const std::vector<std::string>& scopes, const std::string& password, std::ostream& out,
                    bool json);
    /// `user`: a user_id or a username.
    int delete_user(const std::string& user, std::ostream& out);
    int set_password(const std::string& user, const std::string& password, std::ostream& out, bool json);

    int list_api_keys(std::ostream& out, bool json);
    int create_api_key(const std::string& name, const std::string& subject,
                       const std::vector<std::string>& scopes, std::chrono::seconds expires_in,
                       std::ostream& out, bool json);
    int delete_api_key(const std::string& key_id, std::ostream& out);
    int rotate_api_key(const std::string& key_id, std::chrono::seconds grace, std::ostream& out, bool json);

    int rotate_keys(std::ostream& out, bool json);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace plexus::identity
