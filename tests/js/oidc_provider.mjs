// A real OpenID Connect provider (panva's oidc-provider) for the sign-in tests in tests/web.
//
// Started by tests/web/oidc_fixture.py with Node; listens on a free loopback port and prints
// `listening <issuer>` once it answers. Configured from the environment:
//   OIDC_CLIENT       {"client_id", "client_secret", "redirect_uri", "post_logout_redirect_uri"}
//   OIDC_ACCOUNTS     {"<account id, the sub>": {"email", "email_verified", "xms_edov", "name", "pid"}, ...}
//   OIDC_LOGIN_AS     optional: the account signed in when the request names none (a real browser
//                     clicking "Logg inn", as in tests/web/test_whole_case_browser.py and the README)
//   OIDC_PORT         optional: the port to listen on (default: a free one)
//
// One confidential client, PKCE (S256) required, RP-initiated logout on. There is no login
// form: the interaction signs in, at once, the account the authorization request names in
// `login_hint` (the test, acting as the browser, adds it), or else OIDC_LOGIN_AS, and consent
// is taken as given, so that a test can sign in over plain HTTP. Claims of the `email` and
// `profile` scopes come from the userinfo endpoint, as the provider's default
// (conformIdTokenClaims) has it; `pid` comes in the ID token, as ID-porten sends it.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const client = JSON.parse(process.env.OIDC_CLIENT);
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS);
const loginAs = process.env.OIDC_LOGIN_AS || '';
const port = Number(process.env.OIDC_PORT || 0);

function findAccount(_ctx, id) {
  const account = accounts[id];
  if (!account) return undefined;
  return {
    accountId: id,
    async claims() {
      return { ...account };
    },
  };
}

async function loadExistingGrant(ctx) {
  const { provider, client: rp, session, result } = ctx.oidc;
  const grantId = result?.consent?.grantId || session.grantIdFor(rp.clientId);
  if (grantId) return provider.Grant.find(grantId);
  const grant = new provider.Grant({ clientId: rp.clientId, accountId: session.accountId });
  grant.addOIDCScope('openid email profile');
  await grant.save();
  session.grantIdFor(rp.clientId, grant.jti);
  return grant;
}

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const provider = new Provider(issuer, {
    clients: [{
      client_id: client.client_id,
      client_secret: client.client_secret,
      redirect_uris: [client.redirect_uri],
      post_logout_redirect_uris: [client.post_logout_redirect_uri],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' }] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: { openid: ['sub', 'pid'], email: ['email', 'email_verified', 'xms_edov'], profile: ['name'] },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
    findAccount,
    loadExistingGrant,
  });
  const callback = provider.callback();

  server.on('request', async (req, res) => {
    if (!req.url.startsWith('/interaction/')) {
      callback(req, res);
      return;
    }
    try {
      const details = await provider.interactionDetails(req, res);
      const accountId = details.params.login_hint || loginAs;
      if (!accounts[accountId]) {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`no test account named in login_hint: ${accountId}`);
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
    } catch (error) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(error));
    }
  });
  console.log(`listening ${issuer}`);
});
