// Verifies an access token of a Plexus identity server the way any OpenID relying party does,
// with the `jose` library: discovery document, then the JWKS it names, then the token.
//   node jose_verify.mjs <issuer> <token> <audience>
// Prints the verified claims as JSON and exits 0, or prints the error and exits 1.
import { createRemoteJWKSet, jwtVerify } from "jose";

const [issuer, token, audience] = process.argv.slice(2);
try {
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  if (discovery.issuer !== issuer) throw new Error(`discovery names issuer ${discovery.issuer}`);
  const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    typ: "at+jwt",
    algorithms: ["ES256", "RS256", "EdDSA"],
  });
  console.log(JSON.stringify({ header: protectedHeader, claims: payload }));
} catch (e) {
  console.log(`verification failed: ${e.code ?? ""} ${e.message}`);
  process.exit(1);
}
