// A real OpenID provider (npm oidc-provider) on loopback, for tests only.
//
// Usage: node start.mjs CONFIG.json   (or `-` to read the JSON from stdin)
//
// CONFIG (every key optional):
//   host, port            where to listen (default 127.0.0.1, port 0 = a free port)
//   parentPid             exit when this process is gone (a killed test run leaves no provider)
//   clients               oidc-provider client metadata, passed as is (client_id, jwks, scope,
//                         token_endpoint_auth_method, grant_types, redirect_uris, ...)
//   scopes                more scopes the provider knows (besides openid, offline_access and every
//                         scope a client or resource server names); a client may only ask for
//                         the known scopes its own `scope` lists
//   resourceServers       { "<resource URL>": { scope, accessTokenTTL?, audience?,
//                           accessTokenFormat? ("jwt" default), jwtAlg? } }; the first one is
//                         the default resource of client_credentials requests without `resource`
//   accounts              { "<sub>": { claims } } for sign-in through the built-in login form
//                         (devInteractions: any password); with accounts given, any other
//                         login ends in an error answer, never a code
//   claims                oidc-provider `claims` (scope -> claim names), e.g. {"profile": ["name"]}
//   ttl                   seconds per token kind, e.g. {"ClientCredentials": 300}
//   clockTolerance        seconds of clock skew accepted in client assertions (default 5)
//   features              oidc-provider features merged over {clientCredentials: on,
//                         introspection: on, revocation: on, resourceIndicators: on}
//   provider              any other plain-JSON oidc-provider configuration, merged last
//
// Prints `oidc-provider ready: <issuer>` once it accepts requests. The provider signs with
// ephemeral development keys; nothing is stored beyond the process.
import http from 'node:http';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const source = process.argv[2];
if (!source) {
  console.error('usage: node start.mjs CONFIG.json | -');
  process.exit(2);
}
const config = JSON.parse(readFileSync(source === '-' ? 0 : source, 'utf8'));

const host = config.host ?? '127.0.0.1';
const server = http.createServer();
await new Promise((resolve) => server.listen(config.port ?? 0, host, resolve));
const issuer = `http://${host}:${server.address().port}`;

const resourceServers = config.resourceServers ?? {};
const defaultResourceUrl = Object.keys(resourceServers)[0];
const accounts = config.accounts ?? {};

// Every scope a client or resource server names is known to the provider, so a client asking
// for one its own `scope` does not list is refused (invalid_scope) rather than ignored.
const named = (text) => (text ? text.split(' ').filter(Boolean) : []);
const knownScopes = new Set(['openid', 'offline_access', ...(config.scopes ?? [])]);
for (const client of config.clients ?? []) named(client.scope).forEach((s) => knownScopes.add(s));
for (const info of Object.values(resourceServers)) named(info.scope).forEach((s) => knownScopes.add(s));

const configuration = {
  clients: config.clients ?? [],
  scopes: [...knownScopes],
  claims: config.claims ?? { openid: ['sub'] },
  clockTolerance: config.clockTolerance ?? 5,
  // SMART Backend Services signs client assertions with RS384 or ES384, which the default
  // list lacks.
  enabledJWA: {
    clientAuthSigningAlgValues: ['RS256', 'RS384', 'PS256', 'ES256', 'ES384', 'EdDSA'],
  },
  ttl: config.ttl ?? {},
  // Loopback tests read a real error description instead of a generic one.
  renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
  async findAccount(_ctx, sub) {
    const known = accounts[sub];
    if (!known && Object.keys(accounts).length) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, ...(known?.claims ?? {}) };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // client_credentials without `resource` still gets a token for the (first) resource server.
      async defaultResource() {
        return defaultResourceUrl;
      },
      async useGrantedResource() {
        return true;
      },
      async getResourceServerInfo(_ctx, resourceIndicator) {
        const info = resourceServers[resourceIndicator];
        if (!info) throw new Provider.errors.InvalidTarget();
        return {
          scope: info.scope ?? '',
          audience: info.audience ?? resourceIndicator,
          accessTokenTTL: info.accessTokenTTL ?? config.ttl?.ClientCredentials ?? 300,
          accessTokenFormat: info.accessTokenFormat ?? 'jwt',
          jwt: { sign: { alg: info.jwtAlg ?? 'RS256' } },
        };
      },
    },
    ...(config.features ?? {}),
  },
  ...(config.provider ?? {}),
};

const provider = new Provider(issuer, configuration);
// Development keys and http on loopback are what these tests want: keep the log quiet about it.
provider.on('server_error', (_ctx, error) => console.error('oidc-provider server_error:', error));
server.on('request', provider.callback());

function shutdown(why) {
  console.log(`oidc-provider stopping: ${why}`);
  server.close();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (config.parentPid) {
  setInterval(() => {
    try {
      process.kill(config.parentPid, 0);
    } catch {
      shutdown('parent process gone');
    }
  }, 1000).unref();
}

console.log(`oidc-provider ready: ${issuer}`);
