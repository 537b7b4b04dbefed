/**
 * The landing page at `GET /graphql` (Accept: text/html): Apollo Sandbox outside production.
 *
 * Sandbox runs in an iframe loaded from Apollo's CDN, but its operations (subscriptions too)
 * are sent by this page itself, from the server's own origin: the origin checks let them
 * through and the session cookie is first-party. `includeCookies` makes Sandbox send it, so
 * Sandbox acts as the same anonymous user as the web client in that browser.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import {
  ApolloServerPluginLandingPageLocalDefault,
  ApolloServerPluginLandingPageProductionDefault,
} from '@apollo/server/plugin/landingPage/default';

/** First operation shown in Sandbox. */
const WELCOME_DOCUMENT = `# Who am I? This session's anonymous identity (the anonymo.sid cookie).
query Me {
  me { id username avatarUrl online }
}
`;

export function landingPagePlugin(isProduction: boolean): ApolloServerPlugin {
  if (isProduction) return ApolloServerPluginLandingPageProductionDefault({ footer: false });
  return ApolloServerPluginLandingPageLocalDefault({
    footer: false,
    includeCookies: true,
    document: WELCOME_DOCUMENT,
    embed: { runTelemetry: false },
  });
}
