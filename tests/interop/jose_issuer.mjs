// An issuer that is not Plexus: makes an ES256 key with the `jose` library, serves its JWKS on
// 127.0.0.1:<port>/jwks, and prints one access token it signed (RFC 9068 profile), as
// `token=<jwt>` on a line of its own. Serves until killed.
//   node jose_issuer.mjs <port> <issuer> <audience>
import http from "node:http";
import { SignJWT, exportJWK, generateKeyPair } from "jose";

const [port, issuer, audience] = process.argv.slice(2);
const { publicKey, privateKey } = await generateKeyPair("ES256");
const jwk = { ...(await exportJWK(publicKey)), kid: "jose-1", alg: "ES256", use: "sig" };
const token = await new SignJWT({ client_id: "jose-client", scope: "catalog:write" })
  .setProtectedHeader({ alg: "ES256", kid: "jose-1", typ: "at+jwt" })
  .setIssuer(issuer)
  .setAudience(audience)
  .setSubject("jose-user")
  .setJti("jose-jti-1")
  .setIssuedAt()
  .setExpirationTime("5m")
  .sign(privateKey);

http
  .createServer((req, res) => {
    if (req.url === "/jwks") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ keys: [jwk] }));
    } else {
      res.writeHead(404);
      res.end();
    }
  })
  .listen(Number(port), "127.0.0.1", () => console.log(`token=${token}`));
