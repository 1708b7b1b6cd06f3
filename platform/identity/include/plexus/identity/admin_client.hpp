#pragma once
/// `plexus identity clients|keys ...`: the identity server's admin API from the command line.
/// It authenticates as an admin client (client credentials, scope plexus:admin) and prints
/// tables, or JSON with `json`. Exit codes: 0 done, 1 failed (the message says why on stderr).
///
///     identity::AdminClient admin("http://127.0.0.1:8080/auth", "plexus-admin", secret);
///     return admin.list_clients(std::cout, false);

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

namespace plexus::identity {

class AdminClient {
  public:
    /// `base_url`: the issuer URL ("http://host:port[/prefix]"). Throws std::invalid_argument for
    /// another form.
    AdminClient(std::string base_url, std::string client_id, std::string client_secret);
    ~AdminClient();
    AdminClient(const AdminClient&) = delete;
    AdminClient& operator=(const AdminClient&) = delete;

    int list_clients(std::ostream& out, bool json);
    /// Creates a client; prints its id and its secret (shown once).
    int create_client(const std::string& name, const std::vector<std::string>& scopes, bool opaque,
                      std::ostream& out, bool json);
    int delete_client(const std::string& client_id, std::ostream& out);
    int rotate_keys(std::ostream& out, bool json);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace plexus::identity
